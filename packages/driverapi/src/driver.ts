import type { AbortOptions, EndpointId, IpAddr, IpCidr, IpPrefix, NetworkId } from '@cnm/types'
import type { MacAddress } from './mac.js'

/** Where a driver keeps its state (`local`: node store, `global`: cluster store) or how far its networks reach. */
export type Scope = 'local' | 'global'

/** What a driver declares at registration (README §4). */
export interface Capability {
  readonly dataScope: Scope
  /** Whether the driver's networks reach other nodes. */
  readonly connectivityScope: Scope
}

/** One IPAM result handed to the driver per pool (IPv4 or IPv6), as @cnm/types values. */
export interface IpamData {
  readonly addressSpace: string
  /** The pool (canonical network prefix). */
  readonly pool: IpPrefix
  /** The gateway address with the pool's mask, when the IPAM step produced one. */
  readonly gateway?: IpCidr
  /** Reserved auxiliary addresses by name (with the pool's mask). */
  readonly auxAddresses: Readonly<Record<string, IpCidr>>
}

export type Protocol = 'tcp' | 'udp' | 'sctp'

/** A container port and protocol (`80/tcp`). */
export interface TransportPort {
  readonly proto: Protocol
  readonly port: number
}

/** A requested host-port binding (`-p [hostIp:]hostPort[-hostPortEnd]:containerPort/proto`). */
export interface PortBinding {
  readonly proto: Protocol
  readonly containerPort: number
  /** Host address to bind; undefined = all addresses. */
  readonly hostIp?: IpAddr
  /** 0 = any port from the ephemeral range. */
  readonly hostPort: number
  /** End of a host port range; equals hostPort (or 0) for a single port. */
  readonly hostPortEnd: number
}

/** A binding as actually programmed, with the host port chosen. */
export interface PortMapping {
  readonly proto: Protocol
  readonly containerIp?: IpAddr
  readonly containerPort: number
  readonly hostIp?: IpAddr
  readonly hostPort: number
}

/** Table-event registration, given to `createNetwork` (object types: endpoint, network, opaque). */
export interface NetworkInfo {
  tableEventRegister(table: string, objectType: 'endpoint' | 'network' | 'opaque'): void
}

/** What the controller tells a driver about a network being created. */
export interface NetworkDriverConfig {
  /** The network's name (informational; drivers key everything by id). */
  readonly name: string
  /**
   * The user's driver options (`network create -o k=v`, the `com.docker.network.generic` bag), unparsed.
   * The driver parses them once with its own `parse…Options` and throws InvalidArgumentError.
   */
  readonly driverOptions: Readonly<Record<string, string>>
  /** User labels of the network. */
  readonly labels: Readonly<Record<string, string>>
  readonly enableIPv6: boolean
  /** No external connectivity and no default gateway service. */
  readonly internal: boolean
  readonly attachable: boolean
  readonly ingress: boolean
  /** Present for drivers that publish cluster tables. */
  readonly networkInfo?: NetworkInfo
}

/** What the controller tells a driver about an endpoint being created. */
export interface EndpointDriverConfig {
  /** The endpoint's name (informational). */
  readonly name: string
  readonly driverOptions: Readonly<Record<string, string>>
  readonly exposedPorts: readonly TransportPort[]
  readonly portBindings: readonly PortBinding[]
  readonly dnsServers: readonly IpAddr[]
}

/** What the controller passes to join and programExternalConnectivity. */
export interface SandboxDriverConfig {
  /** Sandbox (container) labels / generic options. */
  readonly labels: Readonly<Record<string, string>>
  /** The sandbox's exposed ports (on join: informational; on programExternalConnectivity: to program). */
  readonly exposedPorts: readonly TransportPort[]
  /** The sandbox's port bindings ([S3]: ports reserved once are kept until deleteEndpoint). */
  readonly portBindings: readonly PortBinding[]
}

/** Inspect data of one endpoint. */
export interface EndpointOperInfo {
  readonly macAddress?: MacAddress
  readonly exposedPorts?: readonly TransportPort[]
  readonly portMappings?: readonly PortMapping[]
  /** Driver-specific extra facts, stringified for display. */
  readonly extra?: Readonly<Record<string, string>>
}

/** Discovery notifications (drivers.md §1.5). */
export type DiscoveryEvent =
  | { readonly type: 'node'; readonly address: IpAddr; readonly bindAddress?: IpAddr; readonly self: boolean }
  | {
      readonly type: 'datastore-config'
      readonly scope: Scope
      readonly provider: string
      readonly address: string
    }
  | { readonly type: 'encryption-keys'; readonly keys: readonly EncryptionKey[] }
  | {
      readonly type: 'encryption-keys-update'
      readonly key?: EncryptionKey
      readonly primary?: EncryptionKey
      readonly prune?: EncryptionKey
    }

export interface EncryptionKey {
  readonly key: Uint8Array
  readonly tag: bigint
}

/** A change of an entry in a table the driver registered, made by a remote node. */
export interface TableEvent {
  readonly type: 'create' | 'update' | 'delete'
  readonly networkId: NetworkId
  readonly table: string
  readonly key: string
  readonly value: Uint8Array
}

/** What `restore` gets for each network the controller still knows after a restart. */
export interface RestoredNetwork {
  readonly id: NetworkId
  readonly config: NetworkDriverConfig
  readonly ipv4Data: readonly IpamData[]
  readonly ipv6Data: readonly IpamData[]
  readonly endpoints: readonly RestoredEndpoint[]
}

export interface RestoredEndpoint {
  readonly id: EndpointId
  readonly config: EndpointDriverConfig
  readonly address?: IpCidr
  readonly addressIPv6?: IpCidr
  readonly macAddress?: MacAddress
  /** Set when the endpoint was joined to a sandbox at the time of the restart. */
  readonly sandboxKey?: string
  /** True when this endpoint was the gateway endpoint of its sandbox (external connectivity programmed). */
  readonly externalConnectivity?: boolean
}

/**
 * The network driver contract ([S5]). IDs are full ids, never names. Every call is async, takes
 * AbortOptions last, and throws typed CnmErrors (see errors.ts): unknown network → `not-found`,
 * unknown endpoint → `not-found`, duplicate id → `forbidden`.
 */
export interface NetworkDriver {
  /** The network type this driver implements (`bridge`, `overlay`, …). */
  readonly type: string
  readonly capability: Capability

  /** Create the network on this node, honouring the IPAM data. Duplicate id → forbidden. */
  createNetwork(
    nid: NetworkId,
    config: NetworkDriverConfig,
    ipv4Data: readonly IpamData[],
    ipv6Data: readonly IpamData[],
    options?: AbortOptions,
  ): Promise<void>
  /** Remove the network. Unknown → not-found (maskable). Forbidden errors abort the controller's delete. */
  deleteNetwork(nid: NetworkId, options?: AbortOptions): Promise<void>

  /**
   * Create an endpoint. Addresses already present in `iface` are pre-assigned: use them or fail, never
   * replace them. Empty fields may be filled through the setters.
   */
  createEndpoint(
    nid: NetworkId,
    eid: EndpointId,
    iface: InterfaceInfo,
    config: EndpointDriverConfig,
    options?: AbortOptions,
  ): Promise<void>
  /** Remove the endpoint; afterwards no kernel state of it remains and its host ports are released. */
  deleteEndpoint(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void>
  endpointOperInfo(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<EndpointOperInfo>

  /** Prepare the endpoint for the sandbox at `sandboxKey`, describing the result through `joinInfo`. */
  join(
    nid: NetworkId,
    eid: EndpointId,
    sandboxKey: string,
    joinInfo: JoinInfo,
    config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void>
  /** Undo join; addresses (and [S3] host-port reservations) stay with the endpoint. */
  leave(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void>

  /** The endpoint became its sandbox's gateway endpoint: port mappings, NAT, links. */
  programExternalConnectivity(
    nid: NetworkId,
    eid: EndpointId,
    config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void>
  /** Undo programExternalConnectivity (rules go; [S3] port reservations stay until deleteEndpoint). */
  revokeExternalConnectivity(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void>

  /** Swarm manager: reserve cluster-wide resources; returns options for every node's createNetwork. */
  networkAllocate?(
    nid: NetworkId,
    driverOptions: Readonly<Record<string, string>>,
    ipv4Data: readonly IpamData[],
    ipv6Data: readonly IpamData[],
    options?: AbortOptions,
  ): Promise<Record<string, string>>
  networkFree?(nid: NetworkId, options?: AbortOptions): Promise<void>

  discoverNew?(event: DiscoveryEvent, options?: AbortOptions): Promise<void>
  discoverDelete?(event: DiscoveryEvent, options?: AbortOptions): Promise<void>
  /** A remote node changed an entry of a table this driver registered. */
  eventNotify?(event: TableEvent, options?: AbortOptions): Promise<void>
  /** Inspect helper: the object a table entry belongs to and displayable facts. */
  decodeTableEntry?(
    table: string,
    key: string,
    value: Uint8Array,
  ): { readonly objectId: string; readonly info: Readonly<Record<string, string>> } | undefined

  /**
   * Called once at controller start with every network of this driver's type the controller still has.
   * The driver rebuilds its in-memory state for them and removes its leftovers of any other network
   * (kernel objects, own store records) so nothing leaks from a previous run.
   */
  restore?(networks: readonly RestoredNetwork[], options?: AbortOptions): Promise<void>
}

/** The endpoint's interface as the driver sees it in createEndpoint (drivers.md §1.3). */
export interface InterfaceInfo {
  /** IPv4 address with the pool's mask. */
  readonly address: IpCidr | undefined
  readonly addressIPv6: IpCidr | undefined
  readonly macAddress: MacAddress | undefined
  /** Sets the MAC; throws InterfaceFieldSetError (forbidden) if one is present. */
  setMacAddress(mac: MacAddress): void
  /** Sets the IPv4 or IPv6 address by family; throws InterfaceFieldSetError (forbidden) if present. */
  setIpAddress(cidr: IpCidr): void
}

/** Kind of static route: `next-hop` is installed in the sandbox's table, `connected` as link-scope route on the interface. */
export type RouteType = 'next-hop' | 'connected'

export interface StaticRoute {
  readonly destination: IpPrefix
  readonly routeType: RouteType
  /** Required for `next-hop`, absent for `connected`. */
  readonly nextHop?: IpAddr
}

export interface TableEntry {
  readonly table: string
  readonly key: string
  readonly value: Uint8Array
}

/** What the driver tells the controller in join (drivers.md §1.4). */
export interface JoinInfo {
  /** The host-side device to move into the sandbox and the prefix of its in-sandbox name (`eth`). */
  setInterfaceName(srcName: string, dstPrefix: string): void
  /** IPv4 default gateway of the sandbox. */
  setGateway(ip: IpAddr): void
  setGatewayIPv6(ip: IpAddr): void
  addStaticRoute(destination: IpPrefix, routeType: RouteType, nextHop?: IpAddr): void
  /** Do not attach docker_gwbridge because of this endpoint. */
  disableGatewayService(): void
  /** Entries published to the cluster for the network when the join completes; withdrawn on leave. */
  addTableEntry(table: string, key: string, value: Uint8Array): void
  /**
   * True when the sandbox layer can create the interface as a veth pair born inside the sandbox
   * (`setVeth`); absent or false: the driver makes the device in the host and calls `setInterfaceName`.
   */
  readonly canCreateVeth?: boolean
  /**
   * Instead of moving a host device in: create a veth pair whose sandbox end is born inside (named from
   * `dstPrefix`) and whose host end `hostName` is enslaved to `master` and up. Leave destroys the pair.
   * Only when `canCreateVeth` is true; replaces `setInterfaceName`.
   */
  setVeth?(veth: JoinVeth, dstPrefix: string): void
}

/** The veth pair a driver asks the sandbox layer to create at join (`JoinInfo.setVeth`). */
export interface JoinVeth {
  /** Name of the host end. */
  readonly hostName: string
  /** Bridge the host end is enslaved to. */
  readonly master: string
  /** MTU of both ends (0 or absent: kernel default). */
  readonly mtu?: number
  /** Hairpin mode on the host end's bridge port. */
  readonly hairpin?: boolean
}
