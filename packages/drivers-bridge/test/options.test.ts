import { describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { InvalidDriverOptionError } from '@cnm/driverapi'
import {
  BRIDGE_LABELS,
  DEFAULT_BRIDGE_NETWORK_OPTIONS,
  InvalidBridgeOptionError,
  parseBridgeNetworkOptions,
} from '../src/index.js'

describe('parseBridgeNetworkOptions', () => {
  it('returns the documented defaults for undefined, null and an empty map', () => {
    for (const raw of [undefined, null, {}, new Map()]) {
      const o = parseBridgeNetworkOptions(raw)
      expect(o).toEqual(DEFAULT_BRIDGE_NETWORK_OPTIONS)
      expect(o.enableIcc).toBe(true)
      expect(o.enableIpMasquerade).toBe(true)
      expect(o.containerIfacePrefix).toBe('eth')
      expect(Object.isFrozen(o)).toBe(true)
    }
  })

  it('parses every label of drivers.md §3.2 from a flat string map', () => {
    const o = parseBridgeNetworkOptions({
      'com.docker.network.bridge.name': 'br-test',
      'com.docker.network.bridge.enable_ip_masquerade': 'false',
      'com.docker.network.bridge.enable_icc': 'F',
      'com.docker.network.bridge.inhibit_ipv4': '1',
      'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1',
      'com.docker.network.bridge.default_bridge': 'True',
      'com.docker.network.driver.mtu': '1400',
      'com.docker.network.enable_ipv6': 'true',
      'com.docker.network.container_iface_prefix': 'cnm',
      'com.docker.network.host_ipv4': '192.0.2.7',
      'com.docker.network.internal': 't',
    })
    expect(o).toEqual({
      bridgeName: 'br-test',
      enableIpMasquerade: false,
      enableIcc: false,
      inhibitIpv4: true,
      hostBindingIpv4: '127.0.0.1',
      defaultBridge: true,
      mtu: 1400,
      enableIpv6: true,
      containerIfacePrefix: 'cnm',
      hostIpv4: '192.0.2.7',
      internal: true,
    })
  })

  it('reads labels from the generic bag and lets the bag flags win', () => {
    const o = parseBridgeNetworkOptions({
      [BRIDGE_LABELS.generic]: { [BRIDGE_LABELS.enableIcc]: 'false', [BRIDGE_LABELS.internal]: 'true' },
      [BRIDGE_LABELS.internal]: false,
      [BRIDGE_LABELS.enableIpv6]: true,
    })
    expect(o.enableIcc).toBe(false)
    expect(o.internal).toBe(false)
    expect(o.enableIpv6).toBe(true)
  })

  it('accepts typed fields, also as a Map inside the generic entry', () => {
    expect(parseBridgeNetworkOptions({ bridgeName: 'brx', mtu: 9000, enableIcc: false })).toMatchObject({
      bridgeName: 'brx',
      mtu: 9000,
      enableIcc: false,
    })
    const o = parseBridgeNetworkOptions(new Map([[BRIDGE_LABELS.generic, new Map([['inhibitIpv4', true]])]]))
    expect(o.inhibitIpv4).toBe(true)
  })

  it('ignores unknown labels but rejects unknown typed fields', () => {
    expect(parseBridgeNetworkOptions({ 'com.example.foo': 'bar' })).toEqual(DEFAULT_BRIDGE_NETWORK_OPTIONS)
    expect(() => parseBridgeNetworkOptions({ bridgeNmae: 'x' })).toThrow(InvalidBridgeOptionError)
  })

  it.each([
    ['com.docker.network.driver.mtu', '-2'],
    ['com.docker.network.driver.mtu', 'abc'],
    ['com.docker.network.driver.mtu', '1.5'],
    ['com.docker.network.driver.mtu', '70000'],
    ['com.docker.network.driver.mtu', '10'],
    ['com.docker.network.bridge.enable_icc', 'yes'],
    ['com.docker.network.bridge.host_binding_ipv4', '300.1.1.1'],
    ['com.docker.network.bridge.host_binding_ipv4', '::1'],
    ['com.docker.network.host_ipv4', 'host'],
    ['com.docker.network.bridge.name', 'this-name-is-too-long'],
    ['com.docker.network.bridge.name', 'a/b'],
    ['com.docker.network.bridge.name', 'a b'],
    ['com.docker.network.bridge.name', '..'],
    ['com.docker.network.container_iface_prefix', '0eth'],
    ['com.docker.network.container_iface_prefix', ''],
  ])('rejects %s=%j with a typed error naming the label', (label, value) => {
    let caught: unknown
    try {
      parseBridgeNetworkOptions({ [label]: value })
    } catch (err) {
      caught = err
    }
    expect(caught).toBeInstanceOf(InvalidBridgeOptionError)
    expect(caught).toBeInstanceOf(InvalidDriverOptionError)
    expect(isCnmError(caught, 'ERR_DRIVER_INVALID_OPTION')).toBe(true)
    expect((caught as InvalidBridgeOptionError).kind).toBe('invalid-argument')
    expect((caught as InvalidBridgeOptionError).field).toBe(label)
    expect((caught as Error).message).toContain(`failed to parse ${label} value`)
  })

  it('rejects non-object input and non-string keys', () => {
    expect(() => parseBridgeNetworkOptions('bridge')).toThrow(InvalidBridgeOptionError)
    expect(() => parseBridgeNetworkOptions([1, 2])).toThrow(InvalidBridgeOptionError)
    expect(() => parseBridgeNetworkOptions(new Map([[1, 'x']]))).toThrow(InvalidBridgeOptionError)
  })

  it('does not mutate its input', () => {
    const raw = { [BRIDGE_LABELS.mtu]: '1500', [BRIDGE_LABELS.generic]: { bridgeName: 'b1' } }
    const copy = structuredClone(raw)
    parseBridgeNetworkOptions(raw)
    expect(raw).toEqual(copy)
  })
})
