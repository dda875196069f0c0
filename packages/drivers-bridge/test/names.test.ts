import { describe, expect, it } from 'vitest'
import { parseIp, parsePrefix, formatCidr, isCnmError } from '@cnm/types'
import {
  bridgeNameFor,
  ipv6FromMac,
  macFromIpv4,
  normalizeMac,
  randomBridgeMac,
  randomVethName,
  randomVethPair,
} from '../src/internal/names.js'

describe('names', () => {
  it('names a bridge br-<first 12 of the network id>', () => {
    expect(bridgeNameFor('0123456789abcdef'.repeat(4))).toBe('br-0123456789ab')
  })

  it('makes veth names of veth + 7 hex characters, distinct within a pair', () => {
    for (let i = 0; i < 50; i++) expect(randomVethName()).toMatch(/^veth[0-9a-f]{7}$/)
    let calls = 0
    // A random source that repeats once: the pair must still be distinct.
    const src = (n: number): Uint8Array => new Uint8Array(n).fill(calls++ < 2 ? 1 : 2)
    const pair = randomVethPair(src)
    expect(pair.host).not.toBe(pair.peer)
  })

  it('derives the MAC from the IPv4 address as 02:42:<ip bytes>', () => {
    expect(macFromIpv4(parseIp('172.18.0.2'))).toBe('02:42:ac:12:00:02')
    expect(macFromIpv4(parseIp('10.255.1.254'))).toBe('02:42:0a:ff:01:fe')
    expect(() => macFromIpv4(parseIp('fe80::1'))).toThrow()
  })

  it('makes random locally administered bridge MACs', () => {
    expect(randomBridgeMac()).toMatch(/^02:42(:[0-9a-f]{2}){4}$/)
    expect(normalizeMac('AA:bb:CC:dd:EE:ff')).toBe('aa:bb:cc:dd:ee:ff')
    expect(normalizeMac('aa:bb:cc')).toBeUndefined()
  })

  it('derives IPv6 from the MAC into bytes 10-15 of the prefix (drivers.md §5 case 9)', () => {
    expect(formatCidr(ipv6FromMac(parsePrefix('fe90::/64'), 'aa:bb:cc:dd:ee:ff'))).toBe('fe90::aabb:ccdd:eeff/64')
    expect(formatCidr(ipv6FromMac(parsePrefix('2001:db8:1::/80'), '02:42:ac:11:00:02'))).toBe(
      '2001:db8:1::242:ac11:2/80',
    )
  })

  it('refuses a prefix longer than /80 with a forbidden error', () => {
    let caught: unknown
    try {
      ipv6FromMac(parsePrefix('fe90::/96'), 'aa:bb:cc:dd:ee:ff')
    } catch (err) {
      caught = err
    }
    expect(isCnmError(caught, 'ERR_BRIDGE_IPV6_PREFIX_TOO_LONG')).toBe(true)
    expect((caught as { kind: string }).kind).toBe('forbidden')
  })
})
