import { describe, expect, it } from 'vitest'
import { lzwCompress, lzwDecompress, WireError } from '../src/wire/index.js'
import { fromHex, loadLzwCases, toHex } from './fixtures-wire/vectors.js'

const cases = loadLzwCases()

function lcg(n: number, seed = 1): Buffer {
  const out = Buffer.alloc(n)
  let s = seed
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0
    out[i] = (s >>> 16) & 0xff
  }
  return out
}

describe('LZW against Go compress/lzw (lzw-go-reference.json)', () => {
  it('has the five reference cases, one past the 4095-code reset', () => {
    expect(cases.length).toBe(5)
    expect(cases.some((c) => c.input_len >= 4500)).toBe(true)
  })

  it.each(cases.map((c) => [c.name, c] as const))('%s: exact bytes both ways', (_name, c) => {
    const input = fromHex(c.input_hex)
    expect(input.length).toBe(c.input_len)
    const lzw = lzwCompress(input)
    expect(lzw.length).toBe(c.lzw_len)
    expect(toHex(lzw)).toBe(c.lzw_hex)
    expect(toHex(lzwDecompress(fromHex(c.lzw_hex)))).toBe(c.input_hex)
  })

  it('regenerates the LCG input of the reset case', () => {
    const c = cases.find((x) => x.input_len === 4500)!
    expect(toHex(lcg(4500))).toBe(c.input_hex)
  })

  it('empty input is 00 03 02', () => {
    expect(toHex(lzwCompress(new Uint8Array(0)))).toBe('000302')
    expect(lzwDecompress(fromHex('000302')).length).toBe(0)
  })
})

describe('LZW round trips', () => {
  const inputs: [string, Buffer][] = [
    ['zeros 100k (long chains, several resets)', Buffer.alloc(100_000)],
    ['random 50k (many resets at width 12)', lcg(50_000, 7)],
    ['text', Buffer.from('the quick brown fox jumps over the lazy dog '.repeat(500))],
    ['all byte values', Buffer.from(Array.from({ length: 256 * 20 }, (_, i) => (i * 7) & 0xff))],
    ['kwkwk pattern', Buffer.from('a'.repeat(5000) + 'ab'.repeat(3000))],
  ]
  it.each(inputs)('%s', (_name, input) => {
    const lzw = lzwCompress(input)
    expect(lzwDecompress(lzw).equals(input)).toBe(true)
  })

  it('every length from 0 to 600 of mixed data', () => {
    const src = Buffer.concat([lcg(300, 3), Buffer.alloc(300, 0x61)])
    for (let n = 0; n <= src.length; n++) {
      const input = src.subarray(0, n)
      expect(lzwDecompress(lzwCompress(input)).equals(input)).toBe(true)
    }
  })
})

describe('LZW decoder on bad input', () => {
  it('requires the end code', () => {
    const lzw = lzwCompress(Buffer.from('hello hello hello'))
    for (let n = 0; n < lzw.length - 1; n++) {
      expect(() => lzwDecompress(lzw.subarray(0, n))).toThrow(WireError)
    }
  })

  it('refuses a code beyond the next one to assign', () => {
    // clear (256), literal 'a' (0x61), then code 300 (> hi 258), 9 bits each, LSB first.
    const codes = [256, 0x61, 300, 257]
    let bits = 0n
    codes.forEach((c, i) => (bits |= BigInt(c) << BigInt(9 * i)))
    const bytes = Buffer.alloc(5)
    for (let i = 0; i < 5; i++) bytes[i] = Number((bits >> BigInt(8 * i)) & 0xffn)
    expect(() => lzwDecompress(bytes)).toThrow(/invalid code/)
  })

  it('ignores bytes after the end code', () => {
    const lzw = Buffer.concat([lzwCompress(Buffer.from('abcabcabc')), Buffer.from([1, 2, 3])])
    expect(lzwDecompress(lzw).toString()).toBe('abcabcabc')
  })

  it('enforces the output limit', () => {
    const lzw = lzwCompress(Buffer.alloc(100_000))
    expect(() => lzwDecompress(lzw, 50_000)).toThrow(/exceeds/)
    expect(lzwDecompress(lzw, 100_000).length).toBe(100_000)
  })
})
