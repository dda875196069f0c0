import type { AbortOptions } from '@cnm/types'
import type { TableEvent, TableWatch, WatchFilter } from './types.js'

function wildcard(v: string | undefined): boolean {
  return v === undefined || v === '' || v === '*'
}

/** One watcher: an unbounded FIFO of events (as Docker's events.Queue), read as an async iterable. */
class Watcher implements TableWatch {
  readonly #filter: WatchFilter
  readonly #onClose: (w: Watcher) => void
  #buf: TableEvent[] = []
  #head = 0
  #closed = false
  #wake: (() => void) | undefined
  readonly #signal: AbortSignal | undefined
  readonly #abort = (): void => this.close()

  constructor(filter: WatchFilter, onClose: (w: Watcher) => void, signal: AbortSignal | undefined) {
    this.#filter = { ...filter }
    this.#onClose = onClose
    this.#signal = signal
    signal?.addEventListener('abort', this.#abort, { once: true })
  }

  matches(ev: TableEvent): boolean {
    const f = this.#filter
    return (
      (wildcard(f.table) || f.table === ev.table) &&
      (wildcard(f.networkId) || f.networkId === ev.networkId) &&
      (wildcard(f.key) || f.key === ev.key)
    )
  }

  push(ev: TableEvent): void {
    if (this.#closed) return
    this.#buf.push(ev)
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  close(): void {
    if (this.#closed) return
    this.#closed = true
    this.#buf = []
    this.#head = 0
    this.#signal?.removeEventListener('abort', this.#abort)
    this.#onClose(this)
    const wake = this.#wake
    this.#wake = undefined
    wake?.()
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<TableEvent, void, undefined> {
    try {
      for (;;) {
        if (this.#head < this.#buf.length) {
          const ev = this.#buf[this.#head++] as TableEvent
          if (this.#head > 1024 && this.#head * 2 > this.#buf.length) {
            this.#buf = this.#buf.slice(this.#head)
            this.#head = 0
          }
          yield ev
          continue
        }
        if (this.#closed) return
        await new Promise<void>((resolve) => {
          this.#wake = resolve
        })
      }
    } finally {
      // A consumer that breaks out of the loop ends the watch.
      this.close()
    }
  }
}

/** Fans table events out to watchers. */
export class WatchHub {
  readonly #watchers = new Set<Watcher>()

  get size(): number {
    return this.#watchers.size
  }

  watch(filter: WatchFilter, opts?: AbortOptions): TableWatch {
    const w = new Watcher(filter, (x) => this.#watchers.delete(x), opts?.signal)
    if (opts?.signal?.aborted === true) w.close()
    else this.#watchers.add(w)
    return w
  }

  emit(ev: TableEvent): void {
    if (this.#watchers.size === 0) return
    for (const w of this.#watchers) if (w.matches(ev)) w.push(ev)
  }

  closeAll(): void {
    for (const w of [...this.#watchers]) w.close()
  }
}
