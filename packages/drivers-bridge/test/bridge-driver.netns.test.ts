import { close } from 'node:fs'
import type net from 'node:net'
import { promisify } from 'node:util'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  addressAt,
  formatIp,
  isCnmError,
  noopLogger,
  parsePrefix,
  type EndpointId,
  type IpCidr,
  type NetworkId,
} from '@cnm/types'
import { EndpointInterface, generateId, type NetworkDriverConfig } from '@cnm/driverapi'
import { testIpamData } from '@cnm/driverapi/testing'
import { osl as makeOsl, type Osl, type Sandbox } from '@cnm/osl'
import { NetnsFixture, netnsAvailable, run } from '@cnm/test-utils'
import { bridgeDriver, type BridgeDriver, type BridgeDriverInit } from '../src/index.js'
import { MemoryStore } from './fixtures/memory-store.js'
import {
  EMPTY_SANDBOX_CONFIG,
  closeServer,
  greeter,
  linkNames,
  plug,
  routes,
  rules,
  tcpFrom,
  unplug,
} from './fixtures/kernel-helpers.js'

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
const closeFd = promisify(close)
const epCfg = { name: 'e', driverOptions: {}, exposedPorts: [], portBindings: [], dnsServers: [] }
const publish = (containerPort: number, hostPort = 0) => ({
  ...EMPTY_SANDBOX_CONFIG,
  portBindings: [{ proto: 'tcp' as const, containerPort, hostPort, hostPortEnd: hostPort }],
})

describe.skipIf(!netnsAvailable())('bridge driver on the kernel (host played by a namespace)', () => {
  let fx: NetnsFixture
  let host: string
  let o: Osl
  let store: MemoryStore
  const servers: net.Server[] = []
  // Subnets inside 198.18.0.0/15 (benchmarking range), distinct per test run.
  let base = 0

  const subnet = (k: number): string => `198.18.${(base + k) % 256}.0/24`
  const addr = (k: number, host: number): IpCidr => {
    const p = parsePrefix(subnet(k))
    return { ip: addressAt(p, BigInt(host)), prefix: p }
  }

  beforeEach(async () => {
    fx = new NetnsFixture('brd')
    host = await fx.add('h')
    o = makeOsl({ hostNetns: host })({ logger: noopLogger() })
    store = new MemoryStore()
    base = Math.floor(Math.random() * 200)
  })

  afterEach(async () => {
    for (const s of servers.splice(0)) await closeServer(s)
    await o.close()
    await fx.cleanup()
  })

  const driver = async (init: BridgeDriverInit = {}): Promise<BridgeDriver> => {
    const d = bridgeDriver({ hostNetns: host, ...init })({ logger: noopLogger(), store, osl: o })
    fx.onCleanup(() => d.close())
    await d.restore([])
    return d
  }

  const sandbox = async (suffix: string): Promise<Sandbox> => {
    const key = `${fx.prefix}-${suffix}`
    fx.track(key)
    return await o.createSandbox(key)
  }

  const endpoint = async (d: BridgeDriver, nid: NetworkId, address: IpCidr): Promise<EndpointId> => {
    const eid = generateId() as EndpointId
    await d.createEndpoint(nid, eid, new EndpointInterface({ address }), epCfg)
    return eid
  }

  it('two endpoints joined into two sandboxes exchange TCP; no per-container firewall rules without ports', async () => {
    const d = await driver()
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const before = await rules(host)
    const [a, b] = [await sandbox('a'), await sandbox('b')]
    const ea = await endpoint(d, nid, addr(0, 2))
    const eb = await endpoint(d, nid, addr(0, 3))
    const ja = await plug(o, d, nid, ea, a, addr(0, 2))
    await plug(o, d, nid, eb, b, addr(0, 3))
    await d.programExternalConnectivity(nid, ea, EMPTY_SANDBOX_CONFIG)
    expect(ja.interfaceName?.dstPrefix).toBe('eth')
    expect((await linkNames(a.label)).includes('eth0')).toBe(true)
    servers.push(await greeter(o, a.label, 8080, 'hello from a'))
    expect(await tcpFrom(b.label, '198.18.' + ((base + 0) % 256) + '.2', 8080)).toBe('hello from a')
    expect(await rules(host)).toEqual(before)
  })

  it('IPv6: v6 gateway on the bridge, addresses from the MAC, TCP over IPv6 between sandboxes', async () => {
    const d = await driver()
    const nid = generateId() as NetworkId
    const v6 = `fd00:cafe:${(base + 7).toString(16)}::/64`
    await d.createNetwork(nid, cfg({ enableIPv6: true }), [testIpamData(subnet(0))], [testIpamData(v6)])
    const bridge = `br-${nid.slice(0, 12)}`
    const brAddrs = await run('ip', ['-n', host, '-o', 'addr', 'show', 'dev', bridge])
    expect(brAddrs).toContain(`fd00:cafe:${(base + 7).toString(16)}::1/64`)
    expect(brAddrs).toContain('fe80::1/64')
    const [a, b] = [await sandbox('a'), await sandbox('b')]
    const ia = new EndpointInterface({ address: addr(0, 2) })
    const ib = new EndpointInterface({ address: addr(0, 3) })
    const ea = generateId() as EndpointId
    const eb = generateId() as EndpointId
    await d.createEndpoint(nid, ea, ia, epCfg)
    await d.createEndpoint(nid, eb, ib, epCfg)
    expect(ia.addressIPv6).toBeDefined()
    const ja = await plug(o, d, nid, ea, a, addr(0, 2), ia.addressIPv6)
    await plug(o, d, nid, eb, b, addr(0, 3), ib.addressIPv6)
    expect(ja.gatewayIPv6).toBeDefined()
    const v6a = (await run('ip', ['-n', a.label, '-6', '-o', 'addr', 'show', 'dev', 'eth0'])).match(
      /inet6 (fd00:\S+)\/64/,
    )?.[1]
    expect(v6a).toBe(formatIp((ia.addressIPv6 as IpCidr).ip))
    servers.push(await greeter(o, a.label, 8080, 'hello over v6', 6))
    expect(await tcpFrom(b.label, v6a ?? '', 8080)).toBe('hello over v6')
  })

  it('two bridge networks cannot reach each other', async () => {
    const d = await driver()
    const n1 = generateId() as NetworkId
    const n2 = generateId() as NetworkId
    await d.createNetwork(n1, cfg(), [testIpamData(subnet(0))], [])
    await d.createNetwork(n2, cfg(), [testIpamData(subnet(1))], [])
    const [a, b, c] = [await sandbox('a'), await sandbox('b'), await sandbox('c')]
    await plug(o, d, n1, await endpoint(d, n1, addr(0, 2)), a, addr(0, 2))
    await plug(o, d, n1, await endpoint(d, n1, addr(0, 3)), b, addr(0, 3))
    await plug(o, d, n2, await endpoint(d, n2, addr(1, 2)), c, addr(1, 2))
    servers.push(await greeter(o, a.label, 8080, 'a'))
    servers.push(await greeter(o, c.label, 8080, 'c'))
    const ipA = `198.18.${base % 256}.2`
    const ipC = `198.18.${(base + 1) % 256}.2`
    expect(await tcpFrom(b.label, ipA, 8080)).toBe('a')
    expect(await tcpFrom(a.label, ipC, 8080)).toMatch(/^ERR /)
    expect(await tcpFrom(c.label, ipA, 8080)).toMatch(/^ERR /)
  })

  it('an internal network has no route out and its traffic is not forwarded', async () => {
    const d = await driver()
    const internal = generateId() as NetworkId
    const other = generateId() as NetworkId
    await d.createNetwork(internal, cfg({ internal: true }), [testIpamData(subnet(0))], [])
    await d.createNetwork(other, cfg(), [testIpamData(subnet(1))], [])
    const [a, c] = [await sandbox('a'), await sandbox('c')]
    const j = await plug(o, d, internal, await endpoint(d, internal, addr(0, 2)), a, addr(0, 2))
    await plug(o, d, other, await endpoint(d, other, addr(1, 2)), c, addr(1, 2))
    expect(j.gateway).toBeUndefined()
    expect((await routes(a.label)).some((r) => r.dst === 'default')).toBe(false)
    servers.push(await greeter(o, c.label, 8080, 'c'))
    // No default route: unreachable at once. Even with one added by hand, the firewall drops forwarding.
    expect(await tcpFrom(a.label, `198.18.${(base + 1) % 256}.2`, 8080)).toMatch(/^ERR /)
    await run('ip', ['-n', a.label, 'route', 'add', 'default', 'via', `198.18.${base % 256}.1`])
    expect(await tcpFrom(a.label, `198.18.${(base + 1) % 256}.2`, 8080)).toMatch(/^ERR /)
  })

  it('a published port answers from the host on 127.0.0.1 and on the bridge address; leave+join keeps address and port', async () => {
    const d = await driver()
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const a = await sandbox('a')
    const ea = await endpoint(d, nid, addr(0, 2))
    const j = await plug(o, d, nid, ea, a, addr(0, 2))
    await d.programExternalConnectivity(nid, ea, publish(80))
    const info = await d.endpointOperInfo(nid, ea)
    const hostPort = info.portMappings?.[0]?.hostPort ?? 0
    expect(hostPort).toBeGreaterThan(0)
    servers.push(await greeter(o, a.label, 80, 'web'))
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('web')
    expect(await tcpFrom(host, `198.18.${base % 256}.1`, hostPort)).toBe('web')

    // Container stop: revoke + leave; the port is not answered but stays reserved.
    await d.revokeExternalConnectivity(nid, ea)
    await unplug(o, d, nid, ea, a, j.interfaceName?.srcName ?? '')
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toMatch(/^ERR /)
    const other = await endpoint(d, nid, addr(0, 9))
    await d.programExternalConnectivity(nid, other, publish(80))
    expect((await d.endpointOperInfo(nid, other)).portMappings?.[0]?.hostPort).not.toBe(hostPort)

    // Container start: same endpoint, same address, same host port.
    await plug(o, d, nid, ea, a, addr(0, 2))
    await d.programExternalConnectivity(nid, ea, publish(80))
    expect((await d.endpointOperInfo(nid, ea)).portMappings).toEqual(info.portMappings)
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('web')
  })

  it('a fixed host port held by another endpoint is refused, and the failure leaves no rule', async () => {
    const d = await driver()
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const e1 = await endpoint(d, nid, addr(0, 2))
    const e2 = await endpoint(d, nid, addr(0, 3))
    await d.programExternalConnectivity(nid, e1, publish(80, 18080))
    const before = await rules(host)
    const err = await d.programExternalConnectivity(nid, e2, publish(80, 18080)).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_PORT_ALREADY_ALLOCATED')).toBe(true)
    expect(await rules(host)).toEqual(before)
  })

  it('holdHostPorts keeps other processes off a published host port until it is unpublished', async () => {
    const d = await driver({ holdHostPorts: true })
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const a = await sandbox('a')
    const ea = await endpoint(d, nid, addr(0, 2))
    await plug(o, d, nid, ea, a, addr(0, 2))
    await d.programExternalConnectivity(nid, ea, publish(80, 18082))
    servers.push(await greeter(o, a.label, 80, 'held'))
    const clash = await o.openSocket(host, { type: 'tcp4', address: '0.0.0.0', port: 18082 }).catch((e: unknown) => e)
    expect(isCnmError(clash, 'ERR_OSL_ADDRESS_IN_USE')).toBe(true)
    expect(await tcpFrom(host, '127.0.0.1', 18082)).toBe('held')
    await d.revokeExternalConnectivity(nid, ea)
    const free = await o.openSocket(host, { type: 'tcp4', address: '0.0.0.0', port: 18082 })
    await closeFd(free.fd)
  })

  it('network delete leaves no link or rule behind', async () => {
    const d = await driver()
    const links0 = await linkNames(host)
    const rules0 = await rules(host)
    const nid = generateId() as NetworkId
    await d.createNetwork(
      nid,
      cfg({ driverOptions: { 'com.docker.network.bridge.enable_icc': 'false' } }),
      [testIpamData(subnet(0))],
      [],
    )
    const a = await sandbox('a')
    const ea = await endpoint(d, nid, addr(0, 2))
    const eb = await endpoint(d, nid, addr(0, 3))
    const j = await plug(o, d, nid, ea, a, addr(0, 2))
    await d.programExternalConnectivity(nid, ea, publish(80))
    await d.programExternalConnectivity(nid, eb, publish(81, 18081))
    expect(await rules(host)).not.toEqual(rules0)
    expect((await linkNames(host)).length).toBeGreaterThan(links0.length)
    await d.revokeExternalConnectivity(nid, ea)
    await unplug(o, d, nid, ea, a, j.interfaceName?.srcName ?? '')
    await d.deleteEndpoint(nid, ea)
    await d.deleteEndpoint(nid, eb)
    await d.deleteNetwork(nid)
    expect(await linkNames(host)).toEqual(links0)
    expect(await rules(host)).toEqual(rules0)
    expect(store.data.size).toBe(0)
  })

  it('invalid options fail with typed errors and leave no state', async () => {
    const d = await driver()
    const links0 = await linkNames(host)
    const rules0 = await rules(host)
    const bad = [
      d.createNetwork(
        generateId() as NetworkId,
        cfg({ driverOptions: { 'com.docker.network.driver.mtu': '-2' } }),
        [testIpamData(subnet(0))],
        [],
      ),
      d.createNetwork(
        generateId() as NetworkId,
        cfg({ driverOptions: { 'com.docker.network.bridge.name': 'way-too-long-name' } }),
        [testIpamData(subnet(0))],
        [],
      ),
      d.createNetwork(
        generateId() as NetworkId,
        cfg(),
        [testIpamData(subnet(0), { DefaultGatewayIPv4: '10.0.0.1' })],
        [],
      ),
    ]
    for (const p of bad) {
      const err = await p.catch((e: unknown) => e)
      expect(isCnmError(err)).toBe(true)
      expect((err as { kind: string }).kind).toBe('invalid-argument')
    }
    const nid = generateId() as NetworkId
    await d.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const links1 = await linkNames(host)
    const noAddr = await d
      .createEndpoint(nid, generateId() as EndpointId, new EndpointInterface(), epCfg)
      .catch((e: unknown) => e)
    expect(isCnmError(noAddr, 'ERR_BRIDGE_NO_ADDRESS')).toBe(true)
    expect(await linkNames(host)).toEqual(links1)
    await d.deleteNetwork(nid)
    expect(await linkNames(host)).toEqual(links0)
    expect(await rules(host)).toEqual(rules0)
  })

  it('restores after a simulated restart: re-creates a missing bridge, re-publishes ports, drops orphans', async () => {
    const d1 = await driver()
    const keep = generateId() as NetworkId
    const gone = generateId() as NetworkId
    await d1.createNetwork(keep, cfg(), [testIpamData(subnet(0))], [])
    await d1.createNetwork(gone, cfg(), [testIpamData(subnet(1))], [])
    const [a, b] = [await sandbox('a'), await sandbox('b')]
    const ea = await endpoint(d1, keep, addr(0, 2))
    const eb = await endpoint(d1, keep, addr(0, 3))
    await plug(o, d1, keep, ea, a, addr(0, 2))
    await plug(o, d1, keep, eb, b, addr(0, 3))
    await d1.programExternalConnectivity(keep, ea, publish(80))
    const hostPort = (await d1.endpointOperInfo(keep, ea)).portMappings?.[0]?.hostPort ?? 0
    await endpoint(d1, gone, addr(1, 2))
    servers.push(await greeter(o, a.label, 80, 'web'))
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('web')

    // The process dies; someone deletes the bridge meanwhile. A new instance starts on the same store.
    const bridge = `br-${keep.slice(0, 12)}`
    await o.host.deleteLink(bridge)
    // (Probing from b here would leave a FAILED neighbour entry for a in b; the host's entry went with the bridge.)
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toMatch(/^ERR /)
    const d2 = bridgeDriver({ hostNetns: host })({ logger: noopLogger(), store, osl: o })
    fx.onCleanup(() => d2.close())
    await d2.restore([
      {
        id: keep,
        config: cfg(),
        ipv4Data: [testIpamData(subnet(0))],
        ipv6Data: [],
        endpoints: [
          { id: ea, config: epCfg, address: addr(0, 2), sandboxKey: a.path ?? '', externalConnectivity: true },
          { id: eb, config: epCfg, address: addr(0, 3), sandboxKey: b.path ?? '' },
        ],
      },
    ])
    expect((await linkNames(host)).includes(bridge)).toBe(true)
    expect((await linkNames(host)).includes(`br-${gone.slice(0, 12)}`)).toBe(false)
    expect(await tcpFrom(b.label, `198.18.${base % 256}.2`, 80)).toBe('web')
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('web')
    expect((await d2.endpointOperInfo(keep, ea)).portMappings?.[0]?.hostPort).toBe(hostPort)
    expect(isCnmError(await d2.deleteNetwork(gone).catch((e: unknown) => e), 'ERR_DRIVER_NETWORK_NOT_FOUND')).toBe(true)
    expect(store.data.size).toBe(3)
  })

  it('close() at shutdown frees held host ports and keeps rules; the next instance adopts the mapping on the same port', async () => {
    const d1 = await driver({ holdHostPorts: true })
    const nid = generateId() as NetworkId
    await d1.createNetwork(nid, cfg(), [testIpamData(subnet(0))], [])
    const a = await sandbox('a')
    const ea = await endpoint(d1, nid, addr(0, 2))
    await plug(o, d1, nid, ea, a, addr(0, 2))
    await d1.programExternalConnectivity(nid, ea, publish(80))
    const hostPort = (await d1.endpointOperInfo(nid, ea)).portMappings?.[0]?.hostPort ?? 0
    servers.push(await greeter(o, a.label, 80, 'up'))
    const rules1 = await rules(host)

    await d1.close()
    // containers keep working: the rules are still there, only the holder socket is gone
    expect(await rules(host)).toEqual(rules1)
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('up')
    const free = await o.openSocket(host, { type: 'tcp4', address: '0.0.0.0', port: hostPort })
    await closeFd(free.fd)

    // the next daemon: restore adopts the stored mapping, holds the port again and changes no rule
    const d2 = bridgeDriver({ hostNetns: host, holdHostPorts: true })({ logger: noopLogger(), store, osl: o })
    fx.onCleanup(() => d2.close())
    const restored = {
      id: nid,
      config: cfg(),
      ipv4Data: [testIpamData(subnet(0))],
      ipv6Data: [],
      endpoints: [{ id: ea, config: epCfg, address: addr(0, 2), sandboxKey: a.path ?? '', externalConnectivity: true }],
    }
    await d2.restore([restored])
    expect((await d2.endpointOperInfo(nid, ea)).portMappings?.[0]?.hostPort).toBe(hostPort)
    expect(await rules(host)).toEqual(rules1)
    const clash = await o
      .openSocket(host, { type: 'tcp4', address: '0.0.0.0', port: hostPort })
      .catch((e: unknown) => e)
    expect(isCnmError(clash, 'ERR_OSL_ADDRESS_IN_USE')).toBe(true)
    // leave and join again with the original (ephemeral) binding: the same port ([S3])
    await d2.revokeExternalConnectivity(nid, ea)
    await d2.programExternalConnectivity(nid, ea, publish(80))
    expect((await d2.endpointOperInfo(nid, ea)).portMappings?.[0]?.hostPort).toBe(hostPort)
    expect(await tcpFrom(host, '127.0.0.1', hostPort)).toBe('up')
  })
})
