import * as zlib from 'node:zlib'

/** CRC-32/IEEE (zlib polynomial, reflected 0xEDB88320), slicing-by-4 tables. */
const TABLE = makeTables()

function makeTables(): Uint32Array {
  const t = new Uint32Array(4 * 256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!
    for (let k = 1; k < 4; k++) {
      c = t[c & 0xff]! ^ (c >>> 8)
      t[k * 256 + n] = c
    }
  }
  return t
}

/** Table-driven CRC-32/IEEE in plain JavaScript (used when node:zlib has no crc32, i.e. Node < 20.15). */
export function crc32Software(data: Uint8Array): number {
  const t = TABLE
  let crc = 0xffffffff
  let i = 0
  const n = data.length
  const end4 = n - (n & 3)
  for (; i < end4; i += 4) {
    crc ^= data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)
    crc = t[768 + (crc & 0xff)]! ^ t[512 + ((crc >>> 8) & 0xff)]! ^ t[256 + ((crc >>> 16) & 0xff)]! ^ t[crc >>> 24]!
  }
  for (; i < n; i++) crc = t[(crc ^ data[i]!) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

const native = (zlib as unknown as { crc32?: (data: Uint8Array, value?: number) => number }).crc32

/** CRC-32/IEEE of `data` as an unsigned 32-bit number (node:zlib's native one when available). */
export const crc32: (data: Uint8Array) => number =
  typeof native === 'function' ? (data) => native(data) >>> 0 : crc32Software
