import { describe, expect, it } from 'vitest'
import { formatCidr, formatIp, formatPrefix, isCnmError } from '@cnm/types'
import { memoryStore } from '@cnm/datastore'
import { nullDriver } from '@cnm/drivers-bridge'
import { capturingLogger } from '@cnm/test-utils'
import { FakeOsLayer, harness, storeKeys, readJson } from './fixtures/harness.js'
import { createController, storeKeys as KEYS } from '../src/index.js'

const tcp80 = { proto: 'tcp' as const, containerPort: 80, hostPort: 0, hostPortEnd: 0 }

describe('README §11 single-host cases', () => {
  it('1: a network without IPAM config gets 172.17.0.0/16, gateway .1; the first endpoint gets .2', async () => {
    const { ctl } = await harness()
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    expect(n.ipam.v4).toHaveLength(1)
    expect(formatPrefix(n.ipam.v4[0]!.pool)).toBe('172.17.0.0/16')
    expect(formatCidr(n.ipam.v4[0]!.gateway!)).toBe('172.17.0.1/16')
    const ep = await ctl.createEndpoint('n1', { name: 'e1' })
    expect(formatCidr(ep.address!)).toBe('172.17.0.2/16')
    expect(ep.macAddress).toBe('02:42:ac:11:00:02')
  })

  it('2: an explicit id that exists → duplicate error (conflict); the existing network is untouched', async () => {
    const { ctl, store } = await harness()
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const before = await storeKeys(store)
    const err = await ctl.createNetwork({ name: 'other', type: 'bridge', id: n.id }).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_CONTROLLER_NETWORK_EXISTS')).toBe(true)
    expect((err as { kind: string }).kind).toBe('conflict')
    expect(ctl.network(n.id).name).toBe('n1')
    expect(ctl.networks()).toHaveLength(1)
    expect(await storeKeys(store)).toEqual(before)
    // checkDuplicate makes a duplicate name a conflict too
    await expect(ctl.createNetwork({ name: 'n1', type: 'bridge', checkDuplicate: true })).rejects.toMatchObject({
      kind: 'conflict',
    })
  })

  it('3: delete with an endpoint → forbidden; after deleting it the delete succeeds and the pool is free', async () => {
    const { ctl, store, driver } = await harness()
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge', ipam: { v4: [{ pool: '10.10.0.0/24' }] } })
    const ep = await ctl.createEndpoint(n.id, { name: 'e1' })
    await expect(ctl.deleteNetwork(n.id)).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_ACTIVE_ENDPOINTS',
      kind: 'forbidden',
    })
    expect(ctl.network(n.id).endpointCount).toBe(1)
    await ctl.deleteEndpoint(ep.id)
    await ctl.deleteNetwork(n.id)
    expect(ctl.networks()).toEqual([])
    expect(await storeKeys(store, KEYS.networks())).toEqual([])
    expect(await storeKeys(store, KEYS.endpointCounts())).toEqual([])
    expect(driver.state.networks.size).toBe(0)
    const again = await ctl.createNetwork({ name: 'n2', type: 'bridge', ipam: { v4: [{ pool: '10.10.0.0/24' }] } })
    expect(formatPrefix(again.ipam.v4[0]!.pool)).toBe('10.10.0.0/24')
  })

  it('4: create → join → leave → join keeps IPv4 and host ports; delete frees the address', async () => {
    const { ctl, driver } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const sb = await ctl.createSandbox({
      containerId: 'c1',
      portBindings: [tcp80, { proto: 'udp', containerPort: 53, hostPort: 0, hostPortEnd: 0 }],
    })
    const ep = await ctl.createEndpoint('n1', { name: 'e1' })
    await ctl.join(sb.id, ep.id)
    const ports1 = (await ctl.endpointOperInfo(ep.id)).portMappings
    expect(ports1).toHaveLength(2)
    await ctl.leave(sb.id, ep.id)
    expect((await ctl.endpointOperInfo(ep.id)).portMappings).toEqual([])
    // another container grabs the next ephemeral ports in between
    const sb2 = await ctl.createSandbox({ containerId: 'c2', portBindings: [tcp80] })
    await ctl.connect(sb2.id, 'n1', { name: 'e2' })
    const joined = await ctl.join(sb.id, ep.id)
    expect(joined.address).toEqual(ep.address)
    expect((await ctl.endpointOperInfo(ep.id)).portMappings).toEqual(ports1)
    await ctl.leave(sb.id, ep.id)
    await ctl.deleteEndpoint(ep.id)
    expect(
      [...driver.state.hostPorts].some((k) => ports1!.some((p) => k.endsWith(`:${p.hostPort}`) && k.includes(p.proto))),
    ).toBe(false)
    const next = await ctl.createEndpoint('n1', { name: 'e3' })
    expect(next.address).toEqual(ep.address)
  })

  it('5: deleting a joined endpoint without force → has active containers; with force → leaves and deletes', async () => {
    const { ctl, os } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    const ep = await ctl.connect(sb.id, 'n1', { name: 'e1' })
    await expect(ctl.deleteEndpoint(ep.id)).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_ACTIVE_CONTAINER',
      kind: 'forbidden',
      message: expect.stringContaining('has active containers'),
    })
    await ctl.deleteEndpoint(ep.id, { force: true })
    expect(ctl.endpoints()).toEqual([])
    expect(ctl.sandbox(sb.id).endpoints).toEqual([])
    expect(os.sandboxes.get(sb.key)!.interfaces.size).toBe(0)
  })

  it('6: joining from a second sandbox → forbidden; leaving with a sandbox not attached → forbidden', async () => {
    const { ctl } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const a = await ctl.createSandbox({ containerId: 'a' })
    const b = await ctl.createSandbox({ containerId: 'b' })
    const ep = await ctl.connect(a.id, 'n1', { name: 'e1' })
    await expect(ctl.join(b.id, ep.id)).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_ENDPOINT_ATTACHED',
      kind: 'forbidden',
    })
    await expect(ctl.join(a.id, ep.id)).rejects.toMatchObject({ kind: 'forbidden' })
    await expect(ctl.leave(b.id, ep.id)).rejects.toMatchObject({ code: 'ERR_CONTROLLER_NOT_JOINED', kind: 'forbidden' })
    expect(ctl.endpoint(ep.id).sandboxId).toBe(a.id)
    await ctl.leave(a.id, ep.id)
    await expect(ctl.leave(a.id, ep.id)).rejects.toMatchObject({ code: 'ERR_CONTROLLER_NOT_JOINED' })
  })

  it('7: priorities 1,2,3 → the priority-3 endpoint is first and the gateway; leave it → 2; re-join → 3 again', async () => {
    const { ctl, os, driver } = await harness()
    const nets = await Promise.all(['na', 'nb', 'nc'].map((name) => ctl.createNetwork({ name, type: 'bridge' })))
    const sb = await ctl.createSandbox({ containerId: 'c1', portBindings: [tcp80] })
    const eps = []
    for (const [i, n] of nets.entries()) {
      const ep = await ctl.createEndpoint(n.id, { name: `e${i}` })
      await ctl.join(sb.id, ep.id, { priority: i + 1 })
      eps.push(ep)
    }
    const [p1, p2, p3] = eps as [(typeof eps)[0], (typeof eps)[0], (typeof eps)[0]]
    expect(ctl.sandbox(sb.id).endpoints).toEqual([p3.id, p2.id, p1.id])
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBe(p3.id)
    expect(os.sandboxes.get(sb.key)!.gateway.ipv4).toEqual(nets[2]!.ipam.v4[0]!.gateway!.ip)
    expect([...os.sandboxes.get(sb.key)!.interfaces.keys()].sort()).toEqual(['eth0', 'eth1', 'eth2'])
    const programmed = (eid: string): boolean =>
      [...driver.state.networks.values()].some((n) => n.endpoints.get(eid)?.externalConnectivity === true)
    expect(programmed(p3.id)).toBe(true)
    expect(programmed(p2.id)).toBe(false)

    await ctl.leave(sb.id, p3.id, {})
    expect(ctl.sandbox(sb.id).endpoints).toEqual([p2.id, p1.id])
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBe(p2.id)
    expect(os.sandboxes.get(sb.key)!.gateway.ipv4).toEqual(nets[1]!.ipam.v4[0]!.gateway!.ip)
    expect(programmed(p3.id)).toBe(false)
    expect(programmed(p2.id)).toBe(true)

    await ctl.join(sb.id, p3.id, { priority: 3 })
    expect(ctl.sandbox(sb.id).endpoints[0]).toBe(p3.id)
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBe(p3.id)
    expect(programmed(p2.id)).toBe(false)
    expect(programmed(p3.id)).toBe(true)
    expect(ctl.endpoint(p3.id).interfaceName).toBe('eth2')
  })

  it('12: a duplicate endpoint name in one network → forbidden; the same name on another network is fine', async () => {
    const { ctl, store } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    await ctl.createNetwork({ name: 'n2', type: 'bridge' })
    await ctl.createEndpoint('n1', { name: 'web' })
    const before = await storeKeys(store)
    await expect(ctl.createEndpoint('n1', { name: 'web' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_ENDPOINT_EXISTS',
      kind: 'forbidden',
    })
    expect(await storeKeys(store)).toEqual(before)
    const other = await ctl.createEndpoint('n2', { name: 'web' })
    expect(other.networkName).toBe('n2')
    expect(ctl.network('n1').endpointCount).toBe(1)
  })
})

describe('persistence (§9 keys and JSON)', () => {
  it('writes network, endpoint count, endpoint and sandbox objects under docker/network/v1.0/', async () => {
    const { ctl, store } = await harness()
    const n = await ctl.createNetwork({
      name: 'n1',
      type: 'bridge',
      labels: { a: 'b' },
      driverOptions: { 'com.docker.network.bridge.name': 'br1' },
    })
    const sb = await ctl.createSandbox({ containerId: 'c1', hostname: 'h1' })
    const ep = await ctl.connect(sb.id, n.id, { name: 'e1', aliases: ['web'] })
    const net = await readJson<Record<string, unknown>>(store, `docker/network/v1.0/network/${n.id}/`)
    expect(net).toMatchObject({
      name: 'n1',
      id: n.id,
      networkType: 'bridge',
      scope: 'local',
      labels: { a: 'b' },
      generic: { 'com.docker.network.bridge.name': 'br1' },
      inDelete: false,
      ipamType: 'default',
    })
    expect((net as { ipamV4Info: Array<{ pool: string }> }).ipamV4Info[0]!.pool).toBe('172.17.0.0/16')
    expect(await readJson(store, `docker/network/v1.0/endpoint_count/${n.id}/`)).toEqual({ count: 1 })
    const epRec = await readJson<Record<string, unknown>>(store, `docker/network/v1.0/endpoint/${n.id}/${ep.id}/`)
    expect(epRec).toMatchObject({
      name: 'e1',
      id: ep.id,
      sandbox: sb.id,
      myAliases: ['web'],
      interface: { addr: '172.17.0.2/16', mac: '02:42:ac:11:00:02' },
    })
    expect(await readJson(store, `docker/network/v1.0/sandbox/${sb.id}/`)).toMatchObject({
      containerId: 'c1',
      hostname: 'h1',
      endpoints: [ep.id],
      gatewayEndpoint: ep.id,
    })
  })

  it('persist:false networks never touch the store', async () => {
    const { ctl, store } = await harness()
    const before = await storeKeys(store, KEYS.networks())
    const n = await ctl.createNetwork({ name: 'tmp', type: 'bridge', persist: false })
    await ctl.createEndpoint(n.id, { name: 'e' })
    expect(await storeKeys(store, KEYS.networks())).toEqual(before)
    expect(await storeKeys(store, KEYS.endpoints())).toEqual([])
  })
})

describe('network options and rules', () => {
  it('explicit pools, sub-pools, gateways, aux addresses and IPv6 reach the driver as IpamData', async () => {
    const { ctl, driver } = await harness()
    const n = await ctl.createNetwork({
      name: 'n1',
      type: 'bridge',
      enableIPv6: true,
      ipam: {
        v4: [
          {
            pool: '10.20.0.0/16',
            subPool: '10.20.5.0/24',
            gateway: '10.20.0.254',
            auxAddresses: { router: '10.20.0.10' },
          },
        ],
        v6: [{ pool: 'fd00:20::/64' }],
      },
    })
    const d = driver.state.networks.get(n.id)!
    expect(formatPrefix(d.ipv4Data[0]!.pool)).toBe('10.20.0.0/16')
    expect(formatCidr(d.ipv4Data[0]!.gateway!)).toBe('10.20.0.254/16')
    expect(formatCidr(d.ipv4Data[0]!.auxAddresses.router!)).toBe('10.20.0.10/16')
    expect(formatCidr(d.ipv6Data[0]!.gateway!)).toBe('fd00:20::1/64')
    const ep = await ctl.createEndpoint(n.id, { name: 'e' })
    // sub-pool range: its own network address is not reserved (allocation.md §3.7)
    expect(formatIp(ep.address!.ip)).toBe('10.20.5.0')
    expect(formatIp(ep.addressIPv6!.ip)).toBe('fd00:20::2')
    const fixed = await ctl.createEndpoint(n.id, { name: 'f', ipv4Address: '10.20.9.9' })
    expect(formatIp(fixed.address!.ip)).toBe('10.20.9.9')
    await expect(ctl.createEndpoint(n.id, { name: 'g', ipv4Address: '10.21.0.1' })).rejects.toMatchObject({
      kind: 'invalid-argument',
      message: expect.stringContaining("does not belong to any of this network's subnets"),
    })
    await expect(ctl.createEndpoint(n.id, { name: 'h', ipv4Address: '10.20.9.9' })).rejects.toMatchObject({
      kind: 'forbidden',
    })
  })

  it('enforces scope rules, single host/null networks and config-only rules', async () => {
    const { ctl } = await harness()
    const global = (await import('@cnm/driverapi/testing')).MemoryDriver
    ctl.registerDriver(
      'overlay',
      new global({ type: 'overlay', capability: { dataScope: 'global', connectivityScope: 'global' } }),
    )
    await expect(ctl.createNetwork({ name: 'o', type: 'overlay', scope: 'local' })).rejects.toMatchObject({
      kind: 'forbidden',
      message: expect.stringContaining('downgrade'),
    })
    await expect(ctl.createNetwork({ name: 'o', type: 'overlay', scope: 'swarm' })).rejects.toMatchObject({
      kind: 'forbidden',
    })
    await expect(ctl.createNetwork({ name: 'i', type: 'bridge', ingress: true })).rejects.toMatchObject({
      kind: 'forbidden',
    })
    const none = await ctl.createNetwork({ name: 'none', type: 'null' })
    expect(none.ipam.v4).toEqual([])
    await expect(ctl.createNetwork({ name: 'none2', type: 'null' })).rejects.toMatchObject({ kind: 'forbidden' })
    await expect(ctl.deleteNetwork('none')).rejects.toMatchObject({ kind: 'forbidden' })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const ep = await ctl.connect(sb.id, 'none', { name: 'c' })
    expect(ep.address).toBeUndefined()
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBeUndefined()

    const cfg = await ctl.createNetwork({
      name: 'cfg',
      type: 'ignored',
      configOnly: true,
      ipam: { v4: [{ pool: '10.30.0.0/24' }] },
      driverOptions: { x: 'y' },
    })
    expect(cfg.type).toBe('null')
    await expect(ctl.createEndpoint('cfg', { name: 'e' })).rejects.toMatchObject({ kind: 'forbidden' })
    await expect(
      ctl.createNetwork({ name: 'bad', type: 'bridge', configOnly: true, internal: true }),
    ).rejects.toMatchObject({ kind: 'forbidden' })
    const user = await ctl.createNetwork({ name: 'user', type: 'bridge', configFrom: 'cfg' })
    expect(formatPrefix(user.ipam.v4[0]!.pool)).toBe('10.30.0.0/24')
    expect(user.driverOptions).toEqual({ x: 'y' })
    await expect(
      ctl.createNetwork({ name: 'u2', type: 'bridge', configFrom: 'cfg', labels: {} }),
    ).rejects.toMatchObject({ kind: 'forbidden' })
    await expect(ctl.deleteNetwork('cfg')).rejects.toMatchObject({
      kind: 'forbidden',
      message: expect.stringContaining('in use'),
    })
    await ctl.deleteNetwork('user')
    await ctl.deleteNetwork('cfg')
  })

  it('internal networks get no gateway endpoint and no external connectivity', async () => {
    const { ctl, driver } = await harness()
    await ctl.createNetwork({ name: 'int', type: 'bridge', internal: true })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const ep = await ctl.connect(sb.id, 'int', { name: 'c' })
    expect(ep.gateway).toBeUndefined()
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBeUndefined()
    expect(driver.calls.some((c) => c.method === 'programExternalConnectivity')).toBe(false)
  })

  it('registries refuse re-registration and empty names; unknown drivers and IPAMs are not-found', async () => {
    const { ctl, driver, ipam } = await harness()
    expect(() => ctl.registerDriver('bridge', driver)).toThrow(
      expect.objectContaining({ code: 'ERR_CONTROLLER_ALREADY_REGISTERED', kind: 'forbidden' }),
    )
    expect(() => ctl.registerDriver('null', driver)).toThrow(expect.objectContaining({ kind: 'forbidden' }))
    expect(() => ctl.registerDriver('', driver)).toThrow(expect.objectContaining({ kind: 'invalid-argument' }))
    expect(() => ctl.registerIpam('default', ipam)).toThrow(expect.objectContaining({ kind: 'forbidden' }))
    expect(ctl.driverTypes().sort()).toEqual(['bridge', 'host', 'null'])
    await expect(ctl.createNetwork({ name: 'x', type: 'macvlan' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_DRIVER_NOT_FOUND',
      kind: 'not-found',
    })
    await expect(ctl.createNetwork({ name: 'x', type: 'bridge', ipam: { driver: 'dhcp' } })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_IPAM_NOT_FOUND',
      kind: 'not-found',
    })
  })
})

describe('sandboxes', () => {
  it('one sandbox per container; delete leaves and deletes endpoints and destroys the namespace', async () => {
    const { ctl, os, driver } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    await expect(ctl.createSandbox({ containerId: '' })).rejects.toMatchObject({ kind: 'invalid-argument' })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    expect(sb.key).toBe(`/var/run/docker/netns/${sb.id.slice(0, 12)}`)
    expect(os.sandboxes.has(sb.key)).toBe(true)
    await expect(ctl.createSandbox({ containerId: 'c1' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_SANDBOX_EXISTS',
      kind: 'forbidden',
    })
    await ctl.connect(sb.id, 'n1', { name: 'c1' })
    await ctl.deleteSandbox(sb.id)
    expect(os.sandboxes.has(sb.key)).toBe(false)
    expect(ctl.endpoints()).toEqual([])
    expect([...driver.state.networks.values()][0]!.endpoints.size).toBe(0)
    await ctl.sandboxDestroy('c1') // absent: no-op
    expect(() => ctl.sandbox(sb.id)).toThrow(expect.objectContaining({ kind: 'not-found' }))
  })

  it("[S3] stop keeps endpoints: delete with endpoints:'leave', new sandbox re-joins with the same IP and ports", async () => {
    const { ctl } = await harness()
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c1', portBindings: [tcp80] })
    const ep = await ctl.connect(sb.id, 'n1', { name: 'c1' })
    const ports = (await ctl.endpointOperInfo(ep.id)).portMappings
    await ctl.deleteSandbox(sb.id, { endpoints: 'leave' })
    const kept = ctl.endpoints({ containerId: 'c1' })
    expect(kept.map((e) => e.id)).toEqual([ep.id])
    expect(kept[0]!.sandboxId).toBeUndefined()
    const sb2 = await ctl.createSandbox({ containerId: 'c1', portBindings: [tcp80] })
    const again = await ctl.join(sb2.id, ep.id)
    expect(again.address).toEqual(ep.address)
    expect((await ctl.endpointOperInfo(ep.id)).portMappings).toEqual(ports)
  })

  it('host-namespace sandboxes share the default key and never create or delete a namespace', async () => {
    const { ctl, os } = await harness()
    const a = await ctl.createSandbox({ containerId: 'a', useDefaultSandbox: true })
    const b = await ctl.createSandbox({ containerId: 'b', useDefaultSandbox: true })
    expect(a.key).toBe('/var/run/docker/netns/default')
    expect(b.key).toBe(a.key)
    expect(os.sandboxes.size).toBe(0)
    await ctl.deleteSandbox(a.id)
    expect(ctl.sandboxes().map((s) => s.id)).toEqual([b.id])
  })

  it('external-key sandboxes get their key later', async () => {
    const { ctl, os } = await harness()
    const sb = await ctl.createSandbox({ containerId: 'a', useExternalKey: true })
    expect(os.sandboxes.size).toBe(0)
    await expect(ctl.setKey(sb.id, '')).rejects.toMatchObject({ kind: 'invalid-argument' })
    const updated = await ctl.setKey(sb.id, '/proc/123/ns/net')
    expect(updated.key).toBe('/proc/123/ns/net')
  })
})

describe('lifecycle', () => {
  it('refuses calls before start and after stop; start and stop are idempotent', async () => {
    const h = await harness({ start: false })
    await expect(h.ctl.createNetwork({ name: 'n', type: 'bridge' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_STOPPED',
    })
    await h.ctl.start()
    await h.ctl.start()
    await h.ctl.createNetwork({ name: 'n', type: 'bridge' })
    await h.ctl.stop()
    await h.ctl.stop()
    await expect(h.ctl.createNetwork({ name: 'm', type: 'bridge' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_STOPPED',
      kind: 'unavailable',
    })
  })

  it('an aborted signal rejects with AbortError and leaves nothing', async () => {
    const { ctl, store } = await harness()
    const before = await storeKeys(store)
    const ac = new AbortController()
    ac.abort()
    await expect(ctl.createNetwork({ name: 'n', type: 'bridge' }, { signal: ac.signal })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
    expect(await storeKeys(store)).toEqual(before)
    expect(ctl.networks()).toEqual([])
  })
})

describe('host and null drivers come from the caller (drivers.md §1.6)', () => {
  it('registers no driver of its own; builtinDrivers: true is refused, false is accepted', async () => {
    const components = { logger: capturingLogger(), store: memoryStore(), osLayer: new FakeOsLayer() }
    expect(() => createController({ builtinDrivers: true as unknown as false })(components)).toThrow(
      expect.objectContaining({
        kind: 'invalid-argument',
        message: expect.stringContaining('hostDriver()/nullDriver()'),
      }),
    )
    const ctl = createController({ builtinDrivers: false })(components)
    expect(ctl.driverTypes()).toEqual([])
    await ctl.start()
    await expect(ctl.createNetwork({ name: 'none', type: 'null' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_DRIVER_NOT_FOUND',
      kind: 'not-found',
    })
    await ctl.stop()
  })

  it("applies the host/null rules by the registered driver's type, whatever key it is registered under", async () => {
    const { ctl, logger, store } = await harness()
    const ipamData = async (): Promise<string[]> =>
      (await store.list('docker/network/v1.0/ipam/default/data/')).map((kv) => kv.key)
    ctl.registerDriver('none-at-all', nullDriver()({ logger }))
    const n = await ctl.createNetwork({ name: 'isolated', type: 'none-at-all' })
    // no IPAM: no pool (the IPAM keeps no bitmap; a bridge network makes one), no address, never a gateway endpoint
    expect(n.ipam.v4).toEqual([])
    expect(await ipamData()).toEqual([])
    await ctl.createNetwork({ name: 'b', type: 'bridge' })
    expect(await ipamData()).not.toEqual([])
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    const ep = await ctl.connect(sb.id, 'isolated', { name: 'c1' })
    expect(ep.address).toBeUndefined()
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBeUndefined()
    // single instance (the controller's rule, before the driver is asked) and undeletable
    await expect(ctl.createNetwork({ name: 'second', type: 'none-at-all' })).rejects.toMatchObject({
      kind: 'forbidden',
      message: expect.stringContaining('only one instance'),
    })
    await ctl.disconnect(sb.id, ep.id)
    await expect(ctl.deleteNetwork('isolated')).rejects.toMatchObject({ kind: 'forbidden' })
  })

  it("drivers-bridge's null and host drivers survive a controller restart with their networks and endpoints", async () => {
    const h = await harness()
    await h.ctl.createNetwork({ name: 'none', type: 'null' })
    await h.ctl.createNetwork({ name: 'host', type: 'host' })
    const sb = await h.ctl.createSandbox({ containerId: 'c1' })
    const ep = await h.ctl.connect(sb.id, 'none', { name: 'c1' })
    const h2 = await h.restart()
    expect(
      h2.ctl
        .networks()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['host', 'none'])
    // the fresh driver instances learnt their networks and endpoints from restore()
    await h2.ctl.disconnect(sb.id, ep.id)
    expect(() => h2.ctl.endpoint(ep.id)).toThrow(expect.objectContaining({ kind: 'not-found' }))
    const again = await h2.ctl.createSandbox({ containerId: 'c2' })
    await h2.ctl.connect(again.id, 'host', { name: 'c2' })
    await expect(h2.ctl.createNetwork({ name: 'host2', type: 'host' })).rejects.toMatchObject({ kind: 'forbidden' })
  })
})
