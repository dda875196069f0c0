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
import type { KVPair, ListOptions, Store, WatchEvent, WatchOptions } from '@cnm/storeapi'
import { KeyExistsError, KeyModifiedError, StoreUnavailableError } from '@cnm/storeapi'
import { assertIndex } from './internal/checks.js'
import { newOwner, ownerAlive, type OwnerRecord } from './internal/owner.js'
import { deleteSegments, readSegments, WalWriter, type WalRecord } from './internal/wal.js'
import { WatchHub } from './internal/watch-hub.js'
import { assertValidKey, assertValidPrefix, assertValidValue, compareKeys } from '@cnm/storeapi'

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

/**
 * The newest write of a key not yet handed to LMDB, and the version LMDB will hold for the key when it is
 * applied (`base`; null: absent), which the LMDB write is made conditional on.
 */
interface Queued extends Pending {
  readonly base: number | null
}

interface Deferred {
  readonly promise: Promise<void>
  resolve(): void
  reject(err: unknown): void
}

function deferred(): Deferred {
  let resolve!: () => void
  let reject!: (err: unknown) => void
  const promise = new Promise<void>((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
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
 * Every operation is decided synchronously in the owning process against the newest state: LMDB plus the
 * writes still on their way to it (`#pending`). Writes then go to LMDB in batches, with at most one LMDB
 * transaction in flight: what is written meanwhile waits for the next one, and several writes of one key
 * in a batch reach LMDB as one (group commit). Each LMDB write is itself conditional on the version this
 * process expects there (`ifVersion`), so a write that would overwrite a state it did not see fails the
 * store instead of being lost silently. Only one process may have a store open at a time (checked at open).
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
  /** Newest write per key that is not yet durable in LMDB (queued or in flight). */
  readonly #pending = new Map<string, Pending>()
  /** Newest write per key not yet handed to LMDB. */
  #queue = new Map<string, Queued>()
  /** Index of the last write handed out. */
  #last: number
  /** Every write up to this index is committed and flushed in LMDB. */
  #durable: number
  #flushScheduled = false
  #inFlight = false
  /** Settled once the write-ahead log records of the current synchronous run are written (fast mode). */
  #walGroup: Deferred | undefined
  /** Settled when the batch now in #queue is durable (created only when someone waits). */
  #queueDone: Deferred | undefined
  /** Settled when the batch in flight is durable (created only when someone waits). */
  #flightDone: Deferred | undefined
  readonly #flushSoon = (): void => {
    this.#flushScheduled = false
    this.#flushNow()
  }
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
      // Defaults on purpose: overlappingSync (power-loss safe; a write's promise resolves once flushed) and
      // eventTurnBatching (the writes of one event-loop turn share a transaction).
      env = lmdb.open<unknown, string>({ path: this.path, noSubdir: false, maxDbs: 4 })
    } catch (err) {
      throw new StoreUnavailableError(`cannot open LMDB environment at ${this.path}`, { cause: err })
    }
    this.#env = env
    this.#owner = newOwner()
    let owned = false
    try {
      this.#kv = env.openDB<Uint8Array, string>({ name: 'kv', encoding: 'binary', useVersions: true })
      this.#meta = env.openDB<unknown, string>({ name: 'meta', encoding: 'msgpack' })
      this.#takeOwnership()
      owned = true
      this.#last = this.#replay()
      this.#durable = this.#last
    } catch (err) {
      if (owned) {
        try {
          this.#releaseOwnership()
        } catch (releaseErr) {
          this.#log.error('releasing %s after a failed open: %o', this.path, releaseErr)
        }
      }
      env.close().catch((closeErr: unknown) => {
        this.#log.error('closing LMDB after a failed open of %s: %o', this.path, closeErr)
      })
      if (err instanceof StoreUnavailableError) throw err
      throw new StoreUnavailableError(`cannot open store ${this.path}`, { cause: err })
    }
    this.#wal = cfg.sync
      ? undefined
      : new WalWriter({
          dir: this.path,
          segmentBytes: cfg.walSegmentBytes,
          onError: (err) => {
            this.#log.error('cannot delete a write-ahead log segment in %s (retried later): %o', this.path, err)
          },
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
    const index = this.#write(key, new Uint8Array(value), undefined) as number
    await this.#written()
    return BigInt(index)
  }

  async create(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    this.#begin(options)
    const index = this.#write(key, new Uint8Array(value), null) as number
    await this.#written()
    return BigInt(index)
  }

  async update(key: string, value: Uint8Array, previousIndex: bigint, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    assertIndex(previousIndex)
    this.#begin(options)
    const index = this.#write(key, new Uint8Array(value), previousIndex) as number
    await this.#written()
    return BigInt(index)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    this.#begin(options)
    if (this.#write(key, undefined, undefined) !== undefined) await this.#written()
  }

  async deleteIf(key: string, previousIndex: bigint, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    assertIndex(previousIndex)
    this.#begin(options)
    this.#write(key, undefined, previousIndex)
    await this.#written()
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
    await this.#drain()
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

  /** The version of `key` this process sees: its newest write not yet durable, else LMDB's. */
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
   * Checks the condition (`expect`: undefined none, null absent, bigint that index) and applies the write
   * (`value` undefined: delete): write-ahead log, pending map, LMDB queue, watchers. Returns the new index,
   * or undefined for the delete of a missing key. Synchronous, so nothing interleaves between check and
   * write.
   */
  #write(key: string, value: Uint8Array | undefined, expect: bigint | null | undefined): number | undefined {
    const cur = this.#version(key)
    if (expect === null) {
      if (cur !== undefined) throw new KeyExistsError(key)
    } else if (expect !== undefined) {
      if (cur === undefined || BigInt(cur) !== expect) throw new KeyModifiedError(key)
    } else if (value === undefined && cur === undefined) {
      return undefined
    }
    const index = this.#last + 1
    if (this.#wal !== undefined) {
      // Encoded now, written by one write(2) for all the writes of this synchronous run (a microtask).
      this.#wal.add(value === undefined ? 'delete' : 'put', index, key, value)
      if (this.#walGroup === undefined) {
        this.#walGroup = deferred()
        queueMicrotask(this.#commitWal)
      }
    }
    this.#last = index
    this.#pending.set(key, { value, index })
    const queued = this.#queue.get(key)
    // A key already queued keeps its base: LMDB has not seen the write this one replaces. Otherwise LMDB
    // will hold what this process sees now (a batch in flight is applied before the next one is sent).
    this.#queue.set(key, { value, index, base: queued !== undefined ? queued.base : (cur ?? null) })
    if (!this.#inFlight && !this.#flushScheduled) {
      this.#flushScheduled = true
      setImmediate(this.#flushSoon)
    }
    if (this.#hub.active) {
      this.#hub.emit(
        value === undefined
          ? { type: 'delete', key, index: BigInt(index) }
          : { type: 'put', key, value, index: BigInt(index) },
      )
    }
    return index
  }

  /** Hands the queue to LMDB as one transaction, with the index high-water mark. */
  #flushNow(): void {
    if (this.#inFlight || this.#queue.size === 0 || this.#failure !== undefined) return
    const batch = this.#queue
    const last = this.#last
    this.#queue = new Map()
    this.#flightDone = this.#queueDone
    this.#queueDone = undefined
    this.#inFlight = true
    const ops: Array<Promise<boolean>> = []
    try {
      for (const [key, q] of batch) {
        if (q.value !== undefined) ops.push(this.#kv.put(key, q.value, q.index, q.base as number))
        else if (q.base !== null) ops.push(this.#kv.remove(key, q.base))
        // else: created and deleted again before LMDB saw it: nothing to write.
      }
      // Same transaction (all queued in this turn): replay trusts it to cover every write above.
      ops.push(this.#meta.put(HWM_KEY, last))
    } catch (err) {
      this.#flushFailed(new StoreUnavailableError('cannot queue writes for LMDB', { cause: err }))
      return
    }
    Promise.all(ops).then(
      (results) => {
        if (results.includes(false)) {
          this.#flushFailed(
            new StoreUnavailableError(
              `LMDB refused a write of ${this.path}: a stored version is not the one this process expected ` +
                '(another writer?)',
            ),
          )
          return
        }
        this.#inFlight = false
        this.#durable = last
        for (const [key, q] of batch) if (this.#pending.get(key)?.index === q.index) this.#pending.delete(key)
        this.#wal?.release(last)
        const done = this.#flightDone
        this.#flightDone = undefined
        done?.resolve()
        if (this.#queue.size > 0) this.#flushNow()
      },
      (err: unknown) => this.#flushFailed(new StoreUnavailableError('LMDB commit failed', { cause: err })),
    )
  }

  #flushFailed(err: StoreUnavailableError): void {
    const failure = this.#fail(err)
    this.#inFlight = false
    this.#flightDone?.reject(failure)
    this.#queueDone?.reject(failure)
    this.#flightDone = undefined
    this.#queueDone = undefined
  }

  /**
   * What a write waits for before it resolves: its record in the write-ahead log (fast mode), or its LMDB
   * transaction flushed to the device (sync mode).
   */
  #written(): Promise<void> {
    if (this.#wal !== undefined) return (this.#walGroup as Deferred).promise
    return (this.#queueDone ??= deferred()).promise
  }

  /** Writes the log records of the current group; its writes resolve (or fail) after this. */
  readonly #commitWal = (): void => {
    const group = this.#walGroup as Deferred
    this.#walGroup = undefined
    try {
      this.#wal?.commit()
      group.resolve()
    } catch (err) {
      group.reject(this.#fail(new StoreUnavailableError('cannot append to the write-ahead log', { cause: err })))
    }
  }

  /** Waits until everything written so far is durable in LMDB, or the store failed. */
  async #drain(): Promise<void> {
    while (this.#failure === undefined && (this.#inFlight || this.#queue.size > 0)) {
      if (!this.#inFlight) this.#flushNow()
      // Nothing went out: the store failed meanwhile (the loop condition ends it).
      if (!this.#inFlight) continue
      try {
        await (this.#flightDone ??= deferred()).promise
      } catch {
        // Recorded by #fail; the caller looks at #failure.
      }
    }
  }

  /** Marks the store failed: every later call rejects with the first failure. */
  #fail(err: StoreUnavailableError): StoreUnavailableError {
    if (this.#failure === undefined) {
      this.#failure = err
      this.#log.error('store %s failed: %s %o', this.path, err.message, err.cause)
      this.#hub.failAll(err)
      // The queued batch will never be sent: release its waiters (a batch in flight settles by itself).
      this.#queueDone?.reject(err)
      this.#queueDone = undefined
    }
    return this.#failure
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
    await this.#drain()
    try {
      // Everything is in LMDB unless the store failed: then the log keeps the writes for the next open.
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
