import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process'
import { constants } from 'node:os'
import type { CnmClient } from './client.js'
import type { SandboxView } from './service.js'
import { SandboxNotRunningError } from './errors.js'

export interface RunOptions {
  /**
   * Network to attach to; `none` (or undefined) → a sandbox with loopback only; `default` → the
   * daemon's default bridge (none when it has no default bridge).
   */
  network?: string
  name?: string
  hostname?: string
  ip?: string
  aliases?: readonly string[]
  /** `-p` bindings: `[ip:]hostPort[-end]:containerPort[/proto]`. */
  publish?: readonly string[]
  dns?: readonly string[]
  dnsSearch?: readonly string[]
  dnsOptions?: readonly string[]
  domainname?: string
  /** `--add-host name:ip` entries. */
  extraHosts?: ReadonlyArray<{ name: string; ip: string }>
  /** Legacy links `name[:alias]` (default bridge only). */
  links?: readonly string[]
  /** When the command ends, stop the sandbox (keeping its addresses and ports) instead of removing it. @default false */
  keep?: boolean
  /** The command and its arguments. */
  command: readonly string[]
  /** @default 'inherit' */
  stdio?: StdioOptions
  /**
   * Bind-mount the sandbox's hosts and resolv.conf over /etc and set its host name, in private mount
   * and UTS namespaces of the command. @default true
   */
  mountFiles?: boolean
  /** Extra environment of the command. */
  env?: Readonly<Record<string, string>>
  /** Called once the command runs (with the sandbox and the child). */
  onStart?: (sandbox: SandboxView, child: ChildProcess) => void
  /** Removing the sandbox after the command failed (it is retried once first). @default rethrow */
  onCleanupError?: (err: unknown) => void
}

/** Signals `cnm run` passes on to the command. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGINT',
  'SIGTERM',
  'SIGHUP',
  'SIGQUIT',
  'SIGUSR1',
  'SIGUSR2',
  'SIGWINCH',
]

// $1 hosts, $2 resolv.conf, $3 host name, then the command; failures (no /etc/hosts here …) are not fatal
const MOUNT_SCRIPT =
  'mount --bind "$1" /etc/hosts 2>/dev/null; mount --bind "$2" /etc/resolv.conf 2>/dev/null; hostname "$3" 2>/dev/null; shift 3; exec "$@"'

/** The argv that runs `command` inside the sandbox's network namespace. */
export function sandboxArgv(sb: SandboxView, command: readonly string[], mountFiles: boolean): string[] {
  const inNs = ['nsenter', `--net=${sb.key}`, '--']
  if (!mountFiles) return [...inNs, ...command]
  return [
    ...inNs,
    'unshare',
    '--mount',
    '--uts',
    '--propagation',
    'private',
    '--',
    'sh',
    '-c',
    MOUNT_SCRIPT,
    'cnm-run',
    sb.hostsPath,
    sb.resolvConfPath,
    sb.hostname ?? sb.name,
    ...command,
  ]
}

/** The exit code a shell would report for a child that ended with `code` or `signal`. */
export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code
  const n = signal === null ? undefined : (constants.signals as Record<string, number>)[signal]
  return 128 + (n ?? 1)
}

/**
 * `cnm run`: asks the daemon for a sandbox attached to the network (with its port bindings), runs the
 * command inside it, forwards signals to that child, and deletes the sandbox and endpoint when the
 * command ends. Resolves the command's exit code. A failure before the command starts rejects.
 */
export async function runInSandbox(
  client: CnmClient,
  opts: RunOptions,
): Promise<{ code: number; sandbox: SandboxView }> {
  if (opts.command.length === 0) throw new TypeError('runInSandbox: command must not be empty')
  const attach = opts.network !== undefined && opts.network !== 'none'
  const sb = await client.createSandbox({
    ...(opts.name !== undefined && { name: opts.name }),
    ...(opts.hostname !== undefined && { hostname: opts.hostname }),
    ...(opts.domainname !== undefined && { domainname: opts.domainname }),
    ...(opts.dns !== undefined && opts.dns.length > 0 && { dns: [...opts.dns] }),
    ...(opts.dnsSearch !== undefined && opts.dnsSearch.length > 0 && { dnsSearch: [...opts.dnsSearch] }),
    ...(opts.dnsOptions !== undefined && opts.dnsOptions.length > 0 && { dnsOptions: [...opts.dnsOptions] }),
    ...(opts.extraHosts !== undefined &&
      opts.extraHosts.length > 0 && { extraHosts: opts.extraHosts.map((h) => ({ ...h })) }),
    ...(opts.links !== undefined && opts.links.length > 0 && { links: [...opts.links] }),
    ...(attach && {
      networks: [
        {
          network: opts.network as string,
          ...(opts.ip !== undefined && { ipv4Address: opts.ip }),
          ...(opts.aliases !== undefined && opts.aliases.length > 0 && { aliases: [...opts.aliases] }),
          ...(opts.publish !== undefined && opts.publish.length > 0 && { portBindings: [...opts.publish] }),
        },
      ],
    }),
  })
  try {
    const code = await spawnIn(sb, opts)
    return { code, sandbox: sb }
  } finally {
    try {
      if (opts.keep === true) await client.stopSandbox(sb.name)
      else await removeWithRetry(client, sb.name)
    } catch (err) {
      // A failed cleanup with no handler is the caller's error to see, even over spawnIn's outcome.
      // eslint-disable-next-line no-unsafe-finally
      if (opts.onCleanupError === undefined) throw err
      opts.onCleanupError(err)
    }
  }
}

export type ExecOptions = Pick<RunOptions, 'command' | 'stdio' | 'mountFiles' | 'env' | 'onStart'>

/**
 * `cnm exec`: runs a command inside a running sandbox (its network namespace, with its hosts,
 * resolv.conf and host name), forwarding signals; resolves the command's exit code. The sandbox stays.
 */
export async function execInSandbox(
  client: CnmClient,
  ref: string,
  opts: ExecOptions,
): Promise<{ code: number; sandbox: SandboxView }> {
  if (opts.command.length === 0) throw new TypeError('execInSandbox: command must not be empty')
  const sb = await client.inspectSandbox(ref)
  if (sb.state !== 'running') throw new SandboxNotRunningError(sb.name)
  return { code: await spawnIn(sb, opts), sandbox: sb }
}

async function spawnIn(sb: SandboxView, opts: ExecOptions): Promise<number> {
  const handlers = new Map<NodeJS.Signals, () => void>()
  try {
    const argv = sandboxArgv(sb, opts.command, opts.mountFiles ?? true)
    const ep = sb.endpoints.find((e) => e.ipv4Address !== undefined)
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: opts.stdio ?? 'inherit',
      env: {
        ...process.env,
        CNM_SANDBOX: sb.name,
        CNM_SANDBOX_ID: sb.id,
        ...(ep?.ipv4Address !== undefined && { CNM_IPV4: ep.ipv4Address.replace(/\/\d+$/, '') }),
        ...opts.env,
      },
    })
    for (const sig of FORWARDED_SIGNALS) {
      const h = (): void => {
        if (child.exitCode === null && child.signalCode === null) child.kill(sig)
      }
      handlers.set(sig, h)
      process.on(sig, h)
    }
    const done = new Promise<number>((resolve, reject) => {
      child.once('error', reject)
      child.once('exit', (code, signal) => resolve(exitCodeOf(code, signal)))
    })
    opts.onStart?.(sb, child)
    return await done
  } finally {
    for (const [sig, h] of handlers) process.off(sig, h)
  }
}

async function removeWithRetry(client: CnmClient, id: string): Promise<void> {
  try {
    await client.removeSandbox(id)
  } catch (err) {
    // one retry: the daemon may have been busy; a second failure is reported to the caller
    await new Promise((r) => setTimeout(r, 200))
    try {
      await client.removeSandbox(id)
    } catch {
      throw err
    }
  }
}
