import type { Logger } from '@cnm/types'
import type { ControllerEvent, ControllerEventListener } from '../types.js'

interface Waiter {
  queue: ControllerEvent[]
  wake: (() => void) | undefined
  closed: boolean
}

/** Fan-out of controller events: synchronous listeners and async iterators with their own queues. */
export class EventHub {
  readonly #listeners = new Set<ControllerEventListener>()
  readonly #iterators = new Set<Waiter>()
  constructor(private readonly log: Logger) {}

  subscribe(listener: ControllerEventListener): () => void {
    this.#listeners.add(listener)
    return () => {
      this.#listeners.delete(listener)
    }
  }

  emit(event: ControllerEvent): void {
    this.log.trace('event %s %o', event.type, event)
    for (const l of [...this.#listeners]) {
      try {
        l(event)
      } catch (err) {
        this.log.error('event listener failed on %s: %o', event.type, err)
      }
    }
    for (const w of this.#iterators) {
      w.queue.push(event)
      w.wake?.()
    }
  }

  /** Events from now on until the signal aborts or the hub closes. */
  iterate(signal?: AbortSignal): AsyncIterable<ControllerEvent> {
    const iterators = this.#iterators
    return {
      [Symbol.asyncIterator]: (): AsyncIterator<ControllerEvent> => {
        const w: Waiter = { queue: [], wake: undefined, closed: false }
        iterators.add(w)
        const close = (): void => {
          w.closed = true
          iterators.delete(w)
          w.wake?.()
        }
        if (signal?.aborted === true) close()
        signal?.addEventListener('abort', close, { once: true })
        const finish = (): IteratorResult<ControllerEvent> => {
          signal?.removeEventListener('abort', close)
          iterators.delete(w)
          return { done: true, value: undefined }
        }
        return {
          next: async () => {
            while (w.queue.length === 0 && !w.closed) {
              await new Promise<void>((resolve) => {
                w.wake = resolve
              })
              w.wake = undefined
            }
            const ev = w.queue.shift()
            if (ev === undefined) return finish()
            return { done: false, value: ev }
          },
          return: async () => {
            close()
            return finish()
          },
        }
      },
    }
  }

  close(): void {
    for (const w of [...this.#iterators]) {
      w.closed = true
      w.wake?.()
    }
    this.#iterators.clear()
    this.#listeners.clear()
  }
}
