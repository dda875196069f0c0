import { throwIfAborted, type AbortOptions } from '@cnm/types'
import type { KVPair, ListOptions, Store, WatchEvent, WatchOptions } from '@cnm/storeapi'
import { KeyExistsError, KeyModifiedError, StoreUnavailableError } from '@cnm/storeapi'
import { assertIndex } from './internal/checks.js'
import { WatchHub } from './internal/watch-hub.js'
import { assertValidKey, assertValidPrefix, assertValidValue, compareKeys } from '@cnm/storeapi'

interface Entry {
  readonly value: Uint8Array
  readonly index: bigint
}

/**
 * A store held in memory: for tests, for single-process tools and as the reference implementation of the
 * contract. Indices come from one counter per store, starting at 1. Values are copied in and out.
 */
export class MemoryStore implements Store {
  readonly #data = new Map<string, Entry>()
  /** Keys in UTF-8 byte order, for prefix listing. */
  #sorted: string[] = []
  #index = 0n
  #closed = false
  readonly #hub = new WatchHub()

  /** The index of the last write (0n before the first). */
  get lastIndex(): bigint {
    return this.#index
  }

  async get(key: string, options?: AbortOptions): Promise<KVPair | undefined> {
    assertValidKey(key)
    this.#begin(options)
    const e = this.#data.get(key)
    return e === undefined ? undefined : { key, value: new Uint8Array(e.value), index: e.index }
  }

  async put(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    this.#begin(options)
    return this.#set(key, value)
  }

  async create(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    this.#begin(options)
    if (this.#data.has(key)) throw new KeyExistsError(key)
    return this.#set(key, value)
  }

  async update(key: string, value: Uint8Array, previousIndex: bigint, options?: AbortOptions): Promise<bigint> {
    assertValidKey(key)
    assertValidValue(key, value)
    assertIndex(previousIndex)
    this.#begin(options)
    if (this.#data.get(key)?.index !== previousIndex) throw new KeyModifiedError(key)
    return this.#set(key, value)
  }

  async delete(key: string, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    this.#begin(options)
    if (this.#data.has(key)) this.#remove(key)
  }

  async deleteIf(key: string, previousIndex: bigint, options?: AbortOptions): Promise<void> {
    assertValidKey(key)
    assertIndex(previousIndex)
    this.#begin(options)
    if (this.#data.get(key)?.index !== previousIndex) throw new KeyModifiedError(key)
    this.#remove(key)
  }

  async list(prefix: string, options?: ListOptions): Promise<KVPair[]> {
    assertValidPrefix(prefix)
    this.#begin(options)
    const out: KVPair[] = []
    for (let i = this.#lowerBound(prefix); i < this.#sorted.length; i++) {
      const key = this.#sorted[i] as string
      if (!key.startsWith(prefix)) break
      const e = this.#data.get(key) as Entry
      out.push({ key, value: new Uint8Array(e.value), index: e.index })
    }
    return out
  }

  watch(key: string, options?: WatchOptions): AsyncIterable<WatchEvent> {
    const prefix = options?.prefix === true
    if (prefix) assertValidPrefix(key)
    else assertValidKey(key)
    this.#begin(options)
    return this.#hub.subscribe(key, prefix, options?.signal)
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    this.#hub.endAll()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #begin(options: AbortOptions | undefined): void {
    if (this.#closed) throw new StoreUnavailableError('store is closed')
    throwIfAborted(options?.signal)
  }

  #set(key: string, value: Uint8Array): bigint {
    const index = ++this.#index
    const copy = new Uint8Array(value)
    if (!this.#data.has(key)) this.#sorted.splice(this.#lowerBound(key), 0, key)
    this.#data.set(key, { value: copy, index })
    if (this.#hub.active) this.#hub.emit({ type: 'put', key, value: copy, index })
    return index
  }

  #remove(key: string): void {
    const index = ++this.#index
    this.#data.delete(key)
    this.#sorted.splice(this.#lowerBound(key), 1)
    if (this.#hub.active) this.#hub.emit({ type: 'delete', key, index })
  }

  /** First position whose key is >= `key`. */
  #lowerBound(key: string): number {
    let lo = 0
    let hi = this.#sorted.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if (compareKeys(this.#sorted[mid] as string, key) < 0) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

/** Options of {@link memoryStore}; none yet. */
export interface MemoryStoreInit {}

/** An empty in-memory store. */
export function memoryStore(_init?: MemoryStoreInit): MemoryStore {
  return new MemoryStore()
}
