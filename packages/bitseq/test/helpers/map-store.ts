// A tiny Map-backed Store for tests, until @cnm/datastore ships memoryStore().
import { KeyExistsError, KeyModifiedError, type KVPair, type Store, type WatchEvent } from '@cnm/datastore'
import type { AbortOptions } from '@cnm/types'

type Method = 'get' | 'put' | 'create' | 'update' | 'delete' | 'deleteIf'

export interface MapStore extends Store {
  readonly data: Map<string, { value: Uint8Array; index: bigint }>
  /** Calls per method, for assertions. */
  readonly calls: Record<Method, number>
  /** Makes the next call of `method` reject with `err` (once). */
  failNext(method: Method, err: unknown): void
}

/**
 * `yieldEvery`: every call waits one macrotask first, so concurrent callers interleave the way they
 * would with a real backend (and compare-and-swap conflicts actually happen).
 */
export function mapStore(opts: { yieldEvery?: boolean } = {}): MapStore {
  const data = new Map<string, { value: Uint8Array; index: bigint }>()
  const calls: Record<Method, number> = { get: 0, put: 0, create: 0, update: 0, delete: 0, deleteIf: 0 }
  const failures = new Map<Method, unknown>()
  let rev = 0n
  const watchers = new Set<(ev: WatchEvent) => void>()
  const emit = (ev: WatchEvent): void => {
    for (const w of watchers) w(ev)
  }

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
  const write = (key: string, value: Uint8Array): bigint => {
    rev++
    data.set(key, { value: value.slice(), index: rev })
    emit({ type: 'put', key, value: value.slice(), index: rev })
    return rev
  }

  return {
    data,
    calls,
    failNext(method, err) {
      failures.set(method, err)
    },
    async get(key, options): Promise<KVPair | undefined> {
      await enter('get', options)
      const e = data.get(key)
      return e === undefined ? undefined : { key, value: e.value.slice(), index: e.index }
    },
    async put(key, value, options) {
      await enter('put', options)
      return write(key, value)
    },
    async create(key, value, options) {
      await enter('create', options)
      if (data.has(key)) throw new KeyExistsError(key)
      return write(key, value)
    },
    async update(key, value, previousIndex, options) {
      await enter('update', options)
      const e = data.get(key)
      if (e === undefined || e.index !== previousIndex) throw new KeyModifiedError(key)
      return write(key, value)
    },
    async delete(key, options) {
      await enter('delete', options)
      if (data.delete(key)) emit({ type: 'delete', key, index: ++rev })
    },
    async deleteIf(key, previousIndex, options) {
      await enter('deleteIf', options)
      const e = data.get(key)
      if (e === undefined || e.index !== previousIndex) throw new KeyModifiedError(key)
      data.delete(key)
      emit({ type: 'delete', key, index: ++rev })
    },
    async list(prefix) {
      return [...data.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, e]) => ({ key, value: e.value.slice(), index: e.index }))
    },
    async *watch(key, options): AsyncIterable<WatchEvent> {
      const queue: WatchEvent[] = []
      let wake: (() => void) | undefined
      const listener = (ev: WatchEvent): void => {
        if (options?.prefix === true ? ev.key.startsWith(key) : ev.key === key) {
          queue.push(ev)
          wake?.()
        }
      }
      const onAbort = (): void => wake?.()
      watchers.add(listener)
      options?.signal?.addEventListener('abort', onAbort)
      try {
        while (options?.signal?.aborted !== true) {
          const ev = queue.shift()
          if (ev !== undefined) yield ev
          else await new Promise<void>((resolve) => (wake = resolve))
        }
      } finally {
        watchers.delete(listener)
        options?.signal?.removeEventListener('abort', onAbort)
      }
    },
    async close() {},
  }
}
