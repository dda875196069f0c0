// Randomized comparison of Bitseq against a naive boolean-array model, on both internal engines.
import { isCnmError } from '@cnm/types'
import { describe, expect, it } from 'vitest'
import { BigEngine } from '../src/internal/big-engine.js'
import type { Engine } from '../src/internal/codec.js'
import { DenseEngine } from '../src/internal/dense-engine.js'
import { Bitseq, BITSEQ_MAX_BITS } from '../src/index.js'

type Outcome = bigint | boolean | string | undefined

/** The spec, written as plainly as possible. */
class Model {
  readonly arr: boolean[]
  unselected: number
  curr = 0
  constructor(readonly bits: number) {
    this.arr = new Array<boolean>(bits).fill(false)
    this.unselected = bits
  }
  private scan(from: number, end: number): number {
    for (let k = from; k <= end; k++) if (!this.arr[k]) return k
    return -1
  }
  setAnyInRange(s: number, e: number, serial: boolean): Outcome {
    if (s < 0 || e < s || e >= this.bits) return 'ERR_BITSEQ_INVALID_RANGE'
    return this.alloc(s, e, serial)
  }
  setAny(serial: boolean): Outcome {
    return this.alloc(0, this.bits - 1, serial)
  }
  private alloc(s: number, e: number, serial: boolean): Outcome {
    if (this.unselected === 0) return 'ERR_BITSEQ_NO_BIT_AVAILABLE'
    let k = serial && this.curr > s ? this.scan(this.curr, e) : -1
    if (k < 0) k = this.scan(s, e)
    if (k < 0) return 'ERR_BITSEQ_NO_BIT_AVAILABLE'
    this.arr[k] = true
    this.unselected--
    this.curr = k + 1
    return BigInt(k)
  }
  set(k: number): Outcome {
    if (k < 0 || k >= this.bits) return 'ERR_BITSEQ_OUT_OF_RANGE'
    if (this.arr[k] === true) return 'ERR_BITSEQ_BIT_ALLOCATED'
    this.arr[k] = true
    if (this.unselected > 0) this.unselected--
    return undefined
  }
  unset(k: number): Outcome {
    if (k < 0 || k >= this.bits) return 'ERR_BITSEQ_OUT_OF_RANGE'
    this.arr[k] = false
    this.unselected++
    return undefined
  }
  isSet(k: number): boolean {
    return this.arr[k] === true
  }
  /** Canonical run-length list of the 32-bit blocks. */
  sequenceString(): string {
    const nblocks = Math.ceil(this.bits / 32)
    const runs: [number, number][] = []
    for (let b = 0; b < nblocks; b++) {
      let w = 0
      for (let j = 0; j < 32; j++) if (this.arr[b * 32 + j] === true) w = (w | (0x80000000 >>> j)) >>> 0
      const last = runs[runs.length - 1]
      if (last !== undefined && last[0] === w) last[1]++
      else runs.push([w, 1])
    }
    if (runs.length === 0) runs.push([0, 0])
    return runs.map(([w, c]) => `(0x${w.toString(16)}, ${c})->`).join('') + 'end'
  }
}

function rng(seed: number): () => number {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

function attempt(fn: () => Outcome): Outcome {
  try {
    return fn()
  } catch (err) {
    if (isCnmError(err)) return err.code
    throw err
  }
}

/** A handle forced onto a given engine (the constructor is private to the package, not to its tests). */
function handleWith(engine: Engine): Bitseq {
  const Ctor = Bitseq as unknown as new (e: Engine, s: undefined, k: string, i: string) => Bitseq
  return new Ctor(engine, undefined, '', '')
}
const engineOf = (h: Bitseq): string => (h as unknown as { eng: Engine }).eng.constructor.name

function run(h: Bitseq, bits: number, seed: number, ops: number, seen?: Set<string>, canonical = true): void {
  const m = new Model(bits)
  const r = rng(seed)
  const pick = (): number => Math.floor(r() * (bits + 2)) - 1 // includes -1 and bits (invalid)
  // Phases bias towards filling or emptying, so the list fragments, fills up and drains.
  let fillBias = 0.7
  for (let n = 0; n < ops; n++) {
    if (n % 500 === 0) fillBias = r() < 0.5 ? 0.8 : 0.3
    const x = r()
    const serial = r() < 0.5
    let want: Outcome
    let got: Outcome
    let what: string
    if (x < fillBias * 0.5) {
      what = `setAny(${serial})`
      want = m.setAny(serial)
      got = attempt(() => h.setAnySync(serial))
    } else if (x < fillBias) {
      const a = pick()
      const b = r() < 0.9 ? a + Math.floor(r() * 70) : pick()
      what = `setAnyInRange(${a}, ${b}, ${serial})`
      want = m.setAnyInRange(a, b, serial)
      got = attempt(() => h.setAnyInRangeSync(BigInt(a), BigInt(b), serial))
    } else if (x < fillBias + (1 - fillBias) * 0.2) {
      const k = pick()
      what = `set(${k})`
      want = m.set(k)
      got = attempt(() => {
        h.setSync(BigInt(k))
        return undefined
      })
    } else {
      // Mostly unset bits that are set, so the model stays meaningful.
      let k = pick()
      for (let tries = 0; tries < 8 && k >= 0 && k < bits && !m.isSet(k); tries++) k = pick()
      what = `unset(${k})`
      want = m.unset(k)
      got = attempt(() => {
        h.unsetSync(BigInt(k))
        return undefined
      })
    }
    seen?.add(engineOf(h))
    if (got !== want) expect.fail(`op ${n} ${what}: got ${String(got)}, model ${String(want)}`)
    if (h.unselected() !== BigInt(m.unselected)) expect.fail(`op ${n} ${what}: unselected differs`)
    if (n % 97 === 0 || n === ops - 1) {
      if (canonical) {
        expect(h.sequenceString(), `op ${n} ${what}`).toBe(m.sequenceString())
        const seqs = m.sequenceString().split('->').length - 1
        expect((h as unknown as { eng: Engine }).eng.len, 'sequence count').toBe(seqs)
      }
      for (let k = 0; k < bits; k++) if (h.isSet(BigInt(k)) !== m.isSet(k)) expect.fail(`op ${n}: isSet(${k})`)
      const back = Bitseq.deserialize(h.serialize())
      expect(back.equals(h)).toBe(true)
      expect(back.sequenceString()).toBe(h.sequenceString())
    }
  }
}

const SIZES = [1, 31, 32, 33, 64, 100, 257, 1000, 4099]

describe('bitseq: randomized against a boolean-array model', () => {
  for (const bits of SIZES) {
    it(`number engine, ${bits} bits`, async () => {
      run(await Bitseq.create({ bits: BigInt(bits) }), bits, bits * 7919, 4000)
    })
    it(`bigint engine, ${bits} bits`, () => {
      run(handleWith(BigEngine.fresh(BigInt(bits))), bits, bits * 104729, 4000)
    })
    it(`dense engine, ${bits} bits`, () => {
      const dense = new DenseEngine(bits, bits, new Uint32Array(Math.ceil(bits / 32)), -1)
      const h = handleWith(dense)
      run(h, bits, bits * 1299709, 4000)
      expect(engineOf(h)).toBe('DenseEngine')
    })
  }

  it('stays correct on a non-canonical list (count-0 sequences, equal neighbours) until repaired', async () => {
    // 320 bits = 10 empty blocks, written as (0,0) (0,3) (0xffffffff,0) (0,2) (0,0) (0,5) (0,0).
    const pairs: [number, bigint][] = [
      [0, 0n],
      [0, 3n],
      [0xffffffff, 0n],
      [0, 2n],
      [0, 0n],
      [0, 5n],
      [0, 0n],
    ]
    const bytes = new Uint8Array(16 + 12 * pairs.length)
    const dv = new DataView(bytes.buffer)
    dv.setBigUint64(0, 320n)
    dv.setBigUint64(8, 320n)
    pairs.forEach(([block, count], i) => {
      dv.setUint32(16 + 12 * i, block)
      dv.setBigUint64(20 + 12 * i, count)
    })
    for (const make of [
      () => Bitseq.deserialize(bytes),
      () =>
        handleWith(
          BigEngine.fromPairs(
            320n,
            320n,
            pairs.map(([b]) => b),
            pairs.map(([, c]) => c),
          ),
        ),
    ]) {
      const h = make()
      expect(h.sequenceString()).toBe(
        '(0x0, 0)->(0x0, 3)->(0xffffffff, 0)->(0x0, 2)->(0x0, 0)->(0x0, 5)->(0x0, 0)->end',
      )
      run(h, 320, 777, 3000, undefined, false)
      expect(await h.checkConsistency()).toBe(true)
      const model = new Model(320)
      for (let k = 0; k < 320; k++) if (h.isSet(BigInt(k))) model.set(k)
      expect(h.sequenceString()).toBe(model.sequenceString())
    }
  })

  it('switches between run-length list and dense blocks as fragmentation comes and goes', async () => {
    const bits = 256 * 32 // 256 blocks: dense above 64 sequences, back below 16
    const h = await Bitseq.create({ bits: BigInt(bits) })
    const seen = new Set<string>()
    run(h, bits, 4242, 30_000, seen)
    expect([...seen].sort()).toEqual(['DenseEngine', 'NumEngine'])
    // Drain completely: back to a one-sequence run-length list.
    for (let k = 0; k < bits; k++) if (h.isSet(BigInt(k))) h.unsetSync(BigInt(k))
    expect(engineOf(h)).toBe('NumEngine')
    expect(h.sequenceString()).toBe('(0x0, 256)->end')
  })

  it('2^64 - 1 bits: random ops in windows at both ends', async () => {
    const MAX = BITSEQ_MAX_BITS
    const h = await Bitseq.create({ bits: MAX })
    const W = 300
    const windows = [0n, MAX - BigInt(W)]
    const model = windows.map(() => new Array<boolean>(W).fill(false))
    const r = rng(42)
    let free = MAX
    for (let n = 0; n < 3000; n++) {
      const w = r() < 0.5 ? 0 : 1
      const base = windows[w] as bigint
      const arr = model[w] as boolean[]
      const i = Math.floor(r() * W)
      const x = r()
      if (x < 0.4) {
        // First-free within [base + i, base + W - 1].
        let k = i
        while (k < W && arr[k] === true) k++
        const got = attempt(() => h.setAnyInRangeSync(base + BigInt(i), base + BigInt(W - 1)))
        if (k === W) expect(got).toBe('ERR_BITSEQ_NO_BIT_AVAILABLE')
        else {
          expect(got).toBe(base + BigInt(k))
          arr[k] = true
          free--
        }
      } else if (x < 0.6) {
        const got = attempt(() => {
          h.setSync(base + BigInt(i))
          return undefined
        })
        if (arr[i] === true) expect(got).toBe('ERR_BITSEQ_BIT_ALLOCATED')
        else {
          expect(got).toBeUndefined()
          arr[i] = true
          free--
        }
      } else if (arr[i] === true) {
        h.unsetSync(base + BigInt(i))
        arr[i] = false
        free++
      }
      expect(h.unselected()).toBe(free)
    }
    for (const [w, base] of windows.entries()) {
      for (let i = 0; i < W; i++) expect(h.isSet(base + BigInt(i))).toBe(model[w]?.[i] === true)
    }
    expect(Bitseq.deserialize(h.serialize()).equals(h)).toBe(true)
  })
})
