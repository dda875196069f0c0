import { Buffer } from 'node:buffer'
import { Bitseq, BITSEQ_MAX_BITS } from '@cnm/bitseq'
import type { KVPair, Store } from '@cnm/storeapi'
import { AbortError, hostBits, isCnmError, type IpPrefix, type Logger } from '@cnm/types'
import { AddressInUseError, IpamStoreError, NoAvailableAddressError, PoolNotFoundError } from '@cnm/ipamapi'

const KEY_MODIFIED = 'ERR_STORE_KEY_MODIFIED'
const KEY_EXISTS = 'ERR_STORE_KEY_EXISTS'
const NO_BIT = 'ERR_BITSEQ_NO_BIT_AVAILABLE'

const encoder = new TextEncoder()
const decoder = new TextDecoder()

/** Number of bits of a pool's bitmap: 2^hostBits, clamped to 2^64 - 1 (IPv6 /64 and shorter). */
export function bitmapSize(pool: IpPrefix): bigint {
  const n = 1n << BigInt(hostBits(pool))
  return n > BITSEQ_MAX_BITS ? BITSEQ_MAX_BITS : n
}

/** A fresh in-memory bitmap with the network address (and, for IPv4, the broadcast address) reserved. */
export function freshBitmap(pool: IpPrefix): Bitseq {
  const bits = bitmapSize(pool)
  const h = Bitseq.deserialize(emptyBinary(bits))
  h.setSync(0n)
  if (pool.version === 4 && !h.isSet(bits - 1n)) h.setSync(bits - 1n)
  return h
}

/** libnetwork's binary form of an all-clear handle of `bits` bits: one sequence (0, ceil(bits/32)). */
function emptyBinary(bits: bigint): Uint8Array {
  const b = new Uint8Array(28)
  const dv = new DataView(b.buffer)
  dv.setBigUint64(0, bits)
  dv.setBigUint64(8, bits)
  dv.setUint32(16, 0)
  dv.setBigUint64(20, (bits + 31n) / 32n)
  return b
}

/** The stored value of a bitmap, as libnetwork's bitseq writes it: `{"id": ..., "sequence": base64}`. */
export function encodeBitmap(id: string, h: Bitseq): Uint8Array {
  const seq = h.serialize()
  const b64 = Buffer.from(seq.buffer, seq.byteOffset, seq.byteLength).toString('base64')
  return encoder.encode(`{"id":${JSON.stringify(id)},"sequence":"${b64}"}`)
}

export function decodeBitmap(key: string, value: Uint8Array): Bitseq {
  try {
    const doc = JSON.parse(decoder.decode(value)) as { sequence?: unknown }
    if (typeof doc.sequence !== 'string') throw new Error('no "sequence" string')
    const bytes = Buffer.from(doc.sequence, 'base64')
    return Bitseq.deserialize(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
  } catch (err) {
    throw new IpamStoreError(`cannot decode address bitmap ${key}`, { cause: err })
  }
}

/** One queued address operation on a stored bitmap. */
interface Op {
  readonly kind: 'any' | 'set' | 'unset'
  /** `set`/`unset`: the ordinal; `any`: range start. */
  readonly a: bigint
  /** `any`: range end (inclusive). */
  readonly b: bigint
  readonly serial: boolean
  readonly signal: AbortSignal | undefined
  resolve(v: bigint): void
  reject(err: unknown): void
  /** Outcome of the current attempt. */
  result?: bigint
  error?: unknown
}

export interface PoolBitmapOptions {
  readonly id: string
  readonly pool: IpPrefix
  /** With a store: the bitmap key, and a callback telling whether the pool still exists (re-reading config). */
  readonly store?: { store: Store; key: string; poolExists(): Promise<boolean> }
  readonly log: Logger
  /** A freshly created pool: start from a fresh bitmap instead of reading the store. */
  readonly fresh: boolean
}

/**
 * The address bitmap of one master pool. Without a store it is a plain in-memory Bitseq driven
 * synchronously. With a store it keeps a cached copy and its store index; concurrent requests are queued
 * and applied in batches (group commit): one compare-and-swap write per batch against the cached index,
 * re-reading only when another writer changed the key. A request resolves only after the write holding
 * it has been committed by the store.
 */
export class PoolBitmap {
  readonly id: string
  readonly pool: IpPrefix
  readonly bits: bigint
  /** bits - 1, the last ordinal. */
  readonly lastOrdinal: bigint
  private readonly st: PoolBitmapOptions['store']
  private readonly log: Logger
  private handle: Bitseq | undefined
  private index: bigint | undefined
  /**
   * The last ordinal handed out by an automatic allocation; the serial cursor is one past it (in memory
   * only, as in libnetwork). Kept as the ordinal itself so that the non-serial hot path allocates nothing.
   */
  private last = -1n
  private queue: Op[] = []
  private draining: Promise<void> | undefined
  private closed = false

  constructor(opts: PoolBitmapOptions) {
    this.id = opts.id
    this.pool = opts.pool
    this.bits = bitmapSize(opts.pool)
    this.lastOrdinal = this.bits - 1n
    this.st = opts.store
    this.log = opts.log
    this.handle = opts.fresh || opts.store === undefined ? freshBitmap(opts.pool) : undefined
  }

  get persistent(): boolean {
    return this.st !== undefined
  }

  // ------------------------------------------------------------------ in-memory (no store)

  /** Allocates in [start, end]; in-memory bitmaps only. */
  allocSync(start: bigint, end: bigint, serial: boolean): bigint {
    const h = this.handle as Bitseq
    if (!serial && start === 0n && end === this.lastOrdinal) {
      // The common case: first free of the whole bitmap.
      let o: bigint
      try {
        o = h.setAnySync(false)
      } catch (err) {
        if (isCnmError(err, NO_BIT)) throw new NoAvailableAddressError(`no available addresses on pool ${this.id}`)
        throw err
      }
      this.last = o
      return o
    }
    return this.applyAny(h, start, end, serial)
  }

  setSync(ordinal: bigint): void {
    const h = this.handle as Bitseq
    if (h.isSet(ordinal)) throw new AddressInUseError()
    h.setSync(ordinal)
  }

  /** Clears an ordinal (a number when it is exact, which spares bigint conversions); no-op when clear. */
  unsetSync(ordinal: bigint | number): void {
    const h = this.handle as Bitseq
    if (h.isSet(ordinal)) h.unsetSync(ordinal)
  }

  /** Free addresses (for tests and diagnostics). */
  unselected(): bigint {
    return this.handle?.unselected() ?? -1n
  }

  isSet(ordinal: bigint): boolean {
    return this.handle?.isSet(ordinal) ?? false
  }

  private applyAny(h: Bitseq, start: bigint, end: bigint, serial: boolean): bigint {
    let o: bigint
    try {
      const curr = serial ? this.last + 1n : 0n
      if (curr > start && curr <= end) {
        try {
          o = h.setAnyInRangeSync(curr, end, false)
        } catch (err) {
          if (!isCnmError(err, NO_BIT)) throw err
          o = h.setAnyInRangeSync(start, end, false)
        }
      } else if (start === 0n && end === this.lastOrdinal) {
        o = h.setAnySync(false)
      } else {
        o = h.setAnyInRangeSync(start, end, false)
      }
    } catch (err) {
      if (isCnmError(err, NO_BIT)) throw new NoAvailableAddressError(`no available addresses on pool ${this.id}`)
      throw err
    }
    this.last = o
    return o
  }

  // ------------------------------------------------------------------ stored (group commit)

  /** Queues an operation; resolves with the ordinal (`any`) once the batch holding it is committed. */
  enqueue(kind: Op['kind'], a: bigint, b: bigint, serial: boolean, signal: AbortSignal | undefined): Promise<bigint> {
    if (this.closed) return Promise.reject(new PoolNotFoundError(`cannot find address pool for poolID:${this.id}`))
    return new Promise<bigint>((resolve, reject) => {
      this.queue.push({ kind, a, b, serial, signal, resolve, reject })
      this.draining ??= this.drain()
    })
  }

  /** Rejects new operations and waits for the batch in flight. */
  async close(): Promise<void> {
    this.closed = true
    await this.draining
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        const batch = this.queue
        this.queue = []
        await this.runBatch(batch)
      }
    } finally {
      this.draining = undefined
    }
  }

  private async runBatch(all: Op[]): Promise<void> {
    const st = this.st as NonNullable<PoolBitmapOptions['store']>
    let batch = all
    try {
      for (let attempt = 0; ; attempt++) {
        // Operations whose caller gave up before they were applied are dropped.
        batch = batch.filter((op) => {
          if (op.signal?.aborted !== true) return true
          op.reject(new AbortError(undefined, { cause: op.signal.reason }))
          return false
        })
        if (batch.length === 0) return
        if (this.closed) {
          for (const op of batch) op.reject(new PoolNotFoundError(`cannot find address pool for poolID:${this.id}`))
          return
        }
        if (this.handle === undefined && !(await this.load(st))) {
          this.closed = true
          for (const op of batch) op.reject(new PoolNotFoundError(`cannot find address pool for poolID:${this.id}`))
          return
        }
        const h = this.handle as Bitseq
        const last = this.last
        let mutated = false
        for (const op of batch) {
          op.error = undefined
          try {
            if (op.kind === 'any') {
              op.result = this.applyAny(h, op.a, op.b, op.serial)
              mutated = true
            } else if (op.kind === 'set') {
              if (h.isSet(op.a)) throw new AddressInUseError()
              h.setSync(op.a)
              op.result = op.a
              mutated = true
            } else {
              if (h.isSet(op.a)) {
                h.unsetSync(op.a)
                mutated = true
              }
              op.result = op.a
            }
          } catch (err) {
            op.error = err
          }
        }
        let committed: boolean
        if (mutated) {
          committed = await this.commit(st, h)
        } else {
          // Nothing to write, but the answers (in use, full, already free) came from the cache: make sure
          // the cache is the stored state before giving them.
          const pair = await this.storeCall(() => st.store.get(st.key))
          committed = pair !== undefined && pair.index === this.index
          if (!committed) this.adopt(pair)
        }
        if (committed) {
          for (const op of batch) {
            if (op.error !== undefined) op.reject(op.error)
            else op.resolve(op.result as bigint)
          }
          return
        }
        this.last = last
        this.log.trace(
          'retrying %d address operations on %s after a concurrent change (attempt %d)',
          batch.length,
          this.id,
          attempt + 1,
        )
      }
    } catch (err) {
      // A store failure: the cached copy may hold uncommitted changes, drop it.
      this.handle = undefined
      this.index = undefined
      for (const op of batch) op.reject(err)
    }
  }

  /** CAS write of the cached copy. False (and the cache dropped) when another writer changed the key. */
  private async commit(st: NonNullable<PoolBitmapOptions['store']>, h: Bitseq): Promise<boolean> {
    const value = encodeBitmap(this.id, h)
    try {
      this.index =
        this.index === undefined
          ? await st.store.create(st.key, value)
          : await st.store.update(st.key, value, this.index)
      return true
    } catch (err) {
      this.handle = undefined
      this.index = undefined
      if (isCnmError(err, KEY_MODIFIED) || isCnmError(err, KEY_EXISTS)) return false
      throw new IpamStoreError(`cannot write address bitmap of pool ${this.id}`, { cause: err })
    }
  }

  /** Takes the stored state (or forgets the cache when the key is missing). */
  private adopt(pair: KVPair | undefined): void {
    if (pair === undefined) {
      this.handle = undefined
      this.index = undefined
      return
    }
    this.handle = decodeBitmap(this.id, pair.value)
    this.index = pair.index
  }

  /**
   * Reads the stored bitmap. A missing key means either the pool is gone (false) or its bitmap was never
   * written or was cleaned up: then a fresh one is cached, to be created by the next commit.
   */
  private async load(st: NonNullable<PoolBitmapOptions['store']>): Promise<boolean> {
    const pair = await this.storeCall(() => st.store.get(st.key))
    if (pair !== undefined) {
      this.adopt(pair)
      return true
    }
    if (!(await st.poolExists())) return false
    this.handle = freshBitmap(this.pool)
    this.index = undefined
    return true
  }

  /**
   * Writes the fresh bitmap of a newly created pool (create-only; an existing value written meanwhile by
   * an address request on another instance is adopted instead).
   */
  async createStored(): Promise<void> {
    const st = this.st
    if (st === undefined) return
    await (this.draining ??= this.createNow(st))
  }

  private async createNow(st: NonNullable<PoolBitmapOptions['store']>): Promise<void> {
    try {
      const h = this.handle ?? freshBitmap(this.pool)
      try {
        this.index = await this.storeCall(() => st.store.create(st.key, encodeBitmap(this.id, h)))
        this.handle = h
      } catch (err) {
        if (!isCnmError(err, KEY_EXISTS)) throw err
        this.handle = undefined
        this.index = undefined
      }
    } finally {
      this.draining = undefined
      if (this.queue.length > 0) this.draining = this.drain()
    }
  }

  private async storeCall<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      if (isCnmError(err, KEY_EXISTS) || isCnmError(err, KEY_MODIFIED)) throw err
      throw new IpamStoreError(`store operation on address bitmap of pool ${this.id} failed`, { cause: err })
    }
  }
}
