/**
 * The msgpack dialect of go-msgpack's default MsgpackHandle (spec §3): structs are maps with the keys
 * sorted by byte value, strings and byte slices both use the old raw family (a0|len, da, db), nil is c0,
 * integers take the smallest unsigned form. Decoding is lenient the way a Go peer is.
 */
import { NEED_MORE, WireError } from './errors.js'

/** Field kinds of the structs memberlist sends. */
export const Kind = {
  Str: 0,
  Bytes: 1,
  Bool: 2,
  U8: 3,
  U16: 4,
  U32: 5,
  /** Go `int`: non-negative here (lengths, counts, state); bounded by 2^53. */
  Int: 6,
} as const
export type Kind = (typeof Kind)[keyof typeof Kind]

export interface FieldDef {
  readonly name: string
  readonly kind: Kind
}

/** A struct schema: fields in wire order (sorted by name) and Go declaration order (for the array form). */
export interface StructDef {
  readonly fields: readonly FieldDef[]
  /** Encoded key bytes (fixstr header + name), per wire index. */
  readonly keys: readonly Uint8Array[]
  /** Wire index of each declaration-order position. */
  readonly declToWire: readonly number[]
}

/** `declaration` lists the Go fields in source order; the wire order is derived by byte-value sort. */
export function defineStruct(declaration: readonly FieldDef[]): StructDef {
  const fields = [...declaration].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  const keys = fields.map((f) => {
    const name = Buffer.from(f.name, 'latin1')
    const k = new Uint8Array(name.length + 1)
    k[0] = 0xa0 | name.length
    k.set(name, 1)
    return k
  })
  return { fields, keys, declToWire: declaration.map((f) => fields.indexOf(f)) }
}

/** Growable output buffer with the encoders of the dialect. */
export class MsgpackWriter {
  buf: Buffer
  pos = 0

  constructor(capacity = 128) {
    this.buf = Buffer.allocUnsafe(capacity)
  }

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return
    let cap = this.buf.length * 2
    while (cap < this.pos + n) cap *= 2
    const next = Buffer.allocUnsafe(cap)
    this.buf.copy(next, 0, 0, this.pos)
    this.buf = next
  }

  byte(b: number): void {
    this.ensure(1)
    this.buf[this.pos++] = b
  }

  /** Raw bytes, no header. */
  raw(b: Uint8Array): void {
    this.ensure(b.length)
    this.buf.set(b, this.pos)
    this.pos += b.length
  }

  mapHeader(n: number): void {
    if (n < 16) return this.byte(0x80 | n)
    this.ensure(3)
    this.buf[this.pos] = 0xde
    this.buf.writeUInt16BE(n, this.pos + 1)
    this.pos += 3
  }

  /** Smallest unsigned form. */
  uint(n: number): void {
    if (!Number.isInteger(n) || n < 0 || n > Number.MAX_SAFE_INTEGER) {
      throw new WireError(`msgpack: cannot encode ${n} as an unsigned integer`)
    }
    this.ensure(9)
    const b = this.buf
    if (n < 0x80) b[this.pos++] = n
    else if (n < 0x100) {
      b[this.pos] = 0xcc
      b[this.pos + 1] = n
      this.pos += 2
    } else if (n < 0x10000) {
      b[this.pos] = 0xcd
      b.writeUInt16BE(n, this.pos + 1)
      this.pos += 3
    } else if (n < 0x100000000) {
      b[this.pos] = 0xce
      b.writeUInt32BE(n, this.pos + 1)
      this.pos += 5
    } else {
      b[this.pos] = 0xcf
      b.writeUInt32BE(Math.floor(n / 0x100000000), this.pos + 1)
      b.writeUInt32BE(n >>> 0, this.pos + 5)
      this.pos += 9
    }
  }

  bool(v: boolean): void {
    this.byte(v ? 0xc3 : 0xc2)
  }

  rawHeader(len: number): void {
    this.ensure(5)
    const b = this.buf
    if (len < 32) b[this.pos++] = 0xa0 | len
    else if (len < 0x10000) {
      b[this.pos] = 0xda
      b.writeUInt16BE(len, this.pos + 1)
      this.pos += 3
    } else {
      b[this.pos] = 0xdb
      b.writeUInt32BE(len, this.pos + 1)
      this.pos += 5
    }
  }

  str(s: string): void {
    const len = Buffer.byteLength(s, 'utf8')
    this.rawHeader(len)
    this.ensure(len)
    this.buf.write(s, this.pos, len, 'utf8')
    this.pos += len
  }

  /** A byte slice: null → nil (c0), otherwise the raw family. */
  bytes(v: Uint8Array | null): void {
    if (v === null) return this.byte(0xc0)
    this.rawHeader(v.length)
    this.raw(v)
  }

  /** The bytes written so far (a view, not a copy). */
  finish(): Buffer {
    return this.buf.subarray(0, this.pos)
  }
}

/** Size of a raw-family header for `len` bytes. */
export function rawHeaderSize(len: number): number {
  return len < 32 ? 1 : len < 0x10000 ? 3 : 5
}

/**
 * Cursor over msgpack input. A `partial` reader (a stream still arriving) throws NEED_MORE at the end of
 * the input; a complete one throws WireError. `copy` makes byte fields copies instead of views.
 */
export class MsgpackReader {
  readonly buf: Buffer
  pos: number
  readonly end: number
  readonly partial: boolean
  readonly copy: boolean
  /** Longest string or byte value accepted (checked before waiting for its bytes). */
  maxLength = Number.POSITIVE_INFINITY

  constructor(buf: Uint8Array, pos = 0, end = buf.length, partial = false, copy = false) {
    this.buf = Buffer.isBuffer(buf) ? buf : Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength)
    this.pos = pos
    this.end = end
    this.partial = partial
    this.copy = copy
  }

  need(n: number): void {
    if (this.end - this.pos < n) {
      if (this.partial) throw NEED_MORE
      throw new WireError('msgpack: unexpected end of data')
    }
  }

  u8(): number {
    this.need(1)
    return this.buf[this.pos++]!
  }

  u16(): number {
    this.need(2)
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!
    this.pos += 2
    return v
  }

  u32(): number {
    this.need(4)
    const v = this.buf.readUInt32BE(this.pos)
    this.pos += 4
    return v
  }

  /** `n` raw bytes (view or copy). */
  take(n: number): Uint8Array {
    if (n > this.maxLength) throw new WireError(`msgpack: value of ${n} bytes is larger than limit`)
    this.need(n)
    const start = this.pos
    this.pos += n
    const view = this.buf.subarray(start, start + n)
    return this.copy ? Buffer.from(view) : view
  }

  /** Length of a str-family value after its head byte `h`, or -1 when `h` is not one. */
  private strLen(h: number): number {
    if ((h & 0xe0) === 0xa0) return h & 0x1f
    if (h === 0xd9) return this.u8()
    if (h === 0xda) return this.u16()
    if (h === 0xdb) return this.u32()
    return -1
  }

  /** Length of a bin-family value after its head byte `h`, or -1. */
  private binLen(h: number): number {
    if (h === 0xc4) return this.u8()
    if (h === 0xc5) return this.u16()
    if (h === 0xc6) return this.u32()
    return -1
  }

  /** A string field: str family or nil (→ ""). Bin is refused, as go-msgpack does. */
  str(): string {
    const h = this.u8()
    if (h === 0xc0) return ''
    const len = this.strLen(h)
    if (len < 0) throw new WireError(`msgpack: expected a string, got 0x${hex(h)}`)
    if (len > this.maxLength) throw new WireError(`msgpack: value of ${len} bytes is larger than limit`)
    this.need(len)
    const start = this.pos
    this.pos += len
    return len <= 24 ? shortString(this.buf, start, len) : this.buf.toString('utf8', start, start + len)
  }

  /** A byte-slice field: str or bin family; nil → null. */
  bytes(): Uint8Array | null {
    const h = this.u8()
    if (h === 0xc0) return null
    let len = this.strLen(h)
    if (len < 0) len = this.binLen(h)
    if (len < 0) throw new WireError(`msgpack: expected bytes, got 0x${hex(h)}`)
    return this.take(len)
  }

  /** Any integer form; refuses negatives and values above `max`. */
  uint(max: number): number {
    const h = this.u8()
    let v: number
    if (h < 0x80) v = h
    else if (h >= 0xe0) v = h - 0x100
    else {
      switch (h) {
        case 0xcc:
          v = this.u8()
          break
        case 0xcd:
          v = this.u16()
          break
        case 0xce:
          v = this.u32()
          break
        case 0xcf: {
          const hi = this.u32()
          v = hi * 0x100000000 + this.u32()
          break
        }
        case 0xd0:
          v = (this.u8() << 24) >> 24
          break
        case 0xd1:
          v = (this.u16() << 16) >> 16
          break
        case 0xd2:
          v = this.u32() | 0
          break
        case 0xd3: {
          const hi = this.u32() | 0
          v = hi * 0x100000000 + this.u32()
          break
        }
        default:
          throw new WireError(`msgpack: expected an integer, got 0x${hex(h)}`)
      }
    }
    if (v < 0) throw new WireError(`msgpack: negative value ${v} for an unsigned field`)
    if (v > max) throw new WireError(`msgpack: value ${v} overflows its field (max ${max})`)
    return v
  }

  /** c2/c3, or fixint 0/1. */
  bool(): boolean {
    const h = this.u8()
    if (h === 0xc3 || h === 0x01) return true
    if (h === 0xc2 || h === 0x00) return false
    throw new WireError(`msgpack: expected a bool, got 0x${hex(h)}`)
  }

  /** Skips one value of any type (iterative, so deep nesting cannot exhaust the stack). */
  skip(): void {
    let pending = 1
    while (pending > 0) {
      pending--
      const h = this.u8()
      if (h < 0x80 || h >= 0xe0 || h === 0xc0 || h === 0xc2 || h === 0xc3) continue
      if ((h & 0xf0) === 0x80) {
        pending += 2 * (h & 0x0f)
        continue
      }
      if ((h & 0xf0) === 0x90) {
        pending += h & 0x0f
        continue
      }
      if ((h & 0xe0) === 0xa0) {
        this.advance(h & 0x1f)
        continue
      }
      switch (h) {
        case 0xc4:
        case 0xd9:
          this.advance(this.u8())
          break
        case 0xc5:
        case 0xda:
          this.advance(this.u16())
          break
        case 0xc6:
        case 0xdb:
          this.advance(this.u32())
          break
        case 0xc7:
          this.advance(this.u8() + 1)
          break
        case 0xc8:
          this.advance(this.u16() + 1)
          break
        case 0xc9:
          this.advance(this.u32() + 1)
          break
        case 0xca:
          this.advance(4)
          break
        case 0xcb:
          this.advance(8)
          break
        case 0xcc:
        case 0xd0:
          this.advance(1)
          break
        case 0xcd:
        case 0xd1:
          this.advance(2)
          break
        case 0xce:
        case 0xd2:
          this.advance(4)
          break
        case 0xcf:
        case 0xd3:
          this.advance(8)
          break
        case 0xd4:
          this.advance(2)
          break
        case 0xd5:
          this.advance(3)
          break
        case 0xd6:
          this.advance(5)
          break
        case 0xd7:
          this.advance(9)
          break
        case 0xd8:
          this.advance(17)
          break
        case 0xdc:
          pending += this.u16()
          break
        case 0xdd:
          pending += this.u32()
          break
        case 0xde:
          pending += 2 * this.u16()
          break
        case 0xdf:
          pending += 2 * this.u32()
          break
        default:
          throw new WireError(`msgpack: invalid head byte 0x${hex(h)}`)
      }
    }
  }

  private advance(n: number): void {
    this.need(n)
    this.pos += n
  }

  /** Reads a struct (map keyed by field name, or array in declaration order) into `values` (wire order). */
  struct(def: StructDef, values: unknown[]): void {
    const h = this.u8()
    const isMap = (h & 0xf0) === 0x80 || h === 0xde || h === 0xdf
    let n: number
    if (h === 0xc0) return
    else if ((h & 0xe0) === 0x80)
      n = h & 0x0f // fixmap 0x80–0x8f, fixarray 0x90–0x9f
    else if (h === 0xde || h === 0xdc) n = this.u16()
    else if (h === 0xdf || h === 0xdd) n = this.u32()
    else throw new WireError(`msgpack: expected a struct (map or array), got 0x${hex(h)}`)
    if (!isMap) {
      for (let i = 0; i < n; i++) {
        const w = def.declToWire[i]
        if (w === undefined) this.skip()
        else values[w] = this.field(def.fields[w]!.kind)
      }
      return
    }
    for (let i = 0; i < n; i++) {
      const w = this.matchKey(def)
      if (w < 0) this.skip()
      else values[w] = this.field(def.fields[w]!.kind)
    }
  }

  /** Reads a map key; returns the wire index of the matching field or -1 (the key is consumed either way). */
  private matchKey(def: StructDef): number {
    const start = this.pos
    const h = this.u8()
    let len = this.strLen(h)
    if (len < 0) len = this.binLen(h)
    if (len < 0) {
      this.pos = start
      this.skip()
      return -1
    }
    this.need(len)
    const at = this.pos
    this.pos += len
    const keys = def.keys
    const b = this.buf
    outer: for (let k = 0; k < keys.length; k++) {
      const key = keys[k]!
      if (key.length - 1 !== len) continue
      for (let j = 0; j < len; j++) if (b[at + j] !== key[j + 1]) continue outer
      return k
    }
    return -1
  }

  private field(kind: Kind): unknown {
    switch (kind) {
      case Kind.Str:
        return this.str()
      case Kind.Bytes:
        return this.bytes()
      case Kind.Bool:
        return this.bool()
      case Kind.U8:
        return this.uint(0xff)
      case Kind.U16:
        return this.uint(0xffff)
      case Kind.U32:
        return this.uint(0xffffffff)
      case Kind.Int:
        return this.uint(Number.MAX_SAFE_INTEGER)
    }
  }
}

/** Zero values in wire order (what Go leaves in fields that are missing). */
export function zeroValues(def: StructDef): unknown[] {
  return def.fields.map((f) =>
    f.kind === Kind.Str ? '' : f.kind === Kind.Bytes ? null : f.kind === Kind.Bool ? false : 0,
  )
}

/** Short names are usually ASCII: building them in JS beats a native call; anything else goes to UTF-8. */
function shortString(buf: Buffer, start: number, len: number): string {
  let s = ''
  for (let i = start; i < start + len; i++) {
    const c = buf[i]!
    if (c >= 0x80) return buf.toString('utf8', start, start + len)
    s += String.fromCharCode(c)
  }
  return s
}

function hex(b: number): string {
  return b.toString(16).padStart(2, '0')
}
