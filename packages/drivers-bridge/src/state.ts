import type { AbortOptions } from '@cnm/types'
import { isCnmError, throwIfAborted, parseCidr, parsePrefix, prefixOverlaps, type Logger } from '@cnm/types'
import type { Store } from '@cnm/storeapi'
import { BridgeStoreError } from './errors.js'
import { DEFAULT_BRIDGE_NETWORK_OPTIONS, parseBridgeNetworkOptions, type BridgeNetworkOptions } from './options.js'

/** Root of every key this driver writes (README §9). */
export const STORE_ROOT = 'docker/network/v1.0/'
export const NETWORK_KEY_PREFIX = `${STORE_ROOT}bridge/`
export const ENDPOINT_KEY_PREFIX = `${STORE_ROOT}bridge-endpoint/`

export function networkKey(nid: string): string {
  return `${NETWORK_KEY_PREFIX}${nid}/`
}
export function endpointKey(eid: string): string {
  return `${ENDPOINT_KEY_PREFIX}${eid}/`
}

/** Addressing of one IP family of a bridge network, as strings (JSON-friendly). */
export interface BridgeFamilyRecord {
  /** The IPAM pool, canonical prefix (`172.18.0.0/16`). */
  readonly subnet: string
  /** Address put on the bridge: IPAM gateway + pool mask (`172.18.0.1/16`); undefined when inhibited. */
  readonly bridgeAddress: string | undefined
  /** Gateway handed to containers (the bridge address, or aux `DefaultGatewayIPv4/6`). Plain IP. */
  readonly gateway: string | undefined
}

/** Persisted state of one bridge network (`bridge/<nid>`). */
export interface BridgeNetworkRecord {
  readonly id: string
  readonly bridgeName: string
  readonly options: BridgeNetworkOptions
  readonly ipv4: BridgeFamilyRecord
  readonly ipv6: BridgeFamilyRecord | undefined
  /** The device existed before this network: never deleted by the driver. */
  readonly userCreatedBridge: boolean
  readonly createdAt: string
}

export type PortProto = 'tcp' | 'udp' | 'sctp'

/** A port binding as requested (`-p [hostIp:]hostPort[-hostPortEnd]:containerPort/proto`), JSON form. */
export interface PortBindingRecord {
  readonly proto: PortProto
  readonly containerPort: number
  /** Empty/undefined → the network's host_binding_ipv4 or the driver default. */
  readonly hostIp?: string | undefined
  /** 0 → ephemeral. */
  readonly hostPort: number
  /** 0 → same as hostPort. */
  readonly hostPortEnd?: number | undefined
}

/** A host port the endpoint holds; kept from the first mapping until the endpoint is deleted ([S3]). */
export interface PortMappingRecord {
  readonly proto: PortProto
  readonly containerPort: number
  readonly hostIp: string
  readonly hostPort: number
}

export interface ExposedPortRecord {
  readonly proto: PortProto
  readonly port: number
}

/** Persisted state of one endpoint (`bridge-endpoint/<eid>`). */
export interface BridgeEndpointRecord {
  readonly id: string
  readonly networkId: string
  /** Host end of the veth pair, enslaved to the bridge. */
  readonly hostIfName: string
  /** Container end (srcName handed to JoinInfo). */
  readonly containerIfName: string
  readonly macAddress: string
  /** IPv4 CIDR (`172.18.0.2/16`). */
  readonly ipv4: string
  /** IPv6 CIDR, if any. */
  readonly ipv6: string | undefined
  /** The IPv6 address was derived by this driver from the MAC (not given by IPAM). */
  readonly ipv6FromMac: boolean
  /** Set while joined: the sandbox key it joined. */
  readonly sandboxKey: string | undefined
  /**
   * The last join created the veth pair inside the sandbox (it has no host-side name to go back to). Kept
   * after the leave, because the sandbox layer removes the interface after the driver's leave.
   */
  readonly vethInPlace?: boolean
  /** External connectivity (port publishing) is programmed. */
  readonly externalConnectivity: boolean
  readonly exposedPorts: readonly ExposedPortRecord[]
  readonly portBindings: readonly PortBindingRecord[]
  /** Host ports held for this endpoint ([S3]: kept across leave/join, freed on delete). */
  readonly portMappings: readonly PortMappingRecord[]
}

const enc = new TextEncoder()
const dec = new TextDecoder()

function isObj(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}
function str(v: unknown, what: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new Error(`${what} must be a non-empty string`)
  return v
}
function optStr(v: unknown, what: string): string | undefined {
  if (v === undefined || v === null) return undefined
  return str(v, what)
}
function bool(v: unknown, what: string): boolean {
  if (typeof v !== 'boolean') throw new Error(`${what} must be a boolean`)
  return v
}
function port(v: unknown, what: string, allowZero = false): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < (allowZero ? 0 : 1) || v > 65535) {
    throw new Error(`${what} must be a port number`)
  }
  return v
}
function proto(v: unknown, what: string): PortProto {
  if (v !== 'tcp' && v !== 'udp' && v !== 'sctp') throw new Error(`${what} must be tcp, udp or sctp`)
  return v
}

function decodeFamily(v: unknown, what: string): BridgeFamilyRecord {
  if (!isObj(v)) throw new Error(`${what} must be an object`)
  const subnet = str(v['subnet'], `${what}.subnet`)
  parsePrefix(subnet)
  const bridgeAddress = optStr(v['bridgeAddress'], `${what}.bridgeAddress`)
  if (bridgeAddress !== undefined) parseCidr(bridgeAddress)
  return { subnet, bridgeAddress, gateway: optStr(v['gateway'], `${what}.gateway`) }
}

/** Decodes and validates a stored network record. Throws a plain Error describing the first bad field. */
export function decodeNetworkRecord(bytes: Uint8Array): BridgeNetworkRecord {
  const v: unknown = JSON.parse(dec.decode(bytes))
  if (!isObj(v)) throw new Error('network record must be an object')
  const options = parseBridgeNetworkOptions({
    ...DEFAULT_BRIDGE_NETWORK_OPTIONS,
    ...(isObj(v['options']) ? v['options'] : {}),
  })
  return {
    id: str(v['id'], 'id'),
    bridgeName: str(v['bridgeName'], 'bridgeName'),
    options,
    ipv4: decodeFamily(v['ipv4'], 'ipv4'),
    ipv6: v['ipv6'] === undefined || v['ipv6'] === null ? undefined : decodeFamily(v['ipv6'], 'ipv6'),
    userCreatedBridge: bool(v['userCreatedBridge'], 'userCreatedBridge'),
    createdAt: str(v['createdAt'], 'createdAt'),
  }
}

export function encodeNetworkRecord(r: BridgeNetworkRecord): Uint8Array {
  return enc.encode(JSON.stringify(r))
}

/** Decodes and validates a stored endpoint record. */
export function decodeEndpointRecord(bytes: Uint8Array): BridgeEndpointRecord {
  const v: unknown = JSON.parse(dec.decode(bytes))
  if (!isObj(v)) throw new Error('endpoint record must be an object')
  const list = (x: unknown, what: string): unknown[] => {
    if (x === undefined) return []
    if (!Array.isArray(x)) throw new Error(`${what} must be an array`)
    return x
  }
  const ipv4 = str(v['ipv4'], 'ipv4')
  parseCidr(ipv4)
  const ipv6 = optStr(v['ipv6'], 'ipv6')
  if (ipv6 !== undefined) parseCidr(ipv6)
  return {
    id: str(v['id'], 'id'),
    networkId: str(v['networkId'], 'networkId'),
    hostIfName: str(v['hostIfName'], 'hostIfName'),
    containerIfName: str(v['containerIfName'], 'containerIfName'),
    macAddress: str(v['macAddress'], 'macAddress'),
    ipv4,
    ipv6,
    ipv6FromMac: v['ipv6FromMac'] === true,
    sandboxKey: optStr(v['sandboxKey'], 'sandboxKey'),
    ...(v['vethInPlace'] === true && { vethInPlace: true }),
    externalConnectivity: v['externalConnectivity'] === true,
    exposedPorts: list(v['exposedPorts'], 'exposedPorts').map((e, i) => {
      if (!isObj(e)) throw new Error(`exposedPorts[${i}] must be an object`)
      return { proto: proto(e['proto'], `exposedPorts[${i}].proto`), port: port(e['port'], `exposedPorts[${i}].port`) }
    }),
    portBindings: list(v['portBindings'], 'portBindings').map((b, i) => {
      if (!isObj(b)) throw new Error(`portBindings[${i}] must be an object`)
      return {
        proto: proto(b['proto'], `portBindings[${i}].proto`),
        containerPort: port(b['containerPort'], `portBindings[${i}].containerPort`),
        hostIp: optStr(b['hostIp'], `portBindings[${i}].hostIp`),
        hostPort: port(b['hostPort'], `portBindings[${i}].hostPort`, true),
        hostPortEnd:
          b['hostPortEnd'] === undefined ? undefined : port(b['hostPortEnd'], `portBindings[${i}].hostPortEnd`, true),
      }
    }),
    portMappings: list(v['portMappings'], 'portMappings').map((m, i) => {
      if (!isObj(m)) throw new Error(`portMappings[${i}] must be an object`)
      return {
        proto: proto(m['proto'], `portMappings[${i}].proto`),
        containerPort: port(m['containerPort'], `portMappings[${i}].containerPort`),
        hostIp: str(m['hostIp'], `portMappings[${i}].hostIp`),
        hostPort: port(m['hostPort'], `portMappings[${i}].hostPort`),
      }
    }),
  }
}

export function encodeEndpointRecord(r: BridgeEndpointRecord): Uint8Array {
  return enc.encode(JSON.stringify(r))
}

/** Two networks that cannot coexist, and why. */
export interface NetworkConflict {
  readonly other: BridgeNetworkRecord
  readonly reason: string
}

/**
 * Checks a candidate network against the existing bridge networks (drivers.md §3.3 step 3): the same bridge
 * device, or overlapping IPv4 or IPv6 subnets. Returns the first conflict, or undefined.
 */
export function findNetworkConflict(
  candidate: Pick<BridgeNetworkRecord, 'id' | 'bridgeName' | 'ipv4' | 'ipv6'>,
  existing: Iterable<BridgeNetworkRecord>,
): NetworkConflict | undefined {
  const v4 = parsePrefix(candidate.ipv4.subnet)
  const v6 = candidate.ipv6 === undefined ? undefined : parsePrefix(candidate.ipv6.subnet)
  for (const other of existing) {
    if (other.id === candidate.id) continue
    if (other.bridgeName === candidate.bridgeName) {
      return { other, reason: `bridge device ${candidate.bridgeName} is already used` }
    }
    if (prefixOverlaps(v4, parsePrefix(other.ipv4.subnet))) {
      return { other, reason: `IPv4 subnet ${candidate.ipv4.subnet} overlaps ${other.ipv4.subnet}` }
    }
    if (v6 !== undefined && other.ipv6 !== undefined && prefixOverlaps(v6, parsePrefix(other.ipv6.subnet))) {
      return { other, reason: `IPv6 subnet ${candidate.ipv6?.subnet ?? ''} overlaps ${other.ipv6.subnet}` }
    }
  }
  return undefined
}

/** Everything loaded back from the store, plus what had to be skipped. */
export interface LoadedState {
  readonly networks: BridgeNetworkRecord[]
  readonly endpoints: BridgeEndpointRecord[]
  /** Keys whose value could not be decoded (they are left in place and logged). */
  readonly corrupt: string[]
}

const MAX_CAS_ATTEMPTS = 5

/**
 * Persists bridge records through the `Store` contract with compare-and-swap on each key's index.
 * The driver is the only writer of its keys, so a lost CAS means a stale cached index: re-read and retry.
 * Without a store, every method is a no-op and `load()` returns nothing.
 */
export class BridgeStateStore {
  private readonly indexes = new Map<string, bigint>()

  constructor(
    private readonly store: Store | undefined,
    private readonly log: Logger,
  ) {}

  get persistent(): boolean {
    return this.store !== undefined
  }

  async saveNetwork(r: BridgeNetworkRecord, options?: AbortOptions): Promise<void> {
    await this.write(networkKey(r.id), encodeNetworkRecord(r), options)
  }

  async deleteNetwork(nid: string, options?: AbortOptions): Promise<void> {
    await this.remove(networkKey(nid), options)
  }

  async saveEndpoint(r: BridgeEndpointRecord, options?: AbortOptions): Promise<void> {
    await this.write(endpointKey(r.id), encodeEndpointRecord(r), options)
  }

  async deleteEndpoint(eid: string, options?: AbortOptions): Promise<void> {
    await this.remove(endpointKey(eid), options)
  }

  /** Reads every network and endpoint record. Undecodable values are reported in `corrupt`, not thrown. */
  async load(options?: AbortOptions): Promise<LoadedState> {
    const networks: BridgeNetworkRecord[] = []
    const endpoints: BridgeEndpointRecord[] = []
    const corrupt: string[] = []
    if (this.store === undefined) return { networks, endpoints, corrupt }
    const store = this.store
    const read = async <T>(prefix: string, decode: (b: Uint8Array) => T, into: T[]): Promise<void> => {
      let pairs
      try {
        pairs = await store.list(prefix, options)
      } catch (err) {
        throw this.wrap(`list ${prefix}`, err)
      }
      for (const p of pairs) {
        try {
          into.push(decode(p.value))
          this.indexes.set(p.key, p.index)
        } catch (err) {
          this.log.error('skip undecodable record %s: %s', p.key, (err as Error).message)
          corrupt.push(p.key)
        }
      }
    }
    await read(NETWORK_KEY_PREFIX, decodeNetworkRecord, networks)
    await read(ENDPOINT_KEY_PREFIX, decodeEndpointRecord, endpoints)
    return { networks, endpoints, corrupt }
  }

  private wrap(what: string, err: unknown): Error {
    if (isCnmError(err, 'ERR_ABORTED')) return err
    return new BridgeStoreError(`store: ${what} failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
  }

  private async write(key: string, value: Uint8Array, options?: AbortOptions): Promise<void> {
    const store = this.store
    if (store === undefined) return
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(options?.signal)
      const known = this.indexes.get(key)
      try {
        const idx =
          known === undefined ? await store.create(key, value, options) : await store.update(key, value, known, options)
        this.indexes.set(key, idx)
        return
      } catch (err) {
        if (!isCnmError(err) || !err.retry || attempt >= MAX_CAS_ATTEMPTS) throw this.wrap(`write ${key}`, err)
        this.log.trace('CAS lost on %s (attempt %d), re-reading', key, attempt)
        const fresh = await store.get(key, options).catch((e: unknown) => {
          throw this.wrap(`read ${key}`, e)
        })
        if (fresh === undefined) this.indexes.delete(key)
        else this.indexes.set(key, fresh.index)
      }
    }
  }

  private async remove(key: string, options?: AbortOptions): Promise<void> {
    const store = this.store
    if (store === undefined) return
    for (let attempt = 1; ; attempt++) {
      throwIfAborted(options?.signal)
      const known = this.indexes.get(key)
      try {
        if (known === undefined) await store.delete(key, options)
        else await store.deleteIf(key, known, options)
        this.indexes.delete(key)
        return
      } catch (err) {
        if (!isCnmError(err) || !err.retry || attempt >= MAX_CAS_ATTEMPTS) throw this.wrap(`delete ${key}`, err)
        const fresh = await store.get(key, options).catch((e: unknown) => {
          throw this.wrap(`read ${key}`, e)
        })
        if (fresh === undefined) {
          this.indexes.delete(key)
          return
        }
        this.indexes.set(key, fresh.index)
      }
    }
  }
}
