import { parseBoolOption, parseIntOption, parsePortBindings, parseStringMap, parseTransportPorts } from '@cnm/driverapi'
import { InvalidArgumentError } from '@cnm/types'
import type {
  CreateEndpointRequest,
  CreateNetworkRequest,
  CreateSandboxRequest,
  ExtraHost,
  IpamConfig,
  JoinOptions,
  NetworkIpamRequest,
  NetworkScope,
} from './types.js'

type Obj = Record<string, unknown>

function obj(raw: unknown, field: string): Obj {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new InvalidArgumentError(`${field} must be an object`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
  }
  return raw as Obj
}

function str(raw: unknown, field: string): string | undefined {
  if (raw === undefined || raw === null) return undefined
  if (typeof raw !== 'string')
    throw new InvalidArgumentError(`${field} must be a string`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
  return raw
}

function strs(raw: unknown, field: string): string[] | undefined {
  if (raw === undefined || raw === null) return undefined
  if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) {
    throw new InvalidArgumentError(`${field} must be a list of strings`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
  }
  return raw as string[]
}

function bool(raw: unknown, field: string): boolean | undefined {
  return raw === undefined || raw === null ? undefined : parseBoolOption(raw, field)
}

/** Drops undefined fields (exactOptionalPropertyTypes-friendly). */
function defined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T
}

function ipamConfigs(raw: unknown, field: string): IpamConfig[] | undefined {
  if (raw === undefined || raw === null) return undefined
  if (!Array.isArray(raw))
    throw new InvalidArgumentError(`${field} must be a list`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
  return raw.map((c, i) => {
    const o = obj(c, `${field}[${i}]`)
    const aux = o.auxAddresses === undefined ? undefined : parseStringMap(o.auxAddresses, `${field}[${i}].auxAddresses`)
    return defined({
      pool: str(o.pool, `${field}[${i}].pool`),
      subPool: str(o.subPool, `${field}[${i}].subPool`),
      gateway: str(o.gateway, `${field}[${i}].gateway`),
      auxAddresses: aux,
    }) as IpamConfig
  })
}

/** Validates untyped JSON (the request type's own field names) into a CreateNetworkRequest. Throws InvalidArgumentError. */
export function parseCreateNetworkRequest(raw: unknown): CreateNetworkRequest {
  const o = obj(raw, 'network request')
  const name = str(o.name, 'name') ?? ''
  const type = str(o.type, 'type') ?? ''
  const scope = str(o.scope, 'scope')
  if (scope !== undefined && !['local', 'global', 'swarm'].includes(scope)) {
    throw new InvalidArgumentError(`invalid scope ${JSON.stringify(scope)}`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
  }
  let ipam: NetworkIpamRequest | undefined
  if (o.ipam !== undefined && o.ipam !== null) {
    const i = obj(o.ipam, 'ipam')
    ipam = defined({
      driver: str(i.driver, 'ipam.driver'),
      addressSpace: str(i.addressSpace, 'ipam.addressSpace'),
      options: i.options === undefined ? undefined : parseStringMap(i.options, 'ipam.options'),
      v4: ipamConfigs(i.v4, 'ipam.v4'),
      v6: ipamConfigs(i.v6, 'ipam.v6'),
    }) as NetworkIpamRequest
  }
  return defined({
    name,
    type,
    id: str(o.id, 'id'),
    checkDuplicate: bool(o.checkDuplicate, 'checkDuplicate'),
    driverOptions: o.driverOptions === undefined ? undefined : parseStringMap(o.driverOptions, 'driverOptions'),
    labels: o.labels === undefined ? undefined : parseStringMap(o.labels, 'labels'),
    enableIPv6: bool(o.enableIPv6, 'enableIPv6'),
    internal: bool(o.internal, 'internal'),
    attachable: bool(o.attachable, 'attachable'),
    ingress: bool(o.ingress, 'ingress'),
    scope: scope as NetworkScope | undefined,
    ipam,
    configOnly: bool(o.configOnly, 'configOnly'),
    configFrom: str(o.configFrom, 'configFrom'),
    persist: bool(o.persist, 'persist'),
  }) as CreateNetworkRequest
}

/** Validates untyped JSON into a CreateEndpointRequest (ports: `-p` strings or objects). Throws InvalidArgumentError. */
export function parseCreateEndpointRequest(raw: unknown): CreateEndpointRequest {
  const o = obj(raw, 'endpoint request')
  return defined({
    name: str(o.name, 'name') ?? '',
    id: str(o.id, 'id'),
    ipv4Address: str(o.ipv4Address, 'ipv4Address'),
    ipv6Address: str(o.ipv6Address, 'ipv6Address'),
    linkLocalAddresses: strs(o.linkLocalAddresses, 'linkLocalAddresses'),
    ipamOptions: o.ipamOptions === undefined ? undefined : parseStringMap(o.ipamOptions, 'ipamOptions'),
    macAddress: str(o.macAddress, 'macAddress'),
    exposedPorts: o.exposedPorts === undefined ? undefined : parseTransportPorts(o.exposedPorts, 'exposedPorts'),
    portBindings: o.portBindings === undefined ? undefined : parsePortBindings(o.portBindings, 'portBindings'),
    dnsServers: strs(o.dnsServers, 'dnsServers'),
    anonymous: bool(o.anonymous, 'anonymous'),
    disableResolution: bool(o.disableResolution, 'disableResolution'),
    aliases: strs(o.aliases, 'aliases'),
    driverOptions: o.driverOptions === undefined ? undefined : parseStringMap(o.driverOptions, 'driverOptions'),
    deferIPv6: bool(o.deferIPv6, 'deferIPv6'),
  }) as CreateEndpointRequest
}

/** Validates untyped JSON into a CreateSandboxRequest. Throws InvalidArgumentError. */
export function parseCreateSandboxRequest(raw: unknown): CreateSandboxRequest {
  const o = obj(raw, 'sandbox request')
  let extraHosts: ExtraHost[] | undefined
  if (o.extraHosts !== undefined && o.extraHosts !== null) {
    if (!Array.isArray(o.extraHosts))
      throw new InvalidArgumentError('extraHosts must be a list', { code: 'ERR_CONTROLLER_BAD_REQUEST' })
    extraHosts = o.extraHosts.map((h, i) => {
      if (typeof h === 'string') {
        const k = h.indexOf(':')
        if (k <= 0)
          throw new InvalidArgumentError(`extraHosts[${i}] must be "name:ip"`, { code: 'ERR_CONTROLLER_BAD_REQUEST' })
        return { name: h.slice(0, k), ip: h.slice(k + 1) }
      }
      const e = obj(h, `extraHosts[${i}]`)
      return { name: str(e.name, `extraHosts[${i}].name`) ?? '', ip: str(e.ip, `extraHosts[${i}].ip`) ?? '' }
    })
  }
  return defined({
    containerId: str(o.containerId, 'containerId') ?? '',
    hostname: str(o.hostname, 'hostname'),
    domainname: str(o.domainname, 'domainname'),
    labels: o.labels === undefined ? undefined : parseStringMap(o.labels, 'labels'),
    portBindings: o.portBindings === undefined ? undefined : parsePortBindings(o.portBindings, 'portBindings'),
    exposedPorts: o.exposedPorts === undefined ? undefined : parseTransportPorts(o.exposedPorts, 'exposedPorts'),
    dnsServers: strs(o.dnsServers, 'dnsServers'),
    dnsSearch: strs(o.dnsSearch, 'dnsSearch'),
    dnsOptions: strs(o.dnsOptions, 'dnsOptions'),
    extraHosts,
    useDefaultSandbox: bool(o.useDefaultSandbox, 'useDefaultSandbox'),
    useExternalKey: bool(o.useExternalKey, 'useExternalKey'),
  }) as CreateSandboxRequest
}

/** Validates untyped JSON into JoinOptions (`{ priority }`). Throws InvalidArgumentError. */
export function parseJoinOptions(raw: unknown): JoinOptions {
  if (raw === undefined || raw === null) return {}
  const o = obj(raw, 'join options')
  const priority = parseIntOption(o.priority, 'priority')
  return priority === undefined ? {} : { priority }
}
