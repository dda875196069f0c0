/**
 * The run-length list for handles of at most 2^53 bits, where every ordinal, block index and count
 * is an exact JS number. This is the hot path (every IPv4 pool, every ID set).
 *
 * Layout: sequence `i` has block value `blk[i]` and starts at block index `st[i]`; it ends where
 * sequence `i + 1` starts (the last one at `nblocks`), so its count is derived, never stored. Splitting
 * or merging a sequence therefore never changes the start of any other sequence, and the sequence
 * holding a block is found by binary search (plus a one-slot cache for the common "same place again").
 * The list may hold count-0 sequences or equal neighbours when it was decoded from a corrupted payload;
 * every operation stays correct on such lists and `repair()` makes them canonical.
 */

const FULL = 0xffffffff
const FIRST_BIT = 0x80000000
const MIN_CAPACITY = 8
/** Moves of up to this many entries are done by hand: cheaper than two copyWithin calls. */
const SHORT_MOVE = 24
/** Handles with more blocks never switch to the dense engine (it would take more than 4 MiB). */
export const DENSE_MAX_BLOCKS = 1 << 20

/**
 * The list length above which the owner switches to the dense engine: by then every change moves up to
 * that many entries, while the dense form costs at most about 4x the list's memory.
 */
export function denseThreshold(nblocks: number): number {
  return nblocks > DENSE_MAX_BLOCKS ? Infinity : Math.max(64, Math.min(nblocks >>> 3, 1024))
}

export class NumEngine {
  /** Number of valid ordinals. */
  readonly bits: number
  /** ceil(bits / 32). */
  readonly nblocks: number
  /** Free-bit counter (libnetwork's `unselected`, with its double-unset quirk). */
  unselected: number
  blk: Uint32Array
  st: Float64Array
  len: number
  /** Switch to the dense engine when `len` grows above this. */
  readonly upper: number
  /** Never switch from here to the dense engine because the list is short. */
  readonly lower = -1
  /** Index of the sequence found last; only a hint, always re-checked. */
  private hint = 0

  constructor(bits: number, unselected: number, blk: Uint32Array, st: Float64Array, len: number, upper?: number) {
    this.bits = bits
    this.nblocks = Math.ceil(bits / 32)
    this.unselected = unselected
    this.blk = blk
    this.st = st
    this.len = len
    this.upper = upper ?? denseThreshold(this.nblocks)
  }

  static fresh(bits: number): NumEngine {
    return new NumEngine(bits, bits, new Uint32Array(MIN_CAPACITY), new Float64Array(MIN_CAPACITY), 1)
  }

  /** Builds from explicit (block, count) pairs; counts must sum to ceil(bits / 32). */
  static fromPairs(bits: number, unselected: number, blocks: ArrayLike<number>, counts: ArrayLike<number>): NumEngine {
    const n = blocks.length
    const cap = Math.max(MIN_CAPACITY, n)
    const blk = new Uint32Array(cap)
    const st = new Float64Array(cap)
    let start = 0
    for (let i = 0; i < n; i++) {
      blk[i] = blocks[i] as number
      st[i] = start
      start += counts[i] as number
    }
    return new NumEngine(bits, unselected, blk, st, n)
  }

  clone(): NumEngine {
    const cap = Math.max(MIN_CAPACITY, this.len)
    const blk = new Uint32Array(cap)
    const st = new Float64Array(cap)
    blk.set(this.blk.subarray(0, this.len))
    st.set(this.st.subarray(0, this.len))
    return new NumEngine(this.bits, this.unselected, blk, st, this.len, this.upper)
  }

  count(i: number): number {
    return (i + 1 < this.len ? (this.st[i + 1] as number) : this.nblocks) - (this.st[i] as number)
  }

  /** Index of the sequence holding block `b` (0 <= b < nblocks). */
  find(b: number): number {
    const st = this.st
    const len = this.len
    let h = this.hint
    if (h < len && (st[h] as number) <= b) {
      if (h + 1 >= len || b < (st[h + 1] as number)) return h
      h++
      if (h + 1 >= len || b < (st[h + 1] as number)) {
        this.hint = h
        return h
      }
    }
    let lo = 0
    let hi = len - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if ((st[mid] as number) <= b) lo = mid
      else hi = mid - 1
    }
    this.hint = lo
    return lo
  }

  isSet(ordinal: number): boolean {
    const b = Math.floor(ordinal / 32)
    const word = this.blk[this.find(b)] as number
    return (word & (FIRST_BIT >>> (ordinal - b * 32))) !== 0
  }

  /** Lowest clear ordinal in [from, end], or -1. Requires 0 <= from and end < bits. */
  firstFree(from: number, end: number): number {
    if (from > end) return -1
    const nblocks = this.nblocks
    const st = this.st
    const blk = this.blk
    const len = this.len
    let b = Math.floor(from / 32)
    let i = this.find(b)
    let word = blk[i] as number
    const free = ~word & (FULL >>> (from - b * 32))
    if (free !== 0) {
      const o = b * 32 + Math.clz32(free)
      return o <= end ? o : -1
    }
    b++
    while (b < nblocks && b * 32 <= end) {
      while (i + 1 < len && (st[i + 1] as number) <= b) i++
      word = blk[i] as number
      if (word !== FULL) {
        const o = b * 32 + Math.clz32(~word)
        return o <= end ? o : -1
      }
      b = i + 1 < len ? (st[i + 1] as number) : nblocks
    }
    return -1
  }

  /** Sets (or clears) one bit; returns false when the bit already had that value. */
  write(ordinal: number, value: boolean): boolean {
    const b = Math.floor(ordinal / 32)
    const i = this.find(b)
    const old = this.blk[i] as number
    const mask = FIRST_BIT >>> (ordinal - b * 32)
    const nb = value ? (old | mask) >>> 0 : (old & ~mask) >>> 0
    if (nb === old) return false
    this.replace(i, b, nb)
    return true
  }

  /** Gives block `b` (inside sequence `i`) the value `nb`, splitting and merging sequences as needed. */
  private replace(i: number, b: number, nb: number): void {
    const blk = this.blk
    const st = this.st
    const s = st[i] as number
    const e = i + 1 < this.len ? (st[i + 1] as number) : this.nblocks
    if (e - s === 1) {
      blk[i] = nb
      if (i + 1 < this.len && this.blk[i + 1] === nb) this.remove(i + 1)
      if (i > 0 && this.blk[i - 1] === nb) this.remove(i)
      return
    }
    if (b === s) {
      if (i > 0 && blk[i - 1] === nb) {
        st[i] = s + 1
        return
      }
      this.insert(i, 1)
      this.blk[i] = nb
      this.st[i] = s
      this.st[i + 1] = s + 1
      return
    }
    if (b === e - 1) {
      if (i + 1 < this.len && blk[i + 1] === nb) {
        st[i + 1] = b
        return
      }
      this.insert(i + 1, 1)
      this.blk[i + 1] = nb
      this.st[i + 1] = b
      return
    }
    const oldBlock = blk[i] as number
    this.insert(i + 1, 2)
    this.blk[i + 1] = nb
    this.st[i + 1] = b
    this.blk[i + 2] = oldBlock
    this.st[i + 2] = b + 1
  }

  /** Opens `n` slots at index `at` (contents of the new slots are left for the caller). */
  private insert(at: number, n: number): void {
    const len = this.len
    if (len + n > this.blk.length) {
      const cap = Math.max(this.blk.length * 2, len + n)
      const blk = new Uint32Array(cap)
      const st = new Float64Array(cap)
      blk.set(this.blk.subarray(0, len))
      st.set(this.st.subarray(0, len))
      this.blk = blk
      this.st = st
    }
    const blk = this.blk
    const st = this.st
    if (len - at > SHORT_MOVE) {
      blk.copyWithin(at + n, at, len)
      st.copyWithin(at + n, at, len)
    } else {
      for (let k = len - 1; k >= at; k--) {
        blk[k + n] = blk[k] as number
        st[k + n] = st[k] as number
      }
    }
    this.len = len + n
  }

  private remove(at: number): void {
    const len = this.len
    const blk = this.blk
    const st = this.st
    if (len - at > SHORT_MOVE) {
      blk.copyWithin(at, at + 1, len)
      st.copyWithin(at, at + 1, len)
    } else {
      for (let k = at + 1; k < len; k++) {
        blk[k - 1] = blk[k] as number
        st[k - 1] = st[k] as number
      }
    }
    this.len = len - 1
    if (this.hint >= this.len) this.hint = 0
    const cap = this.blk.length
    if (cap > 64 && this.len * 4 < cap) {
      const ncap = Math.max(MIN_CAPACITY, cap >>> 1)
      this.blk = this.blk.slice(0, ncap)
      this.st = this.st.slice(0, ncap)
    }
  }

  /** Drops count-0 sequences and merges equal neighbours; returns true when anything changed. */
  repair(): boolean {
    let w = 0
    let changed = false
    for (let r = 0; r < this.len; r++) {
      const c = this.count(r)
      const block = this.blk[r] as number
      if (c === 0 && this.len > 1) {
        changed = true
        continue
      }
      if (w > 0 && this.blk[w - 1] === block) {
        changed = true
        continue
      }
      this.blk[w] = block
      this.st[w] = this.st[r] as number
      w++
    }
    if (w === 0) {
      // Only possible for a 0-bit handle made of count-0 sequences: keep one.
      this.blk[0] = 0
      this.st[0] = 0
      w = 1
    }
    this.len = w
    this.hint = 0
    return changed
  }

  sequenceString(): string {
    let out = ''
    for (let i = 0; i < this.len; i++) out += `(0x${(this.blk[i] as number).toString(16)}, ${this.count(i)})->`
    return out + 'end'
  }

  /** Writes the libnetwork binary form into a new array. */
  serialize(): Uint8Array {
    const out = new Uint8Array(16 + 12 * this.len)
    const dv = new DataView(out.buffer)
    putU64(dv, 0, this.bits)
    putU64(dv, 8, this.unselected)
    for (let i = 0; i < this.len; i++) {
      const off = 16 + 12 * i
      dv.setUint32(off, this.blk[i] as number)
      putU64(dv, off + 4, this.count(i))
    }
    return out
  }
}

function putU64(dv: DataView, off: number, v: number): void {
  dv.setUint32(off, Math.floor(v / 0x100000000))
  dv.setUint32(off + 4, v >>> 0)
}
