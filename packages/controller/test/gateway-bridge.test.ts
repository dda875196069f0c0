import { describe, expect, it } from 'vitest'
import { MemoryDriver } from '@cnm/driverapi/testing'
import { formatPrefix } from '@cnm/types'
import { harness } from './fixtures/harness.js'
import { GW_BRIDGE_NETWORK } from '../src/index.js'

async function withOverlay() {
  const h = await harness()
  const overlay = new MemoryDriver({
    type: 'overlay',
    setGateway: false,
    capability: { dataScope: 'global', connectivityScope: 'global' },
  })
  h.ctl.registerDriver('overlay', overlay)
  return { ...h, overlay }
}

describe('docker_gwbridge (§7.3, README §11 case 8)', () => {
  it('an internal-only sandbox gets no gateway endpoint', async () => {
    const { ctl } = await withOverlay()
    await ctl.createNetwork({ name: 'int', type: 'bridge', internal: true })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    await ctl.connect(sb.id, 'int', { name: 'c1' })
    expect(ctl.sandbox(sb.id).endpoints).toHaveLength(1)
    expect(ctl.networks().map((n) => n.name)).toEqual(['int'])
  })

  it('an overlay endpoint without gateway brings gateway_<cid>; it goes when a bridge endpoint with a gateway joins', async () => {
    const { ctl, os } = await withOverlay()
    const ov = await ctl.createNetwork({ name: 'ov', type: 'overlay' })
    expect(ov.scope).toBe('global')
    expect(formatPrefix(ov.ipam.v4[0]!.pool)).toBe('10.0.0.0/24')
    const sb = await ctl.createSandbox({
      containerId: 'c1',
      portBindings: [{ proto: 'tcp', containerPort: 80, hostPort: 0, hostPortEnd: 0 }],
    })
    const ovEp = await ctl.connect(sb.id, 'ov', { name: 'c1' })
    const gwNet = ctl.network(GW_BRIDGE_NETWORK)
    expect(gwNet.driverOptions).toMatchObject({
      'com.docker.network.bridge.name': 'docker_gwbridge',
      'com.docker.network.bridge.enable_icc': 'false',
    })
    const gwEp = ctl.endpointByName(GW_BRIDGE_NETWORK, 'gateway_c1')!
    expect(gwEp.anonymous).toBe(true)
    expect(gwEp.sandboxId).toBe(sb.id)
    const info = ctl.sandbox(sb.id)
    expect(info.endpoints).toEqual([ovEp.id, gwEp.id])
    expect(info.gatewayEndpoint).toBe(gwEp.id)
    expect(os.sandboxes.get(sb.key)!.gateway.ipv4).toEqual(gwNet.ipam.v4[0]!.gateway!.ip)
    expect((await ctl.endpointOperInfo(gwEp.id)).portMappings).toHaveLength(1)

    await ctl.createNetwork({ name: 'br', type: 'bridge' })
    const brEp = await ctl.connect(sb.id, 'br', { name: 'c1' })
    expect(ctl.endpointByName(GW_BRIDGE_NETWORK, 'gateway_c1')).toBeUndefined()
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBe(brEp.id)
    expect(ctl.sandbox(sb.id).endpoints).toHaveLength(2)

    // leaving the bridge brings docker_gwbridge back
    await ctl.leave(sb.id, brEp.id)
    expect(ctl.endpointByName(GW_BRIDGE_NETWORK, 'gateway_c1')?.sandboxId).toBe(sb.id)
    // deleting the sandbox removes the automatic endpoint too
    await ctl.deleteSandbox(sb.id)
    expect(ctl.endpoints({ networkId: gwNet.id })).toEqual([])
  })

  it('[S3] a stopped overlay container keeps its gateway endpoint and gets the same ports back', async () => {
    const { ctl } = await withOverlay()
    await ctl.createNetwork({ name: 'ov', type: 'overlay' })
    const pb = [{ proto: 'tcp' as const, containerPort: 80, hostPort: 0, hostPortEnd: 0 }]
    const sb = await ctl.createSandbox({ containerId: 'c1', portBindings: pb })
    const ep = await ctl.connect(sb.id, 'ov', { name: 'c1' })
    const gw = ctl.endpointByName(GW_BRIDGE_NETWORK, 'gateway_c1')!
    const ports = (await ctl.endpointOperInfo(gw.id)).portMappings
    await ctl.deleteSandbox(sb.id, { endpoints: 'leave' })
    expect(ctl.endpoint(gw.id).sandboxId).toBeUndefined()
    const sb2 = await ctl.createSandbox({ containerId: 'c1', portBindings: pb })
    await ctl.join(sb2.id, ep.id)
    expect(ctl.sandbox(sb2.id).gatewayEndpoint).toBe(gw.id)
    expect(ctl.endpoint(gw.id).address).toEqual(gw.address)
    expect((await ctl.endpointOperInfo(gw.id)).portMappings).toEqual(ports)
  })

  it('disabled by init: no docker_gwbridge is created', async () => {
    const { memoryStore } = await import('@cnm/datastore')
    const { defaultIpam } = await import('@cnm/ipam')
    const { createController } = await import('../src/index.js')
    const { FakeOsLayer } = await import('./fixtures/harness.js')
    const { noopLogger } = await import('@cnm/types')
    const logger = noopLogger()
    const ctl = createController({ gatewayBridge: false })({
      logger,
      store: memoryStore(),
      osLayer: new FakeOsLayer(),
      drivers: {
        bridge: new MemoryDriver({ type: 'bridge' }),
        overlay: new MemoryDriver({
          type: 'overlay',
          setGateway: false,
          capability: { dataScope: 'global', connectivityScope: 'global' },
        }),
      },
      ipams: { default: defaultIpam()({ logger }) },
    })
    await ctl.start()
    await ctl.createNetwork({ name: 'ov', type: 'overlay' })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    await ctl.connect(sb.id, 'ov', { name: 'c1' })
    expect(ctl.networks().map((n) => n.name)).toEqual(['ov'])
    await ctl.stop()
  })
})
