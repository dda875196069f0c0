import { describe, expect, it } from 'vitest'
import { formatCidr, isCnmError, noopLogger, parseCidr, parseIp, type EndpointId, type NetworkId } from '@cnm/types'
import {
  EndpointInterface,
  JoinInfoRecorder,
  generateId,
  parseMac,
  type IpamData,
  type NetworkDriverConfig,
} from '@cnm/driverapi'
import { testIpamData } from '@cnm/driverapi/testing'
import { capturingLogger } from '@cnm/test-utils'
import {
  BridgeDriver,
  DEFAULT_BRIDGE_DRIVER_INIT,
  endpointKey,
  networkKey,
  resolveBridgeDriverConfig,
  type BridgeDriverInit,
} from '../src/index.js'
import { FakeKernel } from './fixtures/fake-kernel.js'
import { MemoryStore } from './fixtures/memory-store.js'

const cfg = (over: Partial<NetworkDriverConfig> = {}): NetworkDriverConfig => ({
  name: 'n',
  driverOptions: {},
  labels: {},
  enableIPv6: false,
  internal: false,
  attachable: false,
  ingress: false,
  ...over,
})
const epCfg = { name: 'e', driverOptions: {}, exposedPorts: [], portBindings: [], dnsServers: [] }
const sb = (
  bindings: Array<{ containerPort: number; hostPort?: number; hostPortEnd?: number; proto?: 'tcp' | 'udp' }> = [],
) => ({
  labels: {},
  exposedPorts: [],
  portBindings: bindings.map((b) => ({
    proto: b.proto ?? ('tcp' as const),
    containerPort: b.containerPort,
    hostPort: b.hostPort ?? 0,
    hostPortEnd: b.hostPortEnd ?? b.hostPort ?? 0,
  })),
})

function v6Data(pool: string): IpamData {
  return testIpamData(pool)
}

function setup(init: BridgeDriverInit = {}, kernel = new FakeKernel(), store = new MemoryStore()) {
  const logger = capturingLogger()
  const driver = new BridgeDriver(resolveBridgeDriverConfig(init), { logger, store }, kernel)
  return { driver, kernel, store, logger }
}

async function failure(
  p: Promise<unknown>,
): Promise<{ code: string; kind: string; maskable: boolean; message: string }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isCnmError(err), `expected a CnmError, got ${String(err)}`).toBe(true)
  return err as { code: string; kind: string; maskable: boolean; message: string }
}

const nid = (): NetworkId => generateId() as NetworkId
const eid = (): EndpointId => generateId() as EndpointId
const iface = (addr: string, mac?: string): EndpointInterface =>
  new EndpointInterface({ address: parseCidr(addr), ...(mac !== undefined && { macAddress: parseMac(mac) }) })

describe('resolveBridgeDriverConfig', () => {
  it('fills the documented defaults without touching the input', () => {
    const init = {}
    const c = resolveBridgeDriverConfig(init)
    expect(init).toEqual({})
    expect(c).toMatchObject({
      enableIptables: true,
      enableIp6tables: false,
      enableIpForwarding: true,
      userlandProxy: false,
      chainPrefix: 'CNM',
    })
    expect(c.defaultBindIp).toEqual(parseIp('0.0.0.0'))
    expect(Object.isFrozen(DEFAULT_BRIDGE_DRIVER_INIT)).toBe(true)
  })

  it.each([
    [{ userlandProxy: true }, 'userlandProxy'],
    [{ defaultBindIp: 'nope' }, 'defaultBindIp'],
    [{ chainPrefix: 'bad prefix' }, 'chainPrefix'],
    [{ hostNetns: '../etc' }, 'hostNetns'],
    [{ enableIptables: 'yes' }, 'enableIptables'],
    [{ portRange: { start: 10, end: 5 } }, 'portRange'],
    [{ colour: 'blue' }, 'colour'],
  ])('rejects %j naming %s', (init, field) => {
    let caught: unknown
    try {
      resolveBridgeDriverConfig(init as BridgeDriverInit)
    } catch (err) {
      caught = err
    }
    expect(isCnmError(caught, 'ERR_BRIDGE_INVALID_CONFIG')).toBe(true)
    expect((caught as { field: string }).field).toBe(field)
  })
})

describe('BridgeDriver networks', () => {
  it('creates br-<nid12> with the gateway address, firewall and forwarding, and persists it', async () => {
    const { driver, kernel, store } = setup()
    const id = nid()
    await driver.createNetwork(id, cfg(), [testIpamData('10.10.0.0/24')], [])
    const br = kernel.links.get(`br-${id.slice(0, 12)}`)
    expect(br?.kind).toBe('bridge')
    expect(br?.up).toBe(true)
    expect(br?.addresses.map(formatCidr)).toEqual(['10.10.0.1/24'])
    expect(kernel.forwarding.v4).toBe(true)
    expect(kernel.firewalls.get(`br-${id.slice(0, 12)}`)).toMatchObject({
      enableIcc: true,
      enableIpMasquerade: true,
      internal: false,
    })
    expect(store.json(networkKey(id))).toMatchObject({
      id,
      bridgeName: `br-${id.slice(0, 12)}`,
      ipv4: { subnet: '10.10.0.0/24', bridgeAddress: '10.10.0.1/24', gateway: '10.10.0.1' },
      userCreatedBridge: false,
    })
  })

  it('honours bridge name, MTU, ICC, masquerade, internal and inhibit_ipv4 options', async () => {
    const { driver, kernel } = setup()
    await driver.createNetwork(
      nid(),
      cfg({
        driverOptions: {
          'com.docker.network.bridge.name': 'cnmtest0',
          'com.docker.network.driver.mtu': '1400',
          'com.docker.network.bridge.enable_icc': 'false',
          'com.docker.network.bridge.enable_ip_masquerade': 'false',
          'com.docker.network.bridge.inhibit_ipv4': 'true',
        },
        internal: true,
      }),
      [testIpamData('10.11.0.0/24')],
      [],
    )
    expect(kernel.links.get('cnmtest0')?.mtu).toBe(1400)
    expect(kernel.links.get('cnmtest0')?.addresses).toEqual([])
    expect(kernel.firewalls.get('cnmtest0')).toMatchObject({
      enableIcc: false,
      enableIpMasquerade: false,
      internal: true,
    })
  })

  it('skips the firewall and forwarding when disabled', async () => {
    const { driver, kernel } = setup({ enableIptables: false, enableIpForwarding: false })
    await driver.createNetwork(nid(), cfg(), [testIpamData('10.12.0.0/24')], [])
    expect(kernel.firewalls.size).toBe(0)
    expect(kernel.forwarding.v4).toBe(false)
  })

  it('ensures forwarding itself when the firewall is off, and initialises the kernel on restore', async () => {
    const { driver, kernel } = setup({ enableIptables: false })
    await driver.restore()
    expect(kernel.initialised).toBe(1)
    await driver.createNetwork(nid(), cfg(), [testIpamData('10.12.1.0/24')], [])
    expect(kernel.calls).toContain('enableForwarding')
    expect(kernel.forwarding.v4).toBe(true)
    expect(kernel.firewalls.size).toBe(0)
  })

  it('uses DefaultGatewayIPv4 as the containers gateway and puts the IPAM gateway on the bridge', async () => {
    const { driver, kernel } = setup()
    const id = nid()
    await driver.createNetwork(id, cfg(), [testIpamData('10.13.0.0/24', { DefaultGatewayIPv4: '10.13.0.254' })], [])
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.13.0.2/24'), epCfg)
    const ji = new JoinInfoRecorder()
    await driver.join(id, e, '/var/run/docker/netns/x', ji, sb())
    expect(ji.result().gateway).toEqual(parseIp('10.13.0.254'))
    expect(kernel.links.get(`br-${id.slice(0, 12)}`)?.addresses.map(formatCidr)).toEqual(['10.13.0.1/24'])
  })

  it('sets up IPv6: v6 gateway on the bridge, v6 gateway through JoinInfo, IPv6 forwarding', async () => {
    const { driver, kernel } = setup()
    const id = nid()
    await driver.createNetwork(id, cfg({ enableIPv6: true }), [testIpamData('10.14.0.0/24')], [v6Data('fd00:14::/64')])
    expect(kernel.links.get(`br-${id.slice(0, 12)}`)?.addresses.map(formatCidr)).toEqual([
      '10.14.0.1/24',
      'fd00:14::1/64',
    ])
    expect(kernel.forwarding.v6).toBe(true)
    const e = eid()
    const i = iface('10.14.0.2/24')
    await driver.createEndpoint(id, e, i, epCfg)
    expect(i.macAddress).toBe('02:42:0a:0e:00:02')
    expect(i.addressIPv6 === undefined ? '' : formatCidr(i.addressIPv6)).toBe('fd00:14::242:a0e:2/64')
    const ji = new JoinInfoRecorder()
    await driver.join(id, e, 'k', ji, sb())
    expect(ji.result().gatewayIPv6).toEqual(parseIp('fd00:14::1'))
  })

  it.each([
    ['no IPv4 data', [], [], 'ERR_BRIDGE_IPV4_POOL_EMPTY', 'invalid-argument'],
    ['0.0.0.0/0', [testIpamData('0.0.0.0/0')], [], 'ERR_BRIDGE_IPV4_POOL_EMPTY', 'invalid-argument'],
    [
      'two v4 pools',
      [testIpamData('10.1.0.0/24'), testIpamData('10.2.0.0/24')],
      [],
      'ERR_BRIDGE_MULTIPLE_SUBNETS',
      'forbidden',
    ],
    [
      'gateway outside',
      [testIpamData('10.3.0.0/24', { DefaultGatewayIPv4: '10.9.9.9' })],
      [],
      'ERR_BRIDGE_INVALID_GATEWAY',
      'invalid-argument',
    ],
    [
      'v6 gateway without v6 subnet',
      [testIpamData('10.4.0.0/24', { DefaultGatewayIPv6: '10.4.0.9' })],
      [],
      'ERR_BRIDGE_INVALID_GATEWAY',
      'invalid-argument',
    ],
  ] as const)('rejects %s with a typed error and creates nothing', async (_what, v4, v6, code, kind) => {
    const { driver, kernel, store } = setup()
    const err = await failure(driver.createNetwork(nid(), cfg(), v4 as readonly IpamData[], v6 as readonly IpamData[]))
    expect(err.code).toBe(code)
    expect(err.kind).toBe(kind)
    expect(kernel.calls).toEqual([])
    expect(store.data.size).toBe(0)
  })

  it('rejects invalid options (MTU -2) before touching the kernel or the store', async () => {
    const { driver, kernel, store } = setup()
    const err = await failure(
      driver.createNetwork(
        nid(),
        cfg({ driverOptions: { 'com.docker.network.driver.mtu': '-2' } }),
        [testIpamData('10.5.0.0/24')],
        [],
      ),
    )
    expect(err.code).toBe('ERR_DRIVER_INVALID_OPTION')
    expect(err.kind).toBe('invalid-argument')
    expect(kernel.calls).toEqual([])
    expect(store.data.size).toBe(0)
  })

  it('forbids a second network on the same bridge or an overlapping subnet', async () => {
    const { driver, kernel } = setup()
    await driver.createNetwork(
      nid(),
      cfg({ driverOptions: { 'com.docker.network.bridge.name': 'brA' } }),
      [testIpamData('10.20.0.0/16')],
      [],
    )
    const calls = kernel.calls.length
    const sameName = await failure(
      driver.createNetwork(
        nid(),
        cfg({ driverOptions: { 'com.docker.network.bridge.name': 'brA' } }),
        [testIpamData('10.30.0.0/16')],
        [],
      ),
    )
    expect(sameName.code).toBe('ERR_BRIDGE_NETWORK_CONFLICT')
    expect(sameName.kind).toBe('forbidden')
    const overlap = await failure(driver.createNetwork(nid(), cfg(), [testIpamData('10.20.5.0/24')], []))
    expect(overlap.code).toBe('ERR_BRIDGE_NETWORK_CONFLICT')
    expect(kernel.calls.length).toBe(calls)
    await driver.createNetwork(nid(), cfg(), [testIpamData('10.21.0.0/16')], [])
    expect(kernel.firewalls.size).toBe(2)
  })

  it('replaces a stale default bridge network', async () => {
    const { driver, kernel } = setup()
    kernel.addDevice('docker0', 'bridge')
    const dflt = { 'com.docker.network.bridge.default_bridge': 'true' }
    const first = nid()
    await driver.createNetwork(first, cfg({ driverOptions: dflt }), [testIpamData('172.17.0.0/16')], [])
    const second = nid()
    await driver.createNetwork(second, cfg({ driverOptions: dflt }), [testIpamData('172.17.0.0/16')], [])
    expect((await failure(driver.deleteNetwork(first))).kind).toBe('not-found')
    expect(kernel.links.has('docker0')).toBe(true)
    await driver.deleteNetwork(second)
    expect(kernel.links.has('docker0')).toBe(true)
  })

  it('adopts an existing bridge (never deleting it) and refuses a non-bridge device', async () => {
    const { driver, kernel } = setup()
    kernel.addDevice('userbr', 'bridge')
    kernel.addDevice('dummy0', 'dummy')
    const id = nid()
    await driver.createNetwork(
      id,
      cfg({ driverOptions: { 'com.docker.network.bridge.name': 'userbr' } }),
      [testIpamData('10.40.0.0/24')],
      [],
    )
    const err = await failure(
      driver.createNetwork(
        nid(),
        cfg({ driverOptions: { 'com.docker.network.bridge.name': 'dummy0' } }),
        [testIpamData('10.41.0.0/24')],
        [],
      ),
    )
    expect(err.code).toBe('ERR_BRIDGE_NOT_A_BRIDGE')
    await driver.deleteNetwork(id)
    expect(kernel.links.has('userbr')).toBe(true)
    expect(kernel.firewalls.size).toBe(0)
  })

  it('fails for a default bridge whose custom device does not exist', async () => {
    const { driver } = setup()
    const err = await failure(
      driver.createNetwork(
        nid(),
        cfg({
          driverOptions: {
            'com.docker.network.bridge.default_bridge': 'true',
            'com.docker.network.bridge.name': 'mybr',
          },
        }),
        [testIpamData('10.42.0.0/24')],
        [],
      ),
    )
    expect(err.code).toBe('ERR_BRIDGE_DEVICE_MISSING')
  })

  it('rolls the kernel back when a later step fails (firewall, store)', async () => {
    const { driver, kernel, store } = setup()
    kernel.failNext('programNetworkFirewall')
    const id = nid()
    await expect(driver.createNetwork(id, cfg(), [testIpamData('10.50.0.0/24')], [])).rejects.toThrow('injected')
    expect(kernel.links.size).toBe(0)
    store.failNext('create', new Error('disk full'))
    const err = await failure(driver.createNetwork(id, cfg(), [testIpamData('10.50.0.0/24')], []))
    expect(err.code).toBe('ERR_BRIDGE_STORE')
    expect(kernel.links.size).toBe(0)
    expect(kernel.firewalls.size).toBe(0)
    await driver.createNetwork(id, cfg(), [testIpamData('10.50.0.0/24')], [])
  })

  it('wraps foreign kernel failures in BridgeKernelError with the cause', async () => {
    const { driver, kernel } = setup()
    const cause = new Error('RTNETLINK answers: Operation not permitted')
    kernel.failNext('setupBridge', cause)
    const err = await failure(driver.createNetwork(nid(), cfg(), [testIpamData('10.51.0.0/24')], []))
    expect(err.code).toBe('ERR_BRIDGE_KERNEL')
    expect((err as unknown as Error).cause).toBe(cause)
  })

  it('deleteNetwork removes bridge, rules and record; refuses while endpoints exist', async () => {
    const { driver, kernel, store } = setup()
    const id = nid()
    await driver.createNetwork(id, cfg(), [testIpamData('10.60.0.0/24')], [])
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.60.0.2/24'), epCfg)
    expect((await failure(driver.deleteNetwork(id))).code).toBe('ERR_DRIVER_ACTIVE_ENDPOINTS')
    await driver.deleteEndpoint(id, e)
    await driver.deleteNetwork(id)
    expect(kernel.links.size).toBe(0)
    expect(kernel.firewalls.size).toBe(0)
    expect(store.data.size).toBe(0)
    const again = await failure(driver.deleteNetwork(id))
    expect(again.kind).toBe('not-found')
    expect(again.maskable).toBe(true)
  })
})

describe('BridgeDriver endpoints', () => {
  async function withNet(init: BridgeDriverInit = {}, options: Record<string, string> = {}) {
    const s = setup(init)
    const id = nid()
    await s.driver.createNetwork(id, cfg({ driverOptions: options }), [testIpamData('10.70.0.0/24')], [])
    return { ...s, id }
  }

  it('reserves names and a MAC derived from the IP at createEndpoint; a join without in-place veths makes the pair in the host', async () => {
    const { driver, kernel, store, id } = await withNet()
    const e = eid()
    const i = iface('10.70.0.5/24')
    await driver.createEndpoint(id, e, i, epCfg)
    expect(i.macAddress).toBe('02:42:0a:46:00:05')
    const rec = store.json(endpointKey(e)) as { hostIfName: string; containerIfName: string; ipv4: string }
    expect(rec.hostIfName).toMatch(/^veth[0-9a-f]{7}$/)
    expect(rec.containerIfName).toMatch(/^veth[0-9a-f]{7}$/)
    expect(rec.ipv4).toBe('10.70.0.5/24')
    expect(kernel.links.has(rec.hostIfName)).toBe(false)
    const ji = new JoinInfoRecorder()
    await driver.join(id, e, '/var/run/docker/netns/abc', ji, sb())
    expect(ji.result().interfaceName?.srcName).toBe(rec.containerIfName)
    expect(kernel.links.get(rec.hostIfName)?.master).toBe(`br-${id.slice(0, 12)}`)
    expect(kernel.links.get(rec.containerIfName)?.mac).toBe('02:42:0a:46:00:05')
  })

  it('join asks for a veth made in place when the sandbox layer can; nothing is made in the host', async () => {
    const { driver, kernel, store, id } = await withNet({}, { 'com.docker.network.driver.mtu': '1400' })
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.7/24'), epCfg)
    const rec = store.json(endpointKey(e)) as { hostIfName: string; containerIfName: string }
    const ji = new JoinInfoRecorder({ canCreateVeth: true })
    await driver.join(id, e, '/var/run/docker/netns/abc', ji, sb())
    expect(ji.result().interfaceName).toBeUndefined()
    expect(ji.result().veth).toEqual({
      spec: { hostName: rec.hostIfName, master: `br-${id.slice(0, 12)}`, mtu: 1400, hairpin: true },
      dstPrefix: 'eth',
    })
    expect(kernel.links.has(rec.hostIfName)).toBe(false)
    await driver.leave(id, e)
    const again = new JoinInfoRecorder({ canCreateVeth: true })
    await driver.join(id, e, '/var/run/docker/netns/def', again, sb())
    expect(again.result().veth?.spec.hostName).toBe(rec.hostIfName)
  })

  it('keeps a given MAC, or takes the MAC option, and never calls a setter on present fields', async () => {
    const { driver, id } = await withNet()
    const given = iface('10.70.0.6/24', '02:00:00:00:00:66')
    await driver.createEndpoint(id, eid(), given, epCfg)
    expect(given.macAddress).toBe('02:00:00:00:00:66')
    const opt = iface('10.70.0.7/24')
    await driver.createEndpoint(id, eid(), opt, {
      ...epCfg,
      driverOptions: { 'com.docker.network.endpoint.macaddress': '02:00:00:00:00:77' },
    })
    expect(opt.macAddress).toBe('02:00:00:00:00:77')
    const bad = await failure(
      driver.createEndpoint(id, eid(), iface('10.70.0.8/24'), {
        ...epCfg,
        driverOptions: { 'com.docker.network.endpoint.macaddress': 'zz' },
      }),
    )
    expect(bad.code).toBe('ERR_DRIVER_INVALID_OPTION')
  })

  it.each([
    ['no address', new EndpointInterface(), 'ERR_BRIDGE_NO_ADDRESS'],
    ['an address outside the subnet', iface('10.99.0.5/24'), 'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET'],
    ['the bridge address', iface('10.70.0.1/24'), 'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET'],
  ])('fails for %s with a typed error and keeps no state', async (_w, i, code) => {
    const { driver, kernel, store, id } = await withNet()
    const before = kernel.linkNames()
    const e = eid()
    const err = await failure(driver.createEndpoint(id, e, i, epCfg))
    expect(err.code).toBe(code)
    expect(kernel.linkNames()).toEqual(before)
    expect(store.data.has(endpointKey(e))).toBe(false)
    expect((await failure(driver.endpointOperInfo(id, e))).kind).toBe('not-found')
  })

  it('rolls back the veth and sets nothing on the interface when persisting fails', async () => {
    const { driver, kernel, store, id } = await withNet()
    const before = kernel.linkNames()
    store.failNext('create', new Error('disk full'))
    const i = iface('10.70.0.9/24')
    const e = eid()
    expect((await failure(driver.createEndpoint(id, e, i, epCfg))).code).toBe('ERR_BRIDGE_STORE')
    expect(kernel.linkNames()).toEqual(before)
    expect(i.macAddress).toBeUndefined()
    await driver.createEndpoint(id, e, i, epCfg)
  })

  it('refuses IPv6-from-MAC on a prefix longer than /80 (forbidden)', async () => {
    const { driver } = setup()
    const id = nid()
    await driver.createNetwork(id, cfg({ enableIPv6: true }), [testIpamData('10.71.0.0/24')], [v6Data('fd00:71::/96')])
    const err = await failure(driver.createEndpoint(id, eid(), iface('10.71.0.2/24'), epCfg))
    expect(err.code).toBe('ERR_BRIDGE_IPV6_PREFIX_TOO_LONG')
    expect(err.kind).toBe('forbidden')
    const given = new EndpointInterface({ address: parseCidr('10.71.0.3/24'), addressIPv6: parseCidr('fd00:71::3/96') })
    await driver.createEndpoint(id, eid(), given, epCfg)
    expect(formatCidr(given.addressIPv6 ?? parseCidr('::/0'))).toBe('fd00:71::3/96')
  })

  it('join names the container end and prefix, gives the gateway; internal networks give none', async () => {
    const { driver, store, id } = await withNet({}, { 'com.docker.network.container_iface_prefix': 'net' })
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.10/24'), epCfg)
    const ji = new JoinInfoRecorder()
    await driver.join(id, e, '/var/run/docker/netns/abc', ji, sb())
    const rec = store.json(endpointKey(e)) as { containerIfName: string; sandboxKey: string }
    expect(ji.result()).toMatchObject({
      interfaceName: { srcName: rec.containerIfName, dstPrefix: 'net' },
      gateway: parseIp('10.70.0.1'),
    })
    expect(rec.sandboxKey).toBe('/var/run/docker/netns/abc')
    expect((await failure(driver.join(id, e, '/var/run/docker/netns/other', new JoinInfoRecorder(), sb()))).code).toBe(
      'ERR_BRIDGE_ENDPOINT_JOINED',
    )
    await driver.leave(id, e)
    expect((store.json(endpointKey(e)) as { sandboxKey?: string }).sandboxKey).toBeUndefined()

    const internal = setup()
    const iid = nid()
    await internal.driver.createNetwork(iid, cfg({ internal: true }), [testIpamData('10.72.0.0/24')], [])
    const ie = eid()
    await internal.driver.createEndpoint(iid, ie, iface('10.72.0.2/24'), epCfg)
    const iji = new JoinInfoRecorder()
    await internal.driver.join(iid, ie, 'k', iji, sb())
    expect(iji.result().gateway).toBeUndefined()
    expect(iji.result().interfaceName?.dstPrefix).toBe('eth')
  })

  it('publishes ports only for endpoints that ask; keeps reservations across leave/join ([S3]); frees them on delete', async () => {
    const { driver, kernel, id } = await withNet()
    const quiet = eid()
    await driver.createEndpoint(id, quiet, iface('10.70.0.20/24'), epCfg)
    await driver.join(id, quiet, 'k1', new JoinInfoRecorder(), sb())
    await driver.programExternalConnectivity(id, quiet, sb())
    expect(kernel.published.size).toBe(0)
    expect(kernel.calls.filter((c) => c.startsWith('publishPorts'))).toHaveLength(1)

    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.21/24'), epCfg)
    await driver.join(id, e, 'k2', new JoinInfoRecorder(), sb())
    await driver.programExternalConnectivity(
      id,
      e,
      sb([{ containerPort: 80 }, { containerPort: 53, proto: 'udp', hostPort: 5353 }]),
    )
    const first = (await driver.endpointOperInfo(id, e)).portMappings
    expect(first?.map((m) => `${m.proto}/${m.hostPort}->${m.containerPort}`)).toEqual(['tcp/49153->80', 'udp/5353->53'])
    expect(first?.[0]?.containerIp).toEqual(parseIp('10.70.0.21'))
    expect(kernel.published.size).toBe(2)

    await driver.revokeExternalConnectivity(id, e)
    await driver.leave(id, e)
    expect(kernel.published.size).toBe(0)
    expect(kernel.reservations.size).toBe(2)
    // Another endpoint asking for an ephemeral port does not get the held one.
    const other = eid()
    await driver.createEndpoint(id, other, iface('10.70.0.22/24'), epCfg)
    await driver.programExternalConnectivity(id, other, sb([{ containerPort: 80 }]))
    expect((await driver.endpointOperInfo(id, other)).portMappings?.[0]?.hostPort).toBe(49154)
    const taken = await failure(
      driver.programExternalConnectivity(id, other, sb([{ containerPort: 53, proto: 'udp', hostPort: 5353 }])),
    )
    expect(taken.code).toBe('ERR_BRIDGE_KERNEL')

    await driver.join(id, e, 'k3', new JoinInfoRecorder(), sb())
    await driver.programExternalConnectivity(
      id,
      e,
      sb([{ containerPort: 80 }, { containerPort: 53, proto: 'udp', hostPort: 5353 }]),
    )
    expect((await driver.endpointOperInfo(id, e)).portMappings).toEqual(first)

    await driver.deleteEndpoint(id, e)
    expect([...kernel.reservations.values()].every((o) => o !== e)).toBe(true)
    expect([...kernel.published.values()].every((p) => p.owner !== e)).toBe(true)
  })

  it('asks the kernel for ports with the bridge and the container address of the host address family', async () => {
    const { driver, kernel, id } = await withNet()
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.60/24'), epCfg)
    await driver.programExternalConnectivity(id, e, sb([{ containerPort: 80, hostPort: 8080, hostPortEnd: 8090 }]))
    expect(kernel.requests).toEqual([
      {
        proto: 'tcp',
        hostIp: parseIp('0.0.0.0'),
        hostPort: 8080,
        hostPortEnd: 8090,
        bridge: `br-${id.slice(0, 12)}`,
        containerIp: parseIp('10.70.0.60'),
        containerPort: 80,
      },
    ])
  })

  it('close() lets the kernel side release its helpers and keeps every published port and record', async () => {
    const { driver, kernel, store, id } = await withNet()
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.61/24'), epCfg)
    await driver.programExternalConnectivity(id, e, sb([{ containerPort: 80, hostPort: 8080 }]))
    const before = store.json(endpointKey(e))
    await driver.close()
    await driver.close()
    expect(kernel.closed).toBe(2)
    expect([...kernel.published.keys()]).toEqual(['tcp/0.0.0.0/8080'])
    expect(store.json(endpointKey(e))).toEqual(before)
    expect((await driver.endpointOperInfo(id, e)).portMappings?.map((m) => m.hostPort)).toEqual([8080])
  })

  it('releases only the ports it reserved in a failed programming call', async () => {
    const { driver, kernel, id } = await withNet()
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.30/24'), epCfg)
    await driver.programExternalConnectivity(id, e, sb([{ containerPort: 80 }]))
    await driver.revokeExternalConnectivity(id, e)
    kernel.failNext('publishPorts')
    await expect(
      driver.programExternalConnectivity(id, e, sb([{ containerPort: 80 }, { containerPort: 81 }])),
    ).rejects.toThrow()
    expect([...kernel.reservations.keys()]).toEqual(['tcp/0.0.0.0/49153'])
    expect(kernel.published.size).toBe(0)
  })

  it('uses the network host_binding_ipv4 and does no port mapping on internal networks', async () => {
    const { driver, kernel, id } = await withNet({}, { 'com.docker.network.bridge.host_binding_ipv4': '127.0.0.1' })
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.40/24'), epCfg)
    await driver.programExternalConnectivity(id, e, sb([{ containerPort: 80, hostPort: 8080 }]))
    expect([...kernel.published.keys()]).toEqual(['tcp/127.0.0.1/8080'])

    const internal = setup()
    const iid = nid()
    await internal.driver.createNetwork(iid, cfg({ internal: true }), [testIpamData('10.73.0.0/24')], [])
    const ie = eid()
    await internal.driver.createEndpoint(iid, ie, iface('10.73.0.2/24'), epCfg)
    await internal.driver.programExternalConnectivity(iid, ie, sb([{ containerPort: 80, hostPort: 8080 }]))
    expect(internal.kernel.published.size).toBe(0)
    expect(internal.kernel.reservations.size).toBe(0)
  })

  it('reports operational info', async () => {
    const { driver, id } = await withNet()
    const e = eid()
    await driver.createEndpoint(id, e, iface('10.70.0.50/24'), {
      ...epCfg,
      exposedPorts: [{ proto: 'tcp', port: 8000 }],
    })
    const info = await driver.endpointOperInfo(id, e)
    expect(info.macAddress).toBe('02:42:0a:46:00:32')
    expect(info.exposedPorts).toEqual([{ proto: 'tcp', port: 8000 }])
    expect(info.extra?.['bridge']).toBe(`br-${id.slice(0, 12)}`)
  })
})

describe('BridgeDriver restore', () => {
  it('reloads networks and endpoints from the store and re-creates missing kernel state', async () => {
    const kernel = new FakeKernel()
    const store = new MemoryStore()
    const a = setup({}, kernel, store)
    const id = nid()
    await a.driver.createNetwork(id, cfg(), [testIpamData('10.80.0.0/24')], [])
    const e = eid()
    await a.driver.createEndpoint(id, e, iface('10.80.0.2/24'), epCfg)
    await a.driver.join(id, e, 'k', new JoinInfoRecorder(), sb())
    await a.driver.programExternalConnectivity(id, e, sb([{ containerPort: 80, hostPort: 8080 }]))
    const info = await a.driver.endpointOperInfo(id, e)

    // "Reboot": the kernel lost everything, a new driver instance starts on the same store.
    const fresh = new FakeKernel()
    const b = setup({}, fresh, store)
    await b.driver.restore()
    expect(fresh.links.get(`br-${id.slice(0, 12)}`)?.kind).toBe('bridge')
    expect(fresh.firewalls.size).toBe(1)
    expect(await b.driver.endpointOperInfo(id, e)).toEqual(info)
    expect([...fresh.published.keys()]).toEqual(['tcp/0.0.0.0/8080'])
    expect(fresh.reservations.get('tcp/0.0.0.0/8080')).toBe(e)
    // The re-created pair is in no sandbox, so the endpoint can join again.
    await b.driver.join(id, e, 'k2', new JoinInfoRecorder(), sb())
  })

  it('with the controller list, drops orphan networks, endpoints and veths and keeps the rest', async () => {
    const kernel = new FakeKernel()
    const store = new MemoryStore()
    const a = setup({}, kernel, store)
    const keep = nid()
    const gone = nid()
    await a.driver.createNetwork(keep, cfg(), [testIpamData('10.81.0.0/24')], [])
    await a.driver.createNetwork(gone, cfg(), [testIpamData('10.82.0.0/24')], [])
    const e1 = eid()
    const e2 = eid()
    const e3 = eid()
    await a.driver.createEndpoint(keep, e1, iface('10.81.0.2/24'), epCfg)
    await a.driver.createEndpoint(keep, e2, iface('10.81.0.3/24'), epCfg)
    await a.driver.createEndpoint(gone, e3, iface('10.82.0.2/24'), epCfg)
    await a.driver.programExternalConnectivity(keep, e2, sb([{ containerPort: 80 }]))
    kernel.links.set('vethdeadbee', {
      name: 'vethdeadbee',
      kind: 'veth',
      master: `br-${keep.slice(0, 12)}`,
      up: true,
      mtu: 1500,
      addresses: [],
    })

    const b = setup({}, kernel, store)
    await b.driver.restore([
      {
        id: keep,
        config: cfg(),
        ipv4Data: [testIpamData('10.81.0.0/24')],
        ipv6Data: [],
        endpoints: [{ id: e1, config: epCfg, address: parseCidr('10.81.0.2/24') }],
      },
    ])
    await b.driver.endpointOperInfo(keep, e1)
    expect((await failure(b.driver.endpointOperInfo(keep, e2))).kind).toBe('not-found')
    expect((await failure(b.driver.deleteNetwork(gone))).kind).toBe('not-found')
    expect(kernel.links.has(`br-${gone.slice(0, 12)}`)).toBe(false)
    expect(kernel.links.has('vethdeadbee')).toBe(false)
    expect(kernel.firewalls.size).toBe(1)
    expect(kernel.reservations.size).toBe(0)
    // the orphan's port rules (still in the kernel from the previous process) are gone too
    expect(kernel.published.size).toBe(0)
    expect([...store.data.keys()].sort()).toEqual([endpointKey(e1), networkKey(keep)].sort())
  })

  it('re-creates networks and endpoints the controller knows but the store does not', async () => {
    const { driver, kernel, store } = setup()
    const id = nid()
    const e = eid()
    await driver.restore([
      {
        id,
        config: cfg(),
        ipv4Data: [testIpamData('10.83.0.0/24')],
        ipv6Data: [],
        endpoints: [{ id: e, config: epCfg, address: parseCidr('10.83.0.7/24') }],
      },
    ])
    expect(kernel.links.get(`br-${id.slice(0, 12)}`)?.kind).toBe('bridge')
    expect((await driver.endpointOperInfo(id, e)).macAddress).toBe('02:42:0a:53:00:07')
    expect(store.data.has(networkKey(id))).toBe(true)
    expect(store.data.has(endpointKey(e))).toBe(true)
  })

  it('logs and drops a port reservation that can no longer be taken', async () => {
    const kernel = new FakeKernel()
    const store = new MemoryStore()
    const a = setup({}, kernel, store)
    const id = nid()
    await a.driver.createNetwork(id, cfg(), [testIpamData('10.84.0.0/24')], [])
    const e = eid()
    await a.driver.createEndpoint(id, e, iface('10.84.0.2/24'), epCfg)
    await a.driver.programExternalConnectivity(id, e, sb([{ containerPort: 80, hostPort: 8080 }]))
    const fresh = new FakeKernel()
    await fresh.reservePort('someone-else', {
      proto: 'tcp',
      hostIp: parseIp('0.0.0.0'),
      hostPort: 8080,
      hostPortEnd: 8080,
      bridge: 'br-other',
      containerIp: parseIp('10.84.0.9'),
      containerPort: 80,
    })
    const b = setup({}, fresh, store)
    await b.driver.restore()
    expect((await b.driver.endpointOperInfo(id, e)).portMappings).toEqual([])
    expect(b.logger.lines.some((l) => l.level === 'error' && l.message.includes('lost host port'))).toBe(true)
  })

  it('works without a store by reconciling its in-memory state', async () => {
    const kernel = new FakeKernel()
    const driver = new BridgeDriver(resolveBridgeDriverConfig({}), { logger: noopLogger() }, kernel)
    const id = nid()
    await driver.createNetwork(id, cfg(), [testIpamData('10.85.0.0/24')], [])
    kernel.links.clear()
    await driver.restore()
    expect(kernel.links.has(`br-${id.slice(0, 12)}`)).toBe(true)
  })
})
