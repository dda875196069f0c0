import { closeSync, ftruncateSync, openSync, readdirSync, readFileSync, unlinkSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import * as zlib from 'node:zlib'

/**
 * The write-ahead log of the lmdb store's fast mode. A write is appended here (one `write(2)`, so it is in
 * the kernel's page cache and survives the death of the process) before it is applied in memory and
 * queued for LMDB; once LMDB has committed and flushed it, the log segment that holds it is deleted.
 *
 * Segment files are named `wal-<index of first record, 16 digits>.log`. A record is
 * `u32 payload length | u32 CRC-32 of payload | payload`, the payload being
 * `u8 op (1 put, 2 delete) | f64 index | u16 key bytes | key (UTF-8) | [u32 value bytes | value]`.
 * All integers are little-endian. Indices of consecutive records are consecutive.
 */

export type WalOp = 'put' | 'delete'

export interface WalRecord {
  readonly op: WalOp
  readonly index: number
  readonly key: string
  /** Present for `put`. */
  readonly value?: Uint8Array
}

const HEADER_BYTES = 8
const OP_PUT = 1
const OP_DELETE = 2
const SEGMENT_NAME = /^wal-(\d{16})\.log$/

const nativeCrc32 = (zlib as { crc32?: (data: Uint8Array) => number }).crc32

function makeTable(): Int32Array {
  const t = new Int32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  return t
}

/** Only built on Node < 20.15, whose node:zlib has no crc32. */
const CRC_TABLE = nativeCrc32 === undefined ? makeTable() : undefined

/** CRC-32 (IEEE), as zlib computes it. */
export function crc32(data: Uint8Array): number {
  if (CRC_TABLE === undefined) return (nativeCrc32 as (d: Uint8Array) => number)(data)
  let c = -1
  for (let i = 0; i < data.length; i++) c = (CRC_TABLE[(c ^ (data[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ -1) >>> 0
}

export function segmentName(firstIndex: number): string {
  return `wal-${String(firstIndex).padStart(16, '0')}.log`
}

/** The segment files in `dir`, oldest first. */
export function listSegments(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => SEGMENT_NAME.test(f))
    .sort()
}

/**
 * Reads the records of every segment in order and stops at the first record that is truncated, fails its
 * checksum or does not parse: whatever follows it is not trusted (it can only be there after a power loss
 * wrote the file's pages out of order).
 */
export function readSegments(dir: string): WalRecord[] {
  const out: WalRecord[] = []
  for (const name of listSegments(dir)) {
    const buf = readFileSync(join(dir, name))
    let pos = 0
    while (pos < buf.length) {
      const rec = parseRecord(buf, pos)
      if (rec === undefined) return out
      out.push(rec.record)
      pos = rec.next
    }
  }
  return out
}

function parseRecord(buf: Buffer, pos: number): { record: WalRecord; next: number } | undefined {
  if (pos + HEADER_BYTES > buf.length) return undefined
  const len = buf.readUInt32LE(pos)
  const sum = buf.readUInt32LE(pos + 4)
  const start = pos + HEADER_BYTES
  const end = start + len
  if (len < 11 || end > buf.length) return undefined
  const payload = buf.subarray(start, end)
  if (crc32(payload) !== sum) return undefined
  const op = payload[0]
  const index = payload.readDoubleLE(1)
  const keyLen = payload.readUInt16LE(9)
  if (!Number.isSafeInteger(index) || index < 1 || 11 + keyLen > len) return undefined
  const key = payload.toString('utf8', 11, 11 + keyLen)
  if (op === OP_DELETE) {
    if (11 + keyLen !== len) return undefined
    return { record: { op: 'delete', index, key }, next: end }
  }
  if (op !== OP_PUT || 11 + keyLen + 4 > len) return undefined
  const valueLen = payload.readUInt32LE(11 + keyLen)
  const valueStart = 11 + keyLen + 4
  if (valueStart + valueLen !== len) return undefined
  const value = new Uint8Array(payload.subarray(valueStart, valueStart + valueLen))
  return { record: { op: 'put', index, key, value }, next: end }
}

/** Deletes every segment file in `dir`. */
export function deleteSegments(dir: string): void {
  for (const name of listSegments(dir)) unlinkSync(join(dir, name))
}

export interface WalWriterInit {
  dir: string
  segmentBytes: number
  /** Called when a segment that is no longer needed cannot be deleted (it is retried later). */
  onError(err: unknown): void
}

/**
 * Appends records; rotates segments; deletes a segment once every record in it is durable in LMDB.
 * Records are encoded by `add` and written together by `commit` (one write for a group of records).
 */
export class WalWriter {
  readonly #dir: string
  readonly #segmentBytes: number
  readonly #onError: (err: unknown) => void
  #fd: number | undefined
  #name = ''
  #size = 0
  #lastIndex = 0
  /** Full segments waiting for their last record to become durable. */
  readonly #full: Array<{ name: string; lastIndex: number }> = []
  /** Encoded records not yet written. */
  #buf = Buffer.allocUnsafe(64 * 1024)
  #len = 0
  #firstIndex = 0
  #pendingLast = 0

  constructor(init: WalWriterInit) {
    this.#dir = init.dir
    this.#segmentBytes = init.segmentBytes
    this.#onError = (err) => init.onError(err)
  }

  /** Encodes one record for the next `commit`. */
  add(op: WalOp, index: number, key: string, value: Uint8Array | undefined): void {
    const need = this.#len + HEADER_BYTES + 11 + key.length * 3 + (value === undefined ? 0 : 4 + value.length)
    if (need > this.#buf.length) {
      const grown = Buffer.allocUnsafe(Math.max(need, this.#buf.length * 2))
      this.#buf.copy(grown, 0, 0, this.#len)
      this.#buf = grown
    }
    const buf = this.#buf
    const rec = this.#len
    const start = rec + HEADER_BYTES
    buf[start] = op === 'put' ? OP_PUT : OP_DELETE
    buf.writeDoubleLE(index, start + 1)
    const keyLen = buf.write(key, start + 11, 'utf8')
    buf.writeUInt16LE(keyLen, start + 9)
    let end = start + 11 + keyLen
    if (value !== undefined) {
      buf.writeUInt32LE(value.length, end)
      buf.set(value, end + 4)
      end += 4 + value.length
    }
    buf.writeUInt32LE(end - start, rec)
    buf.writeUInt32LE(crc32(buf.subarray(start, end)), rec + 4)
    if (this.#len === 0) this.#firstIndex = index
    this.#len = end
    this.#pendingLast = index
  }

  /** Writes the records added since the last commit with one write. Throws when the file system refuses. */
  commit(): void {
    if (this.#len === 0) return
    const len = this.#len
    this.#len = 0
    if (this.#fd === undefined) {
      this.#name = segmentName(this.#firstIndex)
      this.#fd = openSync(join(this.#dir, this.#name), 'w')
      this.#size = 0
    }
    const fd = this.#fd
    try {
      let off = 0
      while (off < len) off += writeSync(fd, this.#buf, off, len - off)
    } catch (err) {
      // Cut off a partial write so that a later record never lands behind garbage.
      try {
        ftruncateSync(fd, this.#size)
      } catch (truncErr) {
        this.#onError(truncErr)
      }
      throw err
    }
    this.#size += len
    this.#lastIndex = this.#pendingLast
    // Do not keep a buffer grown for one huge value.
    if (this.#buf.length > 1024 * 1024) this.#buf = Buffer.allocUnsafe(64 * 1024)
    if (this.#size >= this.#segmentBytes) {
      closeSync(fd)
      this.#fd = undefined
      this.#full.push({ name: this.#name, lastIndex: this.#lastIndex })
    }
  }

  /** `add` and `commit` of one record. */
  append(op: WalOp, index: number, key: string, value: Uint8Array | undefined): void {
    this.add(op, index, key, value)
    this.commit()
  }

  /** Every record up to `durableIndex` is flushed in LMDB: delete the full segments it covers. */
  release(durableIndex: number): void {
    while (this.#full.length > 0) {
      const seg = this.#full[0] as { name: string; lastIndex: number }
      if (seg.lastIndex > durableIndex) return
      try {
        unlinkSync(join(this.#dir, seg.name))
      } catch (err) {
        this.#onError(err)
        return
      }
      this.#full.shift()
    }
  }

  /** Number of segment files this writer still holds (for tests). */
  get segments(): number {
    return this.#full.length + (this.#fd === undefined ? 0 : 1)
  }

  /**
   * Closes the open segment. With `durableIndex` (every record is durable in LMDB), deletes all
   * segments; otherwise keeps them for replay at the next open.
   */
  close(durableIndex?: number): void {
    if (this.#fd !== undefined) {
      closeSync(this.#fd)
      this.#fd = undefined
      this.#full.push({ name: this.#name, lastIndex: this.#lastIndex })
    }
    if (durableIndex !== undefined) this.release(durableIndex)
  }
}
