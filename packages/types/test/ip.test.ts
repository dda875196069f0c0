import { describe, expect, it } from 'vitest'
import {
  formatIp,
  formatPrefix,
  isCnmError,
  parseCidr,
  parseIp,
  parsePrefix,
  prefixContains,
  prefixOverlaps,
  addressAt,
  ordinalOf,
  prefixSize,
} from '../src/index.js'

describe('ip values', () => {
  it('parses and formats v4 and v6', () => {
    expect(formatIp(parseIp('10.1.2.3'))).toBe('10.1.2.3')
    expect(formatIp(parseIp('fe90:0:0::1'))).toBe('fe90::1')
    expect(parseIp('::ffff:1.2.3.4').version).toBe(6)
  })
  it('rejects bad input with a typed error', () => {
    for (const bad of ['', '1.2.3', '1.2.3.256', '10.0.0.1/24', 'fe80::1%eth0', 'x', '1.2.3.4 5']) {
      let caught: unknown
      try {
        parseIp(bad)
      } catch (e) {
        caught = e
      }
      expect(isCnmError(caught, 'ERR_INVALID_IP')).toBe(true)
    }
    expect(() => parsePrefix('10.0.0.0/33')).toThrow(/invalid CIDR/)
    expect(() => parsePrefix('10.0.0.0')).toThrow(/invalid CIDR/)
  })
  it('canonicalises prefixes', () => {
    expect(formatPrefix(parsePrefix('10.1.2.3/16'))).toBe('10.1.0.0/16')
    expect(formatPrefix(parsePrefix('1003:1:2:3:4:5:6:7/112'))).toBe('1003:1:2:3:4:5:6:0/112')
    expect(formatIp(parseCidr('10.1.2.3/16').ip)).toBe('10.1.2.3')
  })
  it('computes containment and overlap', () => {
    const p8 = parsePrefix('10.0.0.0/8')
    expect(prefixOverlaps(p8, parsePrefix('10.128.0.0/9'))).toBe(true)
    expect(prefixOverlaps(p8, parsePrefix('8.0.0.0/6'))).toBe(true)
    expect(prefixOverlaps(p8, parsePrefix('11.0.0.0/8'))).toBe(false)
    expect(prefixOverlaps(parsePrefix('1003:1:2:3::/64'), parsePrefix('1003:1:2:3:4:5:6::/112'))).toBe(true)
    expect(prefixContains(p8, parseIp('10.9.9.9'))).toBe(true)
    expect(prefixContains(p8, parseIp('::1'))).toBe(false)
    expect(formatIp(addressAt(parsePrefix('192.168.0.0/16'), 256n))).toBe('192.168.1.0')
    expect(ordinalOf(parsePrefix('192.168.0.0/16'), parseIp('192.168.1.0'))).toBe(256n)
    expect(prefixSize(parsePrefix('fe90::/64'))).toBe(1n << 64n)
  })
})
