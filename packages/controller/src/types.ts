import type {
  AbortOptions,
  ComponentLogger,
  EndpointId,
  IpAddr,
  IpCidr,
  IpPrefix,
  NetworkId,
  PoolId,
  SandboxId,
} from '@cnm/types'
import type {
  JoinVeth,
  MacAddress,
  NetworkDriver,
  PortBinding,
  Scope,
  StaticRoute,
  TransportPort,
} from '@cnm/driverapi'
import type { Ipam } from '@cnm/ipamapi'
import type { Store } from '@cnm/storeapi'

/** Network scope (README §4): defaults to the driver's data scope. */
export type NetworkScope = 'local' | 'global' | 'swarm'

/**
 * The kernel side the controller needs, kept narrow. The daemon backs it with @cnm/osl; tests use a fake.
 * Keys are sandbox keys (netns file paths).
 */
export interface SandboxOsLayer {
  /** Create the network namespace bound at `key`. */
  createSandbox(key: string, options?: AbortOptions): Promise<void>
  /** Destroy it (interfaces inside are destroyed or moved back by the kernel). A missing key is not an error. */
  deleteSandbox(key: string, options?: AbortOptions): Promise<void>
  /** Keys of every namespace that exists under the controller's netns root (used to find leaks after a restart). */
  listSandboxes(options?: AbortOptions): Promise<string[]>
  /**
   * Move host device `srcName` into the sandbox, rename it `dstName`, set MAC and addresses, bring it up,
   * install its static routes (`connected` on the interface, `next-hop` in the table).
   */
  addInterface(key: string, iface: SandboxInterface, options?: AbortOptions): Promise<void>
  /**
   * True when `addInterface` honours `SandboxInterface.veth` (creates the pair in place); the controller
   * then offers drivers `JoinInfo.setVeth`.
   */
  readonly vethInPlace?: boolean
  /** Remove interface `dstName` from the sandbox (destroying it or moving it back). Missing is not an error. */
  removeInterface(key: string, dstName: string, options?: AbortOptions): Promise<void>
  /** Replace the sandbox's default routes; an absent family clears that default route. */
  setGateway(key: string, gateway: SandboxGateway, options?: AbortOptions): Promise<void>
}

export interface SandboxInterface {
  /** Host device to move in; with `veth`, the host end's name (nothing is moved). */
  readonly srcName: string
  readonly dstName: string
  /**
   * Create a veth pair in place instead of moving `srcName`: the sandbox end is born inside as `dstName`,
   * the host end `veth.hostName` is enslaved to `veth.master` and up. Removing the interface destroys the pair.
   */
  readonly veth?: JoinVeth
  readonly address?: IpCidr
  readonly addressIPv6?: IpCidr
  readonly linkLocalAddresses: readonly IpCidr[]
  readonly macAddress?: MacAddress
  readonly routes: readonly StaticRoute[]
}

export interface SandboxGateway {
  readonly ipv4?: IpAddr
  readonly ipv6?: IpAddr
}

/** Construction options of the controller (all optional). */
export interface ControllerInit {
  /**
   * Directory holding sandbox netns files; keys are `<netnsRoot>/<first 12 of sandbox id>`.
   * @default '/var/run/docker/netns'
   */
  netnsRoot?: string
  /** IPAM used when a network names none (`''` and `'default'` are normalised to it). @default 'default' */
  defaultIpam?: string
  /**
   * @deprecated The controller ships no drivers (it composes what its caller registers). Only `false`
   * is accepted, and ignored; `true` throws InvalidRequestError. Register `host` and `null` drivers
   * (e.g. `hostDriver()`/`nullDriver()` of @cnm/drivers-bridge) in `components.drivers`.
   */
  builtinDrivers?: false
  /** Attempts for a compare-and-swap read-modify-write (endpoint counters). @default 8 */
  casRetries?: number
  /**
   * The node's primary address, used as the target address of `_host_<port>` SRV records for ports
   * published on all addresses. Empty: such records are not answered. @default ''
   */
  hostAddress?: string
  /**
   * Attach sandboxes that need a default gateway to `docker_gwbridge` (§7.3), creating that network on
   * demand with `gatewayBridgeDriver`. @default true
   */
  gatewayBridge?: boolean
  /** Driver type of `docker_gwbridge`. @default 'bridge' */
  gatewayBridgeDriver?: string
}

/** What the host injects. Drivers and IPAMs may also be registered later with registerDriver/registerIpam. */
export interface ControllerComponents {
  logger: ComponentLogger
  /** The local store (@cnm/storeapi `Store`, e.g. a @cnm/datastore store): state lives under `docker/network/v1.0/`. */
  store: Store
  osLayer: SandboxOsLayer
  drivers?: Readonly<Record<string, NetworkDriver>>
  ipams?: Readonly<Record<string, Ipam>>
}

/** One IPAM configuration of a network (strings as in Docker's API). */
export interface IpamConfig {
  /** Pool CIDR; omitted → the IPAM picks a default pool. */
  pool?: string
  subPool?: string
  gateway?: string
  /** Reserved auxiliary addresses by name. */
  auxAddresses?: Readonly<Record<string, string>>
}

export interface NetworkIpamRequest {
  /** @default the controller's defaultIpam */
  driver?: string
  /** @default the IPAM's local or global default space, by the network's driver data scope */
  addressSpace?: string
  options?: Readonly<Record<string, string>>
  v4?: readonly IpamConfig[]
  v6?: readonly IpamConfig[]
}

export interface CreateNetworkRequest {
  /** Non-empty after trimming. Not unique unless `checkDuplicate`. */
  name: string
  /** Driver type (`bridge`, `null`, …). Ignored for config-only networks. */
  type: string
  /** Explicit id; a duplicate → NetworkExistsError (conflict). @default a random 64-hex id */
  id?: string
  /** Fail with NetworkExistsError when a network with this name exists. @default false */
  checkDuplicate?: boolean
  /** Driver options (`-o k=v`), passed to the driver unparsed. @default {} */
  driverOptions?: Readonly<Record<string, string>>
  labels?: Readonly<Record<string, string>>
  /** @default false */
  enableIPv6?: boolean
  /** @default false */
  internal?: boolean
  /** @default false */
  attachable?: boolean
  /** @default false */
  ingress?: boolean
  /** @default the driver's data scope */
  scope?: NetworkScope
  ipam?: NetworkIpamRequest
  /** A configuration-only network: stored, no IPAM, no driver. @default false */
  configOnly?: boolean
  /** Name of a config-only network to copy IPAM config and driver options from. */
  configFrom?: string
  /** false → never written to the store. @default true */
  persist?: boolean
}

export interface NetworkIpamInfo {
  readonly poolId: PoolId
  readonly addressSpace: string
  readonly pool: IpPrefix
  readonly gateway?: IpCidr
  readonly auxAddresses: Readonly<Record<string, IpCidr>>
}

export interface NetworkInfo {
  readonly id: NetworkId
  readonly name: string
  readonly type: string
  readonly scope: NetworkScope
  readonly created: string
  readonly labels: Readonly<Record<string, string>>
  readonly driverOptions: Readonly<Record<string, string>>
  readonly enableIPv6: boolean
  readonly internal: boolean
  readonly attachable: boolean
  readonly ingress: boolean
  readonly configOnly: boolean
  readonly configFrom?: string
  readonly persist: boolean
  readonly ipam: {
    readonly driver: string
    readonly addressSpace?: string
    readonly options: Readonly<Record<string, string>>
    readonly config: { readonly v4: readonly IpamConfig[]; readonly v6: readonly IpamConfig[] }
    readonly v4: readonly NetworkIpamInfo[]
    readonly v6: readonly NetworkIpamInfo[]
  }
  readonly endpointCount: number
}

export interface CreateEndpointRequest {
  /** Unique within the network; non-empty after trimming. */
  name: string
  /** @default a random 64-hex id */
  id?: string
  /** Preferred (static) IPv4 address. */
  ipv4Address?: string
  ipv6Address?: string
  /** Extra link-local addresses (must be link-local unicast). */
  linkLocalAddresses?: readonly string[]
  /** Options passed to the IPAM's requestAddress. */
  ipamOptions?: Readonly<Record<string, string>>
  macAddress?: string
  exposedPorts?: readonly TransportPort[]
  portBindings?: readonly PortBinding[]
  dnsServers?: readonly string[]
  /** No DNS record for the endpoint name. @default false */
  anonymous?: boolean
  /** The sandbox does not use the embedded DNS for this endpoint. @default false */
  disableResolution?: boolean
  /** Extra DNS names of this endpoint on its network. */
  aliases?: readonly string[]
  driverOptions?: Readonly<Record<string, string>>
  /** Assign IPv6 from IPAM after the driver's createEndpoint. @default false */
  deferIPv6?: boolean
}

export interface EndpointInfo {
  readonly id: EndpointId
  readonly name: string
  readonly networkId: NetworkId
  readonly networkName: string
  readonly address?: IpCidr
  readonly addressIPv6?: IpCidr
  readonly linkLocalAddresses: readonly IpCidr[]
  readonly macAddress?: MacAddress
  readonly anonymous: boolean
  readonly disableResolution: boolean
  readonly aliases: readonly string[]
  readonly exposedPorts: readonly TransportPort[]
  readonly portBindings: readonly PortBinding[]
  readonly dnsServers: readonly IpAddr[]
  /** Set while joined. */
  readonly sandboxId?: SandboxId
  /** The container of the current or last join ([S3]: lets a restarted container find its endpoints). */
  readonly containerId?: string
  /** In-sandbox interface name while joined (`eth0`). */
  readonly interfaceName?: string
  readonly gateway?: IpAddr
  readonly gatewayIPv6?: IpAddr
  readonly staticRoutes: readonly StaticRoute[]
}

export interface ExtraHost {
  readonly name: string
  readonly ip: string
}

export interface CreateSandboxRequest {
  /** The container this sandbox belongs to; one sandbox per container. */
  containerId: string
  hostname?: string
  domainname?: string
  labels?: Readonly<Record<string, string>>
  /** Container port bindings, programmed on the gateway endpoint. */
  portBindings?: readonly PortBinding[]
  exposedPorts?: readonly TransportPort[]
  dnsServers?: readonly string[]
  dnsSearch?: readonly string[]
  dnsOptions?: readonly string[]
  extraHosts?: readonly ExtraHost[]
  /** Use the host network namespace (key `<netnsRoot>/default`, never created or deleted). @default false */
  useDefaultSandbox?: boolean
  /** The namespace arrives later through setKey. @default false */
  useExternalKey?: boolean
}

export interface SandboxInfo {
  readonly id: SandboxId
  readonly containerId: string
  readonly key: string
  readonly hostname?: string
  readonly domainname?: string
  readonly labels: Readonly<Record<string, string>>
  readonly portBindings: readonly PortBinding[]
  readonly exposedPorts: readonly TransportPort[]
  readonly dnsServers: readonly string[]
  readonly dnsSearch: readonly string[]
  readonly dnsOptions: readonly string[]
  readonly extraHosts: readonly ExtraHost[]
  readonly useDefaultSandbox: boolean
  readonly useExternalKey: boolean
  /** Joined endpoints in §7.2 order (first = highest priority). */
  readonly endpoints: readonly EndpointId[]
  /** The endpoint providing the default gateway and external connectivity. */
  readonly gatewayEndpoint?: EndpointId
}

export interface JoinOptions extends AbortOptions {
  /** Higher first in the sandbox's endpoint order. @default 0 */
  priority?: number
}

export interface DeleteEndpointOptions extends AbortOptions {
  /** Leave first if joined (errors logged) and ignore driver refusals. @default false */
  force?: boolean
}

export interface DeleteNetworkOptions extends AbortOptions {
  /** Used by recovery: ignore endpoint counts and driver errors. @default false */
  force?: boolean
}

export interface DeleteSandboxOptions extends AbortOptions {
  /**
   * `delete` (upstream behaviour, container removal): leave and delete every endpoint.
   * `leave` ([S3], container stop): leave them but keep them with their addresses and host ports.
   * @default 'delete'
   */
  endpoints?: 'delete' | 'leave'
}

export interface ConnectOptions extends JoinOptions {}

/** One service-discovery record visible from a sandbox. */
export interface ServiceRecord {
  readonly networkId: NetworkId
  readonly networkName: string
  readonly endpointId: EndpointId
  readonly sandboxId: SandboxId
  readonly containerId: string
  /** DNS names: the endpoint name (unless anonymous) followed by its aliases. */
  readonly names: readonly string[]
  readonly ipv4?: IpAddr
  readonly ipv6?: IpAddr
}

export interface ResolvedName {
  readonly ipv4: readonly IpAddr[]
  readonly ipv6: readonly IpAddr[]
}

export type ControllerEvent =
  | {
      readonly type: 'network-created' | 'network-deleted'
      readonly networkId: NetworkId
      readonly name: string
      readonly driver: string
    }
  | {
      readonly type: 'endpoint-created' | 'endpoint-deleted'
      readonly networkId: NetworkId
      readonly endpointId: EndpointId
      readonly name: string
    }
  | {
      readonly type: 'endpoint-joined' | 'endpoint-left'
      readonly networkId: NetworkId
      readonly endpointId: EndpointId
      readonly sandboxId: SandboxId
      readonly containerId: string
    }
  | {
      readonly type: 'sandbox-created' | 'sandbox-deleted'
      readonly sandboxId: SandboxId
      readonly containerId: string
    }
  | { readonly type: 'gateway-changed'; readonly sandboxId: SandboxId; readonly endpointId?: EndpointId }
  /** The service records of this network changed (a joined endpoint appeared, left or was renamed). */
  | { readonly type: 'records-changed'; readonly networkId: NetworkId }

export type ControllerEventListener = (event: ControllerEvent) => void

export type { Scope }

export type DnsServiceProtocol = 'tcp' | 'udp' | 'sctp'

/** One SRV target ([S3]): `_<port>._<proto>.<name>` → container port; `_host_<port>` → published host port. */
export interface DnsServiceRecord {
  readonly target: string
  readonly port: number
  readonly addresses: readonly string[]
}

/**
 * Per-sandbox record source, structurally what `@cnm/resolver` consumes (sandbox-dns.md §3.2–3.4).
 * Names are matched case-insensitively; addresses are canonical text.
 */
export interface DnsRecordSource {
  readonly generation: number
  lookupName(name: string): { readonly ipv4: readonly string[]; readonly ipv6: readonly string[] } | undefined
  /** PTR target `<name>.<network>` of an address on the sandbox's networks. */
  lookupAddress(address: string, version: 4 | 6): string | undefined
  lookupService(name: string, service: string, protocol: DnsServiceProtocol): readonly DnsServiceRecord[] | undefined
}
