import { isCnmError } from '@cnm/types'
import { describe, expect, it } from 'vitest'
import { MAX_KEY_BYTES, assertValidKey, assertValidPrefix, compareKeys } from '../src/index.js'

function thrown(fn: () => void): unknown {
  try {
    fn()
  } catch (err) {
    return err
  }
  return undefined
}

describe('key rules', () => {
  it('explains why a key is refused', () => {
    const cases: Array<[unknown, RegExp]> = [
      ['', /must not be empty/],
      ['/a', /must not start with "\/"/],
      ['a//b', /empty segment/],
      ['a\tb', /control characters/],
      ['\ud83d', /lone surrogates/],
      ['x'.repeat(MAX_KEY_BYTES + 1), /at most 1024 UTF-8 bytes/],
      [Symbol('k'), /must be a string/],
    ]
    for (const [key, why] of cases) {
      const err = thrown(() => assertValidKey(key))
      expect(isCnmError(err, 'ERR_STORE_INVALID_KEY')).toBe(true)
      expect((err as Error).message).toMatch(why)
      expect((err as { kind: string }).kind).toBe('invalid-argument')
    }
  })

  it('refuses every control character and lone surrogate, and nothing else', () => {
    for (let c = 0; c <= 0xffff; c++) {
      const ch = String.fromCharCode(c)
      const bad = /[\p{Cc}\p{Cs}]/u.test(ch)
      expect(thrown(() => assertValidKey(`a${ch}b`)) !== undefined, `U+${c.toString(16)}`).toBe(bad)
    }
    expect(thrown(() => assertValidKey('a\ud83d\ude00b'))).toBeUndefined() // a pair is fine
    expect(thrown(() => assertValidKey('a\ude00\ud83db'))).toBeDefined() // reversed is not
    expect(thrown(() => assertValidKey('a\ud83d'))).toBeDefined() // high surrogate at the end
  })

  it('counts the limit in UTF-8 bytes, not characters', () => {
    expect(thrown(() => assertValidKey('€'.repeat(341)))).toBeUndefined() // 1023 bytes
    expect(thrown(() => assertValidKey('€'.repeat(342)))).toBeDefined() // 1026 bytes
    expect(thrown(() => assertValidKey('😀'.repeat(256)))).toBeUndefined() // 1024 bytes
    expect(thrown(() => assertValidKey('😀'.repeat(256) + 'a'))).toBeDefined()
  })

  it('allows the empty prefix but applies the other rules to prefixes', () => {
    expect(thrown(() => assertValidPrefix(''))).toBeUndefined()
    expect(thrown(() => assertValidPrefix('docker/network/v1.0/'))).toBeUndefined()
    expect(
      isCnmError(
        thrown(() => assertValidPrefix('a//')),
        'ERR_STORE_INVALID_KEY',
      ),
    ).toBe(true)
    expect(
      isCnmError(
        thrown(() => assertValidPrefix(null)),
        'ERR_STORE_INVALID_KEY',
      ),
    ).toBe(true)
  })

  it('shortens long keys in the error message', () => {
    const err = thrown(() => assertValidKey('y'.repeat(5000))) as Error
    expect(err.message.length).toBeLessThan(200)
  })
})

describe('compareKeys', () => {
  /** Random strings drawn from characters around the UTF-16 / code point order differences. */
  function randomKey(): string {
    const pool = ['a', 'z', '/', '~', 'é', '\u07ff', '\u0800', '\ud7ff', '\ue000', '\uffff', '😀']
    pool.push('\u{10000}', '\u{10ffff}')
    let s = ''
    const n = 1 + Math.floor(Math.random() * 5)
    for (let i = 0; i < n; i++) s += pool[Math.floor(Math.random() * pool.length)]
    return s
  }

  it('orders like the UTF-8 bytes', () => {
    for (let i = 0; i < 2000; i++) {
      const a = randomKey()
      const b = randomKey()
      const bytes = Math.sign(Buffer.compare(Buffer.from(a), Buffer.from(b)))
      expect(Math.sign(compareKeys(a, b)), `${JSON.stringify(a)} vs ${JSON.stringify(b)}`).toBe(bytes)
    }
  })

  it('puts U+FFFF before astral characters, unlike UTF-16 order', () => {
    expect(compareKeys('\uffff', '😀')).toBeLessThan(0)
    expect('\uffff' < '😀').toBe(false)
    expect(compareKeys('a', 'a/')).toBeLessThan(0)
    expect(compareKeys('a', 'a')).toBe(0)
  })
})
