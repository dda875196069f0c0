/**
 * The run-length list for handles larger than 2^53 bits (IPv6 pools up to 2^64 - 1 bits), with
 * bigint positions. Same layout and algorithms as NumEngine (sequence `i` = block `blk[i]` starting at
 * block index `st[i]`, count derived from the next start), on plain arrays: such handles hold few
 * sequences in practice, so simplicity wins over typed-array tricks here.
 */

const FULL = 0xffffffff
const FIRST_BIT = 0x80000000

export class BigEngine {
  readonly bits: bigint
  readonly nblocks: bigint
  unselected: bigint
  blk: number[]
  st: bigint[]
  /** Never switches to another engine. */
  readonly upper = Infinity
  readonly lower = -1
  private hint = 0

  constructor(bits: bigint, unselected: bigint, blk: number[], st: bigint[]) {
    this.bits = bits
    this.nblocks = (bits + 31n) / 32n
    this.unselected = unselected
    this.blk = blk
    this.st = st
  }

  static fresh(bits: bigint): BigEngine {
    return new BigEngine(bits, bits, [0], [0n])
  }

  static fromPairs(bits: bigint, unselected: bigint, blocks: readonly number[], counts: readonly bigint[]): BigEngine {
    const st: bigint[] = []
    let start = 0n
    for (const c of counts) {
      st.push(start)
      start += c
    }
    return new BigEngine(bits, unselected, blocks.slice(), st)
  }

  get len(): number {
    return this.blk.length
  }

  clone(): BigEngine {
    return new BigEngine(this.bits, this.unselected, this.blk.slice(), this.st.slice())
  }

  count(i: number): bigint {
    return (i + 1 < this.st.length ? (this.st[i + 1] as bigint) : this.nblocks) - (this.st[i] as bigint)
  }

  find(b: bigint): number {
    const st = this.st
    const len = st.length
    const h = this.hint
    if (h < len && (st[h] as bigint) <= b && (h + 1 >= len || b < (st[h + 1] as bigint))) return h
    let lo = 0
    let hi = len - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >>> 1
      if ((st[mid] as bigint) <= b) lo = mid
      else hi = mid - 1
    }
    this.hint = lo
    return lo
  }

  isSet(ordinal: bigint): boolean {
    const word = this.blk[this.find(ordinal >> 5n)] as number
    return (word & (FIRST_BIT >>> Number(ordinal & 31n))) !== 0
  }

  /** Lowest clear ordinal in [from, end], or -1n. Requires 0 <= from and end < bits. */
  firstFree(from: bigint, end: bigint): bigint {
    if (from > end) return -1n
    const st = this.st
    const blk = this.blk
    const len = st.length
    let b = from >> 5n
    let i = this.find(b)
    let word = blk[i] as number
    const free = ~word & (FULL >>> Number(from & 31n))
    if (free !== 0) {
      const o = (b << 5n) + BigInt(Math.clz32(free))
      return o <= end ? o : -1n
    }
    b++
    while (b < this.nblocks && b << 5n <= end) {
      while (i + 1 < len && (st[i + 1] as bigint) <= b) i++
      word = blk[i] as number
      if (word !== FULL) {
        const o = (b << 5n) + BigInt(Math.clz32(~word))
        return o <= end ? o : -1n
      }
      b = i + 1 < len ? (st[i + 1] as bigint) : this.nblocks
    }
    return -1n
  }

  write(ordinal: bigint, value: boolean): boolean {
    const b = ordinal >> 5n
    const i = this.find(b)
    const old = this.blk[i] as number
    const mask = FIRST_BIT >>> Number(ordinal & 31n)
    const nb = value ? (old | mask) >>> 0 : (old & ~mask) >>> 0
    if (nb === old) return false
    this.replace(i, b, nb)
    return true
  }

  private replace(i: number, b: bigint, nb: number): void {
    const blk = this.blk
    const st = this.st
    const s = st[i] as bigint
    const e = i + 1 < st.length ? (st[i + 1] as bigint) : this.nblocks
    if (e - s === 1n) {
      blk[i] = nb
      if (i + 1 < blk.length && blk[i + 1] === nb) {
        blk.splice(i + 1, 1)
        st.splice(i + 1, 1)
      }
      if (i > 0 && blk[i - 1] === nb) {
        blk.splice(i, 1)
        st.splice(i, 1)
      }
    } else if (b === s) {
      if (i > 0 && blk[i - 1] === nb) {
        st[i] = s + 1n
      } else {
        blk.splice(i, 0, nb)
        st.splice(i + 1, 0, s + 1n)
      }
    } else if (b === e - 1n) {
      if (i + 1 < blk.length && blk[i + 1] === nb) {
        st[i + 1] = b
      } else {
        blk.splice(i + 1, 0, nb)
        st.splice(i + 1, 0, b)
      }
    } else {
      blk.splice(i + 1, 0, nb, blk[i] as number)
      st.splice(i + 1, 0, b, b + 1n)
    }
    if (this.hint >= blk.length) this.hint = 0
  }

  repair(): boolean {
    const blk: number[] = []
    const st: bigint[] = []
    let changed = false
    for (let r = 0; r < this.blk.length; r++) {
      const block = this.blk[r] as number
      if (this.count(r) === 0n && this.blk.length > 1) {
        changed = true
        continue
      }
      if (blk.length > 0 && blk[blk.length - 1] === block) {
        changed = true
        continue
      }
      blk.push(block)
      st.push(this.st[r] as bigint)
    }
    if (blk.length === 0) {
      blk.push(0)
      st.push(0n)
    }
    this.blk = blk
    this.st = st
    this.hint = 0
    return changed
  }

  sequenceString(): string {
    let out = ''
    for (let i = 0; i < this.blk.length; i++) out += `(0x${(this.blk[i] as number).toString(16)}, ${this.count(i)})->`
    return out + 'end'
  }

  serialize(): Uint8Array {
    const n = this.blk.length
    const out = new Uint8Array(16 + 12 * n)
    const dv = new DataView(out.buffer)
    dv.setBigUint64(0, this.bits)
    dv.setBigUint64(8, BigInt.asUintN(64, this.unselected))
    for (let i = 0; i < n; i++) {
      const off = 16 + 12 * i
      dv.setUint32(off, this.blk[i] as number)
      dv.setBigUint64(off + 4, this.count(i))
    }
    return out
  }
}
