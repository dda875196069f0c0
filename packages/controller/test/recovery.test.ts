import { describe, expect, it } from 'vitest'
import { ForbiddenError, formatCidr, type NetworkId } from '@cnm/types'
import { EndpointInterface, generateId } from '@cnm/driverapi'
import { testIpamData } from '@cnm/driverapi/testing'
import { harness, readJson, storeKeys } from './fixtures/harness.js'

const tcp80 = { proto: 'tcp' as const, containerPort: 80, hostPort: 0, hostPortEnd: 0 }

describe.each(['store', 'replay'] as const)('restart with the IPAM in %s mode', (ipamMode) => {
  it('a new controller on the same store sees networks, endpoints and sandboxes', async () => {
    const h1 = await harness({ ipamMode })
    const n = await h1.ctl.createNetwork({ name: 'n1', type: 'bridge', labels: { l: 'v' } })
    const sb = await h1.ctl.createSandbox({ containerId: 'c1', portBindings: [tcp80] })
    const ep = await h1.ctl.connect(sb.id, n.id, { name: 'web', aliases: ['www'] })
    const idle = await h1.ctl.createEndpoint(n.id, { name: 'idle' })
    const ports = (await h1.ctl.endpointOperInfo(ep.id)).portMappings

    const h2 = await h1.restart()
    expect(h2.ctl.networks()).toEqual(h1.ctl.networks())
    expect(h2.ctl.endpoints()).toEqual(h1.ctl.endpoints())
    expect(h2.ctl.sandboxes()).toEqual(h1.ctl.sandboxes())
    expect(h2.ctl.network('n1').labels).toEqual({ l: 'v' })
    expect(h2.ctl.resolveName(sb.id, 'www')?.ipv4).toEqual([ep.address!.ip])
    // The IPAM knows the old addresses: a new endpoint does not get a duplicate.
    const fresh = await h2.ctl.createEndpoint(n.id, { name: 'fresh' })
    expect([ep.address, idle.address].map((a) => formatCidr(a!))).not.toContain(formatCidr(fresh.address!))
    // The joined endpoint can leave and re-join with the same address and ports ([S3]).
    await h2.ctl.leave(sb.id, ep.id)
    await h2.ctl.join(sb.id, ep.id)
    expect(h2.ctl.endpoint(ep.id).address).toEqual(ep.address)
    expect((await h2.ctl.endpointOperInfo(ep.id)).portMappings).toEqual(ports)
    // Deleting after a restart frees the pool.
    await h2.ctl.deleteSandbox(sb.id)
    await h2.ctl.deleteEndpoint(idle.id)
    await h2.ctl.deleteEndpoint(fresh.id)
    await h2.ctl.deleteNetwork(n.id)
    expect(await storeKeys(h2.store)).toEqual([])
    await h2.ctl.createNetwork({ name: 'again', type: 'bridge', ipam: { v4: [{ pool: '172.17.0.0/16' }] } })
  })
})

describe('recovery', () => {
  it('finishes a half-deleted network (driver refused with forbidden) at the next start', async () => {
    let refuse = true
    const h1 = await harness({
      driverInit: { fail: (c) => (refuse && c.method === 'deleteNetwork' ? new ForbiddenError('busy') : undefined) },
    })
    const n = await h1.ctl.createNetwork({ name: 'n1', type: 'bridge', ipam: { v4: [{ pool: '10.77.0.0/24' }] } })
    await expect(h1.ctl.deleteNetwork(n.id)).rejects.toMatchObject({ kind: 'forbidden' })
    // Hidden while half-deleted, marked in the store.
    expect(h1.ctl.networks()).toEqual([])
    expect(() => h1.ctl.network(n.id)).toThrow(expect.objectContaining({ kind: 'not-found' }))
    expect(await readJson(h1.store, `docker/network/v1.0/network/${n.id}/`)).toMatchObject({
      inDelete: true,
      ipamReleased: true,
    })
    refuse = false
    const h2 = await h1.restart()
    expect(await storeKeys(h2.store)).toEqual([])
    expect(h2.driver.state.networks.size).toBe(0)
    expect(h2.ctl.networks()).toEqual([])
    const again = await h2.ctl.createNetwork({ name: 'n1', type: 'bridge', ipam: { v4: [{ pool: '10.77.0.0/24' }] } })
    expect(again.ipam.v4).toHaveLength(1)
  })

  it('deletes namespaces no sandbox owns and driver networks the controller does not know', async () => {
    const h1 = await harness()
    const n = await h1.ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const sb = await h1.ctl.createSandbox({ containerId: 'c1' })
    await h1.ctl.connect(sb.id, n.id, { name: 'c1' })
    // Leaks from a crashed previous run: a namespace and a driver network with an endpoint and a host port.
    await h1.os.createSandbox('/var/run/docker/netns/deadbeef0000')
    const ghost = generateId() as NetworkId
    await h1.driver.createNetwork(
      ghost,
      {
        name: 'ghost',
        driverOptions: {},
        labels: {},
        enableIPv6: false,
        internal: false,
        attachable: false,
        ingress: false,
      },
      [testIpamData('10.66.0.0/24')],
      [],
    )
    const gEp = generateId()
    await h1.driver.createEndpoint(ghost, gEp as never, new EndpointInterface(), {
      name: 'g',
      driverOptions: {},
      exposedPorts: [],
      portBindings: [],
      dnsServers: [],
    })
    await h1.driver.programExternalConnectivity(ghost, gEp as never, {
      labels: {},
      exposedPorts: [],
      portBindings: [{ proto: 'tcp', containerPort: 1, hostPort: 9999, hostPortEnd: 9999 }],
    })

    const h2 = await h1.restart()
    expect([...h2.os.sandboxes.keys()]).toEqual([sb.key])
    expect([...h2.driver.state.networks.keys()]).toEqual([n.id])
    expect(h2.driver.state.hostPorts.size).toBe(0)
    expect(h2.ctl.sandbox(sb.id).endpoints).toHaveLength(1)
  })

  it('a sandbox whose namespace vanished is dropped; its endpoints leave but keep their addresses', async () => {
    const h1 = await harness()
    await h1.ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const sb = await h1.ctl.createSandbox({ containerId: 'c1' })
    const ep = await h1.ctl.connect(sb.id, 'n1', { name: 'c1' })
    h1.os.sandboxes.delete(sb.key) // e.g. the host rebooted
    const h2 = await h1.restart()
    expect(h2.ctl.sandboxes()).toEqual([])
    const kept = h2.ctl.endpoint(ep.id)
    expect(kept.sandboxId).toBeUndefined()
    expect(kept.address).toEqual(ep.address)
    expect(kept.containerId).toBe('c1')
    expect(h2.driver.state.networks.get(ep.networkId)!.endpoints.get(ep.id)!.sandboxKey).toBeUndefined()
    expect(await readJson(h2.store, `docker/network/v1.0/endpoint/${ep.networkId}/${ep.id}/`)).not.toHaveProperty(
      'sandbox',
    )
    // the container starts again: new sandbox, same endpoint, same address
    const sb2 = await h2.ctl.createSandbox({ containerId: 'c1' })
    expect((await h2.ctl.join(sb2.id, ep.id)).address).toEqual(ep.address)
  })

  it('orphan endpoint records (network gone) are removed and counters reconciled', async () => {
    const h1 = await harness()
    const n = await h1.ctl.createNetwork({ name: 'n1', type: 'bridge' })
    await h1.ctl.createEndpoint(n.id, { name: 'a' })
    const enc = new TextEncoder()
    await h1.store.put(
      `docker/network/v1.0/endpoint/${'f'.repeat(64)}/${'e'.repeat(64)}/`,
      enc.encode(
        JSON.stringify({
          id: 'e'.repeat(64),
          name: 'x',
          network: 'f'.repeat(64),
          created: '',
          interface: { llAddrs: [] },
        }),
      ),
    )
    await h1.store.put(`docker/network/v1.0/endpoint_count/${n.id}/`, enc.encode(JSON.stringify({ count: 7 })))
    await h1.store.put('docker/network/v1.0/network/garbage/', enc.encode('{not json'))
    const h2 = await h1.restart()
    expect(h2.ctl.endpoints().map((e) => e.name)).toEqual(['a'])
    expect(await readJson(h2.store, `docker/network/v1.0/endpoint_count/${n.id}/`)).toEqual({ count: 1 })
    expect(h2.logger.lines.some((l) => l.level === 'error' && l.message.includes('unreadable network record'))).toBe(
      true,
    )
  })
})
