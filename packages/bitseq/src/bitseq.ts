import type { KVPair, Store } from '@cnm/storeapi'
import { AbortError, InvalidArgumentError, isCnmError, throwIfAborted, type AbortOptions } from '@cnm/types'
import {
  BitAlreadyAllocatedError,
  BitseqStoreError,
  InvalidRangeError,
  NoBitAvailableError,
  OutOfRangeError,
  StoreAttachedError,
} from './errors.js'
import { BigEngine } from './internal/big-engine.js'
import {
  MAX_BITS,
  decodeBinary,
  decodeStoreValue,
  encodeStoreValue,
  freshEngine,
  type Engine,
} from './internal/codec.js'
import { DenseEngine } from './internal/dense-engine.js'
import { NumEngine } from './internal/num-engine.js'

/** Engines of handles of at most 2^53 bits: run-length list, or dense blocks while heavily fragmented. */
type SmallEngine = NumEngine | DenseEngine

/** An ordinal: a bigint, or a number that is a non-negative safe integer. */
export type Ordinal = bigint | number

export interface BitseqInit extends AbortOptions {
  /** Number of bits, i.e. ordinals `0 .. bits - 1`; `0 <= bits <= 2^64 - 1`. */
  bits: bigint
  /**
   * Persist the handle here (compare-and-swap on every change). Requires `key`.
   * @default undefined (in memory only)
   */
  store?: Store
  /** Store key, e.g. `idm/vxlan-id`. Required with `store`. */
  key?: string
  /**
   * The `id` written into the stored JSON (libnetwork writes the handle id, e.g. the pool id).
   * @default key, or '' without a key
   */
  id?: string
}

/** The largest handle: 2^64 - 1 bits (what libnetwork clamps an IPv6 /64 or shorter pool to). */
export const BITSEQ_MAX_BITS: bigint = MAX_BITS

const KEY_MODIFIED = 'ERR_STORE_KEY_MODIFIED'
const KEY_EXISTS = 'ERR_STORE_KEY_EXISTS'

/**
 * A run-length compressed bitmap of up to 2^64 - 1 bits (libnetwork's `bitseq.Handle`): a list of
 * `(block: uint32, count: uint64)` sequences kept canonical, ordinal 0 being the most significant bit of
 * the first block. Optionally persisted in a {@link Store}: every change then reads the latest stored
 * state, applies the change to a private copy and writes it back with compare-and-swap, retrying when
 * another writer got there first.
 */
export class Bitseq {
  private eng: Engine
  private readonly store: Store | undefined
  private readonly key: string
  private readonly id: string
  /** Store index of the state in `eng`; undefined when unknown (no store, or not written yet). */
  private index: bigint | undefined
  /** Serial cursor (in memory only, never persisted): one past the last ordinal handed out by setAny*. */
  private currN = 0
  private currB = 0n
  /**
   * Store operations of this handle run one at a time (in call order): concurrent callers of one handle
   * would otherwise only make each other's compare-and-swap fail. Writers elsewhere are still handled by CAS.
   */
  private tail: Promise<void> = Promise.resolve()

  private constructor(eng: Engine, store: Store | undefined, key: string, id: string) {
    this.eng = eng
    this.store = store
    this.key = key
    this.id = id
  }

  /**
   * Makes a handle of `init.bits` clear bits. With a store, the state stored under `key` is loaded when
   * present (its size wins over `bits`); otherwise the fresh handle is written immediately.
   */
  static async create(init: BitseqInit): Promise<Bitseq> {
    throwIfAborted(init.signal)
    const bits = init.bits as unknown
    if (typeof bits !== 'bigint' && !(typeof bits === 'number' && Number.isSafeInteger(bits))) {
      throw new InvalidArgumentError('bits must be a bigint', { code: 'ERR_BITSEQ_INVALID_BITS' })
    }
    const n = BigInt(bits)
    if (n < 0n || n > MAX_BITS) {
      throw new InvalidArgumentError(`bits must be in [0, 2^64 - 1], got ${n}`, { code: 'ERR_BITSEQ_INVALID_BITS' })
    }
    if (init.store !== undefined && (typeof init.key !== 'string' || init.key === '')) {
      throw new InvalidArgumentError('key is required when a store is given', { code: 'ERR_BITSEQ_INVALID_KEY' })
    }
    const key = init.key ?? ''
    const h = new Bitseq(freshEngine(n), init.store, key, init.id ?? key)
    if (init.store !== undefined) await h.load(init.store, init.signal)
    return h
  }

  /** An in-memory handle from libnetwork's binary form (see {@link Bitseq.serialize}). */
  static deserialize(bytes: Uint8Array): Bitseq {
    const h = new Bitseq(decodeBinary(bytes), undefined, '', '')
    h.settle()
    return h
  }

  private async load(store: Store, signal: AbortSignal | undefined): Promise<void> {
    for (;;) {
      throwIfAborted(signal)
      const pair = await this.storeCall(signal, () => store.get(this.key, opts(signal)))
      if (pair !== undefined) {
        this.adopt(decodeStoreValue(pair.value).engine, pair.index, true)
        return
      }
      try {
        this.index = await this.storeCall(signal, () =>
          store.create(this.key, encodeStoreValue(this.id, this.eng), opts(signal)),
        )
        return
      } catch (err) {
        if (!isCnmError(err, KEY_EXISTS)) throw err
      }
    }
  }

  /** Number of bits of the handle. */
  bits(): bigint {
    const e = this.eng
    return e instanceof BigEngine ? e.bits : BigInt(e.bits)
  }

  /** Number of clear bits (libnetwork's counter: `unset` of a clear bit still increments it). */
  unselected(): bigint {
    const e = this.eng
    return e instanceof BigEngine ? e.unselected : BigInt(e.unselected)
  }

  /** True when the bit is set; false for a clear bit or any ordinal outside `[0, bits)`. */
  isSet(ordinal: Ordinal): boolean {
    const e = this.eng
    if (e instanceof BigEngine) {
      const o = bigOrdinal(ordinal)
      return o >= 0n && o < e.bits && e.isSet(o)
    }
    const o = numOrdinal(ordinal, e)
    return o >= 0 && e.isSet(o)
  }

  /** The sequence list, e.g. `(0xffffffff, 6)->(0x0, 250)->end`. */
  sequenceString(): string {
    return this.eng.sequenceString()
  }

  toString(): string {
    return `bits: ${this.bits()}, unselected: ${this.unselected()}, sequence: ${this.eng.sequenceString()}`
  }

  /** libnetwork's binary form: bits (u64) ‖ unselected (u64) ‖ { block (u32) ‖ count (u64) }*, big-endian. */
  serialize(): Uint8Array {
    return this.eng.serialize()
  }

  /** The JSON value this handle is stored as: `{"id": "<id>", "sequence": "<base64 binary form>"}`. */
  storeValue(): Uint8Array {
    return encodeStoreValue(this.id, this.eng)
  }

  /** True when both handles hold the same bits, counters and sequence list. */
  equals(other: Bitseq): boolean {
    const a = this.eng.serialize()
    const b = other.eng.serialize()
    return a.length === b.length && a.every((v, i) => v === b[i])
  }

  // ---------------------------------------------------------------- synchronous (no store)

  /** {@link Bitseq.setAny} for handles without a store. */
  setAnySync(serial = false): bigint {
    if (this.store !== undefined) throw new StoreAttachedError('setAnySync')
    const e = this.eng
    if (e instanceof BigEngine) {
      const o = allocBig(e, 0n, e.bits - 1n, serial ? this.currB : 0n)
      this.currB = o + 1n
      return o
    }
    const o = allocNum(e, 0, e.bits - 1, serial ? this.currN : 0)
    this.currN = o + 1
    if (e.len > e.upper || e.len < e.lower) this.eng = balance(e)
    return BigInt(o)
  }

  /** {@link Bitseq.setAnyInRange} for handles without a store. */
  setAnyInRangeSync(start: Ordinal, end: Ordinal, serial = false): bigint {
    if (this.store !== undefined) throw new StoreAttachedError('setAnyInRangeSync')
    const e = this.eng
    if (e instanceof BigEngine) {
      const [s, t] = bigRange(start, end, e.bits)
      const o = allocBig(e, s, t, serial ? this.currB : 0n)
      this.currB = o + 1n
      return o
    }
    const s = numOrdinal(start, e)
    const t = numOrdinal(end, e)
    if (s < 0 || t < s) throw new InvalidRangeError(toBigLoose(start), toBigLoose(end))
    const o = allocNum(e, s, t, serial ? this.currN : 0)
    this.currN = o + 1
    if (e.len > e.upper || e.len < e.lower) this.eng = balance(e)
    return BigInt(o)
  }

  /** {@link Bitseq.set} for handles without a store. */
  setSync(ordinal: Ordinal): void {
    if (this.store !== undefined) throw new StoreAttachedError('setSync')
    const e = this.eng
    setBit(e, ordinal)
    if (e.len > e.upper || e.len < e.lower) this.eng = balance(e as SmallEngine)
  }

  /** {@link Bitseq.unset} for handles without a store. */
  unsetSync(ordinal: Ordinal): void {
    if (this.store !== undefined) throw new StoreAttachedError('unsetSync')
    const e = this.eng
    unsetBit(e, ordinal)
    if (e.len > e.upper || e.len < e.lower) this.eng = balance(e as SmallEngine)
  }

  // ---------------------------------------------------------------- asynchronous (store or not)

  /**
   * Sets the first clear bit and returns its ordinal. `serial`: start looking at the cursor (one past
   * the last ordinal handed out) and wrap around, so released bits are not reused until the wrap.
   * @throws NoBitAvailableError when every bit is set
   */
  setAny(serial = false, options?: AbortOptions): Promise<bigint> {
    // Not an async function: without a store the result is settled at once, without a second hop.
    if (this.store === undefined) return settled(options, () => this.setAnySync(serial))
    return this.mutate(options?.signal, (e) => {
      if (e instanceof BigEngine) {
        const o = allocBig(e, 0n, e.bits - 1n, serial ? this.currB : 0n)
        return () => {
          this.setCurr(o + 1n)
          return o
        }
      }
      const o = allocNum(e, 0, e.bits - 1, serial ? this.currN : 0)
      return () => {
        this.setCurr(o + 1)
        return BigInt(o)
      }
    })
  }

  /**
   * Like {@link Bitseq.setAny} within `[start, end]` (inclusive).
   * @throws InvalidRangeError when `end < start`, `start < 0` or `end >= bits`
   * @throws NoBitAvailableError when every bit of the range is set
   */
  setAnyInRange(start: Ordinal, end: Ordinal, serial = false, options?: AbortOptions): Promise<bigint> {
    if (this.store === undefined) return settled(options, () => this.setAnyInRangeSync(start, end, serial))
    return this.mutate(options?.signal, (e) => {
      if (e instanceof BigEngine) {
        const [s, t] = bigRange(start, end, e.bits)
        const o = allocBig(e, s, t, serial ? this.currB : 0n)
        return () => {
          this.setCurr(o + 1n)
          return o
        }
      }
      const [s, t] = numRange(start, end, e)
      const o = allocNum(e, s, t, serial ? this.currN : 0)
      return () => {
        this.setCurr(o + 1)
        return BigInt(o)
      }
    })
  }

  /**
   * Sets one bit.
   * @throws OutOfRangeError when `ordinal` is outside `[0, bits)`
   * @throws BitAlreadyAllocatedError when the bit is already set
   */
  set(ordinal: Ordinal, options?: AbortOptions): Promise<void> {
    if (this.store === undefined) return settled(options, () => this.setSync(ordinal))
    return this.mutate(options?.signal, (e) => {
      setBit(e, ordinal)
      return noop
    })
  }

  /**
   * Clears one bit. Clearing a clear bit changes no bit but, as in libnetwork, still increments the
   * free counter (and is still written to the store).
   * @throws OutOfRangeError when `ordinal` is outside `[0, bits)`
   */
  unset(ordinal: Ordinal, options?: AbortOptions): Promise<void> {
    if (this.store === undefined) return settled(options, () => this.unsetSync(ordinal))
    return this.mutate(options?.signal, (e) => {
      unsetBit(e, ordinal)
      return noop
    })
  }

  /** Deletes the handle from the store (a missing key is success). The in-memory copy stays usable. */
  async destroy(options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    throwIfAborted(signal)
    const store = this.store
    if (store === undefined) return
    await this.exclusive(signal, async () => {
      for (;;) {
        throwIfAborted(signal)
        const pair = await this.storeCall(signal, () => store.get(this.key, opts(signal)))
        if (pair === undefined) break
        try {
          await this.storeCall(signal, () => store.deleteIf(this.key, pair.index, opts(signal)))
          break
        } catch (err) {
          if (!isCnmError(err, KEY_MODIFIED)) throw err
        }
      }
      this.index = undefined
    })
  }

  /**
   * Re-reads the stored state, drops count-0 sequences and merges equal neighbours (the corruption
   * Docker 1.9 could leave behind), and writes the result back when anything changed.
   * @returns true when the sequence list was repaired
   */
  async checkConsistency(options?: AbortOptions): Promise<boolean> {
    const signal = options?.signal
    throwIfAborted(signal)
    const store = this.store
    if (store === undefined) {
      const repaired = this.eng.repair()
      this.settle()
      return repaired
    }
    return this.exclusive(signal, async () => {
      for (;;) {
        throwIfAborted(signal)
        const pair = await this.storeCall(signal, () => store.get(this.key, opts(signal)))
        const eng = pair === undefined ? this.eng.clone() : decodeStoreValue(pair.value).engine
        if (!eng.repair()) {
          if (pair !== undefined) this.adopt(eng, pair.index, false)
          return false
        }
        const index = await this.write(store, pair, eng, signal)
        if (index === undefined) continue
        this.adopt(eng, index, false)
        return true
      }
    })
  }

  /** Replaces the in-memory copy with the stored state (no-op without a store or when the key is missing). */
  async refresh(options?: AbortOptions): Promise<void> {
    const signal = options?.signal
    throwIfAborted(signal)
    const store = this.store
    if (store === undefined) return
    await this.exclusive(signal, async () => {
      const pair = await this.storeCall(signal, () => store.get(this.key, opts(signal)))
      if (pair !== undefined) this.adopt(decodeStoreValue(pair.value).engine, pair.index, true)
    })
  }

  // ---------------------------------------------------------------- store plumbing

  /**
   * Read latest → apply `op` to a private copy → compare-and-swap; repeats from the read when the key
   * changed (or appeared) in between. `op` returns a commit callback run only once the write succeeded.
   * Any other failure leaves the in-memory copy as it was.
   */
  private async mutate<T>(signal: AbortSignal | undefined, op: (e: Engine) => () => T): Promise<T> {
    throwIfAborted(signal)
    return this.exclusive(signal, () => this.mutateLocked(signal, op))
  }

  /** Runs `fn` once the handle's earlier store operations are done (see `tail`). */
  private async exclusive<T>(signal: AbortSignal | undefined, fn: () => Promise<T>): Promise<T> {
    const unlock = await this.lock(signal)
    try {
      return await fn()
    } finally {
      unlock()
    }
  }

  private async mutateLocked<T>(signal: AbortSignal | undefined, op: (e: Engine) => () => T): Promise<T> {
    const store = this.store as Store
    for (;;) {
      throwIfAborted(signal)
      const pair = await this.storeCall(signal, () => store.get(this.key, opts(signal)))
      const eng = pair === undefined ? this.eng.clone() : decodeStoreValue(pair.value).engine
      let commit: () => T
      try {
        commit = op(eng)
      } catch (err) {
        // Operations validate before they change anything: `eng` is exactly the stored state.
        if (pair !== undefined) this.adopt(eng, pair.index, false)
        throw err
      }
      const index = await this.write(store, pair, eng, signal)
      if (index === undefined) continue
      this.adopt(eng, index, false)
      return commit()
    }
  }

  /** Waits for the handle's earlier store operations; the returned function lets the next one run. */
  private async lock(signal: AbortSignal | undefined): Promise<() => void> {
    const prev = this.tail
    let unlock!: () => void
    const mine = new Promise<void>((resolve) => (unlock = resolve))
    this.tail = prev.then(() => mine)
    try {
      await untilAborted(prev, signal)
    } catch (err) {
      unlock()
      throw err
    }
    return unlock
  }

  /** CAS write of `eng`; undefined when another writer won (re-read and retry). */
  private async write(
    store: Store,
    pair: KVPair | undefined,
    eng: Engine,
    signal: AbortSignal | undefined,
  ): Promise<bigint | undefined> {
    const value = encodeStoreValue(this.id, eng)
    try {
      return await this.storeCall(signal, () =>
        pair === undefined
          ? store.create(this.key, value, opts(signal))
          : store.update(this.key, value, pair.index, opts(signal)),
      )
    } catch (err) {
      if (isCnmError(err, KEY_MODIFIED) || isCnmError(err, KEY_EXISTS)) return undefined
      throw err
    }
  }

  /** Takes a state read from or written to the store, unless a newer one is already held. */
  private adopt(eng: Engine, index: bigint, force: boolean): void {
    if (!force && this.index !== undefined && index < this.index) return
    if (eng instanceof BigEngine !== this.eng instanceof BigEngine) {
      // The stored handle has another size class than ours: carry the cursor over.
      if (eng instanceof BigEngine) this.currB = BigInt(this.currN)
      else this.currN = Number(this.currB < BigInt(eng.bits) ? this.currB : BigInt(eng.bits))
    }
    this.eng = eng
    this.index = index
    this.settle()
  }

  /** Picks the engine that suits the current list length (run-length list or dense blocks). */
  private settle(): void {
    const e = this.eng
    if (e.len > e.upper || e.len < e.lower) this.eng = balance(e as SmallEngine)
  }

  private setCurr(next: number | bigint): void {
    if (typeof next === 'number') this.currN = next
    else this.currB = next
  }

  private async storeCall<T>(signal: AbortSignal | undefined, call: () => Promise<T>): Promise<T> {
    try {
      return await call()
    } catch (err) {
      if (isCnmError(err)) throw err
      if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
      throw new BitseqStoreError(`store operation on ${this.key} failed`, { cause: err })
    }
  }
}

function noop(): void {}

/** Runs `fn` now and returns its outcome as a settled promise (an exception becomes a rejection). */
function settled<T>(options: AbortOptions | undefined, fn: () => T): Promise<T> {
  try {
    throwIfAborted(options?.signal)
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err)
  }
}

/** Resolves with `p`, or rejects with AbortError as soon as `signal` aborts. */
async function untilAborted(p: Promise<void>, signal: AbortSignal | undefined): Promise<void> {
  if (signal === undefined) return p
  throwIfAborted(signal)
  let onAbort: (() => void) | undefined
  try {
    await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        onAbort = () => reject(new AbortError(undefined, { cause: signal.reason }))
        signal.addEventListener('abort', onAbort, { once: true })
      }),
    ])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
}

function opts(signal: AbortSignal | undefined): AbortOptions {
  return signal === undefined ? {} : { signal }
}

// ------------------------------------------------------------------ ordinal helpers

/** The ordinal as a number when it lies in [0, bits), else -1. */
function numOrdinal(x: Ordinal, e: SmallEngine): number {
  // Number() rounds monotonically and bits <= 2^53 is exact, so range-checking after the conversion
  // is exact too (and avoids slower bigint comparisons).
  const n = typeof x === 'bigint' ? Number(x) : x
  return Number.isInteger(n) && n >= 0 && n < e.bits ? n : -1
}

/** The ordinal as a bigint; -1n for anything that is not a non-negative integer. */
function bigOrdinal(x: Ordinal): bigint {
  if (typeof x === 'bigint') return x < 0n ? -1n : x
  return Number.isSafeInteger(x) && x >= 0 ? BigInt(x) : -1n
}

function toBigLoose(x: Ordinal): bigint {
  if (typeof x === 'bigint') return x
  if (Number.isSafeInteger(x)) return BigInt(x)
  throw new InvalidArgumentError(`ordinal must be an integer, got ${String(x)}`, { code: 'ERR_BITSEQ_INVALID_ORDINAL' })
}

function numRange(start: Ordinal, end: Ordinal, e: SmallEngine): [number, number] {
  const s = numOrdinal(start, e)
  const t = numOrdinal(end, e)
  if (s < 0 || t < 0 || t < s) throw new InvalidRangeError(toBigLoose(start), toBigLoose(end))
  return [s, t]
}

function bigRange(start: Ordinal, end: Ordinal, bits: bigint): [bigint, bigint] {
  const s = bigOrdinal(start)
  const t = bigOrdinal(end)
  if (s < 0n || t < 0n || t < s || t >= bits) throw new InvalidRangeError(toBigLoose(start), toBigLoose(end))
  return [s, t]
}

// ------------------------------------------------------------------ operations on an engine

/** Switches a small handle between the run-length list and dense blocks. */
function balance(e: SmallEngine): SmallEngine {
  return e instanceof NumEngine ? DenseEngine.fromNum(e, Math.floor(e.upper / 4)) : e.toNum()
}

/** First free (from `curr` when `curr > start`, wrapping to `start`) in [start, end]; sets it. */
function allocNum(e: SmallEngine, start: number, end: number, curr: number): number {
  if (e.unselected <= 0) throw new NoBitAvailableError()
  let o = curr > start ? e.firstFree(curr, end) : -1
  if (o < 0) o = e.firstFree(start, end)
  if (o < 0) throw new NoBitAvailableError()
  e.write(o, true)
  e.unselected--
  return o
}

function allocBig(e: BigEngine, start: bigint, end: bigint, curr: bigint): bigint {
  if (e.unselected <= 0n) throw new NoBitAvailableError()
  let o = curr > start ? e.firstFree(curr, end) : -1n
  if (o < 0n) o = e.firstFree(start, end)
  if (o < 0n) throw new NoBitAvailableError()
  e.write(o, true)
  e.unselected--
  return o
}

function setBit(e: Engine, ordinal: Ordinal): void {
  if (e instanceof BigEngine) {
    const o = bigOrdinal(ordinal)
    if (o < 0n || o >= e.bits) throw new OutOfRangeError(ordinal, e.bits)
    if (!e.write(o, true)) throw new BitAlreadyAllocatedError()
    if (e.unselected > 0n) e.unselected--
    return
  }
  const o = numOrdinal(ordinal, e)
  if (o < 0) throw new OutOfRangeError(ordinal, BigInt(e.bits))
  if (!e.write(o, true)) throw new BitAlreadyAllocatedError()
  if (e.unselected > 0) e.unselected--
}

function unsetBit(e: Engine, ordinal: Ordinal): void {
  if (e instanceof BigEngine) {
    const o = bigOrdinal(ordinal)
    if (o < 0n || o >= e.bits) throw new OutOfRangeError(ordinal, e.bits)
    e.write(o, false)
    e.unselected++
    return
  }
  const o = numOrdinal(ordinal, e)
  if (o < 0) throw new OutOfRangeError(ordinal, BigInt(e.bits))
  e.write(o, false)
  e.unselected++
}
