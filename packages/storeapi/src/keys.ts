import { InvalidKeyError } from './errors.js'

/**
 * Longest key (and prefix) in UTF-8 bytes. LMDB's own limit is 1978 bytes; 1024 leaves room for its key
 * encoding and is far above libnetwork's longest keys (about 150 bytes). etcd accepts it too.
 */
export const MAX_KEY_BYTES = 1024

/** True if `s` holds a control character (C0, DEL, C1) or a lone surrogate: never part of a key. */
function hasForbidden(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true
    if (c >= 0xd800 && c <= 0xdfff) {
      // A high surrogate must be followed by a low one; a low one never comes first.
      const next = s.charCodeAt(i + 1)
      if (c > 0xdbff || !(next >= 0xdc00 && next <= 0xdfff)) return true
      i++
    }
  }
  return false
}

const encoder = new TextEncoder()

function check(value: unknown, what: 'key' | 'prefix'): string | undefined {
  if (typeof value !== 'string') return `${what} must be a string`
  if (value.length === 0) return what === 'key' ? 'key must not be empty' : undefined
  if (hasForbidden(value)) return `${what} must not contain control characters or lone surrogates`
  if (value.startsWith('/')) return `${what} must not start with "/"`
  if (value.includes('//')) return `${what} must not contain an empty segment ("//")`
  // Cheap upper bound first: a UTF-16 unit is at most 3 UTF-8 bytes.
  if (value.length * 3 > MAX_KEY_BYTES && encoder.encode(value).length > MAX_KEY_BYTES) {
    return `${what} must be at most ${MAX_KEY_BYTES} UTF-8 bytes`
  }
  return undefined
}

/**
 * Throws {@link InvalidKeyError} unless `key` is a valid store key: a non-empty string of at most
 * {@link MAX_KEY_BYTES} UTF-8 bytes, with no control characters or lone surrogates, not starting with `/`
 * and without empty segments (`//`). A single trailing `/` is allowed (libnetwork's keys end with one).
 */
export function assertValidKey(key: unknown): asserts key is string {
  const why = check(key, 'key')
  if (why !== undefined) throw new InvalidKeyError(key, { reason: why })
}

/** Like {@link assertValidKey} for a list/watch prefix, which may also be empty (everything). */
export function assertValidPrefix(prefix: unknown): asserts prefix is string {
  const why = check(prefix, 'prefix')
  if (why !== undefined) throw new InvalidKeyError(prefix, { reason: why })
}

/** Throws {@link InvalidKeyError} unless `value` is a Uint8Array (a Buffer is one). */
export function assertValidValue(key: string, value: unknown): asserts value is Uint8Array {
  if (!(value instanceof Uint8Array)) throw new InvalidKeyError(key, { reason: 'value must be a Uint8Array' })
}

/**
 * Orders keys as their UTF-8 bytes order (etcd's and LMDB's order), which is Unicode code point order.
 * JavaScript's `<` compares UTF-16 code units instead and disagrees for characters above U+FFFF.
 */
export function compareKeys(a: string, b: string): number {
  const n = Math.min(a.length, b.length)
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i)
    let y = b.charCodeAt(i)
    if (x === y) continue
    // Surrogates (D800–DFFF) encode code points above FFFF: move them above E000–FFFF.
    if (x >= 0xd800 && y >= 0xd800) {
      x = x >= 0xe000 ? x - 0x800 : x + 0x2000
      y = y >= 0xe000 ? y - 0x800 : y + 0x2000
    }
    return x - y
  }
  return a.length - b.length
}
