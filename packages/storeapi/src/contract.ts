import type { AbortOptions } from '@cnm/types'

/**
 * Keys are paths: segments joined by `/`, e.g. `docker/network/v1.0/network/<id>/`. A key is a non-empty
 * string of at most `MAX_KEY_BYTES` UTF-8 bytes, without control characters or lone surrogates, not
 * starting with `/` and without empty segments (`//`); one trailing `/` is allowed. Keys sort by their
 * UTF-8 bytes (etcd's order). Values are opaque bytes (callers usually store JSON). Every value carries
 * the index of the write that stored it; compare-and-swap operations are conditioned on it.
 */
export interface KVPair {
  readonly key: string
  /** A copy: changing it does not change the store. */
  readonly value: Uint8Array
  /**
   * Modification index of the last write of this key (etcd's ModRevision). Each successful write in a
   * store gets a new index, greater than every index handed out before it by that store, and an index is
   * never reused for another write, so a deleted and re-created key never matches a stale index.
   */
  readonly index: bigint
}

export interface ListOptions extends AbortOptions {}

export interface WatchEvent {
  readonly type: 'put' | 'delete'
  readonly key: string
  /** Present for `put`. */
  readonly value?: Uint8Array
  /** The index of the write (for `delete`, the index of the deletion). */
  readonly index: bigint
}

export interface WatchOptions extends AbortOptions {
  /** Watch every key that starts with `key` (a plain string prefix, as `list`) instead of one exact key. */
  prefix?: boolean
}

/**
 * The key-value contract libnetwork's state needs. Implementations: memory, lmdb (local), etcd (global,
 * later). All operations on one store are linearizable: a write that has resolved is seen by every later
 * read, list and compare-and-swap.
 *
 * Every method rejects with `InvalidKeyError` for a bad key, prefix or value, with `StoreUnavailableError`
 * once the store is closed or its backend failed, and with `AbortError` (`ERR_ABORTED`, cause =
 * `signal.reason`) when `options.signal` is already aborted. Aborting never undoes a write the store has
 * accepted: the memory and lmdb stores check the signal before a write takes effect and then finish it (a
 * remote store may also give up while waiting for its server, which leaves that write's outcome unknown).
 */
export interface Store {
  /** Returns undefined when the key does not exist. */
  get(key: string, options?: AbortOptions): Promise<KVPair | undefined>
  /** Unconditional write; returns the new index. */
  put(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint>
  /** Create-only: throws KeyExistsError if the key exists. Returns the new index. */
  create(key: string, value: Uint8Array, options?: AbortOptions): Promise<bigint>
  /** Update-if-unchanged: throws KeyModifiedError if the stored index differs (or the key is gone). */
  update(key: string, value: Uint8Array, previousIndex: bigint, options?: AbortOptions): Promise<bigint>
  /** Unconditional delete; a missing key is not an error (and produces no watch event). */
  delete(key: string, options?: AbortOptions): Promise<void>
  /** Delete-if-unchanged: throws KeyModifiedError if the stored index differs (or the key is gone). */
  deleteIf(key: string, previousIndex: bigint, options?: AbortOptions): Promise<void>
  /**
   * All pairs whose key starts with `prefix` (a plain string prefix: `a/b` also matches `a/bc`; end it
   * with `/` for one directory), in key order. The empty prefix lists everything.
   */
  list(prefix: string, options?: ListOptions): Promise<KVPair[]>
  /**
   * Changes to `key` (or, with `prefix: true`, under it), in index order, from the moment `watch` is
   * called. The subscription exists as soon as `watch` returns, so writes made before the first `next()`
   * are not missed. Iteration ends normally when the store closes (after the buffered events), throws
   * `AbortError` when the signal aborts, and unsubscribes on `break`/`return()`. One consumer per call;
   * events are buffered until read.
   */
  watch(key: string, options?: WatchOptions): AsyncIterable<WatchEvent>
  /** Waits for writes in flight, ends every watch and releases the backend. Idempotent. */
  close(): Promise<void>
}
