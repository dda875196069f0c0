import {
  AbortError,
  addressAt,
  formatCidr,
  formatIp,
  ipEquals,
  prefixContains,
  prefixSize,
  throwIfAborted,
  type AbortOptions,
  type EndpointId,
  type IpAddr,
  type IpCidr,
  type NetworkId,
} from '@cnm/types'
import type {
  Capability,
  EndpointDriverConfig,
  EndpointOperInfo,
  InterfaceInfo,
  IpamData,
  JoinInfo,
  NetworkDriver,
  NetworkDriverConfig,
  PortMapping,
  RestoredNetwork,
  SandboxDriverConfig,
} from '../driver.js'
import {
  ActiveEndpointsError,
  AddressInUseError,
  DriverRequestError,
  EndpointExistsError,
  EndpointJoinedError,
  EndpointNotFoundError,
  NetworkExistsError,
  NetworkNotFoundError,
  PortAllocatedError,
} from '../errors.js'
import { macFromIPv4, randomMac, type MacAddress } from '../mac.js'

/** One endpoint as the memory driver's "kernel" holds it. */
export interface MemoryEndpointState {
  readonly id: EndpointId
  address?: IpCidr
  addressIPv6?: IpCidr
  mac: MacAddress
  config: EndpointDriverConfig
  sandboxKey?: string
  /** Host-port reservations ([S3]): kept from the first programExternalConnectivity until deleteEndpoint. */
  reservedPorts: PortMapping[]
  /** True while port mappings are programmed (between program and revoke). */
  externalConnectivity: boolean
}

export interface MemoryNetworkState {
  readonly id: NetworkId
  config: NetworkDriverConfig
  ipv4Data: readonly IpamData[]
  ipv6Data: readonly IpamData[]
  readonly endpoints: Map<string, MemoryEndpointState>
}

/**
 * What a real driver would keep in the kernel: survives driver instances, so a test can restart the
 * driver (new instance, same state) and check that `restore` removes leftovers.
 */
export class MemoryDriverState {
  readonly networks = new Map<string, MemoryNetworkState>()
  /** `ip:proto:port` keys of reserved host ports. */
  readonly hostPorts = new Set<string>()
  nextEphemeralPort = 49153
}

export type MemoryDriverMethod =
  | 'createNetwork'
  | 'deleteNetwork'
  | 'createEndpoint'
  | 'deleteEndpoint'
  | 'endpointOperInfo'
  | 'join'
  | 'leave'
  | 'programExternalConnectivity'
  | 'revokeExternalConnectivity'
  | 'restore'

export interface MemoryDriverCall {
  readonly method: MemoryDriverMethod
  readonly nid?: NetworkId
  readonly eid?: EndpointId
}

export interface MemoryDriverInit {
  /** @default 'memory' */
  type?: string
  /** @default { dataScope: 'local', connectivityScope: 'local' } */
  capability?: Capability
  /** Shared "kernel" state; pass the same object to a new instance to simulate a restart. @default a fresh one */
  state?: MemoryDriverState
  /** Assign an IPv4 address from the first pool when none was pre-assigned; false: fail instead. @default true */
  assignAddress?: boolean
  /** Set the IPv4 gateway of the first pool on join (unless the network is internal). @default true */
  setGateway?: boolean
  /** Called before every method; returning an Error makes the call fail with it (nothing is changed). */
  fail?: (call: MemoryDriverCall) => Error | undefined
  /** Artificial latency per call, to let concurrent calls interleave. @default 0 */
  delayMs?: number
}

export const DEFAULT_MEMORY_DRIVER_INIT = Object.freeze({
  type: 'memory',
  capability: Object.freeze({ dataScope: 'local', connectivityScope: 'local' }) as Capability,
  assignAddress: true,
  setGateway: true,
  delayMs: 0,
})

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(t)
      reject(new AbortError(undefined, { cause: signal?.reason }))
    }
    const t = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort)
      resolve()
    }, ms)
    t.unref?.()
    signal?.addEventListener('abort', onAbort, { once: true })
  })
}

/**
 * A reference, in-memory NetworkDriver: full contract semantics, no kernel. Used by the compliance
 * suite's own tests and by the controller's tests. Records every call in `calls`.
 */
export class MemoryDriver implements NetworkDriver {
  readonly type: string
  readonly capability: Capability
  readonly state: MemoryDriverState
  readonly calls: MemoryDriverCall[] = []
  readonly #cfg: Required<Omit<MemoryDriverInit, 'fail' | 'state'>> & Pick<MemoryDriverInit, 'fail'>

  constructor(init: MemoryDriverInit = {}) {
    this.#cfg = { ...DEFAULT_MEMORY_DRIVER_INIT, ...init }
    this.type = this.#cfg.type
    this.capability = { ...this.#cfg.capability }
    this.state = init.state ?? new MemoryDriverState()
  }

  async #enter(call: MemoryDriverCall, options: AbortOptions | undefined): Promise<void> {
    throwIfAborted(options?.signal)
    this.calls.push(call)
    if (this.#cfg.delayMs > 0) await sleep(this.#cfg.delayMs, options?.signal)
    else await Promise.resolve()
    throwIfAborted(options?.signal)
    const err = this.#cfg.fail?.(call)
    if (err !== undefined) throw err
  }

  #network(nid: NetworkId, maskable = false): MemoryNetworkState {
    const n = this.state.networks.get(nid)
    if (n === undefined) throw new NetworkNotFoundError(nid, { maskable })
    return n
  }

  #endpoint(nid: NetworkId, eid: EndpointId): MemoryEndpointState {
    const ep = this.#network(nid).endpoints.get(eid)
    if (ep === undefined) throw new EndpointNotFoundError(nid, eid)
    return ep
  }

  async createNetwork(
    nid: NetworkId,
    config: NetworkDriverConfig,
    ipv4Data: readonly IpamData[],
    ipv6Data: readonly IpamData[],
    options?: AbortOptions,
  ): Promise<void> {
    await this.#enter({ method: 'createNetwork', nid }, options)
    if (this.state.networks.has(nid)) throw new NetworkExistsError(nid)
    for (const d of [...ipv4Data, ...ipv6Data]) {
      if (d.gateway !== undefined && !prefixContains(d.pool, d.gateway.ip)) {
        throw new DriverRequestError(`gateway ${formatCidr(d.gateway)} is outside its pool`)
      }
    }
    this.state.networks.set(nid, {
      id: nid,
      config,
      ipv4Data: [...ipv4Data],
      ipv6Data: [...ipv6Data],
      endpoints: new Map(),
    })
  }

  async deleteNetwork(nid: NetworkId, options?: AbortOptions): Promise<void> {
    await this.#enter({ method: 'deleteNetwork', nid }, options)
    const n = this.#network(nid, true)
    if (n.endpoints.size > 0) throw new ActiveEndpointsError(nid, n.endpoints.size)
    this.state.networks.delete(nid)
  }

  #used(n: MemoryNetworkState, ip: IpAddr): boolean {
    for (const ep of n.endpoints.values()) {
      if (ep.address !== undefined && ipEquals(ep.address.ip, ip)) return true
      if (ep.addressIPv6 !== undefined && ipEquals(ep.addressIPv6.ip, ip)) return true
    }
    for (const d of [...n.ipv4Data, ...n.ipv6Data]) {
      if (d.gateway !== undefined && ipEquals(d.gateway.ip, ip)) return true
      for (const a of Object.values(d.auxAddresses)) if (ipEquals(a.ip, ip)) return true
    }
    return false
  }

  async createEndpoint(
    nid: NetworkId,
    eid: EndpointId,
    iface: InterfaceInfo,
    config: EndpointDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    await this.#enter({ method: 'createEndpoint', nid, eid }, options)
    const n = this.#network(nid)
    if (n.endpoints.has(eid)) throw new EndpointExistsError(eid)
    // Honour pre-assigned addresses or fail; never replace them.
    for (const c of [iface.address, iface.addressIPv6]) {
      if (c === undefined) continue
      const pools = c.ip.version === 4 ? n.ipv4Data : n.ipv6Data
      if (pools.length > 0 && !pools.some((d) => prefixContains(d.pool, c.ip))) {
        throw new DriverRequestError(`address ${formatCidr(c)} is outside the network's pools`)
      }
      if (this.#used(n, c.ip)) throw new AddressInUseError(formatIp(c.ip))
    }
    let address = iface.address
    if (address === undefined && !this.#cfg.assignAddress && n.ipv4Data.length > 0) {
      throw new DriverRequestError('no IPv4 address was assigned to the endpoint')
    }
    if (address === undefined && this.#cfg.assignAddress) {
      const d = n.ipv4Data[0]
      if (d === undefined) throw new DriverRequestError('no IPv4 address given and the network has no IPv4 pool')
      const size = prefixSize(d.pool)
      for (let i = 1n; i < size - 1n && address === undefined; i++) {
        const ip = addressAt(d.pool, i)
        if (!this.#used(n, ip)) address = { ip, prefix: d.pool }
      }
      if (address === undefined) throw new DriverRequestError('no free address in the network pool')
      iface.setIpAddress(address)
    }
    let mac = iface.macAddress
    if (mac === undefined) {
      mac = address !== undefined ? macFromIPv4(address.ip) : randomMac()
      iface.setMacAddress(mac)
    }
    n.endpoints.set(eid, {
      id: eid,
      ...(address !== undefined && { address }),
      ...(iface.addressIPv6 !== undefined && { addressIPv6: iface.addressIPv6 }),
      mac,
      config,
      reservedPorts: [],
      externalConnectivity: false,
    })
  }

  async deleteEndpoint(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    await this.#enter({ method: 'deleteEndpoint', nid, eid }, options)
    const ep = this.#endpoint(nid, eid)
    this.#releasePorts(ep)
    this.#network(nid).endpoints.delete(eid)
  }

  async endpointOperInfo(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<EndpointOperInfo> {
    await this.#enter({ method: 'endpointOperInfo', nid, eid }, options)
    const ep = this.#endpoint(nid, eid)
    return {
      macAddress: ep.mac,
      exposedPorts: [...ep.config.exposedPorts],
      portMappings: ep.externalConnectivity ? [...ep.reservedPorts] : [],
      extra: {
        joined: String(ep.sandboxKey !== undefined),
        reservedPorts: ep.reservedPorts.map((p) => `${p.hostPort}/${p.proto}`).join(','),
      },
    }
  }

  async join(
    nid: NetworkId,
    eid: EndpointId,
    sandboxKey: string,
    joinInfo: JoinInfo,
    _config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    await this.#enter({ method: 'join', nid, eid }, options)
    const n = this.#network(nid)
    const ep = this.#endpoint(nid, eid)
    if (ep.sandboxKey !== undefined) throw new EndpointJoinedError(eid)
    if (typeof sandboxKey !== 'string' || sandboxKey === '') throw new DriverRequestError('empty sandbox key')
    joinInfo.setInterfaceName(`vm${eid.slice(0, 7)}`, 'eth')
    if (this.#cfg.setGateway && !n.config.internal) {
      const gw4 = n.ipv4Data[0]?.gateway
      if (gw4 !== undefined) joinInfo.setGateway(gw4.ip)
      const gw6 = n.ipv6Data[0]?.gateway
      if (gw6 !== undefined && ep.addressIPv6 !== undefined) joinInfo.setGatewayIPv6(gw6.ip)
    }
    if (n.config.internal) joinInfo.disableGatewayService()
    ep.sandboxKey = sandboxKey
  }

  async leave(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    await this.#enter({ method: 'leave', nid, eid }, options)
    const ep = this.#endpoint(nid, eid)
    delete ep.sandboxKey
  }

  async programExternalConnectivity(
    nid: NetworkId,
    eid: EndpointId,
    config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    await this.#enter({ method: 'programExternalConnectivity', nid, eid }, options)
    const ep = this.#endpoint(nid, eid)
    if (ep.reservedPorts.length === 0 && config.portBindings.length > 0) {
      // First mapping: reserve host ports; they stay with the endpoint until deleteEndpoint ([S3]).
      const taken: string[] = []
      const mappings: PortMapping[] = []
      try {
        for (const b of config.portBindings) {
          const hostIp = b.hostIp === undefined ? '0.0.0.0' : formatIp(b.hostIp)
          let port = b.hostPort
          const end = b.hostPortEnd === 0 ? b.hostPort : b.hostPortEnd
          if (port === 0) {
            while (this.state.hostPorts.has(`${hostIp}:${b.proto}:${this.state.nextEphemeralPort}`))
              this.state.nextEphemeralPort++
            port = this.state.nextEphemeralPort++
          } else {
            while (port <= end && this.state.hostPorts.has(`${hostIp}:${b.proto}:${port}`)) port++
            if (port > end) throw new PortAllocatedError(hostIp, b.hostPort)
          }
          const key = `${hostIp}:${b.proto}:${port}`
          this.state.hostPorts.add(key)
          taken.push(key)
          mappings.push({
            proto: b.proto,
            ...(ep.address !== undefined && { containerIp: ep.address.ip }),
            containerPort: b.containerPort,
            ...(b.hostIp !== undefined && { hostIp: b.hostIp }),
            hostPort: port,
          })
        }
      } catch (err) {
        for (const k of taken) this.state.hostPorts.delete(k)
        throw err
      }
      ep.reservedPorts = mappings
    }
    ep.externalConnectivity = true
  }

  async revokeExternalConnectivity(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    await this.#enter({ method: 'revokeExternalConnectivity', nid, eid }, options)
    const ep = this.#endpoint(nid, eid)
    ep.externalConnectivity = false
  }

  async restore(networks: readonly RestoredNetwork[], options?: AbortOptions): Promise<void> {
    await this.#enter({ method: 'restore' }, options)
    const keep = new Map(networks.map((n) => [n.id as string, n]))
    for (const [nid, n] of this.state.networks) {
      const r = keep.get(nid)
      if (r === undefined) {
        for (const ep of n.endpoints.values()) this.#releasePorts(ep)
        this.state.networks.delete(nid)
        continue
      }
      const eps = new Set(r.endpoints.map((e) => e.id as string))
      for (const [eid, ep] of n.endpoints) {
        if (!eps.has(eid)) {
          this.#releasePorts(ep)
          n.endpoints.delete(eid)
        }
      }
    }
    for (const r of networks) {
      let n = this.state.networks.get(r.id)
      if (n === undefined) {
        n = { id: r.id, config: r.config, ipv4Data: r.ipv4Data, ipv6Data: r.ipv6Data, endpoints: new Map() }
        this.state.networks.set(r.id, n)
      }
      for (const e of r.endpoints) {
        const ep = n.endpoints.get(e.id)
        if (ep === undefined) {
          n.endpoints.set(e.id, {
            id: e.id,
            ...(e.address !== undefined && { address: e.address }),
            ...(e.addressIPv6 !== undefined && { addressIPv6: e.addressIPv6 }),
            mac: e.macAddress ?? (e.address !== undefined ? macFromIPv4(e.address.ip) : randomMac()),
            config: e.config,
            ...(e.sandboxKey !== undefined && { sandboxKey: e.sandboxKey }),
            reservedPorts: [],
            externalConnectivity: e.externalConnectivity ?? false,
          })
        } else if (e.sandboxKey === undefined) {
          delete ep.sandboxKey
        } else {
          ep.sandboxKey = e.sandboxKey
        }
      }
    }
  }

  #releasePorts(ep: MemoryEndpointState): void {
    for (const p of ep.reservedPorts) {
      this.state.hostPorts.delete(`${p.hostIp === undefined ? '0.0.0.0' : formatIp(p.hostIp)}:${p.proto}:${p.hostPort}`)
    }
    ep.reservedPorts = []
    ep.externalConnectivity = false
  }
}

/** Factory in the two-stage shape: `memoryDriver(init)()` returns a MemoryDriver. */
export function memoryDriver(init: MemoryDriverInit = {}): (components?: unknown) => MemoryDriver {
  return () => new MemoryDriver(init)
}
