import { AbortError } from '@cnm/types'
import type { WatchEvent } from '@cnm/storeapi'

interface Waiter {
  resolve(result: IteratorResult<WatchEvent>): void
  reject(err: unknown): void
}

const DONE: IteratorResult<WatchEvent> = Object.freeze({ done: true, value: undefined })

/** One `watch()` call: a single-consumer async iterator over a private event queue. */
class Subscription implements AsyncIterableIterator<WatchEvent> {
  readonly key: string
  readonly prefix: boolean
  #hub: WatchHub | undefined
  #queue: WatchEvent[] = []
  #head = 0
  #waiters: Waiter[] = []
  /** open: receiving; ended: deliver what is queued, then done; failed: throw #error once, then done. */
  #state: 'open' | 'ended' | 'failed' = 'open'
  #error: unknown
  readonly #signal: AbortSignal | undefined
  readonly #onAbort = (): void => {
    this.fail(new AbortError('watch aborted', { cause: this.#signal?.reason }))
  }

  constructor(hub: WatchHub, key: string, prefix: boolean, signal: AbortSignal | undefined) {
    this.#hub = hub
    this.key = key
    this.prefix = prefix
    this.#signal = signal
    signal?.addEventListener('abort', this.#onAbort, { once: true })
  }

  push(event: WatchEvent): void {
    if (this.#state !== 'open') return
    const copy: WatchEvent =
      event.value === undefined
        ? { type: event.type, key: event.key, index: event.index }
        : { type: event.type, key: event.key, value: new Uint8Array(event.value), index: event.index }
    const waiter = this.#waiters.shift()
    if (waiter !== undefined) waiter.resolve({ done: false, value: copy })
    else this.#queue.push(copy)
  }

  /** The store closed: queued events are still delivered, then iteration ends. */
  end(): void {
    if (this.#state !== 'open') return
    this.#state = 'ended'
    this.#detach()
    for (const w of this.#waiters.splice(0)) w.resolve(DONE)
  }

  /** Aborted or the store failed: queued events are dropped and the next read throws `err`. */
  fail(err: unknown): void {
    if (this.#state !== 'open') return
    this.#state = 'failed'
    this.#error = err
    this.#queue = []
    this.#head = 0
    this.#detach()
    const waiters = this.#waiters.splice(0)
    if (waiters.length > 0) {
      this.#state = 'ended'
      for (const w of waiters) w.reject(err)
    }
  }

  next(): Promise<IteratorResult<WatchEvent>> {
    if (this.#head < this.#queue.length) {
      const value = this.#queue[this.#head++] as WatchEvent
      if (this.#head === this.#queue.length) {
        this.#queue = []
        this.#head = 0
      } else if (this.#head >= 1024 && this.#head * 2 >= this.#queue.length) {
        this.#queue = this.#queue.slice(this.#head)
        this.#head = 0
      }
      return Promise.resolve({ done: false, value })
    }
    if (this.#state === 'failed') {
      this.#state = 'ended'
      return Promise.reject(this.#error)
    }
    if (this.#state === 'ended') return Promise.resolve(DONE)
    return new Promise((resolve, reject) => this.#waiters.push({ resolve, reject }))
  }

  return(): Promise<IteratorResult<WatchEvent>> {
    this.#state = 'ended'
    this.#queue = []
    this.#head = 0
    this.#detach()
    for (const w of this.#waiters.splice(0)) w.resolve(DONE)
    return Promise.resolve(DONE)
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<WatchEvent> {
    return this
  }

  #detach(): void {
    this.#signal?.removeEventListener('abort', this.#onAbort)
    this.#hub?.remove(this)
    this.#hub = undefined
  }
}

/**
 * The watchers of one store. Stores call `emit` for every successful write, in index order; with no
 * watchers `active` is false and the store can skip building the event.
 */
export class WatchHub {
  readonly #exact = new Map<string, Set<Subscription>>()
  readonly #prefixed = new Set<Subscription>()

  get active(): boolean {
    return this.#exact.size > 0 || this.#prefixed.size > 0
  }

  /** Number of live subscriptions (for tests and diagnostics). */
  get size(): number {
    let n = this.#prefixed.size
    for (const set of this.#exact.values()) n += set.size
    return n
  }

  subscribe(key: string, prefix: boolean, signal: AbortSignal | undefined): AsyncIterableIterator<WatchEvent> {
    const sub = new Subscription(this, key, prefix, signal)
    if (prefix) this.#prefixed.add(sub)
    else {
      let set = this.#exact.get(key)
      if (set === undefined) this.#exact.set(key, (set = new Set()))
      set.add(sub)
    }
    return sub
  }

  emit(event: WatchEvent): void {
    const set = this.#exact.get(event.key)
    // push() never unsubscribes, so the sets can be iterated in place.
    if (set !== undefined) for (const sub of set) sub.push(event)
    for (const sub of this.#prefixed) if (event.key.startsWith(sub.key)) sub.push(event)
  }

  /** Ends every subscription (store closed). */
  endAll(): void {
    for (const set of [...this.#exact.values()]) for (const sub of [...set]) sub.end()
    for (const sub of [...this.#prefixed]) sub.end()
  }

  /** Makes every subscription throw `err` (the store failed). */
  failAll(err: unknown): void {
    for (const set of [...this.#exact.values()]) for (const sub of [...set]) sub.fail(err)
    for (const sub of [...this.#prefixed]) sub.fail(err)
  }

  /** @internal called by a subscription that ends. */
  remove(sub: Subscription): void {
    if (sub.prefix) {
      this.#prefixed.delete(sub)
      return
    }
    const set = this.#exact.get(sub.key)
    if (set === undefined) return
    set.delete(sub)
    if (set.size === 0) this.#exact.delete(sub.key)
  }
}
