import type { Logger } from '@cnm/types'

/**
 * Undo steps of a multi-step setup: push one after each successful step; on a later failure `rollback()`
 * runs them last-first. Failures of undo steps are logged (the original error is what the caller sees).
 */
export class UndoStack {
  private readonly steps: Array<{ what: string; fn: () => Promise<void> }> = []

  constructor(private readonly log: Logger) {}

  push(what: string, fn: () => Promise<void>): void {
    this.steps.push({ what, fn })
  }

  async rollback(): Promise<void> {
    while (this.steps.length > 0) {
      const step = this.steps.pop()
      if (step === undefined) break
      try {
        await step.fn()
      } catch (err) {
        this.log.error('rollback step "%s" failed: %s', step.what, (err as Error)?.message ?? String(err))
      }
    }
  }
}
