import { parseIp, formatIp, type IpAddr } from '@cnm/types'
import { InvalidBridgeOptionError } from './errors.js'

/** Option keys (labels) understood by the bridge driver (drivers.md §3.2). */
export const BRIDGE_LABELS = Object.freeze({
  generic: 'com.docker.network.generic',
  bridgeName: 'com.docker.network.bridge.name',
  enableIpMasquerade: 'com.docker.network.bridge.enable_ip_masquerade',
  enableIcc: 'com.docker.network.bridge.enable_icc',
  inhibitIpv4: 'com.docker.network.bridge.inhibit_ipv4',
  hostBindingIpv4: 'com.docker.network.bridge.host_binding_ipv4',
  defaultBridge: 'com.docker.network.bridge.default_bridge',
  mtu: 'com.docker.network.driver.mtu',
  enableIpv6: 'com.docker.network.enable_ipv6',
  containerIfacePrefix: 'com.docker.network.container_iface_prefix',
  hostIpv4: 'com.docker.network.host_ipv4',
  internal: 'com.docker.network.internal',
} as const)

/** The bridge driver's per-network options, resolved (every field has its value). */
export interface BridgeNetworkOptions {
  /** Bridge device name; undefined → `br-<first 12 of nid>` (or `docker0` for the default bridge). */
  readonly bridgeName: string | undefined
  /** NAT outbound traffic. @default true */
  readonly enableIpMasquerade: boolean
  /** Allow traffic between containers of this network. @default true */
  readonly enableIcc: boolean
  /** Do not put the IPv4 gateway address on the bridge. @default false */
  readonly inhibitIpv4: boolean
  /** Default host IP for port bindings without one. @default undefined (the driver's defaultBindIp) */
  readonly hostBindingIpv4: string | undefined
  /** Docker's default `bridge` network. @default false */
  readonly defaultBridge: boolean
  /** MTU of the bridge and veths; 0 = kernel default. @default 0 */
  readonly mtu: number
  /** IPv6 on the bridge and endpoints. @default false */
  readonly enableIpv6: boolean
  /** In-container interface name prefix. @default 'eth' */
  readonly containerIfacePrefix: string
  /** SNAT to this address instead of MASQUERADE. @default undefined */
  readonly hostIpv4: string | undefined
  /** No masquerade, no route out, isolated to the subnet. @default false */
  readonly internal: boolean
}

export const DEFAULT_BRIDGE_NETWORK_OPTIONS: Readonly<BridgeNetworkOptions> = Object.freeze({
  bridgeName: undefined,
  enableIpMasquerade: true,
  enableIcc: true,
  inhibitIpv4: false,
  hostBindingIpv4: undefined,
  defaultBridge: false,
  mtu: 0,
  enableIpv6: false,
  containerIfacePrefix: 'eth',
  hostIpv4: undefined,
  internal: false,
})

type Field = keyof BridgeNetworkOptions
type Kind = 'bool' | 'ipv4' | 'mtu' | 'ifname' | 'prefix'

const FIELDS: ReadonlyArray<readonly [Field, Kind]> = [
  ['bridgeName', 'ifname'],
  ['enableIpMasquerade', 'bool'],
  ['enableIcc', 'bool'],
  ['inhibitIpv4', 'bool'],
  ['hostBindingIpv4', 'ipv4'],
  ['defaultBridge', 'bool'],
  ['mtu', 'mtu'],
  ['enableIpv6', 'bool'],
  ['containerIfacePrefix', 'prefix'],
  ['hostIpv4', 'ipv4'],
  ['internal', 'bool'],
]

const LABEL_TO_FIELD = new Map<string, readonly [Field, Kind]>(
  FIELDS.map(([f, k]) => [BRIDGE_LABELS[f], [f, k]] as const),
)
const FIELD_KIND = new Map<string, Kind>(FIELDS.map(([f, k]) => [f, k]))

const TRUE = new Set(['1', 't', 'T', 'TRUE', 'true', 'True'])
const FALSE = new Set(['0', 'f', 'F', 'FALSE', 'false', 'False'])

function fail(key: string, value: unknown, why?: string, cause?: unknown): InvalidBridgeOptionError {
  const shown = typeof value === 'string' ? value : JSON.stringify(value)
  return new InvalidBridgeOptionError(
    key,
    `failed to parse ${key} value ${shown}${why === undefined ? '' : `: ${why}`}`,
    cause === undefined ? undefined : { cause },
  )
}

/** Linux interface name rules (dev_valid_name): 1..15 bytes, not `.`/`..`, no `/`, `:` or whitespace. */
export function isValidIfName(name: string): boolean {
  return name.length > 0 && Buffer.byteLength(name) <= 15 && name !== '.' && name !== '..' && !/[/:\s]/.test(name)
}

function parseValue(key: string, kind: Kind, value: unknown): boolean | number | string {
  switch (kind) {
    case 'bool':
      if (typeof value === 'boolean') return value
      if (typeof value === 'string') {
        if (TRUE.has(value.trim())) return true
        if (FALSE.has(value.trim())) return false
      }
      throw fail(key, value)
    case 'mtu': {
      let n: number
      if (typeof value === 'number') n = value
      else if (typeof value === 'string' && /^[+-]?\d+$/.test(value.trim())) n = Number(value.trim())
      else throw fail(key, value)
      if (!Number.isInteger(n)) throw fail(key, value)
      if (n < 0) throw fail(key, value, 'MTU cannot be negative')
      if (n !== 0 && (n < 68 || n > 65535)) throw fail(key, value, 'MTU must be 0 (default) or between 68 and 65535')
      return n
    }
    case 'ipv4': {
      if (typeof value !== 'string') throw fail(key, value)
      let ip: IpAddr
      try {
        ip = parseIp(value.trim())
      } catch (err) {
        throw fail(key, value, 'not an IP address', err)
      }
      if (ip.version !== 4) throw fail(key, value, 'not an IPv4 address')
      return formatIp(ip)
    }
    case 'ifname':
      if (typeof value !== 'string' || !isValidIfName(value.trim())) {
        throw fail(key, value, 'not a valid interface name (1-15 characters, no "/", ":" or spaces)')
      }
      return value.trim()
    case 'prefix':
      if (typeof value !== 'string' || !/^[A-Za-z][A-Za-z0-9_-]{0,10}$/.test(value.trim())) {
        throw fail(key, value, 'must be 1-11 letters, digits, "_" or "-", starting with a letter')
      }
      return value.trim()
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map)
}

function entriesOf(v: unknown, where: string): Array<[string, unknown]> {
  if (v instanceof Map) {
    const out: Array<[string, unknown]> = []
    for (const [k, val] of v) {
      if (typeof k !== 'string') throw new InvalidBridgeOptionError(where, `${where}: option keys must be strings`)
      out.push([k, val])
    }
    return out
  }
  if (isPlainObject(v)) return Object.entries(v)
  throw new InvalidBridgeOptionError(where, `${where} must be an object of options, got ${typeof v}`)
}

/**
 * Parses the bridge driver's network options from untyped input, once, at the edge.
 *
 * Accepts any of: `undefined` (all defaults); a flat label map (`{"com.docker.network.bridge.name": "br0"}`);
 * libnetwork's option bag (`{"com.docker.network.generic": {labels…}, "com.docker.network.enable_ipv6": true,
 * "com.docker.network.internal": false}`); or typed fields (`{ bridgeName: 'br0', enableIcc: false }`),
 * also inside the generic entry. A `Map` works wherever an object does. Label values are strings
 * (Go `ParseBool` spellings for booleans); typed fields may also be booleans/numbers.
 * Later sources win: generic labels, then typed fields, then the bag's top-level flags.
 * Unknown `com.docker.*`-style labels are ignored (as libnetwork does); unknown typed fields are rejected.
 *
 * @throws InvalidBridgeOptionError (`ERR_BRIDGE_INVALID_OPTION`) naming the offending key.
 */
export function parseBridgeNetworkOptions(raw: unknown): BridgeNetworkOptions {
  const out: { -readonly [K in Field]: BridgeNetworkOptions[K] } = { ...DEFAULT_BRIDGE_NETWORK_OPTIONS }
  if (raw === undefined || raw === null) return Object.freeze(out)
  const set = (field: Field, value: boolean | number | string): void => {
    ;(out as Record<Field, unknown>)[field] = value
  }

  const apply = (source: unknown, where: string, allowGeneric: boolean): void => {
    const labels: Array<[string, unknown]> = []
    const typed: Array<[string, unknown]> = []
    for (const [key, value] of entriesOf(source, where)) {
      if (key === BRIDGE_LABELS.generic) {
        if (!allowGeneric) throw new InvalidBridgeOptionError(key, `${key} cannot be nested`)
        if (value !== undefined && value !== null) apply(value, key, false)
        continue
      }
      if (key.includes('.')) labels.push([key, value])
      else typed.push([key, value])
    }
    for (const [key, value] of labels) {
      const spec = LABEL_TO_FIELD.get(key)
      if (spec === undefined || value === undefined) continue
      set(spec[0], parseValue(key, spec[1], value))
    }
    for (const [key, value] of typed) {
      const kind = FIELD_KIND.get(key)
      if (kind === undefined) throw new InvalidBridgeOptionError(key, `unknown bridge network option "${key}"`)
      if (value === undefined) continue
      set(key as Field, parseValue(key, kind, value))
    }
  }

  // The bag's own top-level flags (enable_ipv6, internal) are applied last so they win over labels.
  const top = entriesOf(raw, 'options')
  const flags = top.filter(([k]) => k === BRIDGE_LABELS.enableIpv6 || k === BRIDGE_LABELS.internal)
  apply(new Map(top.filter(([k]) => k !== BRIDGE_LABELS.enableIpv6 && k !== BRIDGE_LABELS.internal)), 'options', true)
  for (const [key, value] of flags) {
    if (value === undefined || value === null) continue
    const spec = LABEL_TO_FIELD.get(key)
    if (spec !== undefined) set(spec[0], parseValue(key, spec[1], value))
  }
  return Object.freeze(out)
}
