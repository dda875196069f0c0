import { describe, expect, it } from 'vitest'
import { formatPrefix, parsePrefix } from '@cnm/types'
import { GLOBAL_DEFAULT_POOLS, LOCAL_DEFAULT_POOLS, PredefinedPools, lastAddress } from '../src/internal/predefined.js'

describe('predefined pool lists', () => {
  it('the local list has 31 pools in libnetwork order', () => {
    const l = new PredefinedPools(LOCAL_DEFAULT_POOLS, 'localPools')
    expect(l.length).toBe(31n)
    const all = Array.from({ length: 31 }, (_, i) => formatPrefix(l.at(BigInt(i))))
    expect(all.slice(0, 4)).toEqual(['172.17.0.0/16', '172.18.0.0/16', '172.19.0.0/16', '172.20.0.0/16'])
    expect(all[14]).toBe('172.31.0.0/16')
    expect(all[15]).toBe('192.168.0.0/20')
    expect(all[30]).toBe('192.168.240.0/20')
  })

  it('the global list is 65 536 /24s of 10/8, held as one base', () => {
    const g = new PredefinedPools(GLOBAL_DEFAULT_POOLS, 'globalPools')
    expect(g.bases.length).toBe(1)
    expect(g.length).toBe(65536n)
    expect(formatPrefix(g.at(0n))).toBe('10.0.0.0/24')
    expect(formatPrefix(g.at(257n))).toBe('10.1.1.0/24')
    expect(formatPrefix(g.at(65535n))).toBe('10.255.255.0/24')
    expect(() => g.at(65536n)).toThrow(RangeError)
  })

  it('indexAfter jumps past a covering prefix within its base', () => {
    const g = new PredefinedPools(GLOBAL_DEFAULT_POOLS, 'globalPools')
    expect(g.indexAfter(0n, lastAddress(parsePrefix('10.0.0.0/16')))).toBe(256n)
    expect(g.indexAfter(5n, lastAddress(parsePrefix('10.0.0.0/8')))).toBe(65536n)
    const l = new PredefinedPools(LOCAL_DEFAULT_POOLS, 'localPools')
    // 172.16.0.0/12 covers the whole of base 0 (172.17/16): jump to the end of that base.
    expect(l.indexAfter(0n, lastAddress(parsePrefix('172.16.0.0/12')))).toBe(1n)
  })

  it('supports IPv6 bases with huge counts', () => {
    const p = new PredefinedPools([{ base: 'fd00::/8', size: 64 }], 'localPools')
    expect(p.length).toBe(2n ** 56n)
    expect(formatPrefix(p.at(2n ** 56n - 1n))).toBe('fdff:ffff:ffff:ffff::/64')
  })
})
