import type { ComponentLogger, Logger } from '@cnm/types'

export interface LogLine {
  readonly component: string
  readonly level: 'info' | 'error' | 'trace'
  readonly message: string
  readonly args: unknown[]
}

/** A ComponentLogger that records every line, for assertions. */
export function capturingLogger(): ComponentLogger & { lines: LogLine[] } {
  const lines: LogLine[] = []
  const make = (component: string): Logger => {
    const log = ((message: string, ...args: unknown[]) => {
      lines.push({ component, level: 'info', message, args })
    }) as Logger
    log.error = (message: string, ...args: unknown[]) => lines.push({ component, level: 'error', message, args })
    log.trace = (message: string, ...args: unknown[]) => lines.push({ component, level: 'trace', message, args })
    log.enabled = true
    log.child = (scope: string) => make(`${component}:${scope}`)
    return log
  }
  return { lines, forComponent: make }
}
