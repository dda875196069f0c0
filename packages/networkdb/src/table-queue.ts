/**
 * The per-network table-event queue. Same semantics as memberlist's TransmitLimitedQueue (each message is
 * handed out up to `mult × ceil(log10(n + 1))` times, fewest-sent first, newest first among equals, skipped
 * when it does not fit) but keyed: a newer event for the same (table, network, key) replaces the queued one
 * in O(1), and handing out messages does not sort the whole queue. A node that creates 100,000 entries
 * would otherwise pay O(n²) in invalidation scans.
 */

interface QEntry {
  readonly key: string
  readonly message: Uint8Array
  transmits: number
  dead: boolean
}

export class TableEventQueue {
  readonly #numNodes: () => number
  readonly #mult: number
  readonly #byKey = new Map<string, QEntry>()
  /** buckets[t] holds entries sent t times, oldest first (dead ones are skipped and compacted lazily). */
  #buckets: QEntry[][] = []
  #deadCount = 0
  #unsent = 0

  constructor(options: { numNodes: () => number; retransmitMult: number }) {
    this.#numNodes = options.numNodes
    this.#mult = options.retransmitMult
  }

  get length(): number {
    return this.#byKey.size
  }

  /** Queued messages not handed out even once yet. */
  get unsent(): number {
    return this.#unsent
  }

  /** Queues `message` under `key`, replacing any queued message with the same key. */
  queue(key: string, message: Uint8Array): void {
    const old = this.#byKey.get(key)
    if (old !== undefined) {
      if (!old.dead && old.transmits === 0) this.#unsent--
      this.#kill(old)
    }
    this.#unsent++
    const entry: QEntry = { key, message, transmits: 0, dead: false }
    this.#byKey.set(key, entry)
    this.#bucket(0).push(entry)
  }

  /** Messages fitting `limit` bytes, each costing `overhead` more; each handed out counts as one transmit. */
  getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    if (this.#byKey.size === 0) return []
    const max = this.#mult * Math.ceil(Math.log10(this.#numNodes() + 1))
    const out: Uint8Array[] = []
    const promoted: QEntry[] = []
    let used = 0
    let misses = 0
    scan: for (let t = 0; t < this.#buckets.length; t++) {
      const bucket = this.#buckets[t]
      if (bucket === undefined) continue
      for (let i = bucket.length - 1; i >= 0; i--) {
        const entry = bucket[i]
        if (entry === undefined || entry.dead) continue
        const cost = overhead + entry.message.length
        if (used + cost > limit) {
          // Give up after a run of misses or once nothing useful can fit: the queue may hold 100k items.
          if (++misses > 32 || limit - used < overhead + 16) break scan
          continue
        }
        used += cost
        if (entry.transmits === 0) this.#unsent--
        out.push(entry.message)
        entry.dead = true
        this.#deadCount++
        promoted.push(entry)
      }
    }
    for (const entry of promoted) {
      if (this.#byKey.get(entry.key) !== entry) continue
      const next: QEntry = { key: entry.key, message: entry.message, transmits: entry.transmits + 1, dead: false }
      if (next.transmits >= max) {
        this.#byKey.delete(entry.key)
      } else {
        this.#byKey.set(entry.key, next)
        this.#bucket(next.transmits).push(next)
      }
    }
    this.#compact()
    return out
  }

  /** Drops everything. */
  reset(): void {
    this.#byKey.clear()
    this.#buckets = []
    this.#deadCount = 0
    this.#unsent = 0
  }

  #bucket(t: number): QEntry[] {
    let b = this.#buckets[t]
    if (b === undefined) {
      while (this.#buckets.length <= t) this.#buckets.push([])
      b = this.#buckets[t] as QEntry[]
    }
    return b
  }

  #kill(entry: QEntry): void {
    if (entry.dead) return
    entry.dead = true
    this.#deadCount++
    this.#compact()
  }

  #compact(): void {
    if (this.#deadCount < 1024 || this.#deadCount < this.#byKey.size) return
    this.#buckets = this.#buckets.map((b) => b.filter((e) => !e.dead))
    this.#deadCount = 0
  }
}
