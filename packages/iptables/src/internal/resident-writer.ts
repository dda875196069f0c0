import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { AbortError } from '@cnm/types'
import type { IpVersion, Logger } from '@cnm/types'
import { DEFAULT_PATH, inNetns } from './exec.js'

/** What one write through the resident writer produced. */
export interface WriteOutcome {
  /** 0 when every table of the script was committed. */
  readonly code: number | null
  readonly stderr: string
  /** The failing line, counted from the first line of this script (when iptables named one). */
  readonly failedLine: number | undefined
}

export interface ResidentWriterConfig {
  readonly netns: string | undefined
  readonly family: IpVersion
  /** e.g. `iptables-nft-restore`. */
  readonly restoreBin: string
  readonly waitSeconds: number
  readonly idleMs: number
  readonly log: Logger
}

const NEWGEN = /^# new generation \d+ by process (\d+) /
const SYNC_EVENT = /^(?:create|delete) chain ip6? filter (cnm-sync-[0-9a-f]+)-(\d+)$/
/** Attempts of the start-up handshake (the monitor subscribes at some point after it starts). */
const SYNC_ATTEMPTS = 20
const SYNC_WAIT_MS = 100
/** A commit is acknowledged within milliseconds; this only guards against a lost acknowledgement. */
const ACK_DEADLINE_MS = 5000

/**
 * One long-lived `iptables-nft-restore --noflush` in the namespace, fed one change set at a time, and
 * one `nft monitor` next to it whose `# new generation N by process <restore>` lines acknowledge each
 * committed table. A change set then costs no process at all (about half a millisecond) instead of an exec.
 * iptables-restore commits every table block at its COMMIT line and exits at the first error, printing
 * the failing line (counted over everything it read; this class rebases it to the script).
 *
 * Start-up handshake: the monitor prints nothing when it is ready, so empty transactions (a chain
 * created and deleted in one block, `cnm-sync-<random>-<n>`) are written until the monitor reports one
 * of them; from attempt n on, every block written is acknowledged, in order. Every block of ours is one
 * generation: a write is done when the count of outstanding generations is back to zero.
 * Both processes run inside the namespace and keep it alive while they run; they exit after `idleMs`
 * without work, on `close()`, and the writer is restarted when needed. nft backend only.
 */
export class ResidentWriter {
  readonly stats = { launches: 0, writes: 0 }
  /** Set when the writer cannot work here (missing tool, no acknowledgement); the caller falls back to exec. */
  unusable: string | undefined
  private readonly cfg: ResidentWriterConfig
  private readonly syncChain = `cnm-sync-${randomBytes(4).toString('hex')}`
  /** Sync attempts written to the current restore process, and whether the monitor saw one of them. */
  private syncAttempts = 0
  private subscribed = false
  /** Committed blocks whose new-generation line has not been seen yet (counted once the monitor is subscribed). */
  private outstanding = 0
  private waiter: (() => void) | undefined
  private restore: ChildProcessWithoutNullStreams | undefined
  private monitor: ChildProcessWithoutNullStreams | undefined
  private monitorBuf = ''
  private stderr = ''
  private linesWritten = 0
  private onRestoreExit: ((code: number | null) => void) | undefined
  private idleTimer: NodeJS.Timeout | undefined
  private chain: Promise<unknown> = Promise.resolve()

  constructor(cfg: ResidentWriterConfig) {
    this.cfg = cfg
  }

  /** Writes one restore script (table blocks ending in COMMIT) and waits until each table is committed. */
  async write(script: string, tables: number, signal?: AbortSignal): Promise<WriteOutcome> {
    const run = this.chain.then(async () => await this.writeNow(script, tables, signal))
    this.chain = run.catch(() => undefined)
    return await run
  }

  /** Ends both processes and waits for them to exit. The next write starts them again. */
  async close(): Promise<void> {
    await this.chain
    await this.stop()
  }

  private async writeNow(script: string, tables: number, signal?: AbortSignal): Promise<WriteOutcome> {
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    await this.ensureStarted(signal)
    const restore = this.restore as ChildProcessWithoutNullStreams
    this.setRef(true)
    this.stats.writes++
    const base = this.linesWritten
    this.stderr = ''
    try {
      this.outstanding += tables
      const r = await this.submit(script, signal, ACK_DEADLINE_MS)
      if (r === 'acked') return { code: 0, stderr: '', failedLine: undefined }
      if (r === 'timeout') {
        this.unusable = 'no acknowledgement from nft monitor'
        this.cfg.log.error(
          'resident iptables writer: no acknowledgement within the deadline; falling back to one process per change',
        )
        void this.stop()
        return { code: null, stderr: 'resident iptables writer: no acknowledgement', failedLine: undefined }
      }
      const m = /line:?\s*(\d+)/i.exec(this.stderr)
      return { code: r.code ?? 1, stderr: this.stderr, failedLine: m === null ? undefined : Number(m[1]) - base }
    } finally {
      if (this.restore === restore) this.scheduleIdle()
    }
  }

  /** Writes and waits until no generation is outstanding, the restore exits, an abort, or the deadline. */
  private async submit(
    script: string,
    signal: AbortSignal | undefined,
    deadlineMs: number,
  ): Promise<'acked' | 'timeout' | { code: number | null }> {
    const restore = this.restore as ChildProcessWithoutNullStreams
    return await new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined
      const finish = (): void => {
        if (timer !== undefined) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.waiter = undefined
        this.onRestoreExit = undefined
      }
      const onAbort = (): void => {
        finish()
        this.killRestore()
        reject(new AbortError(undefined, { cause: signal?.reason }))
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiter = () => {
        finish()
        resolve('acked')
      }
      this.onRestoreExit = (code) => {
        finish()
        resolve({ code })
      }
      timer = setTimeout(() => {
        finish()
        resolve('timeout')
      }, deadlineMs)
      if (script.length > 0) {
        this.linesWritten += countLines(script)
        restore.stdin.write(script)
      } else if (this.subscribed && this.outstanding === 0) {
        this.waiter()
      }
    })
  }

  private async ensureStarted(signal?: AbortSignal): Promise<void> {
    if (this.restore !== undefined && this.monitor !== undefined) return
    await this.stop()
    // The monitor reads no input, so it would outlive this process; a shell ends it when its stdin
    // closes (stop(), or this process dying) and exits when the monitor does. (An asynchronous list
    // gets /dev/null as stdin unless redirected, hence fd 3.) `nft monitor`, not xtables-monitor:
    // xtables-monitor 1.8.9 exits on events it cannot translate (SCTP rules).
    const monitor = this.spawn([
      'sh',
      '-c',
      'exec 3<&0; stdbuf -oL nft monitor </dev/null & m=$!; { while read -r _; do :; done <&3; kill $m 2>/dev/null; } & wait $m',
    ])
    this.monitor = monitor
    this.monitorBuf = ''
    monitor.stdout.on('data', (d: Buffer) => this.onMonitor(d.toString('utf8')))
    let monitorErr = ''
    monitor.stderr.on('data', (d: Buffer) => {
      monitorErr += d.toString('utf8')
      // events were dropped (netlink receive buffer overrun): acknowledgements may be lost, so start over
      if (/No buffer space/i.test(monitorErr)) monitor.stdin.end()
    })
    monitor.on('exit', (code, sig) => {
      if (this.monitor !== monitor) return
      this.monitor = undefined
      this.cfg.log.error('nft monitor exited (%s): %s', code ?? sig, monitorErr.trim())
      // without acknowledgements a write cannot finish: end the restore too, the next write restarts both
      this.killRestore()
    })
    const restore = this.spawn([this.cfg.restoreBin, '--noflush', `--wait=${this.cfg.waitSeconds}`])
    this.restore = restore
    this.linesWritten = 0
    this.syncAttempts = 0
    this.subscribed = false
    this.outstanding = 0
    this.stderr = ''
    restore.stdout.resume()
    restore.stderr.on('data', (d: Buffer) => (this.stderr += d.toString('utf8')))
    restore.on('exit', (code) => {
      if (this.restore !== restore) return
      this.restore = undefined
      const cb = this.onRestoreExit
      this.onRestoreExit = undefined
      cb?.(code)
    })
    // handshake: empty transactions until the monitor reports one (see the class comment)
    this.setRef(true)
    for (let i = 0; i < SYNC_ATTEMPTS; i++) {
      if (this.restore !== restore) break
      let r: Awaited<ReturnType<ResidentWriter['submit']>>
      if (this.subscribed) {
        r = await this.submit('', signal, SYNC_WAIT_MS) // only wait for the outstanding acknowledgements
      } else {
        const chain = `${this.syncChain}-${++this.syncAttempts}`
        r = await this.submit(`*filter\n:${chain} - [0:0]\n-X ${chain}\nCOMMIT\n`, signal, SYNC_WAIT_MS)
      }
      if (r === 'acked') {
        this.cfg.log.trace('resident iptables writer ready (pid %d)', restore.pid)
        return
      }
      if (r !== 'timeout') break
    }
    const why =
      this.restore === undefined ? `iptables-restore exited: ${this.stderr.trim()}` : 'nft monitor never acknowledged'
    await this.stop()
    this.unusable = why
    throw new Error(`resident iptables writer unavailable: ${why}`)
  }

  private onMonitor(chunk: string): void {
    this.monitorBuf += chunk
    let nl: number
    while ((nl = this.monitorBuf.indexOf('\n')) >= 0) {
      const line = this.monitorBuf.slice(0, nl)
      this.monitorBuf = this.monitorBuf.slice(nl + 1)
      if (!this.subscribed) {
        const e = SYNC_EVENT.exec(line)
        if (e !== null && e[1] === this.syncChain) {
          // attempts n..last were committed after the monitor subscribed: one NEWGEN each is on its way
          this.subscribed = true
          this.outstanding = this.syncAttempts - Number(e[2]) + 1
        }
        continue
      }
      const m = NEWGEN.exec(line)
      if (m === null || this.restore === undefined || Number(m[1]) !== this.restore.pid) continue
      this.outstanding--
      if (this.outstanding <= 0) {
        this.outstanding = 0
        this.waiter?.()
      }
    }
  }

  private spawn(argv: readonly string[]): ChildProcessWithoutNullStreams {
    const full = inNetns(this.cfg.netns, argv)
    this.stats.launches++
    const child = spawn(full[0] as string, full.slice(1), {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { LC_ALL: 'C', PATH: DEFAULT_PATH },
    })
    child.stdin.on('error', () => undefined) // EPIPE after an exit: reported through 'exit'
    child.on('error', (e) => {
      this.cfg.log.trace('resident writer process %s failed: %s', argv[0], e.message)
    })
    return child
  }

  private scheduleIdle(): void {
    this.setRef(false)
    if (this.idleTimer !== undefined) return
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined
      if (this.waiter === undefined) void this.stop()
    }, this.cfg.idleMs)
    this.idleTimer.unref()
  }

  /** Ends both processes (end of input for both); resolves when they are gone. */
  private async stop(): Promise<void> {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    const r = this.restore
    const m = this.monitor
    this.restore = undefined
    this.monitor = undefined
    const gone = [r, m].filter(
      (c) => c !== undefined && c.exitCode === null && c.signalCode === null,
    ) as ChildProcessWithoutNullStreams[]
    const exits = gone.map((c) => new Promise<void>((resolve) => c.once('exit', () => resolve())))
    for (const c of gone) refAll(c, true) // keep Node alive until they are gone
    r?.stdin.end()
    m?.stdin.end()
    await Promise.all(exits)
  }

  private killRestore(): void {
    const r = this.restore
    if (r !== undefined && r.exitCode === null && r.signalCode === null) r.kill('SIGKILL')
  }

  /** Processes that only wait do not keep Node alive; a write in flight does. */
  private setRef(on: boolean): void {
    for (const c of [this.restore, this.monitor]) if (c !== undefined) refAll(c, on)
  }
}

function refAll(c: ChildProcessWithoutNullStreams, on: boolean): void {
  for (const h of [c, c.stdin, c.stdout, c.stderr] as unknown as Array<{ ref?: () => void; unref?: () => void }>) {
    if (on) h.ref?.()
    else h.unref?.()
  }
}

function countLines(s: string): number {
  let n = 0
  for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++
  return n
}
