import type { AbortOptions } from '@cnm/types'

/**
 * Keys are paths: segments joined by `/`, e.g. `docker/network/v1.0/network/<id>/`.
 * Values are opaque bytes (callers usually store JSON). Every value carries a version index
 * that changes on every write; compare-and-swap operations are conditioned on it.
 */
export interface KVPair {
  readonly key: string
  readonly value: Uint8Array
  /** Monotonic per-store modification index of the last write of this key (etcd's ModRevision). */
  readonly index: bigint
}

export interface ListOptions extends AbortOptions {}

export interface WatchEvent {
  readonly type: 'put' | 'delete'
  readonly key: string
  /** Present for `put`. */
  readonly value?: Uint8Array
  readonly index: bigint
}

export interface WatchOptions extends AbortOptions {
  /** Watch every key under this prefix instead of one exact key. */
  prefix?: boolean
}

/** The key-value contract libnetwork's state needs. Implementations: memory, lmdb (local), etcd (global, later). */
export interface Store {
  /** Returns undefined when the key does not exist. */
  get(key: string, options?: AbortOptions): Promise<KVPair | undefined>
  /** Unconditional write; returns the new index. */
  put(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint>
  /** Create-only: throws KeyExistsError if the key exists. Returns the new index. */
  create(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint>
  /** Update-if-unchanged: throws KeyModifiedError if the stored index differs (or the key is gone). */
  update(key: string, value: Uint8Array, previousIndex: bigint, options?: AbortOptions): Promise<bigint>
  /** Unconditional delete; a missing key is not an error. */
  delete(key: string, options?: AbortOptions): Promise<void>
  /** Delete-if-unchanged: throws KeyModifiedError if the stored index differs (or the key is gone). */
  deleteIf(key: string, previousIndex: bigint, options?: AbortOptions): Promise<void>
  /** All pairs whose key starts with `prefix`, in key order. */
  list(prefix: string, options?: ListOptions): Promise<KVPair[]>
  /** Changes to `key` (or, with `prefix: true`, under it) from now on, until the signal aborts or the store closes. */
  watch(key: string, options?: WatchOptions): AsyncIterable<WatchEvent>
  close(): Promise<void>
}
