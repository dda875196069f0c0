import { isCnmError } from '@cnm/types'
import { describe, expect, it } from 'vitest'
import {
  BitAlreadyAllocatedError,
  Bitseq,
  BITSEQ_MAX_BITS,
  InvalidRangeError,
  NoBitAvailableError,
  OutOfRangeError,
} from '../src/index.js'

const MAX = BITSEQ_MAX_BITS

async function fresh(bits: bigint | number): Promise<Bitseq> {
  return Bitseq.create({ bits: BigInt(bits) })
}

describe('bitseq: §5 cases', () => {
  it('1: 1024 bits fill, exhaust, errors, unset restores unselected', async () => {
    const h = await fresh(1024)
    for (let i = 0; i < 1024; i++) expect(await h.setAny()).toBe(BigInt(i))
    expect(h.unselected()).toBe(0n)
    await expect(h.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(h.setAnyInRange(10n, 20n)).rejects.toBeInstanceOf(NoBitAvailableError)
    const err = await h.set(50n).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BitAlreadyAllocatedError)
    expect(isCnmError(err, 'ERR_BITSEQ_BIT_ALLOCATED')).toBe(true)
    expect((err as BitAlreadyAllocatedError).kind).toBe('forbidden')
    expect(h.sequenceString()).toBe('(0xffffffff, 32)->end')
    for (let i = 0; i < 1024; i++) {
      await h.unset(BigInt(i))
      expect(h.unselected()).toBe(BigInt(i + 1))
    }
    expect(h.unselected()).toBe(1024n)
    expect(h.sequenceString()).toBe('(0x0, 32)->end')
  })

  it('2: 30 bits (not a multiple of 32): range fills and tail bits never handed out', async () => {
    const h = await fresh(30)
    for (let i = 0; i < 8; i++) expect(await h.setAnyInRange(0n, 7n)).toBe(BigInt(i))
    await expect(h.setAnyInRange(0n, 7n)).rejects.toBeInstanceOf(NoBitAvailableError)
    for (let i = 8; i < 16; i++) expect(await h.setAnyInRange(8n, 15n)).toBe(BigInt(i))
    await expect(h.setAnyInRange(8n, 15n)).rejects.toBeInstanceOf(NoBitAvailableError)
    const got = [await h.setAnyInRange(28n, 29n), await h.setAnyInRange(28n, 29n)]
    expect(got).toEqual([28n, 29n])
    await expect(h.setAnyInRange(28n, 29n)).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(h.setAnyInRange(28n, 30n)).rejects.toBeInstanceOf(InvalidRangeError)
    // The rest (16..27) via setAny, then nothing: ordinals 30 and 31 exist in the block but are never used.
    for (let i = 16; i < 28; i++) expect(await h.setAny()).toBe(BigInt(i))
    expect(h.unselected()).toBe(0n)
    await expect(h.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
    expect(h.isSet(30n)).toBe(false)
    await expect(h.set(30n)).rejects.toBeInstanceOf(OutOfRangeError)
    expect(h.sequenceString()).toBe('(0xfffffffc, 1)->end')
  })

  it('3: set 0 and 255 of 256, then ranges 128..255 and 246..255', async () => {
    const h = await fresh(256)
    await h.set(0n)
    await h.set(255n)
    expect(await h.setAnyInRange(128n, 255n)).toBe(128n)
    expect(await h.setAnyInRange(128n, 255n)).toBe(129n)
    expect(await h.setAnyInRange(246n, 255n)).toBe(246n)
    expect(await h.setAnyInRange(246n, 255n)).toBe(247n)
    expect(h.unselected()).toBe(250n)
  })

  it('4: canonical form: 256 blocks, 192 setAny', async () => {
    const h = await fresh(256 * 32)
    for (let i = 0; i < 192; i++) await h.setAny()
    expect(h.sequenceString()).toBe('(0xffffffff, 6)->(0x0, 250)->end')
  })

  it('5: serial rollover: freed bits are reused only after the cursor wraps', async () => {
    const bits = 2048
    const h = await fresh(bits)
    for (let i = 0; i < bits / 2; i++) expect(await h.setAny(true)).toBe(BigInt(i))
    // Free a random quarter of all bits, from the allocated half.
    const order = shuffled(bits / 2, 0x5eed)
    const freed = new Set(order.slice(0, bits / 4))
    for (const o of freed) await h.unset(BigInt(o))
    expect(h.unselected()).toBe(BigInt(bits / 2 + bits / 4))
    // The rest: serial allocation continues after the cursor and never touches a freed bit.
    for (let i = bits / 2; i < bits; i++) {
      const o = await h.setAny(true)
      expect(o).toBe(BigInt(i))
    }
    expect(h.unselected()).toBe(BigInt(bits / 4))
    // Final fill: the cursor wraps and hands out exactly the freed quarter, in ascending order.
    const again: number[] = []
    for (let i = 0; i < bits / 4; i++) again.push(Number(await h.setAny(true)))
    expect(again).toEqual([...freed].sort((a, b) => a - b))
    expect(h.unselected()).toBe(0n)
    await expect(h.setAny(true)).rejects.toBeInstanceOf(NoBitAvailableError)
  })

  it('§1.3: serial range 50..55: get 50, 51, 52; release 50 → 53; release 52 → set(52) works', async () => {
    const h = await fresh(64)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(50n)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(51n)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(52n)
    await h.unset(50n)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(53n)
    await h.unset(52n)
    await h.set(52n)
    expect(h.isSet(52n)).toBe(true)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(54n)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(55n)
    expect(await h.setAnyInRange(50n, 55n, true)).toBe(50n) // wrapped
    await expect(h.setAnyInRange(50n, 55n, true)).rejects.toBeInstanceOf(NoBitAvailableError)
    // First-free (non-serial) takes the lowest free bit of the range.
    await h.unset(53n)
    await h.unset(51n)
    expect(await h.setAnyInRange(50n, 55n)).toBe(51n)
  })
})

describe('bitseq: operations', () => {
  it('validates ordinals and ranges', async () => {
    const h = await fresh(100)
    await expect(h.set(100n)).rejects.toBeInstanceOf(OutOfRangeError)
    await expect(h.set(-1n)).rejects.toBeInstanceOf(OutOfRangeError)
    await expect(h.unset(100n)).rejects.toBeInstanceOf(OutOfRangeError)
    await expect(h.setAnyInRange(5n, 4n)).rejects.toBeInstanceOf(InvalidRangeError)
    await expect(h.setAnyInRange(0n, 100n)).rejects.toBeInstanceOf(InvalidRangeError)
    await expect(h.setAnyInRange(-1n, 10n)).rejects.toBeInstanceOf(InvalidRangeError)
    const err = await h.setAnyInRange(5n, 4n).catch((e: unknown) => e)
    expect((err as InvalidRangeError).kind).toBe('invalid-argument')
    expect((err as InvalidRangeError).message).toBe('invalid bit range [5, 4]')
    expect(h.isSet(100n)).toBe(false)
    expect(h.isSet(-5n)).toBe(false)
    expect(h.unselected()).toBe(100n)
    expect(h.bits()).toBe(100n)
  })

  it('accepts safe-integer numbers as ordinals', async () => {
    const h = await fresh(64)
    await h.set(7)
    expect(h.isSet(7)).toBe(true)
    expect(h.isSet(7n)).toBe(true)
    expect(await h.setAnyInRange(7, 9)).toBe(8n)
    await expect(h.set(1.5)).rejects.toBeInstanceOf(OutOfRangeError)
  })

  it('unset of a clear bit is a no-op on the bitmap but still counts (libnetwork quirk)', async () => {
    const h = await fresh(64)
    await h.unset(3n)
    expect(h.unselected()).toBe(65n)
    expect(h.sequenceString()).toBe('(0x0, 2)->end')
  })

  it('serial cursor also moves on non-serial allocations', async () => {
    const h = await fresh(64)
    expect(await h.setAny()).toBe(0n)
    expect(await h.setAny()).toBe(1n)
    await h.unset(0n)
    expect(await h.setAny(true)).toBe(2n)
    expect(await h.setAny()).toBe(0n)
    expect(await h.setAny(true)).toBe(3n) // cursor is 1 after the non-serial 0: first free from 1 is 3
  })

  it('splits and merges sequences canonically', async () => {
    const h = await fresh(32 * 8)
    await h.set(32n * 3n + 1n)
    expect(h.sequenceString()).toBe('(0x0, 3)->(0x40000000, 1)->(0x0, 4)->end')
    await h.unset(32n * 3n + 1n)
    expect(h.sequenceString()).toBe('(0x0, 8)->end')
    for (let i = 0; i < 64; i++) await h.set(BigInt(i))
    expect(h.sequenceString()).toBe('(0xffffffff, 2)->(0x0, 6)->end')
    for (let i = 32 * 7; i < 32 * 8; i++) await h.set(BigInt(i))
    expect(h.sequenceString()).toBe('(0xffffffff, 2)->(0x0, 5)->(0xffffffff, 1)->end')
    for (let i = 64; i < 32 * 7; i++) await h.set(BigInt(i))
    expect(h.sequenceString()).toBe('(0xffffffff, 8)->end')
    await h.unset(0n)
    await h.unset(255n)
    expect(h.sequenceString()).toBe('(0x7fffffff, 1)->(0xffffffff, 6)->(0xfffffffe, 1)->end')
  })

  it('sync variants behave like the async ones', async () => {
    const h = await fresh(40)
    expect(h.setAnySync()).toBe(0n)
    h.setSync(1n)
    expect(h.setAnyInRangeSync(0n, 39n, true)).toBe(2n)
    h.unsetSync(1n)
    expect(h.setAnySync(true)).toBe(3n)
    expect(h.setAnySync()).toBe(1n)
    expect(() => h.setSync(1n)).toThrow(BitAlreadyAllocatedError)
    expect(() => h.setAnyInRangeSync(39n, 40n)).toThrow(InvalidRangeError)
    expect(h.unselected()).toBe(36n)
  })

  it('a 0-bit handle has nothing to give', async () => {
    const h = await fresh(0)
    expect(h.sequenceString()).toBe('(0x0, 0)->end')
    await expect(h.setAny()).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(h.set(0n)).rejects.toBeInstanceOf(OutOfRangeError)
    expect(Bitseq.deserialize(h.serialize()).equals(h)).toBe(true)
  })

  it('rejects bad sizes', async () => {
    await expect(Bitseq.create({ bits: -1n })).rejects.toMatchObject({ kind: 'invalid-argument' })
    await expect(Bitseq.create({ bits: MAX + 1n })).rejects.toMatchObject({ kind: 'invalid-argument' })
    await expect(Bitseq.create({ bits: 'x' as unknown as bigint })).rejects.toMatchObject({
      kind: 'invalid-argument',
    })
  })

  it('honours an aborted signal', async () => {
    const h = await fresh(8)
    const signal = AbortSignal.abort(new Error('stop'))
    await expect(h.setAny(false, { signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await expect(Bitseq.create({ bits: 8n, signal })).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    expect(h.unselected()).toBe(8n)
  })
})

describe('bitseq: 2^64 - 1 bits', () => {
  it('sets near the end, setAny, ranges and unset', async () => {
    const h = await fresh(MAX)
    expect(h.bits()).toBe(MAX)
    expect(h.sequenceString()).toBe(`(0x0, ${2n ** 59n})->end`)
    expect(await h.setAny()).toBe(0n)
    await h.set(MAX - 1n) // the last valid ordinal
    expect(h.isSet(MAX - 1n)).toBe(true)
    expect(h.isSet(MAX)).toBe(false)
    await expect(h.set(MAX)).rejects.toBeInstanceOf(OutOfRangeError)
    await expect(h.set(MAX - 1n)).rejects.toBeInstanceOf(BitAlreadyAllocatedError)
    expect(h.sequenceString()).toBe(`(0x80000000, 1)->(0x0, ${2n ** 59n - 2n})->(0x2, 1)->end`)
    expect(await h.setAnyInRange(MAX - 3n, MAX - 1n)).toBe(MAX - 3n)
    expect(await h.setAnyInRange(MAX - 3n, MAX - 1n)).toBe(MAX - 2n)
    await expect(h.setAnyInRange(MAX - 3n, MAX - 1n)).rejects.toBeInstanceOf(NoBitAvailableError)
    await expect(h.setAnyInRange(MAX - 3n, MAX)).rejects.toBeInstanceOf(InvalidRangeError)
    expect(h.unselected()).toBe(MAX - 4n)
    // Serial: the cursor sits at MAX (past the end) and wraps to the lowest free bit.
    expect(await h.setAny(true)).toBe(1n)
    expect(await h.setAny(true)).toBe(2n)
    await h.unset(MAX - 1n)
    await h.unset(MAX - 2n)
    await h.unset(MAX - 3n)
    await h.unset(0n)
    await h.unset(1n)
    await h.unset(2n)
    expect(h.unselected()).toBe(MAX)
    expect(h.sequenceString()).toBe(`(0x0, ${2n ** 59n})->end`)
  })

  it('fills a whole block at the far end and merges', async () => {
    const h = await fresh(MAX)
    const lastBlockStart = (2n ** 59n - 1n) * 32n
    for (let i = 0n; i < 31n; i++) expect(await h.setAnyInRange(lastBlockStart, MAX - 1n)).toBe(lastBlockStart + i)
    // 31 valid bits in the last block (the 32nd ordinal would be 2^64 - 1, which does not exist).
    await expect(h.setAnyInRange(lastBlockStart, MAX - 1n)).rejects.toBeInstanceOf(NoBitAvailableError)
    expect(h.sequenceString()).toBe(`(0x0, ${2n ** 59n - 1n})->(0xfffffffe, 1)->end`)
    const back = Bitseq.deserialize(h.serialize())
    expect(back.equals(h)).toBe(true)
    expect(back.isSet(MAX - 1n)).toBe(true)
  })
})

function shuffled(n: number, seed: number): number[] {
  let s = seed >>> 0
  const rnd = (): number => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const a = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[a[i], a[j]] = [a[j] as number, a[i] as number]
  }
  return a
}
