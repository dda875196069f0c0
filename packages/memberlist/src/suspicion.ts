/**
 * The suspicion timer of SWIM with Lifeguard confirmations (spec/memberlist.md §9).
 * A suspect node is declared dead when the timer fires; independent confirmations from other
 * accusers shorten the timeout from `max` towards `min`.
 */

/** Minimum suspicion timeout: `mult × max(1, log10(max(1, n))) × interval`, in whole ms. */
export function suspicionTimeoutMs(suspicionMult: number, n: number, probeIntervalMs: number): number {
  const nodeScale = Math.max(1, Math.log10(Math.max(1, n)))
  // Go: Duration(mult) * Duration(nodeScale*1000) * interval / 1000 (the scale is cut to whole thousandths).
  return Math.floor((suspicionMult * Math.floor(nodeScale * 1000) * probeIntervalMs) / 1000)
}

/** Remaining time after `n` confirmations of `k` expected, `elapsedMs` after the start (may be ≤ 0). */
export function remainingSuspicionMs(n: number, k: number, elapsedMs: number, minMs: number, maxMs: number): number {
  const frac = k < 1 ? 1 : Math.log(n + 1) / Math.log(k + 1)
  const raw = maxMs / 1000 - frac * (maxMs / 1000 - minMs / 1000)
  let timeout = Math.floor(1000 * raw)
  if (timeout < minMs) timeout = minMs
  return timeout - elapsedMs
}

/** The parameters of a new suspicion for a cluster of `n` known nodes (self and not-yet-removed dead included). */
export function suspicionParams(
  cfg: { suspicionMult: number; suspicionMaxTimeoutMult: number; probeIntervalMs: number },
  n: number,
): { k: number; minMs: number; maxMs: number } {
  let k = cfg.suspicionMult - 2
  if (n - 2 < k) k = 0
  const minMs = suspicionTimeoutMs(cfg.suspicionMult, n, cfg.probeIntervalMs)
  return { k: Math.max(0, k), minMs, maxMs: cfg.suspicionMaxTimeoutMult * minMs }
}

export class Suspicion {
  readonly #k: number
  readonly #minMs: number
  readonly #maxMs: number
  readonly #start: number
  readonly #confirmations = new Set<string>()
  readonly #onTimeout: (confirmations: number) => void
  readonly #now: () => number
  #n = 0
  #timer: NodeJS.Timeout | undefined
  #deadline: number

  /** `from` is the first accuser: it counts as known but not as a confirmation. */
  constructor(
    from: string,
    k: number,
    minMs: number,
    maxMs: number,
    onTimeout: (confirmations: number) => void,
    now: () => number = Date.now,
  ) {
    this.#k = k
    this.#minMs = minMs
    this.#maxMs = maxMs
    this.#onTimeout = onTimeout
    this.#now = now
    this.#start = now()
    this.#confirmations.add(from)
    const timeout = k < 1 ? minMs : maxMs
    this.#deadline = this.#start + timeout
    this.#arm(timeout)
  }

  #arm(ms: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined
        this.#onTimeout(this.#n)
      },
      Math.max(0, ms),
    )
    this.#timer.unref()
  }

  /** Number of independent confirmations so far. */
  get confirmations(): number {
    return this.#n
  }

  /** When the timer fires (epoch ms) if nothing else happens. */
  get deadline(): number {
    return this.#deadline
  }

  /**
   * Registers a suspect message from `from`. True when it was a new confirmation (and the timer was
   * shortened): the caller re-broadcasts it only then.
   */
  confirm(from: string): boolean {
    if (this.#n >= this.#k) return false
    if (this.#confirmations.has(from)) return false
    this.#confirmations.add(from)
    this.#n++
    if (this.#timer === undefined) return true // already fired or stopped
    const elapsed = this.#now() - this.#start
    const remaining = remainingSuspicionMs(this.#n, this.#k, elapsed, this.#minMs, this.#maxMs)
    this.#deadline = this.#now() + Math.max(0, remaining)
    if (remaining > 0) {
      this.#arm(remaining)
    } else {
      clearTimeout(this.#timer)
      this.#timer = undefined
      this.#onTimeout(this.#n)
    }
    return true
  }

  /** Cancels the timer (the node was refuted, declared dead or removed). */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer)
    this.#timer = undefined
  }
}
