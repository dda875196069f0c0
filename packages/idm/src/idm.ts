import { Bitseq, type Ordinal } from '@cnm/bitseq'
import type { Store } from '@cnm/storeapi'
import {
  InvalidArgumentError,
  isCnmError,
  noopLogger,
  throwIfAborted,
  type AbortOptions,
  type ComponentLogger,
  type Logger,
} from '@cnm/types'
import { IdOutOfRangeError } from './errors.js'

export type IdValue = bigint | number

export interface IdmInit extends AbortOptions {
  /** Name of the ID set, e.g. `vxlan-id`; with a store the bitmap lives under `idm/<id>`. */
  id: string
  /** Lowest ID handed out (inclusive). */
  start: IdValue
  /** Highest ID handed out (inclusive); must be greater than `start`. */
  end: IdValue
  /**
   * Persist the set (compare-and-swap on every change, shared with other `Idm`s on the same id).
   * @default undefined (in memory only)
   */
  store?: Store
  /** @default noopLogger() */
  logger?: ComponentLogger
}

/** Prefix of the store key of an ID set's bitmap (libnetwork's `idm` app). */
export const IDM_KEY_PREFIX = 'idm/'

const MAX_BITS = 2n ** 64n - 1n

/**
 * Hands out integer IDs from `[start, end]` (libnetwork's `idm`), on a {@link Bitseq} of
 * `end - start + 1` bits: ID `start + k` is bit `k`.
 */
export class Idm {
  /** Name of the set. */
  readonly id: string
  readonly start: bigint
  readonly end: bigint
  private readonly handle: Bitseq
  private readonly log: Logger
  /** With a store every operation goes through it; without, the sync paths answer at once. */
  private readonly persistent: boolean

  private constructor(id: string, start: bigint, end: bigint, handle: Bitseq, log: Logger, persistent: boolean) {
    this.id = id
    this.start = start
    this.end = end
    this.handle = handle
    this.log = log
    this.persistent = persistent
  }

  /**
   * @throws InvalidArgumentError for an empty `id`, non-integer bounds, `start < 0` or `end <= start`
   */
  static async create(init: IdmInit): Promise<Idm> {
    throwIfAborted(init.signal)
    if (typeof init.id !== 'string' || init.id === '') {
      throw new InvalidArgumentError('id: invalid id', { code: 'ERR_IDM_INVALID_ID' })
    }
    const start = toBig(init.start, 'start')
    const end = toBig(init.end, 'end')
    if (start < 0n) {
      throw new InvalidArgumentError(`start: must be >= 0, got ${start}`, { code: 'ERR_IDM_INVALID_RANGE' })
    }
    if (end <= start) {
      throw new InvalidArgumentError(`end: must be greater than start (${start}), got ${end}`, {
        code: 'ERR_IDM_INVALID_RANGE',
      })
    }
    const bits = end - start + 1n
    if (bits > MAX_BITS) {
      throw new InvalidArgumentError(`[${start}, ${end}] holds more than 2^64 - 1 ids`, {
        code: 'ERR_IDM_INVALID_RANGE',
      })
    }
    const handle = await Bitseq.create({
      bits,
      ...(init.store === undefined ? {} : { store: init.store, key: IDM_KEY_PREFIX + init.id }),
      id: init.id,
      ...(init.signal === undefined ? {} : { signal: init.signal }),
    })
    const log = (init.logger ?? noopLogger()).forComponent('cnm:idm').child(init.id)
    return new Idm(init.id, start, end, handle, log, init.store !== undefined)
  }

  /**
   * A free ID: the lowest one, or with `serial` the next one after the last handed out (wrapping), so
   * released IDs are not reused right away.
   * @throws NoBitAvailableError when every ID is taken
   */
  getId(serial = false, options?: AbortOptions): Promise<bigint> {
    if (!this.persistent) return settled(options, () => this.getIdSync(serial))
    return this.handle.setAny(serial, options).then((o) => this.start + o)
  }

  /**
   * Takes one given ID.
   * @throws IdOutOfRangeError outside `[start, end]`
   * @throws BitAlreadyAllocatedError when it is taken
   */
  getSpecificId(id: IdValue, options?: AbortOptions): Promise<void> {
    if (!this.persistent) return settled(options, () => this.getSpecificIdSync(id))
    return settled(options, () => this.ordinal(id)).then((k) => this.handle.set(k, options))
  }

  /**
   * A free ID within `[a, b]` (inclusive), first-free or serial as {@link Idm.getId}.
   * @throws IdOutOfRangeError when `a < start` or `b > end`
   * @throws InvalidRangeError when `b < a`
   * @throws NoBitAvailableError when every ID of the range is taken
   */
  getIdInRange(a: IdValue, b: IdValue, serial = false, options?: AbortOptions): Promise<bigint> {
    if (!this.persistent) return settled(options, () => this.getIdInRangeSync(a, b, serial))
    return settled(options, () => this.range(a, b))
      .then(([s, t]) => this.handle.setAnyInRange(s, t, serial, options))
      .then((o) => this.start + o)
  }

  /**
   * Gives an ID back. As in libnetwork, an ID outside the set is ignored (trace-logged); a store
   * failure or an abort still rejects, since the ID then stays taken in the store.
   */
  release(id: IdValue, options?: AbortOptions): Promise<void> {
    if (!this.persistent) return settled(options, () => this.releaseSync(id))
    return settled(options, () => this.releasable(id)).then((k) =>
      k === undefined ? undefined : this.handle.unset(k, options),
    )
  }

  /** {@link Idm.getId} for sets without a store. */
  getIdSync(serial = false): bigint {
    return this.start + this.handle.setAnySync(serial)
  }

  /** {@link Idm.getSpecificId} for sets without a store. */
  getSpecificIdSync(id: IdValue): void {
    this.handle.setSync(this.ordinal(id))
  }

  /** {@link Idm.getIdInRange} for sets without a store. */
  getIdInRangeSync(a: IdValue, b: IdValue, serial = false): bigint {
    const [s, t] = this.range(a, b)
    return this.start + this.handle.setAnyInRangeSync(s, t, serial)
  }

  /** {@link Idm.release} for sets without a store. */
  releaseSync(id: IdValue): void {
    const k = this.releasable(id)
    if (k !== undefined) this.handle.unsetSync(k)
  }

  /** True when the ID is taken (as far as this instance knows; other writers show up after a change or `refresh`). */
  inUse(id: IdValue): boolean {
    const v = toBigOrUndefined(id)
    return v !== undefined && v >= this.start && v <= this.end && this.handle.isSet(v - this.start)
  }

  /** Number of free IDs. */
  free(): bigint {
    return this.handle.unselected()
  }

  /** Re-reads the stored bitmap (no-op without a store). */
  async refresh(options?: AbortOptions): Promise<void> {
    await this.handle.refresh(options)
  }

  /** Deletes the stored bitmap (no-op without a store). */
  async destroy(options?: AbortOptions): Promise<void> {
    await this.handle.destroy(options)
  }

  private ordinal(id: IdValue): bigint {
    const v = toBigOrUndefined(id)
    if (v === undefined || v < this.start || v > this.end) {
      throw new IdOutOfRangeError(
        `requested id does not belong to the set: ${String(id)} not in [${this.start}, ${this.end}]`,
      )
    }
    return v - this.start
  }

  private range(a: IdValue, b: IdValue): [Ordinal, Ordinal] {
    const s = toBigOrUndefined(a)
    const t = toBigOrUndefined(b)
    if (s === undefined || t === undefined || s < this.start || t > this.end) {
      throw new IdOutOfRangeError(
        `requested range does not belong to the set: [${String(a)}, ${String(b)}] not in [${this.start}, ${this.end}]`,
      )
    }
    return [s - this.start, t - this.start]
  }

  private releasable(id: IdValue): bigint | undefined {
    try {
      return this.ordinal(id)
    } catch (err) {
      if (!isCnmError(err, 'ERR_IDM_OUT_OF_RANGE')) throw err
      this.log.trace('release of %s ignored: outside [%s, %s]', String(id), this.start, this.end)
      return undefined
    }
  }
}

/** Runs `fn` now and returns its outcome as a settled promise (an exception becomes a rejection). */
function settled<T>(options: AbortOptions | undefined, fn: () => T): Promise<T> {
  try {
    throwIfAborted(options?.signal)
    return Promise.resolve(fn())
  } catch (err) {
    return Promise.reject(err)
  }
}

function toBig(v: unknown, field: string): bigint {
  const b = toBigOrUndefined(v)
  if (b === undefined) {
    throw new InvalidArgumentError(`${field}: must be an integer, got ${String(v)}`, { code: 'ERR_IDM_INVALID_RANGE' })
  }
  return b
}

function toBigOrUndefined(v: unknown): bigint | undefined {
  if (typeof v === 'bigint') return v
  if (typeof v === 'number' && Number.isSafeInteger(v)) return BigInt(v)
  return undefined
}
