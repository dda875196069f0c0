import { memoryStore, StoreUnavailableError, type Store } from '@cnm/datastore'
import { describe, expect, it } from 'vitest'
import { Bitseq, BitseqStoreError, NoBitAvailableError, StoreAttachedError } from '../src/index.js'
import { instrumentedStore } from './helpers/instrumented-store.js'

const json = (v: Uint8Array): { id: string; sequence: string } =>
  JSON.parse(new TextDecoder().decode(v)) as { id: string; sequence: string }

async function stored(store: Store, key: string): Promise<{ id: string; sequence: string; index: bigint } | undefined> {
  const pair = await store.get(key)
  return pair === undefined ? undefined : { ...json(pair.value), index: pair.index }
}

describe('bitseq with a store', () => {
  it('writes a fresh handle immediately and loads an existing one', async () => {
    const store = instrumentedStore()
    const a = await Bitseq.create({ bits: 64n, store, key: 'ipam/default/data/pool1', id: 'pool1' })
    expect(store.calls.create).toBe(1)
    const value = (await stored(store, 'ipam/default/data/pool1'))!
    expect(value.id).toBe('pool1')
    expect(Buffer.from(value.sequence, 'base64').equals(Buffer.from(a.serialize()))).toBe(true)

    await a.set(5n)
    // A second handle on the key loads the stored state, whatever size it was asked for.
    const b = await Bitseq.create({ bits: 999n, store, key: 'ipam/default/data/pool1' })
    expect(b.bits()).toBe(64n)
    expect(b.isSet(5n)).toBe(true)
    expect(store.calls.create).toBe(1)
  })

  it('requires a key with a store', async () => {
    await expect(Bitseq.create({ bits: 8n, store: instrumentedStore() })).rejects.toMatchObject({
      kind: 'invalid-argument',
    })
  })

  it('§5.7 (plain memoryStore): two handles on one key never hand out the same ordinal', async () => {
    const store = memoryStore()
    const h1 = await Bitseq.create({ bits: 300n, store, key: 'idm/plain' })
    const h2 = await Bitseq.create({ bits: 300n, store, key: 'idm/plain' })
    const got = await Promise.all(Array.from({ length: 300 }, (_, i) => (i % 2 === 0 ? h1 : h2).setAny(i % 3 === 0)))
    expect(new Set(got).size).toBe(300)
    await expect(h2.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
  })

  it('§5.7: two handles on one key never hand out the same ordinal (CAS retry)', async () => {
    const store = instrumentedStore({ yieldEvery: true })
    const bits = 200
    const h1 = await Bitseq.create({ bits: BigInt(bits), store, key: 'idm/vxlan' })
    const h2 = await Bitseq.create({ bits: BigInt(bits), store, key: 'idm/vxlan' })
    const jobs: Promise<bigint>[] = []
    for (let i = 0; i < bits / 2; i++) jobs.push(h1.setAny(), h2.setAny(i % 2 === 0))
    const got = await Promise.all(jobs)
    expect(new Set(got).size).toBe(bits)
    expect([...got].sort((a, b) => (a < b ? -1 : 1))).toEqual(Array.from({ length: bits }, (_, i) => BigInt(i)))
    // Conflicts really happened and were retried.
    expect(store.calls.update).toBeGreaterThan(bits)
    await expect(h1.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(h2.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
    await h1.refresh()
    expect(h1.unselected()).toBe(0n)
    expect(h1.sequenceString()).toBe('(0xffffffff, 6)->(0xff000000, 1)->end')
  })

  it('concurrent set and unset from two handles converge in the store', async () => {
    const store = instrumentedStore({ yieldEvery: true })
    const h1 = await Bitseq.create({ bits: 128n, store, key: 'k/x' })
    const h2 = await Bitseq.create({ bits: 128n, store, key: 'k/x' })
    await Promise.all(Array.from({ length: 64 }, (_, i) => (i % 2 === 0 ? h1 : h2).set(BigInt(i * 2))))
    await Promise.all(Array.from({ length: 32 }, (_, i) => (i % 2 === 0 ? h2 : h1).unset(BigInt(i * 4))))
    const check = await Bitseq.create({ bits: 128n, store, key: 'k/x' })
    for (let i = 0; i < 128; i++) expect(check.isSet(BigInt(i))).toBe(i % 4 === 2)
    expect(check.unselected()).toBe(96n)
  })

  it('a store failure aborts without changing the in-memory copy', async () => {
    const store = instrumentedStore()
    const h = await Bitseq.create({ bits: 64n, store, key: 'k/fail' })
    await h.set(1n)
    const before = (await stored(store, 'k/fail'))!.index
    const down = new StoreUnavailableError('backend down')
    store.failNext('update', down)
    await expect(h.setAny()).rejects.toBe(down)
    expect(h.isSet(0n)).toBe(false)
    expect(h.unselected()).toBe(63n)
    expect((await stored(store, 'k/fail'))!.index).toBe(before)
    // Foreign errors are wrapped, keeping the original as cause.
    const boom = new Error('boom')
    store.failNext('get', boom)
    const err = await h.set(9n).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BitseqStoreError)
    expect((err as BitseqStoreError).cause).toBe(boom)
    expect(h.isSet(9n)).toBe(false)
    // And the handle keeps working afterwards.
    expect(await h.setAny()).toBe(0n)
  })

  it('a domain error still refreshes the local copy from the store', async () => {
    const store = instrumentedStore()
    const a = await Bitseq.create({ bits: 64n, store, key: 'k/d' })
    const b = await Bitseq.create({ bits: 64n, store, key: 'k/d' })
    await a.set(7n)
    expect(b.isSet(7n)).toBe(false) // stale until b talks to the store
    await expect(b.set(7n)).rejects.toMatchObject({ code: 'ERR_BITSEQ_BIT_ALLOCATED' })
    expect(b.isSet(7n)).toBe(true)
  })

  it('sync methods refuse to run on a persisted handle', async () => {
    const h = await Bitseq.create({ bits: 8n, store: instrumentedStore(), key: 'k/s' })
    expect(() => h.setAnySync()).toThrow(StoreAttachedError)
    expect(() => h.setAnyInRangeSync(0n, 1n)).toThrow(StoreAttachedError)
    expect(() => h.setSync(0n)).toThrow(StoreAttachedError)
    expect(() => h.unsetSync(0n)).toThrow(StoreAttachedError)
  })

  it('destroy deletes the key; a missing key is success; the handle can be written again', async () => {
    const store = instrumentedStore()
    const h = await Bitseq.create({ bits: 64n, store, key: 'k/del' })
    await h.set(3n)
    await h.destroy()
    expect(await store.get('k/del')).toBeUndefined()
    await h.destroy()
    // The in-memory copy survives and a later change recreates the key.
    expect(h.isSet(3n)).toBe(true)
    await h.set(4n)
    const again = await Bitseq.create({ bits: 64n, store, key: 'k/del' })
    expect(again.isSet(3n) && again.isSet(4n)).toBe(true)
  })

  it('destroy retries when the key changed under it', async () => {
    const store = instrumentedStore({ yieldEvery: true })
    const a = await Bitseq.create({ bits: 64n, store, key: 'k/race' })
    const b = await Bitseq.create({ bits: 64n, store, key: 'k/race' })
    await Promise.all([a.destroy(), b.set(1n)])
    // Either order is fine, but the outcome must be consistent: the key is gone, or it holds bit 1.
    const sequence = (await stored(store, 'k/race'))?.sequence
    const consistent = sequence === undefined || Bitseq.deserialize(Buffer.from(sequence, 'base64')).isSet(1n)
    expect(consistent).toBe(true)
    expect(store.calls.deleteIf).toBeGreaterThanOrEqual(1)
  })

  it('checkConsistency drops count-0 sequences left by Docker 1.9 and writes the fix back', async () => {
    const store = instrumentedStore()
    // 64 bits: (0x80000000,1) (0xffffffff,0) (0x0,1): a count-0 sequence in the middle.
    const corrupted = Buffer.from(
      '0000000000000040' +
        '000000000000003f' +
        '80000000' +
        '0000000000000001' +
        'ffffffff' +
        '0000000000000000' +
        '00000000' +
        '0000000000000001',
      'hex',
    )
    const value = JSON.stringify({ id: 'c', sequence: corrupted.toString('base64') })
    await store.put('k/c', new TextEncoder().encode(value))
    const h = await Bitseq.create({ bits: 64n, store, key: 'k/c', id: 'c' })
    expect(h.sequenceString()).toBe('(0x80000000, 1)->(0xffffffff, 0)->(0x0, 1)->end')
    // Operations are still correct on the corrupted list.
    expect(h.isSet(0n)).toBe(true)
    expect(h.isSet(32n)).toBe(false)
    expect(await h.checkConsistency()).toBe(true)
    expect(h.sequenceString()).toBe('(0x80000000, 1)->(0x0, 1)->end')
    const fixed = Buffer.from((await stored(store, 'k/c'))!.sequence, 'base64')
    expect(Bitseq.deserialize(fixed).sequenceString()).toBe('(0x80000000, 1)->(0x0, 1)->end')
    expect(await h.checkConsistency()).toBe(false)
    expect(await h.setAny()).toBe(1n)
  })

  it('an operation aborted while queued behind another one gives up its turn cleanly', async () => {
    const store = instrumentedStore({ yieldEvery: true })
    const h = await Bitseq.create({ bits: 64n, store, key: 'k/queue' })
    const ac = new AbortController()
    const first = h.setAny()
    const second = h.setAny(false, { signal: ac.signal })
    const third = h.setAny()
    ac.abort(new Error('not needed'))
    await expect(second).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect([await first, await third]).toEqual([0n, 1n])
    expect(h.unselected()).toBe(62n)
  })

  it('honours abort signals in store operations', async () => {
    const store = instrumentedStore({ yieldEvery: true })
    const h = await Bitseq.create({ bits: 64n, store, key: 'k/abort' })
    const ac = new AbortController()
    const p = h.setAny(false, { signal: ac.signal })
    ac.abort(new Error('cancelled'))
    await expect(p).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(h.isSet(0n)).toBe(false)
  })
})
