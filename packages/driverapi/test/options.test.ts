import { describe, expect, it } from 'vitest'
import { formatCidr, formatPrefix, isCnmError, parseIp, InvalidArgumentError } from '@cnm/types'
import {
  generateId,
  ipamDataToJSON,
  isFullId,
  macFromIPv4,
  networkId,
  parseBoolOption,
  parseIntOption,
  parseIpamData,
  parseLabels,
  parseMac,
  parsePortBindings,
  parseStringMap,
  parseTransportPorts,
  randomMac,
} from '../src/index.js'

describe('option parsing', () => {
  it('parses string maps and labels', () => {
    expect(parseStringMap({ a: 'x', b: 1, c: true })).toEqual({ a: 'x', b: '1', c: 'true' })
    expect(parseStringMap(undefined)).toEqual({})
    expect(() => parseStringMap({ a: {} }, 'opts')).toThrow(InvalidArgumentError)
    expect(() => parseStringMap('x')).toThrow(
      expect.objectContaining({ code: 'ERR_DRIVER_INVALID_OPTION', field: 'options' }),
    )
    expect(parseLabels(['a=b=c', 'flag', 'e='])).toEqual({ a: 'b=c', flag: '', e: '' })
    expect(() => parseLabels(['=x'])).toThrow(/empty label key/)
  })

  it('parses booleans and integers with ranges', () => {
    expect(parseBoolOption('TRUE', 'f')).toBe(true)
    expect(parseBoolOption('0', 'f')).toBe(false)
    expect(parseBoolOption(undefined, 'f', true)).toBe(true)
    expect(() => parseBoolOption('yes', 'com.docker.network.enable_ipv6')).toThrow(/enable_ipv6/)
    expect(parseIntOption('1500', 'mtu', { min: 68 })).toBe(1500)
    expect(parseIntOption(undefined, 'mtu')).toBeUndefined()
    expect(() => parseIntOption('-2', 'mtu', { min: 0 })).toThrow(/below/)
    expect(() => parseIntOption('1.5', 'mtu')).toThrow(/integer/)
  })

  it('parses exposed ports and port bindings', () => {
    expect(parseTransportPorts(['80/tcp', '53/udp', '8080'])).toEqual([
      { proto: 'tcp', port: 80 },
      { proto: 'udp', port: 53 },
      { proto: 'tcp', port: 8080 },
    ])
    expect(() => parseTransportPorts(['80/icmp'])).toThrow(/protocol/)
    expect(parsePortBindings(['8080:80/tcp', '127.0.0.1:9000-9010:53/udp', '443', '[::1]:8443:443'])).toEqual([
      { proto: 'tcp', containerPort: 80, hostPort: 8080, hostPortEnd: 8080 },
      { proto: 'udp', containerPort: 53, hostIp: parseIp('127.0.0.1'), hostPort: 9000, hostPortEnd: 9010 },
      { proto: 'tcp', containerPort: 443, hostPort: 0, hostPortEnd: 0 },
      { proto: 'tcp', containerPort: 443, hostIp: parseIp('::1'), hostPort: 8443, hostPortEnd: 8443 },
    ])
    expect(parsePortBindings([{ proto: 'udp', containerPort: 53, hostPort: '5353' }])).toEqual([
      { proto: 'udp', containerPort: 53, hostPort: 5353, hostPortEnd: 5353 },
    ])
    expect(() => parsePortBindings(['9010-9000:80'])).toThrow(/range/)
    expect(() => parsePortBindings(['70000:80'])).toThrow(/above/)
  })

  it('round-trips Docker IPAMData JSON', () => {
    const d = parseIpamData({
      AddressSpace: 'LocalDefault',
      Pool: '172.18.0.0/16',
      Gateway: '172.18.0.1/16',
      AuxAddresses: { r: '172.18.0.9/16' },
    })
    expect(formatPrefix(d.pool)).toBe('172.18.0.0/16')
    expect(d.gateway && formatCidr(d.gateway)).toBe('172.18.0.1/16')
    expect(ipamDataToJSON(d)).toEqual({
      AddressSpace: 'LocalDefault',
      Pool: '172.18.0.0/16',
      Gateway: '172.18.0.1/16',
      AuxAddresses: { r: '172.18.0.9/16' },
    })
    expect(() => parseIpamData({ AddressSpace: 'x', Pool: '10.0.0.0/8', Gateway: 'fd00::1/64' })).toThrow(/versions/)
    expect(() => parseIpamData({ AddressSpace: 'x' })).toThrow(/pool is required/)
  })
})

describe('ids and MACs', () => {
  it('generates full ids and brands non-empty strings', () => {
    const id = generateId()
    expect(isFullId(id)).toBe(true)
    expect(generateId()).not.toBe(id)
    expect(networkId('abc')).toBe('abc')
    expect(() => networkId('  ')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ID', kind: 'invalid-argument' }))
  })

  it('derives MACs from IPv4 and generates random locally administered ones', () => {
    expect(macFromIPv4(parseIp('172.17.0.2'))).toBe('02:42:ac:11:00:02')
    expect(randomMac()).toMatch(/^02:42(:[0-9a-f]{2}){4}$/)
    expect(parseMac('AA-BB-CC-DD-EE-FF')).toBe('aa:bb:cc:dd:ee:ff')
    try {
      parseMac('aa:bb')
      expect.unreachable()
    } catch (err) {
      expect(isCnmError(err, 'ERR_INVALID_MAC')).toBe(true)
    }
  })
})
