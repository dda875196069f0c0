/** A Lamport clock (serf's LamportClock as networkdb uses it). */
export class LamportClock {
  #counter = 0n

  /** Current value. */
  time(): bigint {
    return this.#counter
  }

  /** Advances the clock and returns the new value. */
  increment(): bigint {
    this.#counter += 1n
    return this.#counter
  }

  /** Moves the clock past an observed time: to `v + 1` when `v ≥` the current value. */
  witness(v: bigint): void {
    if (v >= this.#counter) this.#counter = v + 1n
  }
}
