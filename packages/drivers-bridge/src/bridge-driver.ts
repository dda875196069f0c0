import {
  AbortError,
  formatCidr,
  formatIp,
  formatPrefix,
  ipEquals,
  isCnmError,
  parseCidr,
  parseIp,
  parsePrefix,
  prefixContains,
  throwIfAborted,
  type AbortOptions,
  type ComponentLogger,
  type EndpointId,
  type IpAddr,
  type IpCidr,
  type Logger,
  type NetworkId,
} from '@cnm/types'
import type { Store } from '@cnm/storeapi'
import {
  ActiveEndpointsError,
  EndpointExistsError,
  EndpointNotFoundError,
  NETLABEL,
  NetworkExistsError,
  NetworkNotFoundError,
  parseMac,
  type Capability,
  type EndpointDriverConfig,
  type EndpointOperInfo,
  type InterfaceInfo,
  type IpamData,
  type JoinInfo,
  type MacAddress,
  type NetworkDriver,
  type NetworkDriverConfig,
  type PortBinding,
  type PortMapping,
  type RestoredEndpoint,
  type RestoredNetwork,
  type SandboxDriverConfig,
} from '@cnm/driverapi'
import {
  BridgeDeviceError,
  BridgeKernelError,
  EndpointAddressError,
  EndpointStateError,
  InvalidBridgeConfigError,
  InvalidBridgeOptionError,
  InvalidIpamDataError,
  NetworkConflictError,
} from './errors.js'
import { parseBridgeNetworkOptions, type BridgeNetworkOptions } from './options.js'
import {
  BridgeStateStore,
  findNetworkConflict,
  type BridgeEndpointRecord,
  type BridgeFamilyRecord,
  type BridgeNetworkRecord,
  type PortBindingRecord,
  type PortMappingRecord,
} from './state.js'
import type { BridgeKernel, HostLink, NetworkFirewallSpec, PublishedPort } from './internal/kernel.js'
import { KeyedMutex } from './internal/mutex.js'
import { UndoStack } from './internal/undo.js'
import {
  DEFAULT_BRIDGE_NAME,
  bridgeNameFor,
  ipv6FromMac,
  macFromIpv4,
  randomBridgeMac,
  randomVethPair,
} from './internal/names.js'

/** Construction options of the bridge driver (the daemon's bridge configuration, drivers.md §3.1). */
export interface BridgeDriverInit {
  /**
   * Name of the network namespace (under /run/netns) that plays the host: bridges, veth host ends,
   * firewall rules and sysctls live there. @default undefined (this process's namespace)
   */
  hostNetns?: string
  /** Manage iptables rules (ICC, masquerade, isolation, port mapping). @default true */
  enableIptables?: boolean
  /** Manage ip6tables rules for IPv6 networks and IPv6 port mappings. @default false */
  enableIp6tables?: boolean
  /** Ensure `net.ipv4.ip_forward=1` (and IPv6 forwarding for IPv6 networks) in the host namespace. @default true */
  enableIpForwarding?: boolean
  /** Only `false` is supported: published ports use hairpin NAT, not a proxy process. @default false */
  userlandProxy?: false
  /** Host IP for port bindings that name none (overridden per network by host_binding_ipv4). @default '0.0.0.0' */
  defaultBindIp?: string
  /** Prefix of the firewall chains (`<prefix>`, `<prefix>-ISOLATION-STAGE-1`, …). @default 'CNM' */
  chainPrefix?: string
  /** Ephemeral host port range for `hostPort: 0`. @default undefined (the kernel's ip_local_port_range) */
  portRange?: { start: number; end: number }
  /**
   * Hold every published host port with a bound (TCP: listening) socket in the host namespace, as
   * libnetwork's dummy proxy does, so no other process can take it while it is published. @default false
   */
  holdHostPorts?: boolean
}

export const DEFAULT_BRIDGE_DRIVER_INIT = Object.freeze({
  hostNetns: undefined,
  enableIptables: true,
  enableIp6tables: false,
  enableIpForwarding: true,
  userlandProxy: false as const,
  defaultBindIp: '0.0.0.0',
  chainPrefix: 'CNM',
  portRange: undefined,
  holdHostPorts: false,
})

/** The resolved, validated driver configuration. */
export interface BridgeDriverConfig {
  readonly hostNetns: string | undefined
  readonly enableIptables: boolean
  readonly enableIp6tables: boolean
  readonly enableIpForwarding: boolean
  readonly userlandProxy: false
  readonly defaultBindIp: IpAddr
  readonly chainPrefix: string
  readonly portRange: { readonly start: number; readonly end: number } | undefined
  readonly holdHostPorts: boolean
}

/**
 * Validates `BridgeDriverInit` (never mutates it) and fills in the defaults.
 * @throws InvalidBridgeConfigError naming the field.
 */
export function resolveBridgeDriverConfig(init: BridgeDriverInit = {}): BridgeDriverConfig {
  if (typeof init !== 'object' || init === null) throw new InvalidBridgeConfigError('init', 'init must be an object')
  const known = new Set(Object.keys(DEFAULT_BRIDGE_DRIVER_INIT))
  for (const k of Object.keys(init)) {
    if (!known.has(k)) throw new InvalidBridgeConfigError(k, `unknown bridge driver option "${k}"`)
  }
  const merged = { ...DEFAULT_BRIDGE_DRIVER_INIT, ...stripUndefined(init) }
  if (
    merged.hostNetns !== undefined &&
    (typeof merged.hostNetns !== 'string' ||
      !/^[A-Za-z0-9_.-]{1,64}$/.test(merged.hostNetns) ||
      merged.hostNetns.startsWith('.'))
  ) {
    throw new InvalidBridgeConfigError('hostNetns', `invalid namespace name ${JSON.stringify(merged.hostNetns)}`)
  }
  for (const f of ['enableIptables', 'enableIp6tables', 'enableIpForwarding', 'holdHostPorts'] as const) {
    if (typeof merged[f] !== 'boolean') throw new InvalidBridgeConfigError(f, `${f} must be a boolean`)
  }
  if (merged.userlandProxy !== false) {
    throw new InvalidBridgeConfigError(
      'userlandProxy',
      'the userland proxy is not supported; use userlandProxy: false (hairpin NAT)',
    )
  }
  let defaultBindIp: IpAddr
  try {
    defaultBindIp = parseIp(String(merged.defaultBindIp))
  } catch (cause) {
    throw new InvalidBridgeConfigError(
      'defaultBindIp',
      `defaultBindIp is not an IP address: ${String(merged.defaultBindIp)}`,
      { cause },
    )
  }
  if (typeof merged.chainPrefix !== 'string' || !/^[A-Z][A-Z0-9_-]{0,9}$/.test(merged.chainPrefix)) {
    throw new InvalidBridgeConfigError(
      'chainPrefix',
      'chainPrefix must be 1-10 upper-case letters, digits, "_" or "-", starting with a letter',
    )
  }
  const pr = merged.portRange as { start: number; end: number } | undefined
  if (pr !== undefined) {
    if (
      !Number.isInteger(pr.start) ||
      !Number.isInteger(pr.end) ||
      pr.start < 1 ||
      pr.end > 65535 ||
      pr.end < pr.start
    ) {
      throw new InvalidBridgeConfigError('portRange', 'portRange must be {start, end} with 1 <= start <= end <= 65535')
    }
  }
  return Object.freeze({
    hostNetns: merged.hostNetns,
    enableIptables: merged.enableIptables,
    enableIp6tables: merged.enableIp6tables,
    enableIpForwarding: merged.enableIpForwarding,
    userlandProxy: false as const,
    defaultBindIp,
    chainPrefix: merged.chainPrefix,
    portRange: pr === undefined ? undefined : Object.freeze({ start: pr.start, end: pr.end }),
    holdHostPorts: merged.holdHostPorts,
  })
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}

interface NetState {
  rec: BridgeNetworkRecord
  readonly endpoints: Map<string, EpState>
  /** Endpoint ids being created right now (deleteNetwork must wait for / refuse them). */
  readonly pending: Set<string>
  readonly log: Logger
}

/**
 * Where the endpoint's veth pair is: `none` (not made yet: made at join, in place when the sandbox layer
 * can), `host` (made in the host namespace; the container end is moved in at join and back at leave),
 * `sandbox` (made in place at join; leave destroys it), `unknown` (taken over at restore: probed at join).
 */
type PairState = 'none' | 'host' | 'sandbox' | 'unknown'

interface EpState {
  rec: BridgeEndpointRecord
  pair: PairState
}

const enc = (c: IpCidr | undefined): string | undefined => (c === undefined ? undefined : formatCidr(c))

function describeErr(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * The bridge network driver ([S5] driver API, drivers.md §3): one Linux bridge per network in the host
 * namespace, one veth pair per endpoint, iptables rules per network, and port publishing with host-port
 * reservations that last from the first mapping until the endpoint is deleted ([S3]).
 *
 * `join` does not move the interface: following the driver contract it names the host-side device through
 * `JoinInfo.setInterfaceName` and the controller moves it into the sandbox (with @cnm/osl).
 */
export class BridgeDriver implements NetworkDriver {
  readonly type = 'bridge'
  readonly capability: Capability = Object.freeze({ dataScope: 'local', connectivityScope: 'local' })
  readonly config: BridgeDriverConfig
  private readonly log: Logger
  private readonly kernel: BridgeKernel
  private readonly state: BridgeStateStore
  private readonly networks = new Map<string, NetState>()
  /** eid → network id, for every endpoint known or being created. */
  private readonly endpointIndex = new Map<string, string>()
  private readonly netLock = new KeyedMutex()
  private readonly epLock = new KeyedMutex()
  private forwardingDone: { v4: boolean; v6: boolean } = { v4: false, v6: false }

  constructor(
    config: BridgeDriverConfig,
    components: { logger: ComponentLogger; store?: Store | undefined },
    kernel: BridgeKernel,
  ) {
    this.config = config
    this.log = components.logger.forComponent('cnm:drivers-bridge')
    this.kernel = kernel
    this.state = new BridgeStateStore(components.store, this.log.child('store'))
  }

  // ---------------------------------------------------------------- networks

  async createNetwork(
    nid: NetworkId,
    config: NetworkDriverConfig,
    ipv4Data: readonly IpamData[],
    ipv6Data: readonly IpamData[],
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    const opts = this.networkOptions(config)
    const rec = this.networkRecord(nid, opts, ipv4Data, ipv6Data)
    await this.netLock.run('networks', async () => {
      throwIfAborted(options?.signal)
      if (this.networks.has(nid)) throw new NetworkExistsError(nid)
      const conflict = findNetworkConflict(
        rec,
        [...this.networks.values()].map((n) => n.rec),
      )
      if (conflict !== undefined) {
        const other = this.networks.get(conflict.other.id)
        if (
          other !== undefined &&
          conflict.other.options.defaultBridge &&
          opts.defaultBridge &&
          other.endpoints.size === 0
        ) {
          this.log('replacing stale default bridge network %s with %s', conflict.other.id, nid)
          await this.teardownNetwork(other, options)
        } else {
          throw new NetworkConflictError(nid, conflict.other.id, conflict.reason)
        }
      }
      const log = this.log.child(nid.slice(0, 12))
      const undo = new UndoStack(log)
      try {
        const existing = await this.kernelCall('inspect bridge', () => this.kernel.getLink(rec.bridgeName, options))
        if (existing !== undefined && existing.kind !== 'bridge') {
          throw new BridgeDeviceError(
            'ERR_BRIDGE_NOT_A_BRIDGE',
            `device ${rec.bridgeName} exists and is not a bridge (${existing.kind ?? 'unknown kind'})`,
          )
        }
        if (existing === undefined && opts.defaultBridge && rec.bridgeName !== DEFAULT_BRIDGE_NAME) {
          throw new BridgeDeviceError(
            'ERR_BRIDGE_DEVICE_MISSING',
            `default bridge device ${rec.bridgeName} does not exist`,
          )
        }
        const final: BridgeNetworkRecord = { ...rec, userCreatedBridge: existing !== undefined }
        await this.setupNetworkKernel(final, existing !== undefined, undo, options)
        await this.state.saveNetwork(final, options)
        this.networks.set(nid, { rec: final, endpoints: new Map(), pending: new Set(), log })
        log('created network on %s (%s)', final.bridgeName, final.ipv4.subnet)
      } catch (err) {
        await undo.rollback()
        throw this.abortAware(err, options)
      }
    })
  }

  async deleteNetwork(nid: NetworkId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    await this.netLock.run('networks', async () => {
      const net = this.networks.get(nid)
      if (net === undefined) throw new NetworkNotFoundError(nid, { maskable: true })
      const count = net.endpoints.size + net.pending.size
      if (count > 0) throw new ActiveEndpointsError(nid, count)
      await this.teardownNetwork(net, options)
      net.log('deleted network')
    })
  }

  /** Firewall, bridge (unless user-created or the default bridge), store record, memory. */
  private async teardownNetwork(net: NetState, options?: AbortOptions): Promise<void> {
    const rec = net.rec
    for (const ep of [...net.endpoints.values()]) await this.teardownEndpoint(net, ep, options)
    if (this.config.enableIptables) {
      await this.kernelCall('remove network firewall', () =>
        this.kernel.removeNetworkFirewall(this.firewallSpec(rec), options),
      )
    }
    if (!rec.userCreatedBridge && !rec.options.defaultBridge) {
      await this.kernelCall('delete bridge', () => this.kernel.deleteLink(rec.bridgeName, options))
    }
    await this.state.deleteNetwork(rec.id, options)
    this.networks.delete(rec.id)
  }

  private networkOptions(config: NetworkDriverConfig): BridgeNetworkOptions {
    const parsed = parseBridgeNetworkOptions(config.driverOptions ?? {})
    const enableIpv6 = parsed.enableIpv6 || config.enableIPv6 === true
    const internal = parsed.internal || config.internal === true
    return Object.freeze({ ...parsed, enableIpv6, internal })
  }

  /** IPAM data → network record (drivers.md §3.3 steps 1–2). Throws typed errors; touches nothing. */
  private networkRecord(
    nid: NetworkId,
    opts: BridgeNetworkOptions,
    ipv4Data: readonly IpamData[],
    ipv6Data: readonly IpamData[],
  ): BridgeNetworkRecord {
    if (typeof nid !== 'string' || nid.length === 0) throw new InvalidBridgeOptionError('nid', 'network id is empty')
    if (ipv4Data.length > 1 || ipv6Data.length > 1) {
      throw new InvalidIpamDataError('ERR_BRIDGE_MULTIPLE_SUBNETS', 'bridge network does not support multiple subnets')
    }
    const v4 = ipv4Data[0]
    if (v4 === undefined || v4.pool.version !== 4 || v4.pool.bits === 0) {
      throw new InvalidIpamDataError('ERR_BRIDGE_IPV4_POOL_EMPTY', 'ipv4 pool is empty')
    }
    const ipv4 = this.familyRecord(v4, 'DefaultGatewayIPv4', opts.inhibitIpv4)
    const v6 = opts.enableIpv6 ? ipv6Data[0] : undefined
    if (v6 !== undefined && v6.pool.version !== 6) {
      throw new InvalidIpamDataError('ERR_BRIDGE_INVALID_GATEWAY', 'ipv6 data carries a non-IPv6 pool')
    }
    if (v6 === undefined && ipv4Data.some((d) => d.auxAddresses['DefaultGatewayIPv6'] !== undefined)) {
      throw new InvalidIpamDataError('ERR_BRIDGE_INVALID_GATEWAY', 'DefaultGatewayIPv6 given without an IPv6 subnet')
    }
    const ipv6 = v6 === undefined ? undefined : this.familyRecord(v6, 'DefaultGatewayIPv6', false)
    const bridgeName = opts.bridgeName ?? (opts.defaultBridge ? DEFAULT_BRIDGE_NAME : bridgeNameFor(nid))
    return {
      id: nid,
      bridgeName,
      options: opts,
      ipv4,
      ipv6,
      userCreatedBridge: false,
      createdAt: new Date().toISOString(),
    }
  }

  private familyRecord(d: IpamData, auxKey: string, inhibit: boolean): BridgeFamilyRecord {
    const pool = d.pool
    let gw = d.gateway
    if (gw !== undefined) {
      if (!prefixContains(pool, gw.ip)) {
        throw new InvalidIpamDataError(
          'ERR_BRIDGE_INVALID_GATEWAY',
          `gateway ${formatIp(gw.ip)} is outside ${formatPrefix(pool)}`,
        )
      }
      gw = { ip: gw.ip, prefix: pool }
    }
    const aux = d.auxAddresses[auxKey]
    if (aux !== undefined && !prefixContains(pool, aux.ip)) {
      throw new InvalidIpamDataError(
        'ERR_BRIDGE_INVALID_GATEWAY',
        `${auxKey} ${formatIp(aux.ip)} is outside ${formatPrefix(pool)}`,
      )
    }
    const gateway = aux?.ip ?? gw?.ip
    return {
      subnet: formatPrefix(pool),
      bridgeAddress: inhibit ? undefined : enc(gw),
      gateway: gateway === undefined ? undefined : formatIp(gateway),
    }
  }

  private firewallSpec(rec: BridgeNetworkRecord): NetworkFirewallSpec {
    return {
      bridge: rec.bridgeName,
      subnet: parsePrefix(rec.ipv4.subnet),
      subnetV6: rec.ipv6 === undefined ? undefined : parsePrefix(rec.ipv6.subnet),
      enableIcc: rec.options.enableIcc,
      enableIpMasquerade: rec.options.enableIpMasquerade,
      internal: rec.options.internal,
      hostIpv4: rec.options.hostIpv4 === undefined ? undefined : parseIp(rec.options.hostIpv4),
      hairpin: true,
      forwarding: this.config.enableIpForwarding,
    }
  }

  /** Bridge device, forwarding and firewall for a network; pushes undo steps. */
  private async setupNetworkKernel(
    rec: BridgeNetworkRecord,
    existing: boolean,
    undo: UndoStack,
    options?: AbortOptions,
  ): Promise<void> {
    await this.kernelCall('set up bridge', () =>
      this.kernel.setupBridge(
        {
          name: rec.bridgeName,
          existing,
          mac: randomBridgeMac(),
          mtu: rec.options.mtu,
          ipv4: rec.ipv4.bridgeAddress === undefined ? undefined : parseCidr(rec.ipv4.bridgeAddress),
          enableIpv6: rec.options.enableIpv6,
          ipv6: rec.ipv6?.bridgeAddress === undefined ? undefined : parseCidr(rec.ipv6.bridgeAddress),
          routeLocalnet: true,
        },
        options,
      ),
    )
    if (!existing) undo.push('delete bridge', () => this.kernel.deleteLink(rec.bridgeName))
    if (this.config.enableIptables) {
      // The firewall also ensures forwarding (and FORWARD policy DROP when it had to switch it on).
      const spec = this.firewallSpec(rec)
      await this.kernelCall('program network firewall', () => this.kernel.programNetworkFirewall(spec, options))
      undo.push('remove network firewall', () => this.kernel.removeNetworkFirewall(spec))
    } else if (this.config.enableIpForwarding) {
      const v6 = rec.ipv6 !== undefined
      if (!this.forwardingDone.v4 || (v6 && !this.forwardingDone.v6)) {
        await this.kernelCall('enable forwarding', () => this.kernel.enableForwarding(v6, options))
        this.forwardingDone = { v4: true, v6: this.forwardingDone.v6 || v6 }
      }
    }
  }

  // ---------------------------------------------------------------- endpoints

  async createEndpoint(
    nid: NetworkId,
    eid: EndpointId,
    iface: InterfaceInfo,
    config: EndpointDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    const net = this.requireNetwork(nid)
    if (this.endpointIndex.has(eid)) throw new EndpointExistsError(eid)
    const rec = this.endpointRecord(net, eid, iface, config)
    this.endpointIndex.set(eid, nid)
    net.pending.add(eid)
    const undo = new UndoStack(net.log)
    try {
      // The veth pair is made at join (in place inside the sandbox when the sandbox layer can).
      await this.state.saveEndpoint(rec, options)
      // Report what the driver chose only once everything succeeded (the setters cannot be undone).
      if (iface.macAddress === undefined) iface.setMacAddress(rec.macAddress as MacAddress)
      if (rec.ipv6FromMac && rec.ipv6 !== undefined) iface.setIpAddress(parseCidr(rec.ipv6))
      net.endpoints.set(eid, { rec, pair: 'none' })
      net.log.trace('created endpoint %s (%s, %s)', eid.slice(0, 12), rec.ipv4, rec.hostIfName)
    } catch (err) {
      await undo.rollback()
      await this.state
        .deleteEndpoint(eid)
        .catch((e: unknown) => net.log.error('drop endpoint record %s: %s', eid, describeErr(e)))
      this.endpointIndex.delete(eid)
      throw this.abortAware(err, options)
    } finally {
      net.pending.delete(eid)
    }
  }

  /** Validates the interface and options and chooses names, MAC and IPv6 (drivers.md §3.4). No side effects. */
  private endpointRecord(
    net: NetState,
    eid: EndpointId,
    iface: InterfaceInfo,
    config: EndpointDriverConfig,
  ): BridgeEndpointRecord {
    const addr = iface.address
    if (addr === undefined) {
      throw new EndpointAddressError(
        'ERR_BRIDGE_NO_ADDRESS',
        `endpoint ${eid} has no IPv4 address and the bridge driver cannot assign one`,
      )
    }
    const subnet = parsePrefix(net.rec.ipv4.subnet)
    if (addr.ip.version !== 4 || !prefixContains(subnet, addr.ip)) {
      throw new EndpointAddressError(
        'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET',
        `address ${formatCidr(addr)} is outside ${net.rec.ipv4.subnet}`,
      )
    }
    const gw = net.rec.ipv4.bridgeAddress === undefined ? undefined : parseCidr(net.rec.ipv4.bridgeAddress).ip
    if (gw !== undefined && ipEquals(gw, addr.ip)) {
      throw new EndpointAddressError(
        'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET',
        `address ${formatCidr(addr)} is the bridge's own address`,
      )
    }
    let mac: string | undefined = iface.macAddress
    if (mac === undefined) {
      const opt = config.driverOptions?.[NETLABEL.MAC_ADDRESS]
      if (opt !== undefined && opt !== '') {
        try {
          mac = parseMac(opt)
        } catch (cause) {
          throw new InvalidBridgeOptionError(
            NETLABEL.MAC_ADDRESS,
            `failed to parse ${NETLABEL.MAC_ADDRESS} value ${opt}`,
            { cause },
          )
        }
      }
    }
    mac ??= macFromIpv4(addr.ip)
    let ipv6: IpCidr | undefined = iface.addressIPv6
    let ipv6FromMacFlag = false
    if (ipv6 === undefined && net.rec.options.enableIpv6 && net.rec.ipv6 !== undefined) {
      ipv6 = ipv6FromMac(parsePrefix(net.rec.ipv6.subnet), mac)
      ipv6FromMacFlag = true
    }
    const names = randomVethPair()
    return {
      id: eid,
      networkId: net.rec.id,
      hostIfName: names.host,
      containerIfName: names.peer,
      macAddress: mac,
      ipv4: formatCidr({ ip: addr.ip, prefix: subnet }),
      ipv6: enc(ipv6),
      ipv6FromMac: ipv6FromMacFlag,
      sandboxKey: undefined,
      externalConnectivity: false,
      exposedPorts: (config.exposedPorts ?? []).map((p) => ({ proto: p.proto, port: p.port })),
      portBindings: (config.portBindings ?? []).map(bindingRecord),
      portMappings: [],
    }
  }

  async deleteEndpoint(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    const net = this.networks.get(nid)
    if (net === undefined) throw new NetworkNotFoundError(nid, { maskable: true })
    await this.epLock.run(eid, async () => {
      const ep = net.endpoints.get(eid)
      if (ep === undefined) throw new EndpointNotFoundError(nid, eid)
      await this.teardownEndpoint(net, ep, options)
      net.log.trace('deleted endpoint %s', eid.slice(0, 12))
    })
  }

  /** Port rules, port reservations, veth pair, store record, memory. */
  private async teardownEndpoint(net: NetState, ep: EpState, options?: AbortOptions): Promise<void> {
    const rec = ep.rec
    if (rec.externalConnectivity && rec.portMappings.length > 0) {
      await this.kernelCall('unpublish ports', () =>
        this.kernel.unpublishPorts(rec.id, this.published(net, rec, rec.portMappings), options),
      )
    }
    await this.kernelCall('release ports', () => this.kernel.releasePorts(rec.id, options))
    if (ep.pair !== 'none') {
      try {
        await this.kernel.deleteLink(rec.hostIfName, options)
      } catch (err) {
        // Best effort (drivers.md §3.4): the pair may have gone with its sandbox.
        net.log.error('delete veth %s of endpoint %s: %s', rec.hostIfName, rec.id, describeErr(err))
      }
    }
    await this.state.deleteEndpoint(rec.id, options)
    net.endpoints.delete(rec.id)
    this.endpointIndex.delete(rec.id)
  }

  async endpointOperInfo(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<EndpointOperInfo> {
    throwIfAborted(options?.signal)
    const { net, ep } = this.requireEndpoint(nid, eid)
    const rec = ep.rec
    return {
      macAddress: rec.macAddress as MacAddress,
      exposedPorts: rec.exposedPorts.map((p) => ({ proto: p.proto, port: p.port })),
      portMappings: rec.portMappings.map((m) => this.portMapping(net, rec, m)),
      extra: {
        bridge: net.rec.bridgeName,
        hostInterface: rec.hostIfName,
        containerInterface: rec.containerIfName,
        published: String(rec.externalConnectivity),
      },
    }
  }

  // ---------------------------------------------------------------- join / leave

  async join(
    nid: NetworkId,
    eid: EndpointId,
    sandboxKey: string,
    joinInfo: JoinInfo,
    _config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    const { net } = this.requireEndpoint(nid, eid)
    await this.epLock.run(eid, async () => {
      const ep = this.requireEndpoint(nid, eid).ep
      if (ep.rec.sandboxKey !== undefined && ep.rec.sandboxKey !== sandboxKey) {
        throw new EndpointStateError(
          'ERR_BRIDGE_ENDPOINT_JOINED',
          `endpoint ${eid} is already joined to ${ep.rec.sandboxKey}`,
        )
      }
      const rec = ep.rec
      let pair = ep.pair
      if (pair === 'unknown') pair = await this.probePair(rec, options)
      const prefix = net.rec.options.containerIfacePrefix
      let created = false
      if (pair === 'none' && joinInfo.canCreateVeth === true && joinInfo.setVeth !== undefined) {
        joinInfo.setVeth(
          { hostName: rec.hostIfName, master: net.rec.bridgeName, mtu: net.rec.options.mtu, hairpin: true },
          prefix,
        )
        pair = 'sandbox'
      } else {
        if (pair === 'none') {
          await this.kernelCall('create veth', () =>
            this.kernel.createVeth(
              {
                host: rec.hostIfName,
                peer: rec.containerIfName,
                bridge: net.rec.bridgeName,
                mtu: net.rec.options.mtu,
                hairpin: true,
                peerMac: rec.macAddress,
              },
              options,
            ),
          )
          created = true
        }
        joinInfo.setInterfaceName(rec.containerIfName, prefix)
        pair = 'host'
      }
      if (!net.rec.options.internal) {
        if (net.rec.ipv4.gateway !== undefined) joinInfo.setGateway(parseIp(net.rec.ipv4.gateway))
        if (net.rec.ipv6?.gateway !== undefined) joinInfo.setGatewayIPv6(parseIp(net.rec.ipv6.gateway))
      }
      const next: BridgeEndpointRecord = { ...ep.rec, sandboxKey, vethInPlace: pair === 'sandbox' }
      try {
        await this.state.saveEndpoint(next, options)
      } catch (err) {
        if (created)
          await this.kernel
            .deleteLink(rec.hostIfName)
            .catch((e: unknown) => net.log.error('delete veth %s: %s', rec.hostIfName, describeErr(e)))
        ep.pair = created ? 'none' : ep.pair
        throw err
      }
      ep.rec = next
      ep.pair = pair
      net.log.trace('joined endpoint %s to %s', eid.slice(0, 12), sandboxKey)
    })
  }

  async leave(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    const { net } = this.requireEndpoint(nid, eid)
    await this.epLock.run(eid, async () => {
      const ep = this.requireEndpoint(nid, eid).ep
      // vethInPlace stays: the sandbox layer removes the interface after this leave and asks for it
      let next: BridgeEndpointRecord = { ...ep.rec, sandboxKey: undefined }
      if (ep.rec.externalConnectivity) {
        // The controller normally revokes first; do it here so leave never leaves rules behind.
        await this.kernelCall('unpublish ports', () =>
          this.kernel.unpublishPorts(eid, this.published(net, ep.rec, ep.rec.portMappings), options),
        )
        next = { ...next, externalConnectivity: false }
      }
      await this.state.saveEndpoint(next, options)
      ep.rec = next
      // A pair made in place goes with the interface (the sandbox layer destroys it after this leave).
      if (ep.pair === 'sandbox') ep.pair = 'none'
      net.log.trace('endpoint %s left', eid.slice(0, 12))
    })
  }

  // ---------------------------------------------------------------- external connectivity

  async programExternalConnectivity(
    nid: NetworkId,
    eid: EndpointId,
    config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    const { net } = this.requireEndpoint(nid, eid)
    await this.epLock.run(eid, async () => {
      const ep = this.requireEndpoint(nid, eid).ep
      const rec = ep.rec
      const bindings =
        (config.portBindings?.length ?? 0) > 0 ? config.portBindings.map(bindingRecord) : rec.portBindings
      const exposed =
        (config.exposedPorts?.length ?? 0) > 0
          ? config.exposedPorts.map((p) => ({ proto: p.proto, port: p.port }))
          : rec.exposedPorts
      if (net.rec.options.internal || !this.config.enableIptables) {
        const next = { ...rec, exposedPorts: exposed, portBindings: bindings }
        await this.state.saveEndpoint(next, options)
        ep.rec = next
        return
      }
      if (rec.externalConnectivity) {
        // Re-programming: drop the current rules first; reservations stay.
        await this.kernelCall('unpublish ports', () =>
          this.kernel.unpublishPorts(eid, this.published(net, rec, rec.portMappings), options),
        )
      }
      const undo = new UndoStack(net.log)
      const reserved = [...rec.portMappings]
      const used = new Set<PortMappingRecord>()
      const active: PortMappingRecord[] = []
      try {
        for (const b of bindings) {
          for (const hostIp of this.hostIpsFor(net, rec, b)) {
            const want = (m: PortMappingRecord): boolean =>
              !used.has(m) &&
              m.proto === b.proto &&
              m.containerPort === b.containerPort &&
              m.hostIp === hostIp &&
              (b.hostPort === 0 || (m.hostPort >= b.hostPort && m.hostPort <= Math.max(b.hostPort, b.hostPortEnd ?? 0)))
            let m = reserved.find(want)
            if (m === undefined) {
              const port = await this.kernelCall('reserve host port', () =>
                this.kernel.reservePort(
                  eid,
                  {
                    proto: b.proto,
                    hostIp: parseIp(hostIp),
                    hostPort: b.hostPort,
                    hostPortEnd: Math.max(b.hostPort, b.hostPortEnd ?? 0),
                    bridge: net.rec.bridgeName,
                    containerIp: this.containerIpFor(rec, parseIp(hostIp)),
                    containerPort: b.containerPort,
                  },
                  options,
                ),
              )
              m = { proto: b.proto, containerPort: b.containerPort, hostIp, hostPort: port }
              const fresh = { proto: b.proto, hostIp: parseIp(hostIp), hostPort: port }
              undo.push('release new port', () => this.kernel.releasePort(eid, fresh))
              reserved.push(m)
            }
            used.add(m)
            active.push(m)
          }
        }
        const published = this.published(net, rec, active)
        await this.kernelCall('publish ports', () => this.kernel.publishPorts(eid, published, options))
        undo.push('unpublish ports', () => this.kernel.unpublishPorts(eid, published))
        // Keep every reservation ([S3]): the ones in use first, then any others still held.
        const next: BridgeEndpointRecord = {
          ...rec,
          exposedPorts: exposed,
          portBindings: bindings,
          portMappings: [...active, ...reserved.filter((m) => !used.has(m))],
          externalConnectivity: true,
        }
        await this.state.saveEndpoint(next, options)
        ep.rec = next
        net.log.trace('published %d ports of endpoint %s', active.length, eid.slice(0, 12))
      } catch (err) {
        await undo.rollback()
        if (rec.externalConnectivity) ep.rec = { ...rec, externalConnectivity: false }
        throw this.abortAware(err, options)
      }
    })
  }

  async revokeExternalConnectivity(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    const { net } = this.requireEndpoint(nid, eid)
    await this.epLock.run(eid, async () => {
      const ep = this.requireEndpoint(nid, eid).ep
      if (!ep.rec.externalConnectivity) return
      await this.kernelCall('unpublish ports', () =>
        this.kernel.unpublishPorts(eid, this.published(net, ep.rec, ep.rec.portMappings), options),
      )
      const next = { ...ep.rec, externalConnectivity: false }
      await this.state.saveEndpoint(next, options)
      ep.rec = next
    })
  }

  /** Host IPs a binding maps on: its own, or the network/driver default (plus `::` for v6 endpoints with ip6tables). */
  private hostIpsFor(net: NetState, rec: BridgeEndpointRecord, b: PortBindingRecord): string[] {
    if (b.hostIp !== undefined) {
      const ip = parseIp(b.hostIp)
      if (ip.version === 6 && (rec.ipv6 === undefined || !this.config.enableIp6tables)) return []
      return [formatIp(ip)]
    }
    const def = net.rec.options.hostBindingIpv4 ?? formatIp(this.config.defaultBindIp)
    const out = [def]
    if (def === '0.0.0.0' && rec.ipv6 !== undefined && this.config.enableIp6tables) out.push('::')
    return out
  }

  /** The endpoint address a port published on `hostIp` forwards to (IPv6 for an IPv6 host address). */
  private containerIpFor(rec: BridgeEndpointRecord, hostIp: IpAddr): IpAddr {
    return hostIp.version === 6 && rec.ipv6 !== undefined ? parseCidr(rec.ipv6).ip : parseCidr(rec.ipv4).ip
  }

  private published(net: NetState, rec: BridgeEndpointRecord, mappings: readonly PortMappingRecord[]): PublishedPort[] {
    return mappings.map((m) => {
      const hostIp = parseIp(m.hostIp)
      return {
        proto: m.proto,
        hostIp,
        hostPort: m.hostPort,
        containerIp: this.containerIpFor(rec, hostIp),
        containerPort: m.containerPort,
        bridge: net.rec.bridgeName,
      }
    })
  }

  private portMapping(net: NetState, rec: BridgeEndpointRecord, m: PortMappingRecord): PortMapping {
    const p = this.published(net, rec, [m])[0] as PublishedPort
    return {
      proto: m.proto,
      containerIp: p.containerIp,
      containerPort: m.containerPort,
      hostIp: p.hostIp,
      hostPort: m.hostPort,
    }
  }

  // ---------------------------------------------------------------- restore

  /**
   * Rebuilds state after a restart from the driver's store records and reconciles the kernel: missing
   * bridges, veths and firewall rules are re-created, host-port reservations re-taken and published ports
   * re-published. With `networks` (the controller's list) anything not listed is an orphan and is removed
   * (kernel objects, rules, ports, records); networks listed without a record are re-created from their
   * config. Without `networks`, every stored record is kept.
   */
  async restore(networks?: readonly RestoredNetwork[], options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    await this.netLock.run('networks', async () => {
      if (this.kernel.init !== undefined)
        await this.kernelCall('initialise', () => this.kernel.init?.(options) ?? Promise.resolve())
      const loaded = this.state.persistent
        ? await this.state.load(options)
        : {
            networks: [...this.networks.values()].map((n) => n.rec),
            endpoints: [...this.networks.values()].flatMap((n) => [...n.endpoints.values()].map((e) => e.rec)),
          }
      this.networks.clear()
      this.endpointIndex.clear()
      const wanted = networks === undefined ? undefined : new Map(networks.map((n) => [n.id as string, n]))
      const links = new Map(
        (await this.kernelCall('list links', () => this.kernel.listLinks(options))).map((l) => [l.name, l]),
      )

      const keepNets: BridgeNetworkRecord[] = []
      for (const rec of loaded.networks) {
        if (wanted !== undefined && !wanted.has(rec.id)) {
          await this.dropOrphanNetwork(
            rec,
            loaded.endpoints.filter((e) => e.networkId === rec.id),
            links,
            options,
          )
        } else keepNets.push(rec)
      }
      for (const rec of keepNets) await this.reconcileNetwork(rec, links, options)
      // Networks the controller knows but we have no record of: create them again from their config.
      for (const n of networks ?? []) {
        if (this.networks.has(n.id)) continue
        this.log('restore: no record of network %s, re-creating it', n.id)
        await this.createNetworkLocked(n, options)
      }

      for (const rec of loaded.endpoints) {
        const net = this.networks.get(rec.networkId)
        const listed = wanted?.get(rec.networkId)?.endpoints.find((e) => e.id === rec.id)
        if (net === undefined || (wanted !== undefined && listed === undefined)) {
          await this.dropOrphanEndpoint(rec, options)
          continue
        }
        await this.reconcileEndpoint(net, rec, listed, links, options)
      }
      for (const n of networks ?? []) {
        const net = this.networks.get(n.id)
        if (net === undefined) continue
        for (const e of n.endpoints) {
          if (net.endpoints.has(e.id)) continue
          await this.recreateEndpoint(net, e, options)
        }
      }
      // Veths on our bridges that belong to no endpoint are leftovers of a crash mid-create.
      const ours = new Set([...this.networks.values()].map((n) => n.rec.bridgeName))
      const hostEnds = new Set(
        [...this.networks.values()].flatMap((n) => [...n.endpoints.values()].map((e) => e.rec.hostIfName)),
      )
      for (const l of links.values()) {
        if (l.kind === 'veth' && l.master !== undefined && ours.has(l.master) && !hostEnds.has(l.name)) {
          this.log('restore: deleting orphan veth %s on %s', l.name, l.master)
          await this.kernelCall('delete orphan veth', () => this.kernel.deleteLink(l.name, options))
        }
      }
      this.log('restored %d networks, %d endpoints', this.networks.size, this.endpointIndex.size)
    })
  }

  private async createNetworkLocked(n: RestoredNetwork, options?: AbortOptions): Promise<void> {
    const opts = this.networkOptions(n.config)
    const rec = this.networkRecord(n.id, opts, n.ipv4Data, n.ipv6Data)
    const existing = await this.kernelCall('inspect bridge', () => this.kernel.getLink(rec.bridgeName, options))
    // A device named like ours (br-<nid>) was made by a previous run; anything else pre-existed.
    const userCreated =
      existing !== undefined && rec.bridgeName !== bridgeNameFor(n.id) && rec.bridgeName !== DEFAULT_BRIDGE_NAME
    const final = { ...rec, userCreatedBridge: userCreated }
    const undo = new UndoStack(this.log)
    try {
      await this.setupNetworkKernel(final, existing !== undefined, undo, options)
      await this.state.saveNetwork(final, options)
    } catch (err) {
      await undo.rollback()
      throw err
    }
    this.networks.set(n.id, {
      rec: final,
      endpoints: new Map(),
      pending: new Set(),
      log: this.log.child(n.id.slice(0, 12)),
    })
  }

  private async reconcileNetwork(
    rec: BridgeNetworkRecord,
    links: Map<string, HostLink>,
    options?: AbortOptions,
  ): Promise<void> {
    const log = this.log.child(rec.id.slice(0, 12))
    const link = links.get(rec.bridgeName)
    if (link !== undefined && link.kind !== 'bridge') {
      log.error('restore: %s is no longer a bridge; network %s kept without kernel state', rec.bridgeName, rec.id)
    } else {
      if (link === undefined) log('restore: bridge %s missing, re-creating it', rec.bridgeName)
      // setupBridge on an existing device only fixes addresses and state; the firewall step is idempotent.
      await this.setupNetworkKernel(rec, link !== undefined, new UndoStack(log), options)
    }
    this.networks.set(rec.id, { rec, endpoints: new Map(), pending: new Set(), log })
  }

  private async reconcileEndpoint(
    net: NetState,
    stored: BridgeEndpointRecord,
    listed: RestoredEndpoint | undefined,
    links: Map<string, HostLink>,
    options?: AbortOptions,
  ): Promise<void> {
    let rec = stored
    if (listed !== undefined) {
      // The controller's view of the join state wins.
      rec = {
        ...rec,
        sandboxKey: listed.sandboxKey,
        externalConnectivity: rec.externalConnectivity && (listed.externalConnectivity ?? rec.externalConnectivity),
      }
    }
    let pair: PairState = 'unknown'
    if (!links.has(rec.hostIfName)) {
      // No pair: the next join makes one (a missing pair is not in any sandbox).
      if (rec.sandboxKey !== undefined)
        net.log('restore: veth %s of endpoint %s missing; made again at join', rec.hostIfName, rec.id)
      rec = { ...rec, sandboxKey: undefined }
      pair = 'none'
    } else if (links.get(rec.hostIfName)?.master !== net.rec.bridgeName) {
      // The bridge was re-created (or the port released): enslave the host end again.
      net.log('restore: re-attaching veth %s of endpoint %s to %s', rec.hostIfName, rec.id, net.rec.bridgeName)
      await this.kernelCall('attach veth', () =>
        this.kernel.attachVeth(rec.hostIfName, net.rec.bridgeName, true, options),
      )
    }
    // joined with a pair made inside the sandbox: a leave destroys it, there is nothing to move back
    if (links.has(rec.hostIfName) && rec.sandboxKey !== undefined && rec.vethInPlace === true) pair = 'sandbox'
    const kept: PortMappingRecord[] = []
    for (const m of rec.portMappings) {
      try {
        const hostIp = parseIp(m.hostIp)
        await this.kernel.reservePort(
          rec.id,
          {
            proto: m.proto,
            hostIp,
            hostPort: m.hostPort,
            hostPortEnd: m.hostPort,
            bridge: net.rec.bridgeName,
            containerIp: this.containerIpFor(rec, hostIp),
            containerPort: m.containerPort,
          },
          options,
        )
        kept.push(m)
      } catch (err) {
        if (isCnmError(err, 'ERR_ABORTED')) throw err
        net.log.error(
          'restore: endpoint %s lost host port %s:%d/%s: %s',
          rec.id,
          m.hostIp,
          m.hostPort,
          m.proto,
          describeErr(err),
        )
      }
    }
    rec = { ...rec, portMappings: kept }
    if (rec.externalConnectivity && kept.length > 0 && this.config.enableIptables) {
      await this.kernelCall('publish ports', () =>
        this.kernel.publishPorts(rec.id, this.published(net, rec, kept), options),
      )
    }
    await this.state.saveEndpoint(rec, options)
    net.endpoints.set(rec.id, { rec, pair })
    this.endpointIndex.set(rec.id, net.rec.id)
  }

  /**
   * Where the pair of an endpoint taken over at restore is: the container end in the host namespace
   * (moved back by a leave) → `host`; otherwise a leftover host end is deleted → `none`.
   */
  private async probePair(rec: BridgeEndpointRecord, options?: AbortOptions): Promise<PairState> {
    const links = await this.kernelCall('list links', () => this.kernel.listLinks(options))
    if (links.some((l) => l.name === rec.containerIfName)) {
      if (!links.some((l) => l.name === rec.hostIfName)) {
        await this.kernelCall('delete veth', () => this.kernel.deleteLink(rec.containerIfName, options))
        return 'none'
      }
      return 'host'
    }
    if (links.some((l) => l.name === rec.hostIfName)) {
      await this.kernelCall('delete veth', () => this.kernel.deleteLink(rec.hostIfName, options))
    }
    return 'none'
  }

  private async recreateEndpoint(net: NetState, e: RestoredEndpoint, options?: AbortOptions): Promise<void> {
    if (e.address === undefined) {
      net.log.error('restore: endpoint %s has no address; skipped', e.id)
      return
    }
    const iface: InterfaceInfo = {
      address: e.address,
      addressIPv6: e.addressIPv6,
      macAddress: e.macAddress,
      setMacAddress: () => undefined,
      setIpAddress: () => undefined,
    }
    const rec = this.endpointRecord(net, e.id, iface, e.config)
    await this.state.saveEndpoint(rec, options)
    net.endpoints.set(rec.id, { rec, pair: 'none' })
    this.endpointIndex.set(rec.id, net.rec.id)
    net.log('restore: re-created endpoint %s (no record)', e.id)
  }

  private async dropOrphanNetwork(
    rec: BridgeNetworkRecord,
    endpoints: BridgeEndpointRecord[],
    links: Map<string, HostLink>,
    options?: AbortOptions,
  ): Promise<void> {
    this.log('restore: removing orphan network %s (%s)', rec.id, rec.bridgeName)
    for (const ep of endpoints) await this.dropOrphanEndpoint(ep, options)
    if (this.config.enableIptables) {
      await this.kernelCall('remove network firewall', () =>
        this.kernel.removeNetworkFirewall(this.firewallSpec(rec), options),
      )
    }
    if (!rec.userCreatedBridge && !rec.options.defaultBridge && links.has(rec.bridgeName)) {
      await this.kernelCall('delete bridge', () => this.kernel.deleteLink(rec.bridgeName, options))
    }
    await this.state.deleteNetwork(rec.id, options)
  }

  private async dropOrphanEndpoint(rec: BridgeEndpointRecord, options?: AbortOptions): Promise<void> {
    this.log('restore: removing orphan endpoint %s', rec.id)
    const net = this.networks.get(rec.networkId)
    if (net !== undefined && rec.externalConnectivity && rec.portMappings.length > 0 && this.config.enableIptables) {
      // Its port rules outlived the previous process: take them over (same exact ports), then remove them.
      // (The rules of an orphan network go with its firewall.)
      try {
        for (const m of rec.portMappings) {
          const hostIp = parseIp(m.hostIp)
          await this.kernel.reservePort(
            rec.id,
            {
              proto: m.proto,
              hostIp,
              hostPort: m.hostPort,
              hostPortEnd: m.hostPort,
              bridge: net.rec.bridgeName,
              containerIp: this.containerIpFor(rec, hostIp),
              containerPort: m.containerPort,
            },
            options,
          )
        }
        const published = this.published(net, rec, rec.portMappings)
        await this.kernel.publishPorts(rec.id, published, options)
        await this.kernel.unpublishPorts(rec.id, published, options)
      } catch (err) {
        if (isCnmError(err, 'ERR_ABORTED')) throw err
        net.log.error('restore: removing the port rules of orphan endpoint %s failed: %s', rec.id, describeErr(err))
      }
    }
    await this.kernelCall('release ports', () => this.kernel.releasePorts(rec.id, options))
    await this.kernelCall('delete veth', () => this.kernel.deleteLink(rec.hostIfName, options))
    await this.state.deleteEndpoint(rec.id, options)
  }

  // ---------------------------------------------------------------- shutdown

  /**
   * Driver shutdown: closes the host-port holders (`holdHostPorts`) and the firewall's resident helper
   * process (when the driver made the firewall), and leaves bridges, veths, firewall rules, published
   * ports and records in place, so running containers keep working and the next start's `restore()`
   * takes them over. Idempotent; the driver stays usable (helpers start again on demand).
   */
  async close(): Promise<void> {
    await this.kernel.close?.()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  // ---------------------------------------------------------------- helpers

  private requireNetwork(nid: NetworkId): NetState {
    const net = this.networks.get(nid)
    if (net === undefined) throw new NetworkNotFoundError(nid)
    return net
  }

  private requireEndpoint(nid: NetworkId, eid: EndpointId): { net: NetState; ep: EpState } {
    const net = this.requireNetwork(nid)
    const ep = net.endpoints.get(eid)
    if (ep === undefined) throw new EndpointNotFoundError(nid, eid)
    return { net, ep }
  }

  /** Runs a kernel operation, wrapping foreign failures in BridgeKernelError (typed cnm errors pass through). */
  private async kernelCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      if (isCnmError(err)) throw err
      throw new BridgeKernelError(`${what} failed: ${describeErr(err)}`, { cause: err })
    }
  }

  private abortAware(err: unknown, options?: AbortOptions): unknown {
    if (options?.signal?.aborted === true && !isCnmError(err, 'ERR_ABORTED')) {
      return new AbortError(undefined, { cause: options.signal.reason })
    }
    return err
  }
}

function bindingRecord(b: PortBinding | PortBindingRecord): PortBindingRecord {
  const hostIp = b.hostIp === undefined ? undefined : typeof b.hostIp === 'string' ? b.hostIp : formatIp(b.hostIp)
  return {
    proto: b.proto,
    containerPort: b.containerPort,
    hostIp: hostIp === '' ? undefined : hostIp,
    hostPort: b.hostPort,
    hostPortEnd: b.hostPortEnd === undefined || b.hostPortEnd === 0 ? undefined : b.hostPortEnd,
  }
}
