import { AbortError, isCnmError, type AbortOptions } from '@cnm/types'
import type { Store } from '@cnm/storeapi'
import { ControllerStoreError } from '../errors.js'

/** Root of every key (README §9). */
export const ROOT = 'docker/network/v1.0/'

export const keys = Object.freeze({
  network: (nid: string): string => `${ROOT}network/${nid}/`,
  networks: (): string => `${ROOT}network/`,
  endpoint: (nid: string, eid: string): string => `${ROOT}endpoint/${nid}/${eid}/`,
  endpoints: (nid?: string): string => (nid === undefined ? `${ROOT}endpoint/` : `${ROOT}endpoint/${nid}/`),
  endpointCount: (nid: string): string => `${ROOT}endpoint_count/${nid}/`,
  endpointCounts: (): string => `${ROOT}endpoint_count/`,
  sandbox: (sid: string): string => `${ROOT}sandbox/${sid}/`,
  sandboxes: (): string => `${ROOT}sandbox/`,
})

const enc = new TextEncoder()
const dec = new TextDecoder()

function wrap(err: unknown, what: string, key: string): Error {
  if (isCnmError(err) && (err.kind === 'aborted' || err.code === 'ERR_CONTROLLER_STORE')) return err
  if (err instanceof DOMException && err.name === 'AbortError') return new AbortError(undefined, { cause: err })
  return new ControllerStoreError(`store ${what} of ${key} failed`, {
    cause: err,
    retry: isCnmError(err) && err.retry,
  })
}

export interface StoredObject<T> {
  readonly key: string
  readonly value: T
}

/**
 * JSON objects in the Store with compare-and-swap: the index of each key this controller last read
 * or wrote is remembered; a write against a stale index fails with ControllerStoreError (retry flag).
 */
export class StateStore {
  readonly #index = new Map<string, bigint>()
  constructor(private readonly store: Store) {}

  async get<T>(key: string, options?: AbortOptions): Promise<T | undefined> {
    try {
      const kv = await this.store.get(key, options)
      if (kv === undefined) {
        this.#index.delete(key)
        return undefined
      }
      this.#index.set(key, kv.index)
      return JSON.parse(dec.decode(kv.value)) as T
    } catch (err) {
      throw wrap(err, 'read', key)
    }
  }

  /** Writes `value`: an update against the known index, or a create when the key was never seen. */
  async save(key: string, value: unknown, options?: AbortOptions): Promise<void> {
    const bytes = enc.encode(JSON.stringify(value))
    const idx = this.#index.get(key)
    try {
      const next =
        idx === undefined
          ? await this.store.create(key, bytes, options)
          : await this.store.update(key, bytes, idx, options)
      this.#index.set(key, next)
    } catch (err) {
      throw wrap(err, idx === undefined ? 'create' : 'update', key)
    }
  }

  /** Deletes against the known index (a key already gone is fine). */
  async remove(key: string, options?: AbortOptions): Promise<void> {
    const idx = this.#index.get(key)
    try {
      if (idx === undefined) await this.store.delete(key, options)
      else {
        try {
          await this.store.deleteIf(key, idx, options)
        } catch (err) {
          if (isCnmError(err, 'ERR_STORE_KEY_MODIFIED') && (await this.store.get(key, options)) === undefined) {
            this.#index.delete(key)
            return
          }
          throw err
        }
      }
      this.#index.delete(key)
    } catch (err) {
      throw wrap(err, 'delete', key)
    }
  }

  /** Every object under `prefix` (values that fail to parse are returned as `undefined`). */
  async list<T>(prefix: string, options?: AbortOptions): Promise<Array<StoredObject<T | undefined>>> {
    try {
      const pairs = await this.store.list(prefix, options)
      return pairs.map((kv) => {
        this.#index.set(kv.key, kv.index)
        let value: T | undefined
        try {
          value = JSON.parse(dec.decode(kv.value)) as T
        } catch {
          value = undefined
        }
        return { key: kv.key, value }
      })
    } catch (err) {
      throw wrap(err, 'list', prefix)
    }
  }

  /**
   * Read-modify-write with compare-and-swap, retried on conflicts (README §9): re-read, re-apply `fn`.
   * `fn` returning undefined deletes the key.
   */
  async modify<T>(
    key: string,
    fn: (current: T | undefined) => T | undefined,
    retries: number,
    options?: AbortOptions,
  ): Promise<T | undefined> {
    let lastErr: unknown
    for (let attempt = 0; attempt < Math.max(1, retries); attempt++) {
      const cur = await this.get<T>(key, options)
      const next = fn(cur)
      try {
        if (next === undefined) {
          if (cur !== undefined) await this.remove(key, options)
        } else {
          await this.save(key, next, options)
        }
        return next
      } catch (err) {
        if (!(isCnmError(err) && err.retry)) throw err
        lastErr = err
      }
    }
    throw new ControllerStoreError(`compare-and-swap on ${key} kept failing`, { cause: lastErr, retry: true })
  }
}
