// Base64 decoding with the rules and error text of Go's `base64.StdEncoding.DecodeString`, which Docker's
// diagnostic server uses for the `value` parameter. Node's Buffer.from(s, 'base64') silently skips bad
// characters; a script that sends a broken value must get the same "FAIL" (and offset) it gets from Docker.

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/'
const PAD = 0x3d // '='
const CR = 0x0d
const LF = 0x0a

const DECODE = (() => {
  const map = new Uint8Array(256).fill(0xff)
  for (let i = 0; i < ALPHABET.length; i++) map[ALPHABET.charCodeAt(i)] = i
  return map
})()

/** Go's CorruptInputError: the byte offset of the first bad input byte. */
export class Base64InputError extends Error {
  readonly offset: number
  constructor(offset: number) {
    super(`illegal base64 data at input byte ${offset}`)
    this.name = 'Base64InputError'
    this.offset = offset
  }
}

/**
 * Decodes padded standard base64 as Go does: CR and LF are ignored, padding is required, anything after
 * the padding is an error, non-zero trailing bits are accepted. Offsets count UTF-8 bytes of the input.
 * Throws Base64InputError.
 */
export function decodeGoBase64(input: string | Uint8Array): Uint8Array {
  const src = typeof input === 'string' ? new TextEncoder().encode(input) : input
  const out = new Uint8Array(Math.floor(src.length / 4) * 3 + 3)
  let n = 0
  let si = 0
  for (;;) {
    const q = decodeQuantum(src, si)
    for (let k = 0; k < q.count; k++) out[n++] = q.bytes[k] ?? 0
    if (q.error !== undefined) throw new Base64InputError(q.error)
    if (q.end) break
    si = q.next
  }
  return out.slice(0, n)
}

interface Quantum {
  readonly bytes: readonly number[]
  readonly count: number
  readonly next: number
  readonly end: boolean
  readonly error?: number
}

function decodeQuantum(src: Uint8Array, start: number): Quantum {
  const buf = [0, 0, 0, 0]
  let si = start
  let len = 4
  let error: number | undefined
  let end = false
  for (let j = 0; j < 4; j++) {
    if (si === src.length) {
      if (j === 0) return { bytes: [], count: 0, next: si, end: true }
      // A partial quantum without padding: the error points at its first byte.
      return { bytes: [], count: 0, next: si, end: true, error: si - j }
    }
    const c = src[si] ?? 0
    si++
    const v = DECODE[c] ?? 0xff
    if (v !== 0xff) {
      buf[j] = v
      continue
    }
    if (c === LF || c === CR) {
      j--
      continue
    }
    if (c !== PAD) return { bytes: [], count: 0, next: si, end: true, error: si - 1 }
    // Padding: only legal after two or three symbols.
    if (j === 0 || j === 1) return { bytes: [], count: 0, next: si, end: true, error: si - 1 }
    if (j === 2) {
      while (si < src.length && (src[si] === LF || src[si] === CR)) si++
      if (si === src.length) return { bytes: [], count: 0, next: si, end: true, error: src.length }
      if (src[si] !== PAD) return { bytes: [], count: 0, next: si, end: true, error: si - 1 }
      si++
    }
    while (si < src.length && (src[si] === LF || src[si] === CR)) si++
    if (si < src.length) error = si
    len = j
    end = true
    break
  }
  const val = ((buf[0] ?? 0) << 18) | ((buf[1] ?? 0) << 12) | ((buf[2] ?? 0) << 6) | (buf[3] ?? 0)
  const bytes = [(val >> 16) & 0xff, (val >> 8) & 0xff, val & 0xff]
  const q: Quantum = { bytes, count: len - 1, next: si, end }
  return error === undefined ? q : { ...q, error }
}
