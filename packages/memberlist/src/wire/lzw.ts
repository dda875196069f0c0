/**
 * LZW exactly as Go's compress/lzw with LSB order and literal width 8 (spec §5.3): codes 0–255 literals,
 * 256 clear, 257 end, first new code 258, width 9→12 (grows when the next code reaches 512/1024/2048),
 * a clear first, a clear and restart when the next code would be 4095, zero-padded last byte.
 */
import { WireError } from './errors.js'

const CLEAR = 256
const EOF = 257
const MAX_CODE = 4095
/** Codes the encoder can add between two clears (258 … 4094). */
const MAX_ENTRIES = MAX_CODE - EOF - 1

/** LSB-first code writer (a class, not a closure, so that V8 keeps its state in registers). */
class BitWriter {
  o = 0
  bits = 0
  nBits = 0
  width = 9
  constructor(readonly out: Buffer) {}

  write(code: number): void {
    let bits = this.bits | (code << this.nBits)
    let nBits = this.nBits + this.width
    const out = this.out
    while (nBits >= 8) {
      out[this.o++] = bits & 0xff
      bits >>>= 8
      nBits -= 8
    }
    this.bits = bits
    this.nBits = nBits
  }

  /** Pads the last partial byte with zero bits; returns the output. */
  finish(): Buffer {
    if (this.nBits > 0) this.out[this.o++] = this.bits & 0xff
    return this.out.subarray(0, this.o)
  }
}

/** Compresses `data`; the output is byte-identical to Go's `lzw.NewWriter(w, lzw.LSB, 8)`. */
export function lzwCompress(data: Uint8Array): Buffer {
  const n = data.length
  // Codes written: ≤ n, plus the first clear, the end code and one clear per table reset; ≤ 12 bits each.
  const maxCodes = n + 3 + Math.ceil(n / MAX_ENTRIES)
  const w = new BitWriter(Buffer.allocUnsafe(Math.ceil((maxCodes * 12) / 8) + 1))
  w.write(CLEAR)
  if (n === 0) {
    w.write(EOF)
    return w.finish()
  }

  // Open-addressing dictionary (key = prefix code << 8 | byte) → code, stored as key << 12 | code; 0 = free.
  // Its size only needs to fit the entries this input can create.
  let size = 64
  while (size < 2 * Math.min(n, MAX_ENTRIES)) size <<= 1
  const table = new Uint32Array(size)
  const mask = size - 1
  const shift = 32 - Math.log2(size)

  let hi = EOF
  let overflow = 1 << 9
  let code = data[0]!
  outer: for (let i = 1; i < n; i++) {
    const lit = data[i]!
    const key = (code << 8) | lit
    let h = Math.imul(key, 0x9e3779b1) >>> shift
    for (let t = table[h]!; t !== 0; t = table[h]!) {
      if (t >>> 12 === key) {
        code = t & 0xfff
        continue outer
      }
      h = (h + 1) & mask
    }
    w.write(code)
    code = lit
    hi++
    if (hi === overflow) {
      w.width++
      overflow <<= 1
    }
    if (hi === MAX_CODE) {
      w.write(CLEAR)
      w.width = 9
      hi = EOF
      overflow = 1 << 9
      table.fill(0)
      continue
    }
    table[h] = (key << 12) | hi
  }
  // Close: the pending code, its implied new code (which may widen or reset), the end code, padding.
  w.write(code)
  hi++
  if (hi === overflow) w.width++
  if (hi === MAX_CODE) {
    w.write(CLEAR)
    w.width = 9
  }
  w.write(EOF)
  return w.finish()
}

/**
 * Decompresses a Go compress/lzw (LSB, width 8) stream. The end code is required; bytes after it are
 * ignored. Throws WireError on an invalid code, a missing end code, or output beyond `maxOutputBytes`.
 */
export function lzwDecompress(data: Uint8Array, maxOutputBytes = Number.POSITIVE_INFINITY): Buffer {
  const n = data.length
  // One packed entry per code: expansion length << 20 | prefix code << 8 | last byte. A stream of n bytes
  // holds at most 8n/9 codes, so small inputs need a small table (one allocation, little zeroing).
  const table = new Uint32Array(Math.min(4096, 260 + Math.ceil((n * 8) / 9)))
  let out = Buffer.allocUnsafe(Math.min(Math.max(256, n * 4), maxOutputBytes + 4096))
  let o = 0
  let pos = 0
  let bits = 0
  let nBits = 0
  let width = 9
  let hi = EOF
  let overflow = 1 << 9
  let last = -1

  for (;;) {
    while (nBits < width) {
      if (pos >= n) throw new WireError('lzw: unexpected EOF')
      bits |= data[pos++]! << nBits
      nBits += 8
    }
    const code = bits & ((1 << width) - 1)
    bits >>>= width
    nBits -= width

    if (code === CLEAR) {
      width = 9
      hi = EOF
      overflow = 1 << 9
      last = -1
      continue
    }
    if (code === EOF) break
    if (code > hi || (code === hi && last === -1 && hi !== MAX_CODE)) throw new WireError('lzw: invalid code')

    // code === hi (not defined yet) expands to last's expansion followed by its own first byte.
    const special = code === hi && last !== -1
    const lastLen = last < CLEAR ? 1 : table[last]! >>> 20
    const len = special ? lastLen + 1 : code < CLEAR ? 1 : table[code]! >>> 20
    if (o + len > maxOutputBytes) throw new WireError(`lzw: decompressed data exceeds ${maxOutputBytes} bytes`)
    if (o + len > out.length) {
      const next = Buffer.allocUnsafe(Math.min(Math.max(out.length * 2, o + len), maxOutputBytes + 4096))
      out.copy(next, 0, 0, o)
      out = next
    }
    let c = special ? last : code
    let i = o + (special ? len - 2 : len - 1)
    while (c > EOF) {
      const e = table[c]!
      out[i--] = e & 0xff
      c = (e >>> 8) & 0xfff
    }
    out[i] = c
    if (special) out[o + len - 1] = c
    if (last !== -1) table[hi] = ((lastLen + 1) << 20) | (last << 8) | c
    o += len

    last = code
    hi++
    if (hi >= overflow) {
      if (width === 12) {
        last = -1
        hi--
      } else {
        width++
        overflow <<= 1
      }
    }
  }
  return out.subarray(0, o)
}
