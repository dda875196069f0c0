/**
 * A fragmented handle (many short sequences) held as a plain array of 32-bit blocks. The run-length list
 * is still what the outside sees: `len` (the number of sequences of the canonical list) is kept up to date
 * on every change, and the list is produced on demand for serialization. Used only while it pays off:
 * the owning handle switches from the run-length engine to this one when the list grows long (every
 * change there moves the tail of the list) and back once it has shrunk again (see `balance()` in
 * bitseq.ts).
 *
 * A summary bitmap (one bit per block, MSB first, set = block full) and a lower bound of the first
 * non-full block make first-free searches skip full regions 32 blocks at a time.
 */

import { NumEngine } from './num-engine.js'

const FULL = 0xffffffff
const FIRST_BIT = 0x80000000

export class DenseEngine {
  readonly bits: number
  readonly nblocks: number
  unselected: number
  /** Number of sequences of the canonical run-length list. */
  len: number
  /** Switch back to the run-length engine when `len` drops below this. */
  readonly lower: number
  /** Never switch from here (the run-length engine has the finite threshold). */
  readonly upper = Infinity
  private readonly words: Uint32Array
  private readonly full: Uint32Array
  /** Every block below this index is full. */
  private hint = 0

  constructor(bits: number, unselected: number, words: Uint32Array, lower: number) {
    this.bits = bits
    this.nblocks = words.length
    this.unselected = unselected
    this.words = words
    this.lower = lower
    this.full = new Uint32Array(Math.ceil(words.length / 32))
    let runs = words.length > 0 ? 1 : 0
    for (let b = 0; b < words.length; b++) {
      if (words[b] === FULL) this.full[b >>> 5] = ((this.full[b >>> 5] as number) | (FIRST_BIT >>> (b & 31))) >>> 0
      if (b > 0 && words[b] !== words[b - 1]) runs++
    }
    this.len = Math.max(runs, 1)
  }

  static fromNum(e: NumEngine, lower: number): DenseEngine {
    const words = new Uint32Array(e.nblocks)
    for (let i = 0; i < e.len; i++) {
      const end = i + 1 < e.len ? (e.st[i + 1] as number) : e.nblocks
      words.fill(e.blk[i] as number, e.st[i] as number, end)
    }
    return new DenseEngine(e.bits, e.unselected, words, lower)
  }

  toNum(): NumEngine {
    const blocks: number[] = []
    const counts: number[] = []
    this.forEachRun((block, count) => {
      blocks.push(block)
      counts.push(count)
    })
    return NumEngine.fromPairs(this.bits, this.unselected, blocks, counts)
  }

  clone(): DenseEngine {
    return new DenseEngine(this.bits, this.unselected, this.words.slice(), this.lower)
  }

  isSet(ordinal: number): boolean {
    const b = Math.floor(ordinal / 32)
    return ((this.words[b] as number) & (FIRST_BIT >>> (ordinal - b * 32))) !== 0
  }

  /** Lowest clear ordinal in [from, end], or -1. Requires 0 <= from and end < bits. */
  firstFree(from: number, end: number): number {
    if (from > end) return -1
    const words = this.words
    let b = Math.floor(from / 32)
    if (b < this.hint) {
      // Everything below the hint is full: start at the hint, as a whole block.
      b = this.hint
      if (b * 32 > end) return -1
    } else {
      const free = ~(words[b] as number) & (FULL >>> (from - b * 32))
      if (free !== 0) {
        const o = b * 32 + Math.clz32(free)
        return o <= end ? o : -1
      }
      b++
    }
    const nb = this.nextNonFull(b, Math.min(this.nblocks - 1, Math.floor(end / 32)))
    if (nb < 0) return -1
    if (from <= this.hint * 32) this.hint = nb
    const o = nb * 32 + Math.clz32(~(words[nb] as number))
    return o <= end ? o : -1
  }

  /** First block in [b, last] that is not full, or -1. */
  private nextNonFull(b: number, last: number): number {
    const full = this.full
    if (b > last) return -1
    let j = b >>> 5
    let avail = ~(full[j] as number) & (FULL >>> (b & 31))
    const lastJ = last >>> 5
    while (avail === 0) {
      if (++j > lastJ) return -1
      avail = ~(full[j] as number)
    }
    const nb = j * 32 + Math.clz32(avail)
    return nb <= last ? nb : -1
  }

  write(ordinal: number, value: boolean): boolean {
    const words = this.words
    const b = Math.floor(ordinal / 32)
    const old = words[b] as number
    const mask = FIRST_BIT >>> (ordinal - b * 32)
    const nb = value ? (old | mask) >>> 0 : (old & ~mask) >>> 0
    if (nb === old) return false
    words[b] = nb
    // Run count: the pairs (b-1, b) and (b, b+1) may have become equal or different.
    if (b > 0) {
      const p = words[b - 1] as number
      this.len += (p !== nb ? 1 : 0) - (p !== old ? 1 : 0)
    }
    if (b + 1 < this.nblocks) {
      const n = words[b + 1] as number
      this.len += (n !== nb ? 1 : 0) - (n !== old ? 1 : 0)
    }
    if (nb === FULL) this.full[b >>> 5] = ((this.full[b >>> 5] as number) | (FIRST_BIT >>> (b & 31))) >>> 0
    else if (old === FULL) {
      this.full[b >>> 5] = ((this.full[b >>> 5] as number) & ~(FIRST_BIT >>> (b & 31))) >>> 0
    }
    if (!value && b < this.hint) this.hint = b
    return true
  }

  /** A dense array is always canonical. */
  repair(): boolean {
    return false
  }

  forEachRun(fn: (block: number, count: number) => void): void {
    const words = this.words
    const n = this.nblocks
    if (n === 0) {
      fn(0, 0)
      return
    }
    let start = 0
    for (let b = 1; b <= n; b++) {
      if (b === n || words[b] !== words[start]) {
        fn(words[start] as number, b - start)
        start = b
      }
    }
  }

  sequenceString(): string {
    let out = ''
    this.forEachRun((block, count) => {
      out += `(0x${block.toString(16)}, ${count})->`
    })
    return out + 'end'
  }

  serialize(): Uint8Array {
    return this.toNum().serialize()
  }
}
