import { describe, expect, it } from 'vitest'
import { driverComplianceTests, MemoryDriver, MemoryDriverState, testIpamData } from '../src/testing/index.js'
import { EndpointInterface, JoinInfoRecorder, generateId, type EndpointId, type NetworkId } from '../src/index.js'
import { parseCidr } from '@cnm/types'

driverComplianceTests({ name: 'MemoryDriver compliance', setup: () => new MemoryDriver(), implementsRestore: true })

driverComplianceTests({
  name: 'MemoryDriver compliance (with port bindings, latency)',
  setup: () => new MemoryDriver({ delayMs: 1 }),
  sandboxConfig: () => ({
    labels: {},
    exposedPorts: [{ proto: 'tcp', port: 80 }],
    portBindings: [
      { proto: 'tcp', containerPort: 80, hostPort: 0, hostPortEnd: 0 },
      { proto: 'udp', containerPort: 53, hostPort: 5353, hostPortEnd: 5360 },
    ],
  }),
})

driverComplianceTests({
  name: 'MemoryDriver compliance (address required)',
  setup: () => new MemoryDriver({ assignAddress: false }),
  requiresAddress: true,
})

describe('MemoryDriver specifics', () => {
  const cfg = {
    name: 'n',
    driverOptions: {},
    labels: {},
    enableIPv6: false,
    internal: false,
    attachable: false,
    ingress: false,
  }
  const epCfg = { name: 'e', driverOptions: {}, exposedPorts: [], portBindings: [], dnsServers: [] }

  it('restore on a new instance with the same state removes networks the controller no longer knows', async () => {
    const state = new MemoryDriverState()
    const d1 = new MemoryDriver({ state })
    const keep = generateId() as NetworkId
    const drop = generateId() as NetworkId
    await d1.createNetwork(keep, cfg, [testIpamData('10.1.0.0/24')], [])
    await d1.createNetwork(drop, cfg, [testIpamData('10.2.0.0/24')], [])
    const eid = generateId() as EndpointId
    await d1.createEndpoint(drop, eid, new EndpointInterface({ address: parseCidr('10.2.0.9/24') }), epCfg)
    await d1.programExternalConnectivity(drop, eid, {
      labels: {},
      exposedPorts: [],
      portBindings: [{ proto: 'tcp', containerPort: 80, hostPort: 8080, hostPortEnd: 8080 }],
    })
    expect(state.hostPorts.size).toBe(1)

    const d2 = new MemoryDriver({ state })
    await d2.restore([{ id: keep, config: cfg, ipv4Data: [testIpamData('10.1.0.0/24')], ipv6Data: [], endpoints: [] }])
    expect([...state.networks.keys()]).toEqual([keep])
    expect(state.hostPorts.size).toBe(0)
  })

  it('a taken host port fails with PortAllocatedError and reserves nothing', async () => {
    const d = new MemoryDriver()
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg, [testIpamData('10.3.0.0/24')], [])
    const [a, b] = [generateId() as EndpointId, generateId() as EndpointId]
    await d.createEndpoint(nid, a, new EndpointInterface(), epCfg)
    await d.createEndpoint(nid, b, new EndpointInterface(), epCfg)
    const sb = {
      labels: {},
      exposedPorts: [],
      portBindings: [{ proto: 'tcp' as const, containerPort: 80, hostPort: 8080, hostPortEnd: 8080 }],
    }
    await d.programExternalConnectivity(nid, a, sb)
    await expect(d.programExternalConnectivity(nid, b, sb)).rejects.toMatchObject({
      code: 'ERR_DRIVER_PORT_ALLOCATED',
      kind: 'forbidden',
    })
    await d.deleteEndpoint(nid, a)
    await d.programExternalConnectivity(nid, b, sb)
    expect((await d.endpointOperInfo(nid, b)).portMappings?.[0]?.hostPort).toBe(8080)
  })

  it('internal networks get no gateway and disable the gateway service', async () => {
    const d = new MemoryDriver()
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, { ...cfg, internal: true }, [testIpamData('10.4.0.0/24')], [])
    const eid = generateId() as EndpointId
    await d.createEndpoint(nid, eid, new EndpointInterface(), epCfg)
    const ji = new JoinInfoRecorder()
    await d.join(nid, eid, '/var/run/docker/netns/x', ji, { labels: {}, exposedPorts: [], portBindings: [] })
    expect(ji.result().gateway).toBeUndefined()
    expect(ji.result().disableGatewayService).toBe(true)
  })

  it('fail injection fails the call without changing state', async () => {
    const d = new MemoryDriver({ fail: (c) => (c.method === 'createNetwork' ? new Error('boom') : undefined) })
    const nid = generateId() as NetworkId
    await expect(d.createNetwork(nid, cfg, [testIpamData('10.5.0.0/24')], [])).rejects.toThrow('boom')
    expect(d.state.networks.size).toBe(0)
    expect(d.calls).toEqual([{ method: 'createNetwork', nid }])
  })
})
