// @cnm/datastore's memoryStore, wrapped to count calls, inject failures and interleave callers.
import { memoryStore, type KVPair, type Store, type WatchEvent, type WatchOptions } from '@cnm/datastore'
import type { AbortOptions } from '@cnm/types'

type Method = 'get' | 'put' | 'create' | 'update' | 'delete' | 'deleteIf'

export interface InstrumentedStore extends Store {
  /** Calls per method, for assertions. */
  readonly calls: Record<Method, number>
  /** Makes the next call of `method` reject with `err` (once). */
  failNext(method: Method, err: unknown): void
}

/**
 * `yieldEvery`: every call first waits one macrotask, so concurrent callers interleave the way they would
 * with a real backend (and compare-and-swap conflicts happen often).
 */
export function instrumentedStore(opts: { yieldEvery?: boolean } = {}): InstrumentedStore {
  const inner = memoryStore()
  const calls: Record<Method, number> = { get: 0, put: 0, create: 0, update: 0, delete: 0, deleteIf: 0 }
  const failures = new Map<Method, unknown>()
  const enter = async (method: Method, options?: AbortOptions): Promise<void> => {
    calls[method]++
    if (opts.yieldEvery === true) await new Promise<void>((resolve) => setImmediate(resolve))
    options?.signal?.throwIfAborted()
    if (failures.has(method)) {
      const err = failures.get(method)
      failures.delete(method)
      throw err
    }
  }
  return {
    calls,
    failNext(method, err) {
      failures.set(method, err)
    },
    async get(key, options): Promise<KVPair | undefined> {
      await enter('get', options)
      return inner.get(key, options)
    },
    async put(key, value, options) {
      await enter('put', options)
      return inner.put(key, value, options)
    },
    async create(key, value, options) {
      await enter('create', options)
      return inner.create(key, value, options)
    },
    async update(key, value, previousIndex, options) {
      await enter('update', options)
      return inner.update(key, value, previousIndex, options)
    },
    async delete(key, options) {
      await enter('delete', options)
      return inner.delete(key, options)
    },
    async deleteIf(key, previousIndex, options) {
      await enter('deleteIf', options)
      return inner.deleteIf(key, previousIndex, options)
    },
    list: (prefix, options) => inner.list(prefix, options),
    watch: (key: string, options?: WatchOptions): AsyncIterable<WatchEvent> => inner.watch(key, options),
    close: () => inner.close(),
  }
}
