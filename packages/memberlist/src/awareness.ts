/** Lifeguard local health ("awareness"): 0 is healthy; probe deadlines scale by `score + 1`. */
export class Awareness {
  readonly #max: number
  #score = 0

  constructor(maxMultiplier: number) {
    this.#max = maxMultiplier
  }

  /** Adds `delta`, clamped to [0, max − 1]. Returns the new score. */
  applyDelta(delta: number): number {
    this.#score = Math.min(this.#max - 1, Math.max(0, this.#score + delta))
    return this.#score
  }

  get score(): number {
    return this.#score
  }

  /** `timeoutMs × (score + 1)`. */
  scaleTimeout(timeoutMs: number): number {
    return timeoutMs * (this.#score + 1)
  }
}
