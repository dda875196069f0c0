import { describe, expect, it } from 'vitest'
import { parseIp } from '@cnm/types'
import {
  parseCreateEndpointRequest,
  parseCreateNetworkRequest,
  parseCreateSandboxRequest,
  parseJoinOptions,
} from '../src/index.js'
import { harness } from './fixtures/harness.js'

describe('request parsers (untyped JSON at the API edge)', () => {
  it('parses a network request and the controller accepts it', async () => {
    const req = parseCreateNetworkRequest({
      name: 'n1',
      type: 'bridge',
      labels: { a: 'b' },
      driverOptions: { 'com.docker.network.driver.mtu': 1400 },
      enableIPv6: 'false',
      ipam: { v4: [{ pool: '10.9.0.0/24', gateway: '10.9.0.254', auxAddresses: { r: '10.9.0.3' } }] },
    })
    expect(req).toEqual({
      name: 'n1',
      type: 'bridge',
      labels: { a: 'b' },
      driverOptions: { 'com.docker.network.driver.mtu': '1400' },
      enableIPv6: false,
      ipam: { v4: [{ pool: '10.9.0.0/24', gateway: '10.9.0.254', auxAddresses: { r: '10.9.0.3' } }] },
    })
    const { ctl } = await harness()
    expect((await ctl.createNetwork(req)).name).toBe('n1')
  })

  it('parses endpoint and sandbox requests with -p style ports', () => {
    expect(parseCreateEndpointRequest({ name: 'e', aliases: ['x'], portBindings: ['8080:80/tcp'] })).toEqual({
      name: 'e',
      aliases: ['x'],
      portBindings: [{ proto: 'tcp', containerPort: 80, hostPort: 8080, hostPortEnd: 8080 }],
    })
    expect(
      parseCreateSandboxRequest({
        containerId: 'c',
        extraHosts: ['db:10.0.0.5', { name: 'h', ip: '::1' }],
        exposedPorts: ['53/udp'],
      }),
    ).toEqual({
      containerId: 'c',
      extraHosts: [
        { name: 'db', ip: '10.0.0.5' },
        { name: 'h', ip: '::1' },
      ],
      exposedPorts: [{ proto: 'udp', port: 53 }],
    })
    expect(parseJoinOptions({ priority: '3' })).toEqual({ priority: 3 })
    expect(parseIp('10.0.0.5').version).toBe(4)
  })

  it('rejects wrong types with InvalidArgumentError naming the field', () => {
    expect(() => parseCreateNetworkRequest('x')).toThrow(expect.objectContaining({ kind: 'invalid-argument' }))
    expect(() => parseCreateNetworkRequest({ name: 1 })).toThrow(/name must be a string/)
    expect(() => parseCreateNetworkRequest({ name: 'n', type: 'bridge', scope: 'galaxy' })).toThrow(/scope/)
    expect(() => parseCreateNetworkRequest({ name: 'n', type: 'bridge', ipam: { v4: {} } })).toThrow(/ipam.v4/)
    expect(() => parseCreateEndpointRequest({ name: 'e', aliases: [1] })).toThrow(/aliases/)
    expect(() => parseCreateEndpointRequest({ name: 'e', portBindings: ['x:y'] })).toThrow(/portBindings/)
    expect(() => parseCreateSandboxRequest({ containerId: 'c', extraHosts: ['nocolon'] })).toThrow(/extraHosts/)
    expect(() => parseJoinOptions({ priority: 'high' })).toThrow(/priority/)
  })
})
