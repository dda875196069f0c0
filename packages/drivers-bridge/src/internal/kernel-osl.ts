import {
  formatCidr,
  formatIp,
  formatPrefix,
  isCnmError,
  parseCidr,
  type AbortOptions,
  type ComponentLogger,
  type IpCidr,
  type Logger,
} from '@cnm/types'
import type { AddressInfo, Osl } from '@cnm/osl'
import {
  PortMapper,
  type BridgeFirewall,
  type BridgeNetworkConfig,
  type PortAllocator,
  type PortHolder,
} from '@cnm/iptables'
import type {
  BridgeKernel,
  BridgeSpec,
  HostLink,
  NetworkFirewallSpec,
  PortRef,
  PortRequest,
  PublishedPort,
  VethSpec,
} from './kernel.js'

export interface OslKernelOptions {
  readonly osl: Osl
  /** undefined when the driver does not manage iptables. */
  readonly firewall: BridgeFirewall | undefined
  readonly allocator: PortAllocator
  readonly logger: ComponentLogger
  readonly log: Logger
  /** Ensure IPv4 forwarding at init (FORWARD policy DROP when it had to be switched on and there is a firewall). */
  readonly forwarding: boolean
  /** Pass IPv6 subnets to the firewall (ip6tables managed). */
  readonly ip6tables: boolean
  /** Holds each published host port with a bound socket (libnetwork's dummy proxy). */
  readonly holdPort: PortHolder | undefined
  /** The firewall was made for this kernel (it is closed with it). */
  readonly ownsFirewall: boolean
}

/** The PortMapper key of a host port (`0.0.0.0:8080/tcp`, `[::]:8080/tcp`). */
function mappingKey(p: { proto: string; hostIp: { version: 4 | 6; value: bigint }; hostPort: number }): string {
  const ip = formatIp(p.hostIp)
  return `${p.hostIp.version === 6 ? `[${ip}]` : ip}:${p.hostPort}/${p.proto}`
}

/**
 * BridgeKernel on @cnm/osl (links and addresses in the host namespace, one batch per operation) and
 * @cnm/iptables (network rules through BridgeFirewall, port publishing through one PortMapper per bridge,
 * all mappers sharing one PortAllocator).
 *
 * Host-port reservations ([S3]) are the port mappers': reserved by endpoint id at the first mapping
 * (`reserve`, or `adopt` for the exact ports of a stored mapping after a restart), kept across unpublish,
 * freed by `releasePorts`. Publishing exact, reserved ports reuses those reservations.
 */
export class OslBridgeKernel implements BridgeKernel {
  private readonly osl: Osl
  private readonly firewall: BridgeFirewall | undefined
  private readonly allocator: PortAllocator
  private readonly logger: ComponentLogger
  private readonly log: Logger
  private readonly ip6tables: boolean
  private readonly forwarding: boolean
  private readonly holdPort: PortHolder | undefined
  private readonly ownsFirewall: boolean
  private readonly mappers = new Map<string, PortMapper>()

  constructor(o: OslKernelOptions) {
    this.osl = o.osl
    this.firewall = o.firewall
    this.allocator = o.allocator
    this.logger = o.logger
    this.log = o.log
    this.ip6tables = o.ip6tables
    this.forwarding = o.forwarding
    this.holdPort = o.holdPort
    this.ownsFirewall = o.ownsFirewall
  }

  /**
   * Driver start (drivers.md §3.1): the firewall's base chains, and IP forwarding — when it had to be switched
   * on and there is a firewall, the filter FORWARD policy becomes DROP (as Docker does; never undone; with
   * ip6tables also IPv6 forwarding and its FORWARD policy DROP).
   */
  async init(options?: AbortOptions): Promise<void> {
    if (this.firewall !== undefined) {
      await this.firewall.setupBridgeChains(options)
      if (this.forwarding)
        await this.firewall.enableForwarding({
          ipv6: this.ip6tables,
          ...(options?.signal !== undefined && { signal: options.signal }),
        })
      return
    }
    if (!this.forwarding) return
    const key = 'net/ipv4/ip_forward'
    const current = await this.osl.host.getSysctls([key], options)
    if (current[key] === '1') return
    await this.osl.host.setSysctls({ [key]: 1 }, options)
    this.log('enabled IPv4 forwarding in the host namespace')
  }

  /** Closes the port holders (rules and reservations stay) and the firewall's helper process if it is ours. */
  async close(): Promise<void> {
    for (const m of this.mappers.values()) await m.closeHolders()
    if (this.ownsFirewall) await this.firewall?.close()
  }

  // ------------------------------------------------------------------ links

  async getLink(name: string, options?: AbortOptions): Promise<HostLink | undefined> {
    const all = await this.osl.host.addresses(options)
    const l = all.find((x) => x.ifname === name)
    return l === undefined ? undefined : toHostLink(l, all)
  }

  async listLinks(options?: AbortOptions): Promise<HostLink[]> {
    const all = await this.osl.host.addresses(options)
    return all.map((l) => toHostLink(l, all))
  }

  async setupBridge(spec: BridgeSpec, options?: AbortOptions): Promise<void> {
    const sysctls: Record<string, number> = { [`net/ipv6/conf/${spec.name}/accept_ra`]: 0 }
    if (spec.enableIpv6) sysctls[`net/ipv6/conf/${spec.name}/disable_ipv6`] = 0
    const wanted: IpCidr[] = []
    if (spec.ipv4 !== undefined) wanted.push(spec.ipv4)
    if (spec.enableIpv6) wanted.push(parseCidr('fe80::1/64'))
    if (spec.ipv6 !== undefined) wanted.push(spec.ipv6)
    const tx = this.osl.transaction()
    if (!spec.existing) {
      tx.on(this.osl.host).createBridge({
        name: spec.name,
        mac: spec.mac,
        ...(spec.mtu > 0 && { mtu: spec.mtu }),
        addresses: wanted.map(formatCidr),
        sysctls,
        up: true,
      })
    } else {
      // Adopt: replace a different IPv4 address, drop stray global IPv6 addresses, add what is missing.
      const current = (await this.getLink(spec.name, options))?.addresses ?? []
      const plan = tx.on(this.osl.host)
      const has = (c: IpCidr): boolean =>
        current.some(
          (a) => a.ip.value === c.ip.value && a.ip.version === c.ip.version && a.prefix.bits === c.prefix.bits,
        )
      for (const a of current) {
        const keep = wanted.some(
          (w) => w.ip.version === a.ip.version && w.ip.value === a.ip.value && w.prefix.bits === a.prefix.bits,
        )
        const linkLocal6 = a.ip.version === 6 && a.ip.value >> 118n === 0x3fan
        const drop =
          (a.ip.version === 4 && spec.ipv4 !== undefined && !keep) || (a.ip.version === 6 && !linkLocal6 && !keep)
        if (drop) plan.deleteAddress(spec.name, formatCidr(a))
      }
      plan.setSysctls(sysctls)
      for (const w of wanted) if (!has(w)) plan.addAddress(spec.name, formatCidr(w))
      if (spec.mtu > 0) plan.setLink(spec.name, { mtu: spec.mtu, up: true })
      else plan.setLink(spec.name, { up: true })
    }
    await tx.commit(options)
  }

  async deleteLink(name: string, options?: AbortOptions): Promise<void> {
    try {
      await this.osl.host.deleteLink(name, options)
    } catch (err) {
      if (isCnmError(err, 'ERR_OSL_LINK_NOT_FOUND')) {
        this.log.trace('delete %s: already gone', name)
        return
      }
      throw err
    }
  }

  async createVeth(spec: VethSpec, options?: AbortOptions): Promise<void> {
    const tx = this.osl.transaction()
    tx.on(this.osl.host)
      .createVeth({
        name: spec.host,
        peerName: spec.peer,
        ...(spec.mtu > 0 && { mtu: spec.mtu }),
        peerMac: spec.peerMac,
        master: spec.bridge,
        up: true,
      })
      .setLink(spec.host, { hairpin: spec.hairpin })
    await tx.commit(options)
  }

  async attachVeth(host: string, bridge: string, hairpin: boolean, options?: AbortOptions): Promise<void> {
    const tx = this.osl.transaction()
    tx.on(this.osl.host).setLink(host, { master: bridge, up: true }).setLink(host, { hairpin })
    await tx.commit(options)
  }

  // ------------------------------------------------------------------ firewall

  private firewallConfig(spec: NetworkFirewallSpec, forwarding: boolean): BridgeNetworkConfig {
    return {
      bridge: spec.bridge,
      subnet: formatPrefix(spec.subnet),
      ...(spec.subnetV6 !== undefined && this.ip6tables && { subnet6: formatPrefix(spec.subnetV6) }),
      icc: spec.enableIcc,
      masquerade: spec.enableIpMasquerade,
      internal: spec.internal,
      ...(spec.hostIpv4 !== undefined && { hostIp: formatIp(spec.hostIpv4) }),
      enableIpForwarding: forwarding,
    }
  }

  async programNetworkFirewall(spec: NetworkFirewallSpec, options?: AbortOptions): Promise<void> {
    if (this.firewall === undefined) return
    await this.firewall.programBridgeNetwork(this.firewallConfig(spec, spec.forwarding), options)
  }

  async removeNetworkFirewall(spec: NetworkFirewallSpec, options?: AbortOptions): Promise<void> {
    if (this.firewall === undefined) return
    const mapper = this.mappers.get(spec.bridge)
    if (mapper !== undefined) {
      await mapper.releaseAll(options)
      this.mappers.delete(spec.bridge)
    }
    await this.firewall.removeBridgeNetwork(this.firewallConfig(spec, false), options)
  }

  async enableForwarding(ipv6: boolean, options?: AbortOptions): Promise<void> {
    const values: Record<string, number> = { 'net/ipv4/ip_forward': 1 }
    if (ipv6) {
      values['net/ipv6/conf/default/forwarding'] = 1
      values['net/ipv6/conf/all/forwarding'] = 1
    }
    await this.osl.host.setSysctls(values, options)
  }

  // ------------------------------------------------------------------ ports

  async reservePort(owner: string, req: PortRequest, options?: AbortOptions): Promise<number> {
    const binding = {
      proto: req.proto,
      containerIp: formatIp(req.containerIp),
      containerPort: req.containerPort,
      hostIp: formatIp(req.hostIp),
      hostPort: req.hostPort,
      hostPortEnd: req.hostPort === 0 ? 0 : Math.max(req.hostPort, req.hostPortEnd),
    }
    const mapper = this.mapper(req.bridge)
    // An exact port is taken back as it is (a stored mapping after a restart, or a fixed binding).
    const exact = binding.hostPort !== 0 && binding.hostPortEnd === binding.hostPort
    const [m] = exact ? await mapper.adopt(owner, [binding], options) : await mapper.reserve(owner, [binding], options)
    return (m as { hostPort: number }).hostPort
  }

  async releasePort(owner: string, port: PortRef, options?: AbortOptions): Promise<void> {
    const key = mappingKey(port)
    for (const mapper of this.mappers.values()) {
      if (!mapper.reservations(owner).some((m) => m.key === key)) continue
      await mapper.release(owner, { keys: [key], ...(options?.signal !== undefined && { signal: options.signal }) })
    }
  }

  async releasePorts(owner: string, options?: AbortOptions): Promise<void> {
    for (const mapper of this.mappers.values()) {
      if (mapper.reservations(owner).length === 0) continue
      await mapper.release(owner, options)
    }
  }

  private mapper(bridge: string): PortMapper {
    let m = this.mappers.get(bridge)
    if (m === undefined) {
      if (this.firewall === undefined) throw new Error('port publishing needs the firewall (enableIptables)')
      m = new PortMapper(
        { bridge },
        {
          logger: this.logger,
          firewall: this.firewall,
          allocator: this.allocator,
          ...(this.holdPort !== undefined && { holdPort: this.holdPort }),
        },
      )
      this.mappers.set(bridge, m)
    }
    return m
  }

  async publishPorts(owner: string, mappings: readonly PublishedPort[], options?: AbortOptions): Promise<void> {
    if (mappings.length === 0) return
    const byBridge = new Map<string, PublishedPort[]>()
    for (const m of mappings) byBridge.set(m.bridge, [...(byBridge.get(m.bridge) ?? []), m])
    for (const [bridge, list] of byBridge) {
      await this.mapper(bridge).map(
        owner,
        list.map((m) => ({
          proto: m.proto,
          containerIp: formatIp(m.containerIp),
          containerPort: m.containerPort,
          hostIp: formatIp(m.hostIp),
          hostPort: m.hostPort,
          hostPortEnd: m.hostPort,
        })),
        options,
      )
    }
  }

  async unpublishPorts(owner: string, mappings: readonly PublishedPort[], options?: AbortOptions): Promise<void> {
    const bridges = new Set(mappings.map((m) => m.bridge))
    for (const bridge of bridges) {
      const mapper = this.mappers.get(bridge)
      if (mapper === undefined || mapper.mappings(owner).length === 0) continue
      await mapper.unmap(owner, options)
    }
  }
}

function toHostLink(l: AddressInfo, all: readonly AddressInfo[]): HostLink {
  const addresses: IpCidr[] = []
  for (const a of l.addr_info ?? []) {
    try {
      addresses.push(parseCidr(`${a.local}/${a.prefixlen}`))
    } catch {
      // an address form we do not model (e.g. a peer address); it does not matter here
    }
  }
  return {
    name: l.ifname,
    kind: linkKind(l, all),
    master: typeof l.master === 'string' ? l.master : undefined,
    up: Array.isArray(l.flags) && l.flags.includes('UP'),
    mtu: l.mtu,
    addresses,
  }
}

/**
 * `ip -json link show` (what @cnm/osl returns) has no link kind. A veth names its peer (`link` or
 * `link_netnsid`); a device other links use as `master` is a bridge; an Ethernet device without a peer is
 * taken for a bridge too (osl cannot tell a bridge from a dummy or macvlan; see the README).
 */
function linkKind(l: AddressInfo, all: readonly AddressInfo[]): string | undefined {
  if (l.link_type === 'loopback') return 'loopback'
  if (typeof l['link'] === 'string' || typeof l['link_netnsid'] === 'number' || typeof l['link_index'] === 'number') {
    return 'veth'
  }
  if (all.some((x) => x.master === l.ifname)) return 'bridge'
  if (l.link_type === 'ether') return 'bridge'
  return typeof l.link_type === 'string' ? l.link_type : undefined
}
