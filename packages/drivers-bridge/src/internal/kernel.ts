import type { AbortOptions, IpAddr, IpCidr, IpPrefix } from '@cnm/types'

/**
 * The kernel operations the bridge driver needs, in the host namespace it manages. The driver's logic
 * (validation, rollback, persistence, reconciliation) is written against this port; `kernel-osl.ts`
 * implements it with @cnm/osl and @cnm/iptables, and unit tests use an in-memory fake.
 * Every mutating call is one batch (one or two process launches in the real implementation).
 */
export interface BridgeKernel {
  /** One-time setup before the first network (e.g. the firewall's base chains). Idempotent. */
  init?(options?: AbortOptions): Promise<void>
  /** One host-namespace link, or undefined. */
  getLink(name: string, options?: AbortOptions): Promise<HostLink | undefined>
  /** Every host-namespace link (for restore). */
  listLinks(options?: AbortOptions): Promise<HostLink[]>

  /** Creates (or, with `existing`, adopts and fixes up) a bridge: MAC, MTU, sysctls, addresses, up. */
  setupBridge(spec: BridgeSpec, options?: AbortOptions): Promise<void>
  /** Deletes a link (the bridge, or the host end of a veth pair, which removes both ends). Absent → no-op. */
  deleteLink(name: string, options?: AbortOptions): Promise<void>
  /** Creates a veth pair, enslaves the host end to the bridge, sets MTU/hairpin/peer MAC and brings the host end up. */
  createVeth(spec: VethSpec, options?: AbortOptions): Promise<void>
  /** (Re-)enslaves an existing host end to the bridge, with hairpin, and brings it up (restore). */
  attachVeth(host: string, bridge: string, hairpin: boolean, options?: AbortOptions): Promise<void>

  /** Installs the network's firewall rules (ICC, masquerade, isolation, internal). Idempotent. */
  programNetworkFirewall(spec: NetworkFirewallSpec, options?: AbortOptions): Promise<void>
  /** Removes what programNetworkFirewall installed. Idempotent. */
  removeNetworkFirewall(spec: NetworkFirewallSpec, options?: AbortOptions): Promise<void>
  /** Network names (bridge device names) that have rules installed, for orphan cleanup; undefined when unknown. */
  listFirewalledBridges?(options?: AbortOptions): Promise<string[] | undefined>

  /** Ensures IPv4 (and with `ipv6`, IPv6) forwarding in the host namespace (used when the firewall is off). */
  enableForwarding(ipv6: boolean, options?: AbortOptions): Promise<void>

  /**
   * Reserves host ports for an owner (endpoint id). `hostPort` 0 → ephemeral. A reservation survives
   * unpublish; only `releasePorts` frees it ([S3]).
   */
  reservePort(owner: string, req: PortRequest, options?: AbortOptions): Promise<number>
  /** Frees one reservation of the owner (idempotent). */
  releasePort(owner: string, port: PortRef, options?: AbortOptions): Promise<void>
  /** Frees every reservation of the owner (idempotent). */
  releasePorts(owner: string, options?: AbortOptions): Promise<void>
  /** Installs forwarding (DNAT, filter accept, hairpin masquerade) for reserved ports. All or nothing. */
  publishPorts(owner: string, mappings: readonly PublishedPort[], options?: AbortOptions): Promise<void>
  /** Removes the forwarding rules of the owner's mappings; reservations stay. Idempotent. */
  unpublishPorts(owner: string, mappings: readonly PublishedPort[], options?: AbortOptions): Promise<void>
  /**
   * Releases what the kernel side holds open (port holder sockets, helper processes) and leaves rules,
   * links and reservations in place (driver shutdown; the next start restores them). Idempotent.
   */
  close?(): Promise<void>
}

export interface HostLink {
  readonly name: string
  /** `bridge`, `veth`, … (undefined for plain devices). */
  readonly kind: string | undefined
  /** Name of the master device, if enslaved. */
  readonly master: string | undefined
  readonly up: boolean
  readonly mtu: number
  readonly addresses: readonly IpCidr[]
}

export interface BridgeSpec {
  readonly name: string
  /** The device existed before: do not create it, only fix addresses and bring it up. */
  readonly existing: boolean
  /** MAC for a new bridge. */
  readonly mac: string
  /** 0 → leave the kernel default. */
  readonly mtu: number
  /** IPv4 address to own (replacing any other IPv4 address); undefined → none (inhibit_ipv4). */
  readonly ipv4: IpCidr | undefined
  /** IPv6 enabled: `disable_ipv6=0`, fe80::1/64, and `ipv6` (the v6 gateway with the pool prefix). */
  readonly enableIpv6: boolean
  readonly ipv6: IpCidr | undefined
  /** `route_localnet=1` on the bridge (userland proxy off: loopback-published ports reach containers). */
  readonly routeLocalnet: boolean
}

export interface VethSpec {
  readonly host: string
  readonly peer: string
  readonly bridge: string
  readonly mtu: number
  /** Hairpin mode on the bridge port (userland proxy off). */
  readonly hairpin: boolean
  /** MAC of the container end. */
  readonly peerMac: string
}

export interface NetworkFirewallSpec {
  readonly bridge: string
  readonly subnet: IpPrefix
  readonly subnetV6: IpPrefix | undefined
  readonly enableIcc: boolean
  readonly enableIpMasquerade: boolean
  readonly internal: boolean
  /** SNAT to this address instead of MASQUERADE. */
  readonly hostIpv4: IpAddr | undefined
  /** Userland proxy off: hairpin rules (loopback and bridge-address access to published ports). */
  readonly hairpin: boolean
  /** Also ensure IP forwarding (and, if it had to be switched on, FORWARD policy DROP). */
  readonly forwarding: boolean
}

export type PortProtocol = 'tcp' | 'udp' | 'sctp'

export interface PortRequest {
  readonly proto: PortProtocol
  readonly hostIp: IpAddr
  /** 0 → any port in `[hostPort, hostPortEnd]` or the ephemeral range. */
  readonly hostPort: number
  readonly hostPortEnd: number
  /** The bridge the port will be published on (its port mapper keeps the reservation). */
  readonly bridge: string
  /** The endpoint address the port will forward to (same family as `hostIp`). */
  readonly containerIp: IpAddr
  readonly containerPort: number
}

export interface PortRef {
  readonly proto: PortProtocol
  readonly hostIp: IpAddr
  readonly hostPort: number
}

export interface PublishedPort {
  readonly proto: PortProtocol
  readonly hostIp: IpAddr
  readonly hostPort: number
  readonly containerIp: IpAddr
  readonly containerPort: number
  readonly bridge: string
}
