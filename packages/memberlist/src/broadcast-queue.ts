/** One message waiting to be gossiped. */
export interface Broadcast {
  readonly message: Uint8Array
  /** True when this (newer) broadcast makes `other` pointless, so `other` is dropped from the queue. */
  invalidates(other: Broadcast): boolean
  /** Called once when the broadcast leaves the queue: sent its full number of times, replaced or pruned. */
  finished?(): void
}

interface Entry {
  readonly broadcast: Broadcast
  readonly id: number
  transmits: number
}

/** How many times a message is sent: `mult × ceil(log10(n + 1))` (n = nodes, self included). */
export function retransmitLimit(mult: number, nodes: number): number {
  return mult * Math.ceil(Math.log10(nodes + 1))
}

/**
 * A transmit-limited queue as memberlist keeps it: each message is handed out at most
 * {@link retransmitLimit} times, the least-sent first (then the longest, then the newest), and messages
 * that do not fit the remaining budget are skipped.
 */
export class TransmitLimitedQueue {
  readonly #numNodes: () => number
  readonly #mult: number
  #entries: Entry[] = []
  #nextId = 0

  constructor(options: { numNodes: () => number; retransmitMult: number }) {
    this.#numNodes = options.numNodes
    this.#mult = options.retransmitMult
  }

  /** Queues a broadcast, dropping (and finishing) the queued ones it invalidates. */
  queue(broadcast: Broadcast): void {
    const kept: Entry[] = []
    for (const entry of this.#entries) {
      if (broadcast.invalidates(entry.broadcast)) entry.broadcast.finished?.()
      else kept.push(entry)
    }
    kept.push({ broadcast, id: this.#nextId++, transmits: 0 })
    this.#entries = kept
  }

  /**
   * Messages fitting `limit` bytes, each costing `overhead` more, at most `maxCount` of them (a Go
   * receiver cannot take more than 127 compound parts); every one handed out counts as sent.
   */
  getBroadcasts(overhead: number, limit: number, maxCount = Number.POSITIVE_INFINITY): Uint8Array[] {
    if (this.#entries.length === 0) return []
    const max = retransmitLimit(this.#mult, this.#numNodes())
    const order = [...this.#entries].sort(
      (a, b) => a.transmits - b.transmits || b.broadcast.message.length - a.broadcast.message.length || b.id - a.id,
    )
    const out: Uint8Array[] = []
    let used = 0
    const done = new Set<Entry>()
    for (const entry of order) {
      if (out.length >= maxCount) break
      const cost = overhead + entry.broadcast.message.length
      if (used + cost > limit) continue
      used += cost
      out.push(entry.broadcast.message)
      entry.transmits++
      if (entry.transmits >= max) done.add(entry)
    }
    if (done.size > 0) {
      this.#entries = this.#entries.filter((entry) => !done.has(entry))
      for (const entry of done) entry.broadcast.finished?.()
    }
    return out
  }

  /** Number of queued messages. */
  get length(): number {
    return this.#entries.length
  }

  /** Keeps the `max` newest messages, finishing the others. */
  prune(max: number): void {
    if (this.#entries.length <= max) return
    const cut = this.#entries.length - max
    const dropped = this.#entries.slice(0, cut)
    this.#entries = this.#entries.slice(cut)
    for (const entry of dropped) entry.broadcast.finished?.()
  }

  /** Drops everything (finishing each). */
  reset(): void {
    const all = this.#entries
    this.#entries = []
    for (const entry of all) entry.broadcast.finished?.()
  }
}
