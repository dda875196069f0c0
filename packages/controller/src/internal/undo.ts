import type { Logger } from '@cnm/types'

/** Undo steps pushed after each successful setup step; run in reverse order when a later step fails. */
export class UndoStack {
  readonly #steps: Array<{ what: string; fn: () => unknown }> = []
  constructor(private readonly log: Logger) {}

  push(what: string, fn: () => unknown): void {
    this.#steps.push({ what, fn })
  }

  async run(): Promise<void> {
    while (this.#steps.length > 0) {
      const step = this.#steps.pop()
      if (step === undefined) break
      try {
        await step.fn()
      } catch (err) {
        this.log.error('rollback step %s failed: %o', step.what, err)
      }
    }
  }

  clear(): void {
    this.#steps.length = 0
  }
}
