/** A logger scoped to one component, debug-style: `log(fmt, ...args)`, `log.error`, `log.trace`. */
export interface Logger {
  (formatter: string, ...args: unknown[]): void
  error(formatter: string, ...args: unknown[]): void
  trace(formatter: string, ...args: unknown[]): void
  enabled: boolean
  /** A child logger with `:<scope>` appended to the namespace. */
  child(scope: string): Logger
}

/** Hands out component loggers; injected into every library as `components.logger`. */
export interface ComponentLogger {
  forComponent(name: string): Logger
}

function noop(): void {}

function makeNoop(): Logger {
  const log = Object.assign((_f: string, ..._a: unknown[]) => noop(), {
    error: noop,
    trace: noop,
    enabled: false,
    child: (): Logger => log,
  }) as Logger
  return log
}

/** A logger that discards everything. */
export function noopLogger(): ComponentLogger {
  const log = makeNoop()
  return { forComponent: () => log }
}
