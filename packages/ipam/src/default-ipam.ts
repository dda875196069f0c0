import type { Store, KVPair } from '@cnm/storeapi'
import {
  DefaultPoolNotSupportedError,
  InvalidAddressError,
  InvalidAddressSpaceError,
  InvalidIpamConfigError,
  InvalidPoolError,
  InvalidSubPoolError,
  IpamStoreError,
  NoAvailablePoolError,
  OPTION_SERIAL,
  OutOfRangeError,
  PoolNotFoundError,
  type AddressResult,
  type AddressSpaces,
  type Ipam,
  type IpamCapabilities,
  type IpamMeta,
  type PoolResult,
  type RequestAddressOptions,
  type RequestPoolOptions,
} from '@cnm/ipamapi'
import {
  formatPrefix,
  isCnmError,
  maskOf,
  parsePrefix,
  throwIfAborted,
  tryParseIp,
  type AbortOptions,
  type ComponentLogger,
  type IpAddr,
  type IpPrefix,
  type Logger,
  type PoolId,
} from '@cnm/types'
import {
  AddressSpaceState,
  rangeOf,
  type ConfigEffects,
  type PoolRecord,
  type Scope,
} from './internal/address-space.js'
import { Mutex } from './internal/mutex.js'
import { PoolBitmap, bitmapSize } from './internal/pool-bitmap.js'
import { formatKey, parsePoolId, type SubnetKey } from './internal/pool-id.js'
import {
  GLOBAL_DEFAULT_POOLS,
  LOCAL_DEFAULT_POOLS,
  PredefinedPools,
  lastAddress,
  type PoolBase,
} from './internal/predefined.js'

/** Name of the default address space for local-scope networks. */
export const LOCAL_ADDRESS_SPACE = 'LocalDefault'
/** Name of the default address space for global-scope networks. */
export const GLOBAL_ADDRESS_SPACE = 'GlobalDefault'
/** Store key prefix of the address-space records (`<prefix><space>/`). */
export const CONFIG_KEY_PREFIX = 'docker/network/v1.0/ipam/default/config/'
/** Store key prefix of the address bitmaps (`<prefix><pool id>/`). */
export const DATA_KEY_PREFIX = 'docker/network/v1.0/ipam/default/data/'

export interface DefaultIpamInit {
  /**
   * Default pools of the local address space, each `base` split into subnets of prefix length `size`.
   * An empty list keeps the built-in one.
   * @default LOCAL_DEFAULT_POOLS (172.17–172.31 as /16s, then 192.168.0.0/16 as /20s: 31 pools)
   */
  localPools?: readonly PoolBase[]
  /**
   * Default pools of the global address space. An empty list keeps the built-in one.
   * @default GLOBAL_DEFAULT_POOLS (10.0.0.0/8 as /24s: 65 536 pools, computed lazily)
   */
  globalPools?: readonly PoolBase[]
  /**
   * Further address spaces (local scope, kept in the local store). They take explicit pools only:
   * asking one for a default pool throws DefaultPoolNotSupportedError.
   * @default []
   */
  addressSpaces?: readonly string[]
}

export interface DefaultIpamComponents {
  /**
   * Store of the local address space (and of `addressSpaces`). Without it, local state is in memory only
   * and `capabilities.requiresRequestReplay` is true.
   * @default undefined
   */
  store?: Store
  /** Store of the global address space. Without it, global state is in memory only. @default undefined */
  globalStore?: Store
  logger: ComponentLogger
}

export const DEFAULT_IPAM_INIT: Readonly<Required<DefaultIpamInit>> = Object.freeze({
  localPools: LOCAL_DEFAULT_POOLS,
  globalPools: GLOBAL_DEFAULT_POOLS,
  addressSpaces: Object.freeze([]) as readonly string[],
})

const EMPTY_META: IpamMeta = Object.freeze({})
const encoder = new TextEncoder()
const decoder = new TextDecoder()
const KEY_MODIFIED = 'ERR_STORE_KEY_MODIFIED'
const KEY_EXISTS = 'ERR_STORE_KEY_EXISTS'

/** What an address request on a pool ID needs, cached per pool ID. */
interface PoolEntry {
  readonly rec: PoolRecord
  readonly space: SpaceCtl
  readonly bitmap: PoolBitmap
  readonly master: IpPrefix
  /** Ordinal range automatic addresses come from (the sub-pool range, or the whole bitmap). */
  readonly start: bigint
  readonly end: bigint
  readonly lastOrdinal: bigint
  /** IPv4 only: the network and last ordinal as numbers, for the allocation-free release path; else -1. */
  readonly network4: number
  readonly last4: number
}

function wrapStore(err: unknown, what: string): unknown {
  if (isCnmError(err, 'ERR_IPAM_STORE') || isCnmError(err, 'ERR_ABORTED')) return err
  return new IpamStoreError(`${what} failed`, { cause: err })
}

/** One address space: its cached records, its store, its default pools and the lock serialising changes. */
class SpaceCtl {
  readonly name: string
  readonly scope: Scope
  readonly store: Store | undefined
  readonly key: string
  readonly predefined: PredefinedPools | undefined
  readonly lock = new Mutex()
  /** Rotating start of the default-pool walk (in memory only). */
  startIndex = 0n
  state: AddressSpaceState | undefined
  /** Store index of `state`; undefined when the key did not exist. */
  index: bigint | undefined

  constructor(name: string, scope: Scope, store: Store | undefined, predefined: PredefinedPools | undefined) {
    this.name = name
    this.scope = scope
    this.store = store
    this.key = `${CONFIG_KEY_PREFIX}${name}/`
    this.predefined = predefined
  }

  decode(pair: KVPair | undefined): AddressSpaceState {
    if (pair === undefined) return new AddressSpaceState(this.name, this.scope)
    return AddressSpaceState.fromJSON(this.name, this.scope, decoder.decode(pair.value))
  }
}

/**
 * The built-in IPAM (libnetwork's `ipam.Allocator`): local and global address spaces, default pools,
 * explicit pools and sub-pools with reference counts, and address bitmaps on `@cnm/bitseq`. With stores,
 * state is persisted in libnetwork's format and shared safely (compare-and-swap) between instances.
 */
export class DefaultIpam implements Ipam {
  readonly builtIn = true
  readonly capabilities: IpamCapabilities
  private readonly log: Logger
  private readonly spaces = new Map<string, SpaceCtl>()
  /** Every known pool ID (masters and sub-pools) of every space. */
  private readonly entries = new Map<string, PoolEntry>()
  /** Address bitmaps by master pool ID. */
  private readonly bitmaps = new Map<string, PoolBitmap>()

  constructor(init: DefaultIpamInit | undefined, components: DefaultIpamComponents) {
    const cfg = { ...DEFAULT_IPAM_INIT, ...init }
    if (components === undefined || typeof components.logger?.forComponent !== 'function') {
      throw new InvalidIpamConfigError('components.logger is required')
    }
    this.log = components.logger.forComponent('cnm:ipam')
    const local = new PredefinedPools(cfg.localPools.length > 0 ? cfg.localPools : LOCAL_DEFAULT_POOLS, 'localPools')
    const global = new PredefinedPools(
      cfg.globalPools.length > 0 ? cfg.globalPools : GLOBAL_DEFAULT_POOLS,
      'globalPools',
    )
    this.spaces.set(LOCAL_ADDRESS_SPACE, new SpaceCtl(LOCAL_ADDRESS_SPACE, 'local', components.store, local))
    this.spaces.set(GLOBAL_ADDRESS_SPACE, new SpaceCtl(GLOBAL_ADDRESS_SPACE, 'global', components.globalStore, global))
    cfg.addressSpaces.forEach((name, i) => {
      if (typeof name !== 'string' || name === '' || name.includes('/') || this.spaces.has(name)) {
        throw new InvalidIpamConfigError(
          `addressSpaces[${i}]: invalid or duplicate address space ${JSON.stringify(name)}`,
        )
      }
      this.spaces.set(name, new SpaceCtl(name, 'local', components.store, undefined))
    })
    this.capabilities = Object.freeze({
      requiresMacAddress: false,
      requiresRequestReplay: components.store === undefined,
    })
  }

  async getDefaultAddressSpaces(options?: AbortOptions): Promise<AddressSpaces> {
    throwIfAborted(options?.signal)
    return { local: LOCAL_ADDRESS_SPACE, global: GLOBAL_ADDRESS_SPACE }
  }

  // ------------------------------------------------------------------ pools

  async requestPool(request: RequestPoolOptions): Promise<PoolResult> {
    const signal = request?.signal
    throwIfAborted(signal)
    const { addressSpace, pool: poolText, subPool: subText } = request
    if (typeof addressSpace !== 'string' || addressSpace === '') throw new InvalidAddressSpaceError()
    const hasPool = poolText !== undefined && poolText !== ''
    const hasSub = subText !== undefined && subText !== ''
    if (!hasPool && hasSub) throw new InvalidSubPoolError('a sub-pool requires a pool')
    let pool: IpPrefix | undefined
    let sub: IpPrefix | undefined
    if (hasPool) {
      try {
        pool = parsePrefix(poolText)
      } catch (err) {
        throw new InvalidPoolError(`invalid pool ${JSON.stringify(poolText)}`, { cause: err })
      }
    }
    if (hasSub && pool !== undefined) {
      try {
        sub = parsePrefix(subText)
      } catch (err) {
        throw new InvalidSubPoolError(`invalid sub-pool ${JSON.stringify(subText)}`, { cause: err })
      }
      if (
        sub.version !== pool.version ||
        sub.bits < pool.bits ||
        (sub.network & maskOf(pool.version, pool.bits)) !== pool.network
      ) {
        throw new InvalidSubPoolError(`sub-pool ${formatPrefix(sub)} is not inside pool ${formatPrefix(pool)}`)
      }
    }
    const space = this.space(addressSpace)
    const range = pool !== undefined && sub !== undefined ? rangeOf(pool, sub) : undefined
    if (range !== undefined && pool !== undefined && range.end >= bitmapSize(pool)) {
      throw new InvalidSubPoolError(
        `sub-pool ${formatPrefix(range.sub)} lies beyond the 2^64 - 1 addressable addresses of ${formatPrefix(pool)}`,
      )
    }
    const v6 = request.v6 === true
    const result = await this.mutate(space, signal, (state) => {
      let p = pool
      let nextStart: bigint | undefined
      if (p === undefined) {
        const pick = this.pickDefault(space, state, v6)
        p = pick.pool
        nextStart = pick.next
      }
      const key: SubnetKey = {
        addressSpace,
        subnet: formatPrefix(p),
        childSubnet: range === undefined ? '' : formatPrefix(range.sub),
      }
      const effects = state.addPool(key, p, range)
      const id = formatKey(key) as PoolId
      const value: PoolResult = { poolId: id, pool: p, meta: EMPTY_META }
      return {
        value,
        effects,
        onCommit: () => {
          if (nextStart !== undefined) space.startIndex = nextStart
        },
      }
    })
    this.log('requested pool %s', result.poolId)
    return result
  }

  async releasePool(poolId: PoolId, options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    throwIfAborted(signal)
    const { key } = parsePoolId(poolId)
    const space = this.space(key.addressSpace)
    const id = formatKey(key)
    await this.mutate(space, signal, (state) => ({ value: undefined, effects: state.releasePool(id) }))
    this.log('released pool %s', id)
  }

  /** First free default pool of the space, walking from the rotating start index. */
  private pickDefault(space: SpaceCtl, state: AddressSpaceState, v6: boolean): { pool: IpPrefix; next: bigint } {
    const list = space.predefined
    if (list === undefined) {
      throw new DefaultPoolNotSupportedError(`no default pool available for non-default address space ${space.name}`)
    }
    const want = v6 ? 6 : 4
    const n = list.length
    let idx = n === 0n ? 0n : space.startIndex % n
    for (let seen = 0n; seen < n;) {
      const cand = list.at(idx)
      let next: bigint
      if (cand.version !== want) {
        const b = list.baseOf(idx)
        next = b.first + b.count
      } else {
        const cover = state.containing(cand)
        if (cover !== undefined) next = list.indexAfter(idx, lastAddress(cover))
        else if (state.overlaps(cand)) next = idx + 1n
        else return { pool: cand, next: (idx + 1n) % n }
      }
      seen += next - idx
      idx = next % n
    }
    throw new NoAvailablePoolError(
      `could not find an available, non-overlapping IPv${want} address pool among the defaults to assign to the network`,
    )
  }

  private space(name: string): SpaceCtl {
    const s = this.spaces.get(name)
    if (s === undefined) {
      throw new InvalidAddressSpaceError(
        `cannot find address space ${name} (most likely the backing datastore is not configured)`,
      )
    }
    return s
  }

  /**
   * Runs a change of the space's records under its lock: compute on the cached records, persist with
   * compare-and-swap against the cached index, and on a conflict reload and compute again.
   */
  private mutate<T>(
    space: SpaceCtl,
    signal: AbortSignal | undefined,
    fn: (state: AddressSpaceState) => { value: T; effects: ConfigEffects; onCommit?: () => void },
  ): Promise<T> {
    return space.lock.run(async () => {
      for (;;) {
        throwIfAborted(signal)
        const state = await this.loaded(space)
        const store = space.store
        let r: ReturnType<typeof fn>
        try {
          r = fn(state)
        } catch (err) {
          // An answer computed from a stale cache (overlap, unknown pool, no free default) must be
          // checked against the stored state before it is given.
          if (store !== undefined && isCnmError(err) && !isCnmError(err, 'ERR_IPAM_STORE')) {
            const pair = await this.storeGet(store, space.key)
            if (pair?.index !== space.index) {
              this.install(space, space.decode(pair), pair?.index)
              continue
            }
          }
          throw err
        }
        if (store !== undefined) {
          try {
            for (const id of r.effects.created) await this.clearStaleBitmap(store, id)
            const value = encoder.encode(state.toJSON())
            space.index =
              space.index === undefined
                ? await store.create(space.key, value)
                : await store.update(space.key, value, space.index)
          } catch (err) {
            // The cached records hold the uncommitted change: forget them.
            space.state = undefined
            space.index = undefined
            if (isCnmError(err, KEY_MODIFIED) || isCnmError(err, KEY_EXISTS)) {
              this.log.trace('address space %s changed concurrently, retrying', space.name)
              continue
            }
            throw wrapStore(err, `writing address space ${space.name}`)
          }
        }
        r.onCommit?.()
        await this.applyEffects(space, r.effects)
        return r.value
      }
    })
  }

  /** The space's records, read from its store on first use (or after a failed write). */
  private async loaded(space: SpaceCtl): Promise<AddressSpaceState> {
    if (space.state !== undefined) return space.state
    if (space.store === undefined) {
      this.install(space, new AddressSpaceState(space.name, space.scope), undefined)
    } else {
      const pair = await this.storeGet(space.store, space.key)
      this.install(space, space.decode(pair), pair?.index)
    }
    return space.state as unknown as AddressSpaceState
  }

  /** Replaces a space's cached records and brings the pool entries and bitmaps in line with them. */
  private install(space: SpaceCtl, state: AddressSpaceState, index: bigint | undefined): void {
    space.state = state
    space.index = index
    for (const [id, e] of this.entries) {
      if (e.space !== space) continue
      const rec = state.get(id)
      if (rec === undefined) {
        this.entries.delete(id)
        if (e.rec.range === undefined) this.dropBitmap(id)
      }
    }
    for (const rec of state.subnets.values()) if (rec.range === undefined) this.addEntry(space, rec, false)
    for (const rec of state.subnets.values()) if (rec.range !== undefined) this.addEntry(space, rec, false)
  }

  private addEntry(space: SpaceCtl, rec: PoolRecord, fresh: boolean): void {
    const existing = this.entries.get(rec.id)
    const masterId = rec.parent ?? rec.id
    let bitmap = this.bitmaps.get(masterId)
    if (bitmap === undefined || fresh) {
      if (bitmap !== undefined) this.dropBitmap(masterId)
      const store = space.store
      bitmap = new PoolBitmap({
        id: masterId,
        pool: rec.pool,
        log: this.log,
        fresh,
        ...(store === undefined
          ? {}
          : {
              store: {
                store,
                key: `${DATA_KEY_PREFIX}${masterId}/`,
                poolExists: () => this.poolExists(space, masterId),
              },
            }),
      })
      this.bitmaps.set(masterId, bitmap)
    } else if (existing !== undefined && existing.bitmap === bitmap) {
      this.entries.set(rec.id, { ...existing, rec })
      return
    }
    const last = bitmap.bits - 1n
    this.entries.set(rec.id, {
      rec,
      space,
      bitmap,
      master: rec.pool,
      start: rec.range?.start ?? 0n,
      end: rec.range?.end ?? last,
      lastOrdinal: last,
      network4: rec.pool.version === 4 ? Number(rec.pool.network) : -1,
      last4: rec.pool.version === 4 ? Number(last) : -1,
    })
  }

  private dropBitmap(masterId: string): void {
    const bm = this.bitmaps.get(masterId)
    if (bm === undefined) return
    this.bitmaps.delete(masterId)
    bm.close().catch((err: unknown) => this.log.trace('closing bitmap %s: %s (ignored, it is gone)', masterId, err))
  }

  private async applyEffects(space: SpaceCtl, fx: ConfigEffects): Promise<void> {
    for (const id of fx.dropped) this.entries.delete(id)
    for (const rec of fx.added) if (rec.range === undefined) this.addEntry(space, rec, fx.created.includes(rec.id))
    for (const rec of fx.added) if (rec.range !== undefined) this.addEntry(space, rec, false)
    const store = space.store
    for (const id of fx.created) {
      const bm = this.bitmaps.get(id)
      if (bm !== undefined && store !== undefined) {
        try {
          await bm.createStored()
        } catch (err) {
          // The pool is committed; its bitmap is created lazily by the first address request instead.
          this.log.error('creating address bitmap of %s failed: %s', id, err)
        }
      }
    }
    for (const id of fx.removed) {
      const bm = this.bitmaps.get(id)
      this.bitmaps.delete(id)
      if (bm !== undefined) await bm.close()
      if (store !== undefined) {
        try {
          await this.deleteBitmap(space, store, id)
        } catch (err) {
          // A leftover bitmap is harmless: creating the pool again clears it first.
          this.log.error('deleting address bitmap of %s failed: %s', id, err)
        }
      }
    }
  }

  /**
   * Before a new master pool is committed: a bitmap under its key can only be a leftover of an earlier
   * pool with the same ID (nobody writes the bitmap of a pool absent from the stored records). Delete it
   * conditionally; the config write that follows validates that the records did not change meanwhile.
   */
  private async clearStaleBitmap(store: Store, masterId: string): Promise<void> {
    const key = `${DATA_KEY_PREFIX}${masterId}/`
    const pair = await store.get(key)
    if (pair !== undefined) {
      this.log('clearing leftover address bitmap of %s', masterId)
      await store.deleteIf(key, pair.index)
    }
  }

  /**
   * After a master pool was removed: delete its bitmap, unless the pool was created again meanwhile (by
   * another instance). The bitmap is read before the records, so a re-creation in between either shows
   * in the records or changes the bitmap's index, and the conditional delete then does nothing.
   */
  private async deleteBitmap(space: SpaceCtl, store: Store, masterId: string): Promise<void> {
    const key = `${DATA_KEY_PREFIX}${masterId}/`
    const pair = await store.get(key)
    if (pair === undefined) return
    const cfg = await store.get(space.key)
    if (cfg !== undefined && space.decode(cfg).get(masterId) !== undefined) return
    try {
      await store.deleteIf(key, pair.index)
    } catch (err) {
      if (!isCnmError(err, KEY_MODIFIED)) throw err
    }
  }

  /**
   * Whether a master pool exists in the stored records. Reads the store directly, without the space lock:
   * a bitmap being closed under that lock may be waiting for this answer.
   */
  private async poolExists(space: SpaceCtl, masterId: string): Promise<boolean> {
    if (space.store === undefined) return space.state?.get(masterId) !== undefined
    const pair = await this.storeGet(space.store, space.key)
    return pair !== undefined && space.decode(pair).get(masterId) !== undefined
  }

  /** Re-reads the space's records when the stored index differs from the cached one. Call under the lock. */
  private async refresh(space: SpaceCtl): Promise<void> {
    if (space.store === undefined) {
      await this.loaded(space)
      return
    }
    const pair = await this.storeGet(space.store, space.key)
    if (space.state === undefined || pair?.index !== space.index) {
      this.install(space, space.decode(pair), pair?.index)
    }
  }

  private async storeGet(store: Store, key: string): Promise<KVPair | undefined> {
    try {
      return await store.get(key)
    } catch (err) {
      throw wrapStore(err, `reading ${key}`)
    }
  }

  // ------------------------------------------------------------------ addresses

  /** The cached entry of a pool ID; on a miss, re-reads the space's records once before giving up. */
  private async entry(poolId: PoolId): Promise<PoolEntry> {
    const e = this.entries.get(poolId)
    if (e !== undefined) return e
    const { key } = parsePoolId(poolId)
    const space = this.space(key.addressSpace)
    const id = formatKey(key)
    await space.lock.run(() => this.refresh(space))
    const again = this.entries.get(id)
    if (again === undefined) throw new PoolNotFoundError(`cannot find address pool for poolID:${poolId}`)
    return again
  }

  async requestAddress(poolId: PoolId, request?: RequestAddressOptions): Promise<AddressResult> {
    const signal = request?.signal
    throwIfAborted(signal)
    const e = this.entries.get(poolId) ?? (await this.entry(poolId))
    const bm = e.bitmap
    const serial = request?.options?.[OPTION_SERIAL] === 'true'
    let ordinal: bigint
    if (request?.preferred !== undefined) {
      const want = this.ordinalIn(e, request.preferred)
      if (bm.persistent) ordinal = await bm.enqueue('set', want, want, false, signal)
      else {
        bm.setSync(want)
        ordinal = want
      }
    } else if (bm.persistent) {
      ordinal = await bm.enqueue('any', e.start, e.end, serial, signal)
    } else {
      ordinal = bm.allocSync(e.start, e.end, serial)
    }
    const master = e.master
    return {
      address: { ip: { version: master.version, value: master.network + ordinal }, prefix: master },
      meta: EMPTY_META,
    }
  }

  async releaseAddress(poolId: PoolId, address: IpAddr | string, options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    throwIfAborted(signal)
    const e = this.entries.get(poolId) ?? (await this.entry(poolId))
    if (
      !e.bitmap.persistent &&
      e.network4 >= 0 &&
      typeof address === 'object' &&
      address !== null &&
      address.version === 4 &&
      typeof address.value === 'bigint'
    ) {
      // IPv4 fast path: exact number arithmetic, no bigint allocated.
      const o = Number(address.value) - e.network4
      if (o >= 0 && o <= e.last4) {
        e.bitmap.unsetSync(o)
        return
      }
    }
    const ordinal = this.ordinalIn(e, address)
    if (e.bitmap.persistent) await e.bitmap.enqueue('unset', ordinal, ordinal, false, signal)
    else e.bitmap.unsetSync(ordinal)
  }

  /** Validates an address against the master pool and returns its ordinal. */
  private ordinalIn(e: PoolEntry, address: IpAddr | string): bigint {
    const ip = toIp(address)
    const m = e.master
    const ordinal = ip.value - m.network
    if (ip.version !== m.version || ordinal < 0n || ordinal > e.lastOrdinal) {
      throw new OutOfRangeError(
        `requested address ${
          typeof address === 'string' ? address : String(ip.value)
        } is out of range of pool ${formatPrefix(m)}`,
      )
    }
    return ordinal
  }

  /** Test and diagnostic hook: free addresses left in a master pool's bitmap (in-memory copy). */
  freeAddresses(poolId: PoolId): bigint | undefined {
    const e = this.entries.get(poolId)
    return e?.bitmap.unselected()
  }
}

function toIp(address: IpAddr | string): IpAddr {
  if (typeof address === 'string') {
    const ip = tryParseIp(address)
    if (ip === undefined) throw new InvalidAddressError(`invalid IP address ${JSON.stringify(address)}`)
    return ip
  }
  if (
    typeof address !== 'object' ||
    address === null ||
    (address.version !== 4 && address.version !== 6) ||
    typeof address.value !== 'bigint' ||
    address.value < 0n
  ) {
    throw new InvalidAddressError(`invalid IP address ${String(address as unknown)}`)
  }
  return address
}
