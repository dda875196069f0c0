import {
  formatCidr,
  formatPrefix,
  parseCidr,
  parseIp,
  parsePrefix,
  type IpAddr,
  type IpCidr,
  type IpPrefix,
} from '@cnm/types'
import type { IpamData, PortBinding, Protocol, TransportPort } from './driver.js'
import { InvalidDriverOptionError } from './errors.js'

/** Reserved option and label keys (README §8). */
export const NETLABEL = Object.freeze({
  PREFIX: 'com.docker.network',
  GENERIC: 'com.docker.network.generic',
  ENABLE_IPV6: 'com.docker.network.enable_ipv6',
  INTERNAL: 'com.docker.network.internal',
  PORT_MAP: 'com.docker.network.portmap',
  EXPOSED_PORTS: 'com.docker.network.endpoint.exposedports',
  MAC_ADDRESS: 'com.docker.network.endpoint.macaddress',
  DNS_SERVERS: 'com.docker.network.endpoint.dnsservers',
  GATEWAY: 'com.docker.network.gateway',
  CONTAINER_IFACE_PREFIX: 'com.docker.network.container_iface_prefix',
  HOST_IPV4: 'com.docker.network.host_ipv4',
  DRIVER_MTU: 'com.docker.network.driver.mtu',
  OVERLAY_VXLANID_LIST: 'com.docker.network.driver.overlay.vxlanid_list',
  IPAM_SERIAL: 'com.docker.network.ipam.serial',
} as const)

const describe = (v: unknown): string => {
  try {
    return JSON.stringify(v) ?? String(v)
  } catch {
    return String(v)
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array)
}

/**
 * A `{string: string}` map (driver options, labels). Numbers and booleans are stringified;
 * undefined/null → `{}`; anything else throws InvalidDriverOptionError naming `field`.
 */
export function parseStringMap(raw: unknown, field = 'options'): Record<string, string> {
  if (raw === undefined || raw === null) return {}
  if (!isPlainObject(raw))
    throw new InvalidDriverOptionError(field, `expected an object of strings, got ${describe(raw)}`)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(raw)) {
    if (k === '') throw new InvalidDriverOptionError(field, 'empty key')
    if (typeof v === 'string') out[k] = v
    else if (typeof v === 'number' || typeof v === 'boolean') out[k] = String(v)
    else throw new InvalidDriverOptionError(`${field}.${k}`, `expected a string, got ${describe(v)}`)
  }
  return out
}

/**
 * Labels from `["k=v", ...]` (split at the first `=`, a missing `=` means an empty value)
 * or from a string map.
 */
export function parseLabels(raw: unknown, field = 'labels'): Record<string, string> {
  if (Array.isArray(raw)) {
    const out: Record<string, string> = {}
    for (const item of raw) {
      if (typeof item !== 'string')
        throw new InvalidDriverOptionError(field, `expected "key=value", got ${describe(item)}`)
      const i = item.indexOf('=')
      const k = i < 0 ? item : item.slice(0, i)
      if (k.trim() === '') throw new InvalidDriverOptionError(field, `empty label key in ${describe(item)}`)
      out[k] = i < 0 ? '' : item.slice(i + 1)
    }
    return out
  }
  return parseStringMap(raw, field)
}

/** A boolean option: true/false, or the strings `true`/`false`/`1`/`0` (any case). undefined → `fallback`. */
export function parseBoolOption(raw: unknown, field: string, fallback = false): boolean {
  if (raw === undefined || raw === null || raw === '') return fallback
  if (typeof raw === 'boolean') return raw
  if (typeof raw === 'string') {
    const s = raw.trim().toLowerCase()
    if (s === 'true' || s === '1' || s === 't') return true
    if (s === 'false' || s === '0' || s === 'f') return false
  }
  throw new InvalidDriverOptionError(field, `expected a boolean, got ${describe(raw)}`)
}

export interface IntRange {
  min?: number
  max?: number
}

/** An integer option (number or decimal string) within `[min, max]`. undefined → `undefined`. */
export function parseIntOption(raw: unknown, field: string, range: IntRange = {}): number | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined
  let n: number
  if (typeof raw === 'number') n = raw
  else if (typeof raw === 'string' && /^\s*[-+]?\d+\s*$/.test(raw)) n = Number(raw)
  else throw new InvalidDriverOptionError(field, `expected an integer, got ${describe(raw)}`)
  if (!Number.isSafeInteger(n)) throw new InvalidDriverOptionError(field, `expected an integer, got ${describe(raw)}`)
  if (range.min !== undefined && n < range.min) throw new InvalidDriverOptionError(field, `${n} is below ${range.min}`)
  if (range.max !== undefined && n > range.max) throw new InvalidDriverOptionError(field, `${n} is above ${range.max}`)
  return n
}

/** An IP address option. undefined/'' → undefined. */
export function parseIpOption(raw: unknown, field: string): IpAddr | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined
  if (typeof raw !== 'string') throw new InvalidDriverOptionError(field, `expected an IP address, got ${describe(raw)}`)
  try {
    return parseIp(raw)
  } catch (cause) {
    throw new InvalidDriverOptionError(field, `expected an IP address, got ${describe(raw)}`, { cause })
  }
}

/** A CIDR option (address kept as written). undefined/'' → undefined. */
export function parseCidrOption(raw: unknown, field: string): IpCidr | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined
  if (typeof raw !== 'string') throw new InvalidDriverOptionError(field, `expected a CIDR, got ${describe(raw)}`)
  try {
    return parseCidr(raw)
  } catch (cause) {
    throw new InvalidDriverOptionError(field, `expected a CIDR, got ${describe(raw)}`, { cause })
  }
}

/** A prefix option (canonicalised). undefined/'' → undefined. */
export function parsePrefixOption(raw: unknown, field: string): IpPrefix | undefined {
  if (raw === undefined || raw === null || raw === '') return undefined
  if (typeof raw !== 'string') throw new InvalidDriverOptionError(field, `expected a prefix, got ${describe(raw)}`)
  try {
    return parsePrefix(raw)
  } catch (cause) {
    throw new InvalidDriverOptionError(field, `expected a prefix, got ${describe(raw)}`, { cause })
  }
}

const PROTOCOLS: readonly Protocol[] = ['tcp', 'udp', 'sctp']

function parseProto(raw: unknown, field: string): Protocol {
  const p = (raw ?? 'tcp') as string
  if (typeof p === 'string' && (PROTOCOLS as readonly string[]).includes(p.toLowerCase()))
    return p.toLowerCase() as Protocol
  throw new InvalidDriverOptionError(field, `unknown protocol ${describe(raw)}`)
}

function port(raw: unknown, field: string, allowZero: boolean): number {
  const n = parseIntOption(raw, field, { min: allowZero ? 0 : 1, max: 65535 })
  if (n === undefined) {
    if (allowZero) return 0
    throw new InvalidDriverOptionError(field, 'port is required')
  }
  return n
}

/** Exposed ports: `["80/tcp", "53/udp"]`, `["80"]` or `[{proto, port}]`. */
export function parseTransportPorts(raw: unknown, field = 'exposedPorts'): TransportPort[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) throw new InvalidDriverOptionError(field, `expected a list, got ${describe(raw)}`)
  return raw.map((item, i) => {
    const f = `${field}[${i}]`
    if (typeof item === 'string') {
      const [p, proto] = item.split('/')
      return { proto: parseProto(proto, f), port: port(p, f, false) }
    }
    if (isPlainObject(item)) return { proto: parseProto(item.proto, f), port: port(item.port, f, false) }
    throw new InvalidDriverOptionError(f, `expected "port/proto", got ${describe(item)}`)
  })
}

/**
 * Port bindings: strings in `-p` syntax (`[hostIp:]hostPort[-end]:containerPort[/proto]`, `containerPort[/proto]`)
 * or objects `{proto, containerPort, hostIp?, hostPort?, hostPortEnd?}`.
 */
export function parsePortBindings(raw: unknown, field = 'portBindings'): PortBinding[] {
  if (raw === undefined || raw === null) return []
  if (!Array.isArray(raw)) throw new InvalidDriverOptionError(field, `expected a list, got ${describe(raw)}`)
  return raw.map((item, i) => {
    const f = `${field}[${i}]`
    let proto: Protocol
    let containerPort: number
    let hostIp: IpAddr | undefined
    let hostPort: number
    let hostPortEnd: number
    if (typeof item === 'string') {
      const slash = item.lastIndexOf('/')
      const spec = slash < 0 ? item : item.slice(0, slash)
      proto = parseProto(slash < 0 ? undefined : item.slice(slash + 1), f)
      const lastColon = spec.lastIndexOf(':')
      containerPort = port(spec.slice(lastColon + 1), f, false)
      const rest = lastColon < 0 ? '' : spec.slice(0, lastColon)
      const hostColon = rest.lastIndexOf(':')
      const hostPart = hostColon < 0 ? rest : rest.slice(hostColon + 1)
      const ipPart = hostColon < 0 ? '' : rest.slice(0, hostColon).replace(/^\[|\]$/g, '')
      hostIp = parseIpOption(ipPart, `${f}.hostIp`)
      const [start, end] = hostPart.split('-')
      hostPort = port(start, f, true)
      hostPortEnd = end === undefined ? hostPort : port(end, f, false)
    } else if (isPlainObject(item)) {
      proto = parseProto(item.proto, f)
      containerPort = port(item.containerPort, `${f}.containerPort`, false)
      hostIp = parseIpOption(item.hostIp, `${f}.hostIp`)
      hostPort = port(item.hostPort, `${f}.hostPort`, true)
      hostPortEnd = item.hostPortEnd === undefined ? hostPort : port(item.hostPortEnd, `${f}.hostPortEnd`, true)
    } else {
      throw new InvalidDriverOptionError(f, `expected a port binding, got ${describe(item)}`)
    }
    if (hostPortEnd !== 0 && hostPortEnd < hostPort)
      throw new InvalidDriverOptionError(f, 'host port range end is below its start')
    if (hostPort === 0 && hostPortEnd !== 0) throw new InvalidDriverOptionError(f, 'host port range needs a start')
    return { proto, containerPort, ...(hostIp !== undefined && { hostIp }), hostPort, hostPortEnd }
  })
}

/** Docker's IPAMData JSON (`{AddressSpace, Pool, Gateway, AuxAddresses}`), as used by remote plugins and stores. */
export interface IpamDataJSON {
  AddressSpace: string
  Pool?: string
  Gateway?: string
  AuxAddresses?: Record<string, string>
}

/** IpamData → Docker JSON. */
export function ipamDataToJSON(d: IpamData): IpamDataJSON {
  const aux = Object.entries(d.auxAddresses)
  return {
    AddressSpace: d.addressSpace,
    Pool: formatPrefix(d.pool),
    ...(d.gateway !== undefined && { Gateway: formatCidr(d.gateway) }),
    ...(aux.length > 0 && { AuxAddresses: Object.fromEntries(aux.map(([k, v]) => [k, formatCidr(v)])) }),
  }
}

/** Docker JSON → IpamData. Throws InvalidDriverOptionError. */
export function parseIpamData(raw: unknown, field = 'ipamData'): IpamData {
  if (!isPlainObject(raw)) throw new InvalidDriverOptionError(field, `expected an object, got ${describe(raw)}`)
  const space = raw.AddressSpace ?? raw.addressSpace
  if (typeof space !== 'string') throw new InvalidDriverOptionError(`${field}.AddressSpace`, 'expected a string')
  const pool = parsePrefixOption(raw.Pool ?? raw.pool, `${field}.Pool`)
  if (pool === undefined) throw new InvalidDriverOptionError(`${field}.Pool`, 'a pool is required')
  const gateway = parseCidrOption(raw.Gateway ?? raw.gateway, `${field}.Gateway`)
  if (gateway !== undefined && gateway.ip.version !== pool.version)
    throw new InvalidDriverOptionError(`${field}.Gateway`, 'gateway and pool IP versions differ')
  const auxRaw = parseStringMap(raw.AuxAddresses ?? raw.auxAddresses, `${field}.AuxAddresses`)
  const auxAddresses: Record<string, IpCidr> = {}
  for (const [k, v] of Object.entries(auxRaw)) {
    const c = parseCidrOption(v, `${field}.AuxAddresses.${k}`)
    if (c !== undefined) auxAddresses[k] = c
  }
  return { addressSpace: space, pool, ...(gateway !== undefined && { gateway }), auxAddresses }
}
