import type { ComponentLogger, Logger } from '@cnm/types'
import { format } from 'node:util'

export interface DefaultLoggerInit {
  /**
   * debug-style namespace patterns, comma separated, `*` wildcard, `-` prefix to exclude
   * (the CLI passes `process.env.DEBUG`). Errors are always written.
   * @default ''
   */
  enabled?: string
  /** Also write trace lines (hot paths) for enabled namespaces. @default false */
  trace?: boolean
  /** Where lines go. @default writes to process.stderr */
  write?: (line: string) => void
  /** Clock for timestamps. @default Date.now */
  now?: () => number
}

interface Pattern {
  readonly re: RegExp
  readonly negate: boolean
}

function compile(spec: string): Pattern[] {
  return spec
    .split(/[\s,]+/)
    .filter((s) => s.length > 0)
    .map((s) => {
      const negate = s.startsWith('-')
      const body = (negate ? s.slice(1) : s).replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*?')
      return { re: new RegExp(`^${body}$`), negate }
    })
}

function matches(patterns: Pattern[], name: string): boolean {
  if (patterns.some((p) => p.negate && p.re.test(name))) return false
  return patterns.some((p) => !p.negate && p.re.test(name))
}

/** A debug-style ComponentLogger: `cnm:ipam created pool %s`, enabled by namespace pattern. */
export function defaultLogger(init: DefaultLoggerInit = {}): ComponentLogger {
  const patterns = compile(init.enabled ?? '')
  const write = init.write ?? ((line: string) => void process.stderr.write(line + '\n'))
  const now = init.now ?? Date.now
  const traceOn = init.trace ?? false

  const make = (name: string): Logger => {
    const on = matches(patterns, name)
    const emit = (level: string, fmt: string, args: unknown[]): void => {
      write(`${new Date(now()).toISOString()} ${name}${level} ${format(fmt, ...args)}`)
    }
    const log = ((fmt: string, ...args: unknown[]) => {
      if (on) emit('', fmt, args)
    }) as Logger
    log.error = (fmt: string, ...args: unknown[]) => emit(':error', fmt, args)
    log.trace = (fmt: string, ...args: unknown[]) => {
      if (on && traceOn) emit(':trace', fmt, args)
    }
    log.enabled = on
    log.child = (scope: string) => make(`${name}:${scope}`)
    return log
  }
  return { forComponent: make }
}
