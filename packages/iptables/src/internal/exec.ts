import { spawn } from 'node:child_process'
import { AbortError } from '@cnm/types'

/** What running one command produced. A non-zero exit is a result, not an exception. */
export interface CommandResult {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. */
  input?: string
  signal?: AbortSignal
}

/**
 * Runs `argv[0]` with `argv[1..]` (never through a shell). Rejects only when the program cannot be
 * started (`code: 'ENOENT'` on the error) or the signal aborts; otherwise resolves with the exit status.
 */
export type CommandRunner = (argv: readonly string[], options?: RunOptions) => Promise<CommandResult>

/** The default CommandRunner: child_process.spawn without a shell. */
export const spawnCommand: CommandRunner = async (argv, options = {}) => {
  const [cmd, ...args] = argv
  if (cmd === undefined) throw new TypeError('empty argv')
  const { signal } = options
  if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
  return await new Promise<CommandResult>((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { LC_ALL: 'C', PATH: DEFAULT_PATH } })
    const out: Buffer[] = []
    const err: Buffer[] = []
    let settled = false
    const onAbort = (): void => {
      child.kill('SIGKILL')
      finish(() => reject(new AbortError(undefined, { cause: signal?.reason })))
    }
    const finish = (fn: () => void): void => {
      if (settled) return
      settled = true
      signal?.removeEventListener('abort', onAbort)
      fn()
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (d: Buffer) => out.push(d))
    child.stderr.on('data', (d: Buffer) => err.push(d))
    child.on('error', (e) => finish(() => reject(e)))
    child.on('close', (code) =>
      finish(() =>
        resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8') }),
      ),
    )
    // EPIPE when the program exits before reading stdin is reported through 'close'; ignore it here.
    child.stdin.on('error', () => undefined)
    child.stdin.end(options.input ?? '')
  })
}

// iptables, ip and sysctl live in sbin; a library must not read process.env, so the search path is fixed.
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'

/**
 * Prefixes argv so that it runs inside a network namespace with `nsenter --net=PATH`: a name means
 * `/run/netns/<name>` (what `ip netns add` creates), an absolute path is used as it is (a bind-mounted
 * namespace file such as a sandbox key); undefined = this process's namespace. nsenter only enters the
 * network namespace; `ip netns exec` would also unshare the mount namespace and remount /sys, which
 * iptables, sysctl and conntrack do not need and which costs a few milliseconds per command.
 */
export function inNetns(netns: string | undefined, argv: readonly string[]): string[] {
  if (netns === undefined) return [...argv]
  const path = netns.startsWith('/') ? netns : `/run/netns/${netns}`
  return ['nsenter', `--net=${path}`, '--', ...argv]
}

/** A namespace name as `ip netns` accepts it, or an absolute, normalised path to a namespace file. */
export function isValidNetnsName(name: string): boolean {
  if (typeof name !== 'string') return false
  if (name.startsWith('/')) {
    return (
      name.length <= 4096 &&
      // eslint-disable-next-line no-control-regex
      !/[\u0000-\u001f\u007f]/.test(name) &&
      !/(^|\/)\.\.?(\/|$)/.test(name) &&
      !name.includes('//') &&
      !name.endsWith('/')
    )
  }
  return /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$/.test(name) && name !== '.' && name !== '..'
}
