import { memoryStore } from '@cnm/datastore'
import { capturingLogger } from '@cnm/test-utils'
import { describe, expect, it } from 'vitest'
import {
  BitAlreadyAllocatedError,
  Idm,
  IdOutOfRangeError,
  InvalidRangeError,
  NoBitAvailableError,
} from '../src/index.js'

describe('idm', () => {
  it('§5.8: create fails for an empty id or end <= start', async () => {
    await expect(Idm.create({ id: '', start: 0, end: 10 })).rejects.toMatchObject({ kind: 'invalid-argument' })
    await expect(Idm.create({ id: 'x', start: 10, end: 10 })).rejects.toMatchObject({ kind: 'invalid-argument' })
    await expect(Idm.create({ id: 'x', start: 10n, end: 9n })).rejects.toMatchObject({
      kind: 'invalid-argument',
      code: 'ERR_IDM_INVALID_RANGE',
    })
    await expect(Idm.create({ id: 'x', start: 0n, end: 2n ** 64n - 1n })).rejects.toMatchObject({
      kind: 'invalid-argument',
    })
    await expect(Idm.create({ id: 'x', start: 1.5, end: 9 })).rejects.toMatchObject({ kind: 'invalid-argument' })
    await expect(Idm.create({ id: 'x', start: -1, end: 9 })).rejects.toMatchObject({ kind: 'invalid-argument' })
  })

  it('§2: 50..52 hands out 50, 51, 52 then nothing; 49 and 53 are outside', async () => {
    const i = await Idm.create({ id: 'myset', start: 50, end: 52 })
    expect(await i.getId()).toBe(50n)
    expect(await i.getId()).toBe(51n)
    expect(await i.getId()).toBe(52n)
    await expect(i.getId()).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(i.getSpecificId(49)).rejects.toBeInstanceOf(IdOutOfRangeError)
    await expect(i.getSpecificId(53n)).rejects.toBeInstanceOf(IdOutOfRangeError)
    const err = await i.getSpecificId(53n).catch((e: unknown) => e)
    expect((err as IdOutOfRangeError).kind).toBe('invalid-argument')
    expect((err as IdOutOfRangeError).code).toBe('ERR_IDM_OUT_OF_RANGE')
  })

  it('§1.3 / §5.8: serial 50..55: 50, 51, 52; release 50 → 53; release 52 → getSpecificId(52)', async () => {
    const i = await Idm.create({ id: 'serial', start: 50n, end: 55n })
    expect(await i.getId(true)).toBe(50n)
    expect(await i.getId(true)).toBe(51n)
    expect(await i.getId(true)).toBe(52n)
    await i.release(50n)
    expect(await i.getId(true)).toBe(53n)
    await i.release(52n)
    await i.getSpecificId(52n)
    expect(i.inUse(52n)).toBe(true)
    expect(await i.getId(true)).toBe(54n)
    expect(await i.getId(true)).toBe(55n)
    expect(await i.getId(true)).toBe(50n) // wrapped around to the released one
    await expect(i.getId(true)).rejects.toBeInstanceOf(NoBitAvailableError)
  })

  it('first-free mode reuses the lowest released id at once', async () => {
    const i = await Idm.create({ id: 'ff', start: 50n, end: 55n })
    for (let k = 0; k < 3; k++) await i.getId()
    await i.release(50n)
    expect(await i.getId()).toBe(50n)
  })

  it('getSpecificId refuses a taken id', async () => {
    const i = await Idm.create({ id: 'spec', start: 0, end: 100 })
    await i.getSpecificId(7)
    await expect(i.getSpecificId(7)).rejects.toBeInstanceOf(BitAlreadyAllocatedError)
    expect(await i.getId()).toBe(0n)
  })

  it('getIdInRange checks the range against the set and allocates inside it', async () => {
    const i = await Idm.create({ id: 'range', start: 100, end: 200 })
    await expect(i.getIdInRange(99, 150)).rejects.toBeInstanceOf(IdOutOfRangeError)
    await expect(i.getIdInRange(150, 201)).rejects.toBeInstanceOf(IdOutOfRangeError)
    await expect(i.getIdInRange(160, 150)).rejects.toBeInstanceOf(InvalidRangeError)
    expect(await i.getIdInRange(150, 152)).toBe(150n)
    expect(await i.getIdInRange(150, 152, true)).toBe(151n)
    expect(await i.getIdInRange(150n, 152n)).toBe(152n)
    await expect(i.getIdInRange(150, 152)).rejects.toBeInstanceOf(NoBitAvailableError)
    expect(await i.getIdInRange(100, 200)).toBe(100n)
    expect(await i.getIdInRange(200, 200)).toBe(200n)
    expect(i.free()).toBe(101n - 5n)
  })

  it('release of an id outside the set is ignored and trace-logged', async () => {
    const logger = capturingLogger()
    const i = await Idm.create({ id: 'rel', start: 10, end: 20, logger })
    expect(await i.getId()).toBe(10n)
    await i.release(5)
    await i.release(21n)
    i.releaseSync(2n ** 70n)
    expect(i.free()).toBe(10n)
    expect(i.inUse(10n)).toBe(true)
    const traces = logger.lines.filter((l) => l.level === 'trace')
    expect(traces).toHaveLength(3)
    expect(traces[0]?.component).toBe('cnm:idm:rel')
    expect(traces[0]?.message).toMatch(/release of %s ignored/)
  })

  it('sync variants', async () => {
    const i = await Idm.create({ id: 'sync', start: 1000, end: 1003 })
    expect(i.getIdSync()).toBe(1000n)
    i.getSpecificIdSync(1001)
    expect(i.getIdInRangeSync(1001, 1003, true)).toBe(1002n)
    i.releaseSync(1000)
    expect(i.getIdSync(true)).toBe(1003n)
    expect(i.getIdSync(true)).toBe(1000n)
    expect(() => i.getIdSync()).toThrow(NoBitAvailableError)
  })

  it('ids above 2^53 work (bigint all the way)', async () => {
    const start = 2n ** 60n
    const i = await Idm.create({ id: 'huge', start, end: start + 2n ** 62n })
    expect(await i.getId()).toBe(start)
    await i.getSpecificId(start + 2n ** 62n)
    expect(await i.getIdInRange(start + 2n ** 62n - 1n, start + 2n ** 62n)).toBe(start + 2n ** 62n - 1n)
  })
})

describe('idm with a store', () => {
  it('persists under idm/<id> and shares the set between instances', async () => {
    const store = memoryStore()
    const a = await Idm.create({ id: 'vxlan-id', start: 256, end: 1 << 24, store })
    const pair = await store.get('idm/vxlan-id')
    expect(pair).toBeDefined()
    const value = JSON.parse(new TextDecoder().decode(pair!.value)) as { id: string; sequence: string }
    expect(value.id).toBe('vxlan-id')
    expect(await a.getId()).toBe(256n)
    const b = await Idm.create({ id: 'vxlan-id', start: 256, end: 1 << 24, store })
    expect(b.inUse(256n)).toBe(true)
    expect(await b.getId()).toBe(257n)
    // Concurrent allocations from both never collide.
    const got = await Promise.all(Array.from({ length: 60 }, (_, k) => (k % 2 === 0 ? a : b).getId(k % 3 === 0)))
    expect(new Set(got).size).toBe(60)
    expect([...got].sort((x, y) => (x < y ? -1 : 1))).toEqual(Array.from({ length: 60 }, (_, k) => 258n + BigInt(k)))
    await a.release(256n)
    await b.refresh()
    expect(b.inUse(256n)).toBe(false)
    expect(() => a.getIdSync()).toThrow(/only available on handles without a store/)
    await a.destroy()
    expect(await store.get('idm/vxlan-id')).toBeUndefined()
  })
})
