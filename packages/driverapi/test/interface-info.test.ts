import { describe, expect, it } from 'vitest'
import { isCnmError, parseCidr, parseIp, parsePrefix } from '@cnm/types'
import { EndpointInterface, JoinInfoRecorder, parseMac } from '../src/index.js'

describe('EndpointInterface', () => {
  it('keeps pre-assigned values and refuses to replace them (forbidden)', () => {
    const iface = new EndpointInterface({
      address: parseCidr('10.0.0.2/24'),
      macAddress: parseMac('02:42:0A:00:00:02'),
    })
    expect(iface.macAddress).toBe('02:42:0a:00:00:02')
    expect(() => iface.setIpAddress(parseCidr('10.0.0.3/24'))).toThrow(/present/)
    try {
      iface.setMacAddress(parseMac('02:42:00:00:00:01'))
      expect.unreachable()
    } catch (err) {
      expect(isCnmError(err, 'ERR_DRIVER_INTERFACE_FIELD_SET')).toBe(true)
      expect((err as { kind: string }).kind).toBe('forbidden')
    }
    expect(iface.address).toEqual(parseCidr('10.0.0.2/24'))
  })

  it('fills empty fields by family and snapshots them', () => {
    const iface = new EndpointInterface()
    iface.setIpAddress(parseCidr('fd00::5/64'))
    iface.setIpAddress(parseCidr('10.0.0.5/24'))
    iface.setMacAddress(parseMac('02:42:0a:00:00:05'))
    expect(iface.snapshot()).toEqual({
      address: parseCidr('10.0.0.5/24'),
      addressIPv6: parseCidr('fd00::5/64'),
      macAddress: '02:42:0a:00:00:05',
    })
  })

  it('rejects nil and mismatched values as invalid-argument', () => {
    const iface = new EndpointInterface()
    expect(() => iface.setIpAddress(undefined as never)).toThrow(expect.objectContaining({ kind: 'invalid-argument' }))
    expect(() => iface.setMacAddress('zz' as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_MAC' }))
    expect(() => new EndpointInterface({ address: parseCidr('fd00::1/64') })).toThrow(/IPv4/)
  })
})

describe('JoinInfoRecorder', () => {
  it('records gateway, routes, names and table entries', () => {
    const ji = new JoinInfoRecorder()
    ji.setInterfaceName('veth1234', 'eth')
    ji.setGateway(parseIp('10.0.0.1'))
    ji.setGatewayIPv6(parseIp('fd00::1'))
    ji.addStaticRoute(parsePrefix('192.168.0.0/16'), 'next-hop', parseIp('10.0.0.254'))
    ji.addStaticRoute(parsePrefix('10.9.0.0/16'), 'connected')
    ji.addTableEntry('overlay_peer_table', 'k', new Uint8Array([1]))
    ji.disableGatewayService()
    const r = ji.result()
    expect(r.interfaceName).toEqual({ srcName: 'veth1234', dstPrefix: 'eth' })
    expect(r.gateway).toEqual(parseIp('10.0.0.1'))
    expect(r.staticRoutes).toHaveLength(2)
    expect(r.disableGatewayService).toBe(true)
    expect(r.tableEntries[0]?.value).toEqual(new Uint8Array([1]))
  })

  it('validates families and route shapes', () => {
    const ji = new JoinInfoRecorder()
    expect(() => ji.setGateway(parseIp('fd00::1'))).toThrow(/IPv4/)
    expect(() => ji.setGatewayIPv6(parseIp('10.0.0.1'))).toThrow(/IPv6/)
    expect(() => ji.addStaticRoute(parsePrefix('10.0.0.0/8'), 'next-hop')).toThrow(/next hop/)
    expect(() => ji.addStaticRoute(parsePrefix('10.0.0.0/8'), 'connected', parseIp('10.0.0.1'))).toThrow(/no next hop/)
    expect(() => ji.addStaticRoute(parsePrefix('10.0.0.0/8'), 'next-hop', parseIp('fd00::1'))).toThrow(/family/)
    expect(() => ji.setInterfaceName('a/b', 'eth')).toThrow(/interface name/)
    expect(ji.result().staticRoutes).toEqual([])
  })
})

describe('JoinInfoRecorder.setVeth', () => {
  it('is refused unless the sandbox layer can create veth pairs', () => {
    const ji = new JoinInfoRecorder()
    expect(ji.canCreateVeth).toBe(false)
    expect(() => ji.setVeth({ hostName: 'veth1', master: 'br0' }, 'eth')).toThrow(/cannot create veth/)
  })

  it('records the pair in place of an interface name, and validates names', () => {
    const ji = new JoinInfoRecorder({ canCreateVeth: true })
    ji.setInterfaceName('vethc', 'eth')
    ji.setVeth({ hostName: 'veth1', master: 'br0', mtu: 1400, hairpin: true }, 'eth')
    expect(ji.result().interfaceName).toBeUndefined()
    expect(ji.result().veth).toEqual({
      spec: { hostName: 'veth1', master: 'br0', mtu: 1400, hairpin: true },
      dstPrefix: 'eth',
    })
    expect(() => ji.setVeth({ hostName: 'a/b', master: 'br0' }, 'eth')).toThrow(/invalid veth/)
    expect(() => ji.setVeth({ hostName: 'veth1', master: 'br0', mtu: -1 }, 'eth')).toThrow(/MTU/)
  })
})
