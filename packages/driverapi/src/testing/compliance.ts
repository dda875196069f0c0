import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  addressAt,
  isCnmError,
  ipEquals,
  parseCidr,
  parseIp,
  parsePrefix,
  prefixContains,
  type EndpointId,
  type IpCidr,
  type NetworkId,
} from '@cnm/types'
import type {
  EndpointDriverConfig,
  InterfaceInfo,
  IpamData,
  NetworkDriver,
  NetworkDriverConfig,
  SandboxDriverConfig,
} from '../driver.js'
import { generateId } from '../ids.js'
import { EndpointInterface, JoinInfoRecorder, type JoinResult } from '../interface-info.js'
import { parseMac, type MacAddress } from '../mac.js'

export interface DriverComplianceOptions<D extends NetworkDriver = NetworkDriver> {
  /** Suite title. @default 'NetworkDriver compliance' */
  name?: string
  /** Creates a fresh driver for each test. */
  setup(): D | Promise<D>
  /** Disposes the driver after each test (the suite already removed what it created). */
  teardown?(driver: D): void | Promise<void>
  /** IPv4 IPAM data of the n-th network a test creates (distinct per n). @default 198.18.n.0/24, gateway .1 */
  ipv4Data?(n: number): IpamData[]
  /** Extra network config fields (e.g. driver options). */
  networkConfig?(n: number): Partial<NetworkDriverConfig>
  /** Sandbox key passed to join. @default `/var/run/docker/netns/<12 hex>` */
  sandboxKey?(): string | Promise<string>
  /** Sandbox config for join/programExternalConnectivity (port bindings to check [S3] stability). @default none */
  sandboxConfig?(): SandboxDriverConfig
  /** The driver fails createEndpoint when no IPv4 address is pre-assigned. @default false */
  requiresAddress?: boolean
  /**
   * When no IPv4 address is pre-assigned (and `requiresAddress` is false) the driver assigns one from the
   * pool; false: it leaves the interface without address (host/null style drivers). @default true
   */
  assignsAddress?: boolean
  /** The driver implements `restore`; the suite then checks it. @default false */
  implementsRestore?: boolean
  /** deleteNetwork with endpoints fails with `forbidden`. @default true */
  rejectsDeleteWithEndpoints?: boolean
}

function defaultIpv4(n: number): IpamData[] {
  const pool = parsePrefix(`198.18.${n % 256}.0/24`)
  return [{ addressSpace: 'LocalDefault', pool, gateway: { ip: addressAt(pool, 1n), prefix: pool }, auxAddresses: {} }]
}

const EMPTY_SANDBOX: SandboxDriverConfig = Object.freeze({ labels: {}, exposedPorts: [], portBindings: [] })

function endpointConfig(name = 'ep'): EndpointDriverConfig {
  return { name, driverOptions: {}, exposedPorts: [], portBindings: [], dnsServers: [] }
}

async function rejectionOf(p: Promise<unknown>): Promise<unknown> {
  try {
    await p
  } catch (err) {
    return err
  }
  throw new Error('expected the call to fail, it succeeded')
}

function expectKind(err: unknown, kind: string): void {
  expect(isCnmError(err), `expected a CnmError, got ${String(err)}`).toBe(true)
  expect((err as { kind: string }).kind).toBe(kind)
}

/** An InterfaceInfo that records setter attempts on fields that were already present. */
class SpyInterface implements InterfaceInfo {
  readonly inner: EndpointInterface
  readonly overrideAttempts: string[] = []
  constructor(init: ConstructorParameters<typeof EndpointInterface>[0]) {
    this.inner = new EndpointInterface(init)
  }
  get address(): IpCidr | undefined {
    return this.inner.address
  }
  get addressIPv6(): IpCidr | undefined {
    return this.inner.addressIPv6
  }
  get macAddress(): MacAddress | undefined {
    return this.inner.macAddress
  }
  setMacAddress(mac: MacAddress): void {
    if (this.inner.macAddress !== undefined) this.overrideAttempts.push('mac')
    this.inner.setMacAddress(mac)
  }
  setIpAddress(cidr: IpCidr): void {
    if ((cidr?.ip?.version === 4 ? this.inner.address : this.inner.addressIPv6) !== undefined) {
      this.overrideAttempts.push(`ipv${cidr.ip.version}`)
    }
    this.inner.setIpAddress(cidr)
  }
}

/**
 * The generic NetworkDriver contract ([S5], drivers.md §1) as a vitest suite. Call it at the top level
 * of a test file: `driverComplianceTests({ setup: () => myDriver(init)(components) })`.
 * Every test removes what it created (leave, revoke, delete endpoints and networks) even on failure.
 */
export function driverComplianceTests<D extends NetworkDriver>(opts: DriverComplianceOptions<D>): void {
  const ipv4 = opts.ipv4Data?.bind(opts) ?? defaultIpv4
  const rejectsDelete = opts.rejectsDeleteWithEndpoints ?? true
  const sandboxConfig = opts.sandboxConfig?.bind(opts) ?? (() => EMPTY_SANDBOX)
  const sandboxKey = opts.sandboxKey?.bind(opts) ?? (() => `/var/run/docker/netns/${generateId().slice(0, 12)}`)

  describe(opts.name ?? 'NetworkDriver compliance', () => {
    let driver: D
    let networks: Map<NetworkId, Set<EndpointId>>
    let joined: Set<string>
    let counter = 0

    const netConfig = (n: number): NetworkDriverConfig => ({
      name: `net${n}`,
      driverOptions: {},
      labels: {},
      enableIPv6: false,
      internal: false,
      attachable: false,
      ingress: false,
      ...opts.networkConfig?.(n),
    })

    /** Creates a network with fresh IPAM data; returns its id and data. */
    const newNetwork = async (): Promise<{ nid: NetworkId; n: number; v4: IpamData[] }> => {
      const n = counter++
      const nid = generateId() as NetworkId
      const v4 = ipv4(n)
      await driver.createNetwork(nid, netConfig(n), v4, [])
      networks.set(nid, new Set())
      return { nid, n, v4 }
    }

    const newEndpoint = async (
      nid: NetworkId,
      iface: InterfaceInfo,
      eid = generateId() as EndpointId,
    ): Promise<EndpointId> => {
      await driver.createEndpoint(nid, eid, iface, endpointConfig())
      networks.get(nid)?.add(eid)
      return eid
    }

    const joinEp = async (nid: NetworkId, eid: EndpointId): Promise<JoinResult> => {
      const ji = new JoinInfoRecorder()
      await driver.join(nid, eid, await sandboxKey(), ji, sandboxConfig())
      joined.add(`${nid}/${eid}`)
      return ji.result()
    }

    const leaveEp = async (nid: NetworkId, eid: EndpointId): Promise<void> => {
      await driver.leave(nid, eid)
      joined.delete(`${nid}/${eid}`)
    }

    /** An address of the pool that nothing else uses (high end of the pool). */
    const freeAddress = (v4: IpamData[], k: number): IpCidr => {
      const d = v4[0]
      if (d === undefined) throw new Error('ipv4Data returned no pool')
      const size = 1n << BigInt(32 - d.pool.bits)
      return { ip: addressAt(d.pool, size - 2n - BigInt(k)), prefix: d.pool }
    }

    beforeEach(async () => {
      driver = await opts.setup()
      networks = new Map()
      joined = new Set()
    })

    afterEach(async () => {
      for (const key of joined) {
        const [nid, eid] = key.split('/') as [NetworkId, EndpointId]
        await driver.revokeExternalConnectivity(nid, eid).catch(() => undefined)
        await driver.leave(nid, eid).catch(() => undefined)
      }
      for (const [nid, eps] of networks) {
        for (const eid of eps) await driver.deleteEndpoint(nid, eid).catch(() => undefined)
        await driver.deleteNetwork(nid).catch(() => undefined)
      }
      await opts.teardown?.(driver)
    })

    it('declares a type and a valid capability', () => {
      expect(typeof driver.type).toBe('string')
      expect(driver.type.length).toBeGreaterThan(0)
      expect(['local', 'global']).toContain(driver.capability.dataScope)
      expect(['local', 'global']).toContain(driver.capability.connectivityScope)
    })

    it('creates and deletes a network; deleting it again is a maskable not-found', async () => {
      const { nid } = await newNetwork()
      await driver.deleteNetwork(nid)
      networks.delete(nid)
      const err = await rejectionOf(driver.deleteNetwork(nid))
      expectKind(err, 'not-found')
      expect((err as { maskable: boolean }).maskable).toBe(true)
    })

    it('rejects a duplicate network id with forbidden and keeps the existing network usable', async () => {
      const { nid, n, v4 } = await newNetwork()
      expectKind(await rejectionOf(driver.createNetwork(nid, netConfig(n), v4, [])), 'forbidden')
      const iface = new EndpointInterface({ address: freeAddress(v4, 0) })
      await newEndpoint(nid, iface)
    })

    it('recreating a deleted network with the same id and pool succeeds (delete frees)', async () => {
      const { nid, n, v4 } = await newNetwork()
      await driver.deleteNetwork(nid)
      networks.delete(nid)
      await driver.createNetwork(nid, netConfig(n), v4, [])
      networks.set(nid, new Set())
      await newEndpoint(nid, new EndpointInterface({ address: freeAddress(v4, 0) }))
    })

    it('fails with not-found on unknown network or endpoint ids', async () => {
      const ghostN = generateId() as NetworkId
      const ghostE = generateId() as EndpointId
      const v4 = ipv4(counter + 1000)
      expectKind(
        await rejectionOf(
          driver.createEndpoint(
            ghostN,
            ghostE,
            new EndpointInterface({ address: freeAddress(v4, 0) }),
            endpointConfig(),
          ),
        ),
        'not-found',
      )
      const { nid } = await newNetwork()
      for (const [n, e] of [
        [ghostN, ghostE],
        [nid, ghostE],
      ] as const) {
        expectKind(await rejectionOf(driver.deleteEndpoint(n, e)), 'not-found')
        expectKind(await rejectionOf(driver.endpointOperInfo(n, e)), 'not-found')
        expectKind(
          await rejectionOf(driver.join(n, e, await sandboxKey(), new JoinInfoRecorder(), sandboxConfig())),
          'not-found',
        )
        expectKind(await rejectionOf(driver.leave(n, e)), 'not-found')
        expectKind(await rejectionOf(driver.programExternalConnectivity(n, e, sandboxConfig())), 'not-found')
        expectKind(await rejectionOf(driver.revokeExternalConnectivity(n, e)), 'not-found')
      }
    })

    it('honours a pre-assigned IPv4 address and MAC without trying to replace them', async () => {
      const { nid, v4 } = await newNetwork()
      const address = freeAddress(v4, 1)
      const mac = parseMac('02:42:de:ad:be:ef')
      const iface = new SpyInterface({ address, macAddress: mac })
      const eid = await newEndpoint(nid, iface)
      expect(iface.overrideAttempts).toEqual([])
      expect(iface.address).toEqual(address)
      expect(iface.macAddress).toBe(mac)
      const info = await driver.endpointOperInfo(nid, eid)
      if (info.macAddress !== undefined) expect(info.macAddress).toBe(mac)
    })

    it('honours a pre-assigned IPv4 address and sets a MAC only when none was given', async () => {
      const { nid, v4 } = await newNetwork()
      const address = freeAddress(v4, 2)
      const iface = new SpyInterface({ address })
      await newEndpoint(nid, iface)
      expect(iface.overrideAttempts).toEqual([])
      expect(iface.address).toEqual(address)
      if (iface.macAddress !== undefined) expect(parseMac(iface.macAddress)).toBe(iface.macAddress)
    })

    if (opts.requiresAddress === true) {
      it('rejects an endpoint without an IPv4 address with a typed error and keeps no state', async () => {
        const { nid } = await newNetwork()
        const eid = generateId() as EndpointId
        const err = await rejectionOf(driver.createEndpoint(nid, eid, new EndpointInterface(), endpointConfig()))
        expect(isCnmError(err)).toBe(true)
        expectKind(await rejectionOf(driver.endpointOperInfo(nid, eid)), 'not-found')
      })
    } else if (opts.assignsAddress === false) {
      it('accepts an endpoint without an IPv4 address and does not invent one', async () => {
        const { nid } = await newNetwork()
        const iface = new SpyInterface({})
        const eid = await newEndpoint(nid, iface)
        expect(iface.overrideAttempts).toEqual([])
        expect(iface.address).toBeUndefined()
        await driver.endpointOperInfo(nid, eid)
      })
    } else {
      it('assigns an IPv4 address inside the pool when none was pre-assigned', async () => {
        const { nid, v4 } = await newNetwork()
        const iface = new SpyInterface({})
        await newEndpoint(nid, iface)
        expect(iface.overrideAttempts).toEqual([])
        const a = iface.address
        expect(a).toBeDefined()
        expect(v4.some((d) => a !== undefined && prefixContains(d.pool, a.ip))).toBe(true)
        const gw = v4[0]?.gateway
        if (gw !== undefined && a !== undefined) expect(ipEquals(gw.ip, a.ip)).toBe(false)
      })
    }

    it('rejects a duplicate endpoint id with forbidden', async () => {
      const { nid, v4 } = await newNetwork()
      const eid = await newEndpoint(nid, new EndpointInterface({ address: freeAddress(v4, 0) }))
      expectKind(
        await rejectionOf(
          driver.createEndpoint(nid, eid, new EndpointInterface({ address: freeAddress(v4, 1) }), endpointConfig()),
        ),
        'forbidden',
      )
    })

    it('join, leave, join again keeps the endpoint, its MAC, gateway and port mappings ([S3])', async () => {
      const { nid, v4 } = await newNetwork()
      const address = freeAddress(v4, 0)
      const iface = new EndpointInterface({ address })
      const eid = await newEndpoint(nid, iface)
      const before = await driver.endpointOperInfo(nid, eid)

      const first = await joinEp(nid, eid)
      await driver.programExternalConnectivity(nid, eid, sandboxConfig())
      const mapped1 = await driver.endpointOperInfo(nid, eid)
      await driver.revokeExternalConnectivity(nid, eid)
      await leaveEp(nid, eid)

      const second = await joinEp(nid, eid)
      await driver.programExternalConnectivity(nid, eid, sandboxConfig())
      const mapped2 = await driver.endpointOperInfo(nid, eid)

      expect(iface.address).toEqual(address)
      expect(mapped2.macAddress).toEqual(before.macAddress)
      expect(second.gateway).toEqual(first.gateway)
      expect(second.gatewayIPv6).toEqual(first.gatewayIPv6)
      if (first.gateway !== undefined) {
        expect(first.gateway.version).toBe(4)
        expect(v4.some((d) => first.gateway !== undefined && prefixContains(d.pool, first.gateway))).toBe(true)
      }
      expect(mapped2.portMappings ?? []).toEqual(mapped1.portMappings ?? [])
      const bindings = sandboxConfig().portBindings
      if (bindings.length > 0) expect((mapped1.portMappings ?? []).length).toBe(bindings.length)
      await driver.revokeExternalConnectivity(nid, eid)
    })

    it('deleteEndpoint frees the address: the same address can be used again', async () => {
      const { nid, v4 } = await newNetwork()
      const address = freeAddress(v4, 3)
      const eid = await newEndpoint(nid, new EndpointInterface({ address }))
      await driver.deleteEndpoint(nid, eid)
      networks.get(nid)?.delete(eid)
      expectKind(await rejectionOf(driver.endpointOperInfo(nid, eid)), 'not-found')
      const again = new EndpointInterface({ address })
      await newEndpoint(nid, again, eid)
      expect(again.address).toEqual(address)
    })

    it('deleteEndpoint after join+leave succeeds and leaves nothing', async () => {
      const { nid, v4 } = await newNetwork()
      const eid = await newEndpoint(nid, new EndpointInterface({ address: freeAddress(v4, 0) }))
      await joinEp(nid, eid)
      await leaveEp(nid, eid)
      await driver.deleteEndpoint(nid, eid)
      networks.get(nid)?.delete(eid)
      await driver.deleteNetwork(nid)
      networks.delete(nid)
      expectKind(await rejectionOf(driver.endpointOperInfo(nid, eid)), 'not-found')
    })

    if (rejectsDelete) {
      it('deleteNetwork with an endpoint fails with forbidden; after deleteEndpoint it succeeds', async () => {
        const { nid, v4 } = await newNetwork()
        const eid = await newEndpoint(nid, new EndpointInterface({ address: freeAddress(v4, 0) }))
        expectKind(await rejectionOf(driver.deleteNetwork(nid)), 'forbidden')
        await driver.endpointOperInfo(nid, eid)
        await driver.deleteEndpoint(nid, eid)
        networks.get(nid)?.delete(eid)
        await driver.deleteNetwork(nid)
        networks.delete(nid)
      })
    }

    it('an aborted signal rejects with AbortError and creates nothing', async () => {
      const ac = new AbortController()
      ac.abort(new Error('stop'))
      const nid = generateId() as NetworkId
      const n = counter++
      const err = await rejectionOf(driver.createNetwork(nid, netConfig(n), ipv4(n), [], { signal: ac.signal }))
      expectKind(err, 'aborted')
      await driver.createNetwork(nid, netConfig(n), ipv4(n), [])
      networks.set(nid, new Set())
    })

    it('serves concurrent createEndpoint calls with distinct pre-assigned addresses', async () => {
      const { nid, v4 } = await newNetwork()
      const ifaces = Array.from({ length: 10 }, (_, k) => new EndpointInterface({ address: freeAddress(v4, k) }))
      const eids = await Promise.all(ifaces.map(async (iface) => newEndpoint(nid, iface)))
      expect(new Set(eids).size).toBe(10)
      for (const [k, iface] of ifaces.entries()) expect(iface.address).toEqual(freeAddress(v4, k))
      for (const eid of eids) await driver.endpointOperInfo(nid, eid)
    })

    if (opts.implementsRestore === true)
      it('restore keeps the networks it is given usable', async () => {
        expect(typeof driver.restore).toBe('function')
        const { nid, n, v4 } = await newNetwork()
        const address = freeAddress(v4, 0)
        const iface = new EndpointInterface({ address })
        const eid = await newEndpoint(nid, iface)
        await driver.restore?.([
          {
            id: nid,
            config: netConfig(n),
            ipv4Data: v4,
            ipv6Data: [],
            endpoints: [
              {
                id: eid,
                config: endpointConfig(),
                address,
                ...(iface.macAddress !== undefined && { macAddress: iface.macAddress }),
              },
            ],
          },
        ])
        await driver.endpointOperInfo(nid, eid)
        await joinEp(nid, eid)
        await leaveEp(nid, eid)
      })
  })
}

/** Builds IPv4 IPAM data for tests: pool, gateway (first host) and optional aux addresses. */
export function testIpamData(pool: string, aux: Record<string, string> = {}, addressSpace = 'LocalDefault'): IpamData {
  const p = parsePrefix(pool)
  const auxAddresses: Record<string, IpCidr> = {}
  for (const [k, v] of Object.entries(aux)) auxAddresses[k] = { ip: parseIp(v), prefix: p }
  return { addressSpace, pool: p, gateway: { ip: addressAt(p, 1n), prefix: p }, auxAddresses }
}

/** `10.0.0.2/24` → IpCidr (re-exported helper for tests). */
export function cidr(s: string): IpCidr {
  return parseCidr(s)
}
