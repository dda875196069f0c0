import type { AbortOptions, ComponentLogger } from '@cnm/types'
import type { Exec } from './exec.js'
import type { NativeOps } from './native.js'

/** A namespace reference for options that accept one: a Netns/Sandbox handle, or a name (/run/netns) or path. */
export type NetnsRef = { readonly path: string | undefined; readonly label: string } | string

export interface OslInit {
  /**
   * The namespace that plays "the host": bridges and host-side veth ends live there and interfaces removed
   * from a sandbox go back there. A bare name is looked up in /run/netns, anything with `/` is a path.
   * @default undefined (the namespace this Node process runs in)
   */
  hostNetns?: string
  /**
   * Directory holding sandbox namespace files (`<netnsDir>/<key>`). Under /run/netns sandboxes are
   * visible to `ip netns` and reachable with one `ip -n` launch; elsewhere `nsenter --net=` is used.
   * @default '/run/netns'
   */
  netnsDir?: string
  /** @default 'ip' */
  ipPath?: string
  /** @default 'bridge' */
  bridgePath?: string
  /** @default 'nsenter' */
  nsenterPath?: string
  /** Load the native addon from this file instead of native/build/Release/cnm_osl.node. */
  nativeAddonPath?: string
  /**
   * Keep one long-lived `ip -force -batch -` process in the host namespace (started on first use, stopped
   * by `close()`) and feed host-side commands to it over stdin instead of launching `ip` per batch.
   * `false`: one `ip -batch -` launch per host-side batch. @default true
   */
  residentHost?: boolean
  /**
   * Program veth pairs, addresses, link-up and routes over rtnetlink from the native addon (no process
   * launch) instead of `ip -batch -`; a batch with any other line (bridges, neighbours, moves…) goes
   * through `ip` (or the resident helper for the host). @default true
   */
  nativeNetlink?: boolean
}

export interface OslComponents {
  logger?: ComponentLogger
  /** Process launcher (tests inject a fake; benches wrap it to count). @default spawnExec */
  exec?: Exec
  /** The native addon (tests inject a fake). @default the built addon */
  native?: NativeOps
}

/** Per-call options of mutating methods. */
export interface MutateOptions extends AbortOptions {}

export interface BridgeSpec {
  name: string
  mtu?: number
  mac?: string
  /** Addresses with prefix length (gateway addresses), IPv4 and/or IPv6. IPv6 ones are added `nodad`. */
  addresses?: string[]
  /** Bring the bridge up. @default true */
  up?: boolean
  /** STP. @default kernel default (off) */
  stp?: boolean
  /** IGMP/MLD snooping. @default kernel default */
  mcastSnooping?: boolean
  /** VLAN filtering. @default kernel default (off) */
  vlanFiltering?: boolean
  /**
   * Sysctls written in the same namespace after the bridge exists and before its addresses are added,
   * e.g. `{ 'net/ipv6/conf/br0/disable_ipv6': 0 }` (dotted keys work when no part contains a dot).
   */
  sysctls?: Record<string, string | number>
}

export interface VethSpec {
  /** The end that stays in this namespace. */
  name: string
  /** The other end. */
  peerName: string
  mtu?: number
  mac?: string
  peerMac?: string
  /** Enslave `name` to this bridge (in this namespace). */
  master?: string
  /** Bring `name` up. @default true */
  up?: boolean
  /** Create the peer directly inside this namespace (it stays down). @default this namespace */
  peerNetns?: NetnsRef
}

export interface VxlanSpec {
  name: string
  vni: number
  /** UDP port. @default 4789 */
  port?: number
  /** Local underlay address. */
  local?: string
  mtu?: number
  /** @default false (Docker's overlay disables learning) */
  learning?: boolean
  proxy?: boolean
  l2miss?: boolean
  l3miss?: boolean
  master?: string
  /** @default true */
  up?: boolean
}

export interface LinkChanges {
  up?: boolean
  mtu?: number
  mac?: string
  /** Enslave to a bridge, or `null` to release. */
  master?: string | null
  /** Rename (applied after a move). */
  newName?: string
  /** Move into another namespace. Undone on rollback (moved back under the old name). */
  netns?: NetnsRef
  /** Bridge-port options of an enslaved link. */
  hairpin?: boolean
  learning?: boolean
  isolated?: boolean
}

export interface AddressOptions {
  /** Skip duplicate address detection (IPv6). @default true for IPv6 */
  nodad?: boolean
}

export interface RouteSpec {
  /** `network/len`, or `default` (IPv4 unless the gateway is IPv6) / `default6`. */
  destination: string
  gateway?: string
  dev?: string
  scope?: 'global' | 'link' | 'host'
  metric?: number
  table?: number
  /** Gateway is on-link even without a connected route. */
  onlink?: boolean
}

export interface NeighborSpec {
  ip: string
  mac: string
  dev: string
}

export interface FdbSpec {
  mac: string
  dev: string
  /** Remote VTEP (vxlan). */
  dst?: string
  vlan?: number
  /** Entry on the device itself (NTF_SELF, vxlan) or on its bridge (NTF_MASTER). @default 'self' */
  on?: 'self' | 'master'
}

/** `ip -json link show` entries (the fields cnm uses; the rest passes through). */
export interface LinkInfo {
  ifindex: number
  ifname: string
  flags: string[]
  mtu: number
  operstate: string
  master?: string
  address?: string
  link_type?: string
  [key: string]: unknown
}

export interface AddrInfoEntry {
  family: 'inet' | 'inet6'
  local: string
  prefixlen: number
  scope?: string
  nodad?: boolean
  [key: string]: unknown
}

/** `ip -json addr show` entries. */
export interface AddressInfo extends LinkInfo {
  addr_info: AddrInfoEntry[]
}

/** `ip -json route show` entries. */
export interface RouteInfo {
  dst: string
  gateway?: string
  dev?: string
  protocol?: string
  scope?: string
  table?: string
  type?: string
  flags: string[]
  [key: string]: unknown
}

/** `ip -json neigh show` entries. */
export interface NeighborInfo {
  dst: string
  dev: string
  lladdr?: string
  state?: string[]
  [key: string]: unknown
}

/** Everything in a namespace, from one `ip -json -batch` launch. */
export interface NetnsInfo {
  links: AddressInfo[]
  /** Both families, all tables except `local`. */
  routes: RouteInfo[]
  neighbors: NeighborInfo[]
}
