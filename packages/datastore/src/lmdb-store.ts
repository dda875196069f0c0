import { mkdirSync } from 'node:fs'
import { createRequire } from 'node:module'
import { resolve } from 'node:path'
import {
  InvalidArgumentError,
  noopLogger,
  throwIfAborted,
  type AbortOptions,
  type ComponentLogger,
  type Logger,
} from '@cnm/types'
import type * as Lmdb from 'lmdb'
import type { KVPair, ListOptions, Store, WatchEvent, WatchOptions } from './contract.js'
import { KeyExistsError, KeyModifiedError, StoreUnavailableError } from './errors.js'
import { assertIndex } from './internal/checks.js'
import { newOwner, ownerAlive, type OwnerRecord } from './internal/owner.js'
import { deleteSegments, readSegments, WalWriter, type WalOp, type WalRecord } from './internal/wal.js'
import { WatchHub } from './internal/watch-hub.js'
import { assertValidKey, assertValidPrefix, assertValidValue, compareKeys } from './keys.js'

export interface LmdbStoreInit {
  /** Directory of the store; created when missing. Holds `data.mdb`, `lock.mdb` and the write-ahead log. */
  path: string
  /**
   * When a write resolves. `false` (fast): once it is in the write-ahead log, i.e. in the kernel's page
   * cache; a killed process loses nothing, a power loss loses the writes of the last few milliseconds
   * (those whose LMDB commit had not been flushed yet) but never corrupts the store. `true`: once its
   * LMDB transaction has been flushed to the device (fsync); a power loss loses nothing.
   * @default false
   */
  sync?: boolean
  /** Size at which a write-ahead log segment is closed and a new one started (fast mode only). @default 4 MiB */
  walSegmentBytes?: number
}

export interface LmdbStoreComponents {
  /** @default noopLogger() */
  logger?: ComponentLogger
}

export const DEFAULT_LMDB_STORE_INIT: Readonly<Required<Omit<LmdbStoreInit, 'path'>>> = Object.freeze({
  sync: false,
  walSegmentBytes: 4 * 1024 * 1024,
})

/** A write not yet known to be flushed in LMDB. `value` undefined: a deletion. */
interface Pending {
  readonly value: Uint8Array | undefined
  readonly index: number
}

type Env = Lmdb.RootDatabase<unknown, string>
type KvDb = Lmdb.Database<Uint8Array, string>
type MetaDb = Lmdb.Database<unknown, string>

const OWNER_KEY = 'owner'
const HWM_KEY = 'hwm'

function resolveInit(init: LmdbStoreInit): Required<LmdbStoreInit> {
  if (typeof init !== 'object' || init === null) throw new InvalidArgumentError('lmdbStore: init must be an object')
  const cfg = { ...DEFAULT_LMDB_STORE_INIT, ...init }
  if (typeof cfg.path !== 'string' || cfg.path === '') {
    throw new InvalidArgumentError('lmdbStore: path must be a non-empty string')
  }
  if (typeof cfg.sync !== 'boolean') throw new InvalidArgumentError('lmdbStore: sync must be a boolean')
  if (!Number.isSafeInteger(cfg.walSegmentBytes) || cfg.walSegmentBytes < 4096) {
    throw new InvalidArgumentError('lmdbStore: walSegmentBytes must be an integer >= 4096')
  }
  return cfg
}

/** lmdb-js returns a fresh Buffer per read: hand out a plain Uint8Array view of it, as the memory store does. */
function plain(b: Uint8Array): Uint8Array {
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength)
}

/** lmdb loads a native addon: load it when a store is opened, not when the contract is imported. */
function loadLmdb(): typeof Lmdb {
  return createRequire(import.meta.url)('lmdb') as typeof Lmdb
}

/**
 * The embedded persistent store: LMDB through lmdb-js, plus a write-ahead log in fast mode.
 *
 * Compare-and-swap is decided in the owning process, against the newest state (LMDB plus the writes still
 * on their way to it), and every LMDB write is itself conditional on the version this process expects
 * there (`ifVersion`), so a write that would overwrite a state it did not see fails the store instead of
 * being lost silently. Only one process may have a store open at a time (checked at open).
 * Writes of one event-loop turn are committed to LMDB in one transaction.
 */
export class LmdbStore implements Store {
  /** Absolute path of the store directory. */
  readonly path: string
  readonly #sync: boolean
  readonly #log: Logger
  readonly #env: Env
  readonly #kv: KvDb
  readonly #meta: MetaDb
  readonly #getLastVersion: () => number
  readonly #owner: OwnerRecord
  readonly #wal: WalWriter | undefined
  readonly #hub = new WatchHub()
  readonly #pending = new Map<string, Pending>()
  /** Index of the last write handed out. */
  #last: number
  /** Every write up to this index is committed and flushed in LMDB. */
  #durable: number
  /** Promise of the last LMDB operation queued (they settle in order). */
  #tail: Promise<unknown> = Promise.resolve()
  #hwmQueued = false
  #closed = false
  #closing: Promise<void> | undefined
  #failure: StoreUnavailableError | undefined

  constructor(init: LmdbStoreInit, components: LmdbStoreComponents = {}) {
    const cfg = resolveInit(init)
    this.path = resolve(cfg.path)
    this.#sync = cfg.sync
    this.#log = (components.logger ?? noopLogger()).forComponent('cnm:datastore:lmdb')
    try {
      mkdirSync(this.path, { recursive: true })
    } catch (err) {
      throw new StoreUnavailableError(`cannot create store directory ${this.path}`, { cause: err })
    }
    const lmdb = loadLmdb()
    this.#getLastVersion = lmdb.getLastVersion
    let env: Env
    try {
      // Defaults on purpose: overlappingSync (power-loss safe, flushed before a write's promise resolves) and
      // eventTurnBatching (the writes of one event-loop turn share a transaction).
      env = lmdb.open<unknown, string>({ path: this.path, noSubdir: false, maxDbs: 4 })
    } catch (err) {
      throw new StoreUnavailableError(`cannot open LMDB environment at ${this.path}`, { cause: err })
    }
    this.#env = env
    try {
      this.#kv = env.openDB<Uint8Array, string>({ name: 'kv', encoding: 'binary', useVersions: true })
      this.#meta = env.openDB<unknown, string>({ name: 'meta', encoding: 'msgpack' })
      this.#owner = newOwner()
      this.#takeOwnership()
      this.#last = this.#replay()
      this.#durable = this.#last
    } catch (err) {
      env.close().catch((closeErr: unknown) => this.#log.error('closing LMDB after a failed open of %s: %o', this.path, closeErr))
      if (err instanceof StoreUnavailableError) throw err
      throw new StoreUnavailableError(`cannot open store ${this.path}`, { cause: err })
    }
    this.#wal = cfg.sync
      ? undefined
      : new WalWriter({
          dir: this.path,
          segmentBytes: cfg.walSegmentBytes,
          onError: (err) => this.#log.error('cannot delete a write-ahead log segment in %s (retried later): %o', this.path, err),
        })
    this.#log('opened %s at index %d (sync %s)', this.path, this.#last, this.#sync)
  }

  /** The index of the last write (0n for a store never written). */
  get lastIndex(): bigint {
    return BigInt(this.#last)
  }

  async get(key: string, options?: AbortOptions): Promise<KVPair | undefined> {
    assertValidKey(key)
    this.#begin(options)
    const p = this.#pending.get(key)
    if (p !== undefined) {
      return p.value === undefined ? undefined : { key, value: new Uint8Array(p.value), index: BigInt(p.index) }
    }
    let e: { value: Uint8Array; version?: number } | undefined
    try {
      e = this.#kv.getEntry(key)
    } catch (err) {
      throw new StoreUnavailableError(`cannot read ${key}`, { cause: err })
    }
    return e === undefined ? undefined : { key, value: plain(e.value), index: BigInt(e.version ?? 0) }
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    this.#begin(options)
    const index = this.#write('put', key, new Uint8Array(value), undefined) as number
    if (this.#sync) await this.#confirm(this.#tail)
    return BigInt(index)
  }

  async create(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    this.#begin(options)
    const index = this.#write('put', key, new Uint8Array(value), null) as number
    if (this.#sync) await this.#confirm(this.#tail)
    return BigInt(index)
  }

  async update(key: string, value: Uint8Array, previousIndex: bigint, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    assertIndex(previousIndex)
    this.#begin(options)
    const index = this.#write('put', key, new Uint8Array(value), previousIndex) as number
    if (this.#sync) await this.#confirm(this.#tail)
    return BigInt(index)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    this.#begin(options)
    const index = this.#write('delete', key, undefined, undefined)
    if (this.#sync && index !== undefined) await this.#confirm(this.#tail)
  }

  async deleteIf(key: string, previousIndex: bigint, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    assertIndex(previousIndex)
    this.#begin(options)
    this.#write('delete', key, undefined, previousIndex)
    if (this.#sync) await this.#confirm(this.#tail)
  }

  async list(prefix: string, options?: ListOptions): Promise<KVPair[]> {
    assertValidPrefix(prefix)
    this.#begin(options)
    let out: KVPair[] = []
    try {
      const range = this.#kv.getRange(prefix === '' ? { versions: true } : { start: prefix, versions: true })
      for (const { key, value, version } of range) {
        if (!key.startsWith(prefix)) break
        out.push({ key, value: plain(value), index: BigInt(version ?? 0) })
      }
    } catch (err) {
      throw new StoreUnavailableError(`cannot list ${prefix}`, { cause: err })
    }
    if (this.#pending.size === 0) return out
    // Lay the writes still on their way to LMDB over what it has.
    let merged: Map<string, KVPair> | undefined
    for (const [key, p] of this.#pending) {
      if (!key.startsWith(prefix)) continue
      merged ??= new Map(out.map((e) => [e.key, e]))
      if (p.value === undefined) merged.delete(key)
      else merged.set(key, { key, value: new Uint8Array(p.value), index: BigInt(p.index) })
    }
    if (merged !== undefined) out = [...merged.values()].sort((a, b) => compareKeys(a.key, b.key))
    return out
  }

  watch(key: string, options?: WatchOptions): AsyncIterable<WatchEvent> {
    const prefix = options?.prefix === true
    if (prefix) assertValidPrefix(key)
    else assertValidKey(key)
    this.#begin(options)
    return this.#hub.subscribe(key, prefix, options?.signal)
  }

  /**
   * Resolves once every write made so far is committed and flushed to the device by LMDB (with
   * `sync: true` every resolved write already is). Useful before copying the store directory.
   */
  async flush(options?: AbortOptions): Promise<void> {
    this.#begin(options)
    // Let a high-water-mark write queued by this turn's writes join the tail first.
    await Promise.resolve()
    try {
      await this.#tail
    } catch {
      // Recorded by #fail, thrown below.
    }
    if (this.#failure !== undefined) throw this.#failure
  }

  close(): Promise<void> {
    return (this.#closing ??= this.#shutdown())
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #begin(options: AbortOptions | undefined): void {
    if (this.#closed) throw new StoreUnavailableError('store is closed')
    if (this.#failure !== undefined) throw this.#failure
    throwIfAborted(options?.signal)
  }

  /** The version of `key` this process sees: its last write still in flight, else LMDB's. */
  #version(key: string): number | undefined {
    const p = this.#pending.get(key)
    if (p !== undefined) return p.value === undefined ? undefined : p.index
    try {
      return this.#kv.getBinaryFast(key) === undefined ? undefined : this.#getLastVersion()
    } catch (err) {
      throw new StoreUnavailableError(`cannot read ${key}`, { cause: err })
    }
  }

  /**
   * Checks the condition (`expect`: undefined none, null absent, bigint that index) and applies the write:
   * write-ahead log, in-flight map, LMDB queue, watchers. Returns the new index, or undefined for the
   * delete of a missing key. Synchronous, so no other operation interleaves between check and write.
   */
  #write(op: WalOp, key: string, value: Uint8Array | undefined, expect: bigint | null | undefined): number | undefined {
    const cur = this.#version(key)
    if (expect === null) {
      if (cur !== undefined) throw new KeyExistsError(key)
    } else if (expect !== undefined) {
      if (cur === undefined || BigInt(cur) !== expect) throw new KeyModifiedError(key)
    } else if (op === 'delete' && cur === undefined) {
      return undefined
    }
    const index = this.#last + 1
    if (this.#wal !== undefined) {
      try {
        this.#wal.append(op, index, key, value)
      } catch (err) {
        throw this.#fail(new StoreUnavailableError('cannot append to the write-ahead log', { cause: err }))
      }
    }
    let done: Promise<boolean>
    try {
      // Conditional on the version this process expects in LMDB (null: absent), so a divergence shows.
      done =
        op === 'put'
          ? this.#kv.put(key, value as Uint8Array, index, (cur ?? null) as number)
          : this.#kv.remove(key, cur as number)
    } catch (err) {
      throw this.#fail(new StoreUnavailableError(`cannot queue the write of ${key}`, { cause: err }))
    }
    this.#last = index
    this.#pending.set(key, { value, index })
    this.#tail = done
    done.then(
      (ok) => (ok ? this.#settle(key, index) : this.#diverged(key, index)),
      (err: unknown) => this.#fail(new StoreUnavailableError('LMDB commit failed', { cause: err })),
    )
    this.#queueHwm()
    if (this.#hub.active) {
      this.#hub.emit(
        value === undefined
          ? { type: 'delete', key, index: BigInt(index) }
          : { type: 'put', key, value, index: BigInt(index) },
      )
    }
    return index
  }

  /** Records the last index in the same LMDB transaction as the writes of this turn. */
  #queueHwm(): void {
    if (this.#hwmQueued) return
    this.#hwmQueued = true
    queueMicrotask(() => {
      this.#hwmQueued = false
      if (this.#failure !== undefined) return
      try {
        const done = this.#meta.put(HWM_KEY, this.#last)
        this.#tail = done
        done.then(undefined, (err: unknown) => this.#fail(new StoreUnavailableError('LMDB commit failed', { cause: err })))
      } catch (err) {
        this.#fail(new StoreUnavailableError('cannot queue the index high-water mark', { cause: err }))
      }
    })
  }

  /** LMDB has committed and flushed the write `index` (and, in order, everything before it). */
  #settle(key: string, index: number): void {
    if (index > this.#durable) this.#durable = index
    if (this.#pending.get(key)?.index === index) this.#pending.delete(key)
    this.#wal?.release(this.#durable)
  }

  #diverged(key: string, index: number): void {
    this.#fail(
      new StoreUnavailableError(
        `LMDB refused write ${index} of ${key}: the stored version is not the one this process expected (another writer?)`,
      ),
    )
  }

  /** Marks the store failed: every later call rejects with the first failure. */
  #fail(err: StoreUnavailableError): StoreUnavailableError {
    if (this.#failure === undefined) {
      this.#failure = err
      this.#log.error('store %s failed: %s %o', this.path, err.message, err.cause)
      this.#hub.endAll()
    }
    return this.#failure
  }

  /** Waits for one write's LMDB commit (sync mode). */
  async #confirm(done: Promise<unknown>): Promise<void> {
    let ok: unknown
    try {
      ok = await done
    } catch (err) {
      throw this.#failure ?? new StoreUnavailableError('LMDB commit failed', { cause: err })
    }
    if (ok !== true) throw this.#failure ?? new StoreUnavailableError('LMDB refused a write')
  }

  #takeOwnership(): void {
    this.#env.transactionSync(() => {
      const cur = this.#meta.get(OWNER_KEY) as OwnerRecord | undefined
      if (cur !== undefined && ownerAlive(cur)) {
        const who = cur.pid === process.pid ? 'another LmdbStore in this process' : `process ${cur.pid}`
        throw new StoreUnavailableError(`store ${this.path} is in use by ${who}`)
      }
      this.#meta.putSync(OWNER_KEY, this.#owner)
    })
  }

  #releaseOwnership(): void {
    this.#env.transactionSync(() => {
      const cur = this.#meta.get(OWNER_KEY) as OwnerRecord | undefined
      if (cur?.token === this.#owner.token) this.#meta.removeSync(OWNER_KEY)
    })
  }

  /**
   * Applies what the write-ahead log holds beyond LMDB's high-water mark: the run of records whose
   * indices follow it without a gap (anything after a gap or a damaged record is dropped: it could only
   * be there after a power loss, and applying it would leave a state that never existed). Then deletes the
   * log. Returns the last index.
   */
  #replay(): number {
    const hwm = this.#meta.get(HWM_KEY)
    let last = typeof hwm === 'number' && Number.isSafeInteger(hwm) ? hwm : 0
    const records = readSegments(this.path)
    const run: WalRecord[] = []
    for (const r of records) {
      if (r.index <= last) {
        if (run.length > 0) break
        continue
      }
      if (r.index !== last + 1) break
      run.push(r)
      last = r.index
    }
    const skipped = records.filter((r) => r.index > last).length
    if (skipped > 0) this.#log.error('dropping %d write-ahead log records of %s after a gap', skipped, this.path)
    if (run.length > 0) {
      this.#env.transactionSync(() => {
        for (const r of run) {
          if (r.op === 'put') this.#kv.putSync(r.key, r.value as Uint8Array, r.index)
          else this.#kv.removeSync(r.key)
        }
        this.#meta.putSync(HWM_KEY, last)
      })
      this.#log('replayed %d write-ahead log records of %s up to index %d', run.length, this.path, last)
    }
    deleteSegments(this.path)
    return last
  }

  async #shutdown(): Promise<void> {
    this.#closed = true
    this.#hub.endAll()
    // Wait until LMDB has every write (the hwm of the last turn may be queued by a microtask meanwhile).
    let tail: Promise<unknown>
    do {
      tail = this.#tail
      try {
        await tail
      } catch {
        // Already recorded by #fail; the write-ahead log keeps those writes for the next open.
      }
    } while (tail !== this.#tail || this.#hwmQueued)
    try {
      if (this.#failure === undefined) this.#wal?.close(this.#durable)
      else this.#wal?.close()
    } catch (err) {
      this.#log.error('closing the write-ahead log of %s: %o', this.path, err)
    }
    try {
      this.#releaseOwnership()
    } catch (err) {
      this.#log.error('releasing store %s: %o', this.path, err)
    }
    await this.#env.close()
    this.#log('closed %s at index %d', this.path, this.#last)
  }
}

/** Opens (creating if needed) the LMDB store at `init.path`. Throws StoreUnavailableError if it cannot. */
export function lmdbStore(init: LmdbStoreInit, components?: LmdbStoreComponents): LmdbStore {
  return new LmdbStore(init, components)
}
