import { spawn } from 'node:child_process'
import { AbortError } from '@cnm/types'
import { ToolMissingError } from './errors.js'

/** Result of one process launch. A non-zero exit is a result, not an exception. */
export interface ExecResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

export interface ExecOptions {
  /** Written to the child's stdin, which is then closed. */
  input?: string
  signal?: AbortSignal
}

/**
 * Launches one process and collects its output. Injectable (`OslComponents.exec`) so unit tests can
 * record command lines and benchmarks can count launches. Rejects only when the process cannot be started
 * (ToolMissingError) or the signal aborts (AbortError; the child is killed).
 */
export type Exec = (file: string, args: readonly string[], options?: ExecOptions) => Promise<ExecResult>

/** The default Exec: `child_process.spawn` without a shell. */
export const spawnExec: Exec = async (file, args, options = {}) => {
  options.signal?.throwIfAborted()
  return await new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let settled = false
    const onAbort = (): void => {
      child.kill('SIGKILL')
      finish(() => reject(new AbortError(undefined, { cause: options.signal?.reason })))
    }
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      options.signal?.removeEventListener('abort', onAbort)
      fn()
    }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    // EPIPE when the child exits before reading all input: its exit status tells what happened
    child.stdin.on('error', () => undefined)
    child.on('error', (e: NodeJS.ErrnoException) =>
      finish(() =>
        reject(
          e.code === 'ENOENT'
            ? new ToolMissingError(`cannot run ${file}: not found (install iproute2 / util-linux)`, { cause: e })
            : e,
        ),
      ),
    )
    child.on('close', (code, sig) =>
      finish(() =>
        resolve({
          code: code ?? (sig === null ? 1 : 128),
          stdout: Buffer.concat(out).toString(),
          stderr: Buffer.concat(err).toString(),
        }),
      ),
    )
    if (options.input === undefined) child.stdin.end()
    else child.stdin.end(options.input)
  })
}

/** Launch counters, readable from `Osl.stats`. */
export interface ExecStats {
  /** Processes launched through the Exec (each `ip`, `nsenter`… counts once). */
  launches: number
  /** Native-addon calls (namespace creation, sysctls, sockets); these start a thread, not a process. */
  nativeCalls: number
  /** Commands written to a resident helper (no launch). */
  residentCommands: number
}

export function newStats(): ExecStats {
  return { launches: 0, nativeCalls: 0, residentCommands: 0 }
}

/** Wraps an Exec so every launch is counted in `stats.launches`. */
export function countingExec(exec: Exec, stats: ExecStats): Exec {
  return async (file, args, options) => {
    stats.launches++
    return await exec(file, args, options)
  }
}
