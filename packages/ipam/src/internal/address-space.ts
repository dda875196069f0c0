import { formatPrefix, hostBits, maskOf, parsePrefix, type IpPrefix, type IpVersion } from '@cnm/types'
import { BadPoolError, IpamStoreError, PoolOverlapError } from '@cnm/ipamapi'
import { formatKey, masterKeyOf, parsePoolId, type SubnetKey } from './pool-id.js'

/** A sub-pool's range: host-part ordinals of the sub-pool relative to its master pool, inclusive. */
export interface AddressRange {
  readonly sub: IpPrefix
  readonly start: bigint
  readonly end: bigint
}

/** libnetwork's PoolData. A master pool has no range and no parent. */
export interface PoolRecord {
  readonly key: SubnetKey
  readonly id: string
  /** The master pool (also for a sub-pool record). */
  readonly pool: IpPrefix
  readonly range: AddressRange | undefined
  /** Master key of a sub-pool, undefined for a master. */
  readonly parent: string | undefined
  refCount: number
}

export type Scope = 'local' | 'global'

const MASKS: Record<IpVersion, bigint[]> = {
  4: Array.from({ length: 33 }, (_, l) => maskOf(4, l)),
  6: Array.from({ length: 129 }, (_, l) => maskOf(6, l)),
}

/** Ordinal range of `sub` inside `pool`, as libnetwork computes it. */
export function rangeOf(pool: IpPrefix, sub: IpPrefix): AddressRange {
  const start = sub.network - pool.network
  return { sub, start, end: start + (1n << BigInt(hostBits(sub))) - 1n }
}

/**
 * Index of the registered master pools of one space, answering "does this prefix overlap a registered
 * master?" in O(prefix length) map lookups instead of a scan over every pool.
 */
class OverlapIndex {
  /** exact[v][len]: networks of registered masters with that prefix length (with multiplicity). */
  private readonly exact: Record<IpVersion, Map<bigint, number>[]> = { 4: [], 6: [] }
  /** covers[v][len]: for each registered master of length >= len, its network truncated to len. */
  private readonly covers: Record<IpVersion, Map<bigint, number>[]> = { 4: [], 6: [] }

  private static bump(list: Map<bigint, number>[], len: number, net: bigint, d: number): void {
    let m = list[len]
    if (m === undefined) {
      m = new Map()
      list[len] = m
    }
    const n = (m.get(net) ?? 0) + d
    if (n <= 0) m.delete(net)
    else m.set(net, n)
  }

  add(p: IpPrefix, d: 1 | -1): void {
    const masks = MASKS[p.version]
    OverlapIndex.bump(this.exact[p.version], p.bits, p.network, d)
    const covers = this.covers[p.version]
    for (let l = 0; l <= p.bits; l++) OverlapIndex.bump(covers, l, p.network & (masks[l] as bigint), d)
  }

  /** The shortest registered master that contains `p` (or equals it), if any. */
  containing(p: IpPrefix): IpPrefix | undefined {
    const masks = MASKS[p.version]
    const exact = this.exact[p.version]
    for (let l = 0; l <= p.bits; l++) {
      const m = exact[l]
      if (m === undefined || m.size === 0) continue
      const net = p.network & (masks[l] as bigint)
      if (m.has(net)) return { version: p.version, network: net, bits: l }
    }
    return undefined
  }

  /** True when some registered master lies inside `p` (or equals it). */
  containsAny(p: IpPrefix): boolean {
    return this.covers[p.version][p.bits]?.has(p.network) ?? false
  }

  overlaps(p: IpPrefix): boolean {
    return this.containsAny(p) || this.containing(p) !== undefined
  }
}

/** What the caller must do to the bitmaps after a config change is committed. */
export interface ConfigEffects {
  /** Master pool IDs whose bitmap must be created. */
  readonly created: string[]
  /** Master pool IDs whose bitmap must be destroyed. */
  readonly removed: string[]
  /** Pool records (masters and sub-pools) that appeared. */
  readonly added: PoolRecord[]
  /** Pool record IDs that disappeared. */
  readonly dropped: string[]
}

/**
 * One address space's pool records (libnetwork's addrSpace), with the overlap index. Mutations are
 * applied in place; the caller persists and, on failure, throws the whole object away and reloads.
 */
export class AddressSpaceState {
  readonly name: string
  readonly scope: Scope
  readonly subnets = new Map<string, PoolRecord>()
  private readonly index = new OverlapIndex()

  constructor(name: string, scope: Scope) {
    this.name = name
    this.scope = scope
  }

  get(id: string): PoolRecord | undefined {
    return this.subnets.get(id)
  }

  private insert(rec: PoolRecord): void {
    this.subnets.set(rec.id, rec)
    if (rec.range === undefined) this.index.add(rec.pool, 1)
  }

  private remove(rec: PoolRecord): void {
    this.subnets.delete(rec.id)
    if (rec.range === undefined) this.index.add(rec.pool, -1)
  }

  overlaps(p: IpPrefix): boolean {
    return this.index.overlaps(p)
  }

  containing(p: IpPrefix): IpPrefix | undefined {
    return this.index.containing(p)
  }

  /**
   * libnetwork's updatePoolDBOnAdd. Throws PoolOverlapError (exact key exists, or a new master overlaps
   * a registered master).
   */
  addPool(key: SubnetKey, pool: IpPrefix, range: AddressRange | undefined): ConfigEffects {
    const id = formatKey(key)
    if (this.subnets.has(id)) {
      throw new PoolOverlapError(`requested pool ${id} overlaps with existing pool (already allocated)`)
    }
    if (range === undefined) {
      if (this.index.overlaps(pool)) {
        throw new PoolOverlapError(
          `requested pool ${formatPrefix(pool)} overlaps with an existing pool in ${key.addressSpace}`,
        )
      }
      const rec: PoolRecord = { key, id, pool, range: undefined, parent: undefined, refCount: 1 }
      this.insert(rec)
      return { created: [id], removed: [], added: [rec], dropped: [] }
    }
    const mkey = masterKeyOf(key)
    const mid = formatKey(mkey)
    const rec: PoolRecord = { key, id, pool, range, parent: mid, refCount: 1 }
    const master = this.subnets.get(mid)
    if (master !== undefined) {
      this.insert(rec)
      this.bump(master, 1)
      return { created: [], removed: [], added: [rec], dropped: [] }
    }
    const mrec: PoolRecord = { key: mkey, id: mid, pool, range: undefined, parent: undefined, refCount: 1 }
    this.insert(mrec)
    this.insert(rec)
    return { created: [mid], removed: [], added: [mrec, rec], dropped: [] }
  }

  private bump(rec: PoolRecord, d: number): void {
    let c: PoolRecord | undefined = rec
    while (c !== undefined) {
      c.refCount += d
      c = c.parent === undefined ? undefined : this.subnets.get(c.parent)
    }
  }

  /** libnetwork's updatePoolDBOnRemoval. Throws BadPoolError for an unknown ID. */
  releasePool(id: string): ConfigEffects {
    const rec = this.subnets.get(id)
    if (rec === undefined)
      throw new BadPoolError(`address space ${this.name} does not contain specified address pool ${id}`)
    this.bump(rec, -1)
    const removed: string[] = []
    const dropped: string[] = []
    let c: PoolRecord | undefined = rec
    while (c !== undefined) {
      if (c.refCount <= 0) {
        this.remove(c)
        dropped.push(c.id)
        if (c.range === undefined) removed.push(c.id)
      }
      c = c.parent === undefined ? undefined : this.subnets.get(c.parent)
    }
    return { created: [], removed, added: [], dropped }
  }

  /** The address-space value of §3.10, with exact integers for Start/End. */
  toJSON(): string {
    const subnets: string[] = []
    for (const rec of this.subnets.values()) {
      const parent =
        rec.parent === undefined
          ? { AddressSpace: '', Subnet: '', ChildSubnet: '' }
          : { AddressSpace: rec.key.addressSpace, Subnet: rec.key.subnet, ChildSubnet: '' }
      let body = `"ParentKey":${JSON.stringify(parent)},"Pool":${JSON.stringify(formatPrefix(rec.pool))}`
      if (rec.range !== undefined) {
        body += `,"Range":{"Sub":${JSON.stringify(formatPrefix(rec.range.sub))},"Start":${rec.range.start},"End":${
          rec.range.end
        }}`
      }
      body += `,"RefCount":${rec.refCount}`
      subnets.push(`${JSON.stringify(rec.id)}:{${body}}`)
    }
    return `{"Scope":${JSON.stringify(this.scope)},"Subnets":{${subnets.join(',')}}}`
  }

  /**
   * Decodes a stored address-space value. Range Start/End are recomputed from the CIDRs (JSON numbers
   * cannot carry 64-bit ordinals exactly). Throws IpamStoreError on anything malformed.
   */
  static fromJSON(name: string, scope: Scope, text: string): AddressSpaceState {
    const bad = (why: string, cause?: unknown): IpamStoreError =>
      new IpamStoreError(`cannot decode address space ${name}: ${why}`, cause === undefined ? undefined : { cause })
    let doc: unknown
    try {
      doc = JSON.parse(text)
    } catch (err) {
      throw bad('invalid JSON', err)
    }
    if (typeof doc !== 'object' || doc === null) throw bad('not an object')
    const subnets = (doc as { Subnets?: unknown }).Subnets ?? {}
    if (typeof subnets !== 'object' || subnets === null) throw bad('Subnets is not an object')
    const state = new AddressSpaceState(name, scope)
    const pending: PoolRecord[] = []
    for (const [id, raw] of Object.entries(subnets as Record<string, unknown>)) {
      try {
        const { key } = parsePoolId(id)
        const r = raw as { Pool?: unknown; Range?: { Sub?: unknown } | null; RefCount?: unknown }
        if (typeof r.Pool !== 'string') throw new Error('no Pool')
        const pool = parsePrefix(r.Pool)
        const refCount = r.RefCount
        if (typeof refCount !== 'number' || !Number.isInteger(refCount) || refCount < 0) throw new Error('bad RefCount')
        let range: AddressRange | undefined
        if (r.Range !== undefined && r.Range !== null) {
          if (typeof r.Range.Sub !== 'string') throw new Error('bad Range.Sub')
          range = rangeOf(pool, parsePrefix(r.Range.Sub))
        }
        if ((range === undefined) !== (key.childSubnet === '')) throw new Error('Range does not match the pool id')
        pending.push({
          key,
          id,
          pool,
          range,
          parent: range === undefined ? undefined : formatKey(masterKeyOf(key)),
          refCount,
        })
      } catch (err) {
        throw bad(`pool ${JSON.stringify(id)}`, err)
      }
    }
    for (const rec of pending) state.insert(rec)
    return state
  }
}
