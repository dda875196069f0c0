import {
  formatCidr,
  formatIp,
  formatPrefix,
  parseCidr,
  parseIp,
  parsePrefix,
  type EndpointId,
  type IpAddr,
  type IpCidr,
  type NetworkId,
  type PoolId,
  type SandboxId,
} from '@cnm/types'
import type { MacAddress, PortBinding, PortMapping, StaticRoute, TransportPort } from '@cnm/driverapi'
import type { ExtraHost, IpamConfig, NetworkIpamInfo, NetworkScope } from '../types.js'

/** In-memory network state. */
export interface NetworkState {
  id: NetworkId
  name: string
  type: string
  scope: NetworkScope
  created: string
  labels: Record<string, string>
  driverOptions: Record<string, string>
  enableIPv6: boolean
  internal: boolean
  attachable: boolean
  ingress: boolean
  configOnly: boolean
  configFrom?: string
  persist: boolean
  inDelete: boolean
  ipamDriver: string
  ipamOptions: Record<string, string>
  addressSpace?: string
  ipamConfigV4: IpamConfig[]
  ipamConfigV6: IpamConfig[]
  v4: NetworkIpamInfo[]
  v6: NetworkIpamInfo[]
  /** IPAM resources were released (half-deleted network). */
  ipamReleased: boolean
}

export interface JoinState {
  srcName?: string
  dstPrefix?: string
  /** In-sandbox name (`eth0`). */
  ifaceName?: string
  gateway?: IpAddr
  gatewayIPv6?: IpAddr
  staticRoutes: StaticRoute[]
  disableGatewayService: boolean
  priority: number
  /** Host ports mapped while this is the sandbox's gateway endpoint. */
  portMappings?: PortMapping[]
}

export interface EndpointState {
  id: EndpointId
  name: string
  networkId: NetworkId
  created: string
  address?: IpCidr
  v4PoolId?: PoolId
  addressIPv6?: IpCidr
  v6PoolId?: PoolId
  linkLocal: IpCidr[]
  mac?: MacAddress
  anonymous: boolean
  disableResolution: boolean
  aliases: string[]
  exposedPorts: TransportPort[]
  portBindings: PortBinding[]
  dnsServers: IpAddr[]
  driverOptions: Record<string, string>
  ipamOptions: Record<string, string>
  sandboxId?: SandboxId
  containerId?: string
  join?: JoinState
}

export interface SandboxState {
  id: SandboxId
  containerId: string
  key: string
  created: string
  hostname?: string
  domainname?: string
  labels: Record<string, string>
  portBindings: PortBinding[]
  exposedPorts: TransportPort[]
  dnsServers: string[]
  dnsSearch: string[]
  dnsOptions: string[]
  extraHosts: ExtraHost[]
  useDefaultSandbox: boolean
  useExternalKey: boolean
  /** Joined endpoints in §7.2 order. */
  endpoints: EndpointId[]
  gatewayEndpoint?: EndpointId
  /** Not persisted: a delete is running. */
  deleting: boolean
}

// ---- JSON records (README §9): readable strings for addresses ----

interface IpamInfoJSON {
  poolId: string
  addressSpace: string
  pool: string
  gateway?: string
  auxAddresses: Record<string, string>
}

export interface NetworkRecord {
  id: string
  name: string
  created: string
  networkType: string
  scope: NetworkScope
  labels: Record<string, string>
  generic: Record<string, string>
  enableIPv6: boolean
  internal: boolean
  attachable: boolean
  ingress: boolean
  configOnly: boolean
  configFrom?: string
  persist: boolean
  inDelete: boolean
  ipamType: string
  ipamOptions: Record<string, string>
  addrSpace?: string
  ipamV4Config: IpamConfig[]
  ipamV6Config: IpamConfig[]
  ipamV4Info: IpamInfoJSON[]
  ipamV6Info: IpamInfoJSON[]
  ipamReleased: boolean
}

interface PortBindingJSON {
  proto: PortBinding['proto']
  containerPort: number
  hostIp?: string
  hostPort: number
  hostPortEnd: number
}

interface RouteJSON {
  destination: string
  routeType: StaticRoute['routeType']
  nextHop?: string
}

interface JoinJSON {
  srcName?: string
  dstPrefix?: string
  ifaceName?: string
  gateway?: string
  gatewayIPv6?: string
  routes: RouteJSON[]
  disableGatewayService: boolean
  priority: number
  portMappings?: PortMappingJSON[]
}

interface PortMappingJSON {
  proto: PortMapping['proto']
  containerIp?: string
  containerPort: number
  hostIp?: string
  hostPort: number
}

export interface EndpointRecord {
  id: string
  name: string
  network: string
  created: string
  interface: { mac?: string; addr?: string; addrv6?: string; llAddrs: string[]; v4PoolID?: string; v6PoolID?: string }
  anonymous: boolean
  disableResolution: boolean
  myAliases: string[]
  exposedPorts: TransportPort[]
  portBindings: PortBindingJSON[]
  dnsServers: string[]
  generic: Record<string, string>
  ipamOptions: Record<string, string>
  sandbox?: string
  containerId?: string
  joinInfo?: JoinJSON
}

export interface SandboxRecord {
  id: string
  containerId: string
  key: string
  created: string
  hostname?: string
  domainname?: string
  labels: Record<string, string>
  portBindings: PortBindingJSON[]
  exposedPorts: TransportPort[]
  dnsServers: string[]
  dnsSearch: string[]
  dnsOptions: string[]
  extraHosts: ExtraHost[]
  useDefaultSandbox: boolean
  useExternalKey: boolean
  endpoints: string[]
  gatewayEndpoint?: string
}

export interface CountRecord {
  count: number
}

const opt = <K extends string, V>(k: K, v: V | undefined): { [P in K]?: V } =>
  (v === undefined ? {} : { [k]: v }) as { [P in K]?: V }

function ipamInfoToJSON(i: NetworkIpamInfo): IpamInfoJSON {
  return {
    poolId: i.poolId,
    addressSpace: i.addressSpace,
    pool: formatPrefix(i.pool),
    ...opt('gateway', i.gateway && formatCidr(i.gateway)),
    auxAddresses: Object.fromEntries(Object.entries(i.auxAddresses).map(([k, v]) => [k, formatCidr(v)])),
  }
}

function ipamInfoFromJSON(j: IpamInfoJSON): NetworkIpamInfo {
  return {
    poolId: j.poolId as PoolId,
    addressSpace: j.addressSpace,
    pool: parsePrefix(j.pool),
    ...opt('gateway', j.gateway === undefined ? undefined : parseCidr(j.gateway)),
    auxAddresses: Object.fromEntries(Object.entries(j.auxAddresses ?? {}).map(([k, v]) => [k, parseCidr(v)])),
  }
}

export function networkToRecord(n: NetworkState): NetworkRecord {
  return {
    id: n.id,
    name: n.name,
    created: n.created,
    networkType: n.type,
    scope: n.scope,
    labels: n.labels,
    generic: n.driverOptions,
    enableIPv6: n.enableIPv6,
    internal: n.internal,
    attachable: n.attachable,
    ingress: n.ingress,
    configOnly: n.configOnly,
    ...opt('configFrom', n.configFrom),
    persist: n.persist,
    inDelete: n.inDelete,
    ipamType: n.ipamDriver,
    ipamOptions: n.ipamOptions,
    ...opt('addrSpace', n.addressSpace),
    ipamV4Config: n.ipamConfigV4,
    ipamV6Config: n.ipamConfigV6,
    ipamV4Info: n.v4.map(ipamInfoToJSON),
    ipamV6Info: n.v6.map(ipamInfoToJSON),
    ipamReleased: n.ipamReleased,
  }
}

export function networkFromRecord(r: NetworkRecord): NetworkState {
  return {
    id: r.id as NetworkId,
    name: r.name,
    type: r.networkType,
    scope: r.scope,
    created: r.created,
    labels: r.labels ?? {},
    driverOptions: r.generic ?? {},
    enableIPv6: r.enableIPv6 === true,
    internal: r.internal === true,
    attachable: r.attachable === true,
    ingress: r.ingress === true,
    configOnly: r.configOnly === true,
    ...opt('configFrom', r.configFrom),
    persist: r.persist !== false,
    inDelete: r.inDelete === true,
    ipamDriver: r.ipamType,
    ipamOptions: r.ipamOptions ?? {},
    ...opt('addressSpace', r.addrSpace),
    ipamConfigV4: r.ipamV4Config ?? [],
    ipamConfigV6: r.ipamV6Config ?? [],
    v4: (r.ipamV4Info ?? []).map(ipamInfoFromJSON),
    v6: (r.ipamV6Info ?? []).map(ipamInfoFromJSON),
    ipamReleased: r.ipamReleased === true,
  }
}

function bindingToJSON(b: PortBinding): PortBindingJSON {
  return {
    proto: b.proto,
    containerPort: b.containerPort,
    ...opt('hostIp', b.hostIp && formatIp(b.hostIp)),
    hostPort: b.hostPort,
    hostPortEnd: b.hostPortEnd,
  }
}

function bindingFromJSON(j: PortBindingJSON): PortBinding {
  return {
    proto: j.proto,
    containerPort: j.containerPort,
    ...opt('hostIp', j.hostIp === undefined ? undefined : parseIp(j.hostIp)),
    hostPort: j.hostPort,
    hostPortEnd: j.hostPortEnd,
  }
}

function routeToJSON(r: StaticRoute): RouteJSON {
  return {
    destination: formatPrefix(r.destination),
    routeType: r.routeType,
    ...opt('nextHop', r.nextHop && formatIp(r.nextHop)),
  }
}

function routeFromJSON(j: RouteJSON): StaticRoute {
  return {
    destination: parsePrefix(j.destination),
    routeType: j.routeType,
    ...opt('nextHop', j.nextHop === undefined ? undefined : parseIp(j.nextHop)),
  }
}

export function endpointToRecord(e: EndpointState): EndpointRecord {
  const j = e.join
  return {
    id: e.id,
    name: e.name,
    network: e.networkId,
    created: e.created,
    interface: {
      ...opt('mac', e.mac),
      ...opt('addr', e.address && formatCidr(e.address)),
      ...opt('addrv6', e.addressIPv6 && formatCidr(e.addressIPv6)),
      llAddrs: e.linkLocal.map(formatCidr),
      ...opt('v4PoolID', e.v4PoolId),
      ...opt('v6PoolID', e.v6PoolId),
    },
    anonymous: e.anonymous,
    disableResolution: e.disableResolution,
    myAliases: e.aliases,
    exposedPorts: e.exposedPorts,
    portBindings: e.portBindings.map(bindingToJSON),
    dnsServers: e.dnsServers.map(formatIp),
    generic: e.driverOptions,
    ipamOptions: e.ipamOptions,
    ...opt('sandbox', e.sandboxId),
    ...opt('containerId', e.containerId),
    ...opt(
      'joinInfo',
      j && {
        ...opt('srcName', j.srcName),
        ...opt('dstPrefix', j.dstPrefix),
        ...opt('ifaceName', j.ifaceName),
        ...opt('gateway', j.gateway && formatIp(j.gateway)),
        ...opt('gatewayIPv6', j.gatewayIPv6 && formatIp(j.gatewayIPv6)),
        routes: j.staticRoutes.map(routeToJSON),
        disableGatewayService: j.disableGatewayService,
        priority: j.priority,
        ...opt(
          'portMappings',
          j.portMappings?.map((m) => ({
            proto: m.proto,
            ...opt('containerIp', m.containerIp && formatIp(m.containerIp)),
            containerPort: m.containerPort,
            ...opt('hostIp', m.hostIp && formatIp(m.hostIp)),
            hostPort: m.hostPort,
          })),
        ),
      },
    ),
  }
}

export function endpointFromRecord(r: EndpointRecord): EndpointState {
  const i = r.interface ?? { llAddrs: [] }
  const j = r.joinInfo
  return {
    id: r.id as EndpointId,
    name: r.name,
    networkId: r.network as NetworkId,
    created: r.created,
    ...opt('address', i.addr === undefined ? undefined : parseCidr(i.addr)),
    ...opt('v4PoolId', i.v4PoolID as PoolId | undefined),
    ...opt('addressIPv6', i.addrv6 === undefined ? undefined : parseCidr(i.addrv6)),
    ...opt('v6PoolId', i.v6PoolID as PoolId | undefined),
    linkLocal: (i.llAddrs ?? []).map((s) => parseCidr(s)),
    ...opt('mac', i.mac as MacAddress | undefined),
    anonymous: r.anonymous === true,
    disableResolution: r.disableResolution === true,
    aliases: r.myAliases ?? [],
    exposedPorts: r.exposedPorts ?? [],
    portBindings: (r.portBindings ?? []).map(bindingFromJSON),
    dnsServers: (r.dnsServers ?? []).map((s) => parseIp(s)),
    driverOptions: r.generic ?? {},
    ipamOptions: r.ipamOptions ?? {},
    ...opt('sandboxId', r.sandbox as SandboxId | undefined),
    ...opt('containerId', r.containerId),
    ...opt(
      'join',
      j && {
        ...opt('srcName', j.srcName),
        ...opt('dstPrefix', j.dstPrefix),
        ...opt('ifaceName', j.ifaceName),
        ...opt('gateway', j.gateway === undefined ? undefined : parseIp(j.gateway)),
        ...opt('gatewayIPv6', j.gatewayIPv6 === undefined ? undefined : parseIp(j.gatewayIPv6)),
        staticRoutes: (j.routes ?? []).map(routeFromJSON),
        disableGatewayService: j.disableGatewayService === true,
        priority: j.priority ?? 0,
        ...opt(
          'portMappings',
          j.portMappings?.map((m) => ({
            proto: m.proto,
            ...opt('containerIp', m.containerIp === undefined ? undefined : parseIp(m.containerIp)),
            containerPort: m.containerPort,
            ...opt('hostIp', m.hostIp === undefined ? undefined : parseIp(m.hostIp)),
            hostPort: m.hostPort,
          })),
        ),
      },
    ),
  }
}

export function sandboxToRecord(s: SandboxState): SandboxRecord {
  return {
    id: s.id,
    containerId: s.containerId,
    key: s.key,
    created: s.created,
    ...opt('hostname', s.hostname),
    ...opt('domainname', s.domainname),
    labels: s.labels,
    portBindings: s.portBindings.map(bindingToJSON),
    exposedPorts: s.exposedPorts,
    dnsServers: s.dnsServers,
    dnsSearch: s.dnsSearch,
    dnsOptions: s.dnsOptions,
    extraHosts: s.extraHosts,
    useDefaultSandbox: s.useDefaultSandbox,
    useExternalKey: s.useExternalKey,
    endpoints: s.endpoints,
    ...opt('gatewayEndpoint', s.gatewayEndpoint),
  }
}

export function sandboxFromRecord(r: SandboxRecord): SandboxState {
  return {
    id: r.id as SandboxId,
    containerId: r.containerId,
    key: r.key,
    created: r.created,
    ...opt('hostname', r.hostname),
    ...opt('domainname', r.domainname),
    labels: r.labels ?? {},
    portBindings: (r.portBindings ?? []).map(bindingFromJSON),
    exposedPorts: r.exposedPorts ?? [],
    dnsServers: r.dnsServers ?? [],
    dnsSearch: r.dnsSearch ?? [],
    dnsOptions: r.dnsOptions ?? [],
    extraHosts: r.extraHosts ?? [],
    useDefaultSandbox: r.useDefaultSandbox === true,
    useExternalKey: r.useExternalKey === true,
    endpoints: (r.endpoints ?? []) as EndpointId[],
    ...opt('gatewayEndpoint', r.gatewayEndpoint as EndpointId | undefined),
    deleting: false,
  }
}
