import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { AbortError, type Logger } from '@cnm/types'
import { batchArgv, type BatchOutcome, type NsTarget, type Tool, type ToolPaths } from './batch.js'
import { KernelError, NamespaceNotFoundError } from './errors.js'
import type { ExecStats } from './exec.js'
import type { LineRunner } from './transaction.js'

/** A line `ip` rejects without touching the kernel; its error marks the end of a request. */
const SENTINEL = 'cnm-sync'
const FAILED = /^Command failed .*:(\d+)$/

interface Pending {
  first: number
  last: number
  sentinel: number
  failures: Array<{ index: number; message: string }>
  text: string[]
  resolve: (o: BatchOutcome) => void
  reject: (e: Error) => void
}

/**
 * One long-lived `ip -force -batch -` in the host namespace. Requests are written to its stdin followed by
 * a sentinel line; `ip` reports each failed line on stderr (`Command failed -:N`, unbuffered), and the
 * sentinel's failure tells that every line before it ran. With -force, lines after a failed one still run:
 * outcomes carry `continued: true` so the transaction undoes every line that did not fail.
 */
export class ResidentIp implements LineRunner {
  private child: ChildProcessWithoutNullStreams | undefined
  private lineNo = 0
  private stderrBuf = ''
  private readonly queue: Pending[] = []
  private chain: Promise<unknown> = Promise.resolve()
  private closing = false

  constructor(
    private readonly paths: ToolPaths,
    private readonly host: NsTarget,
    private readonly stats: ExecStats,
    private readonly log: Logger,
  ) {}

  private start(): ChildProcessWithoutNullStreams {
    if (this.child !== undefined) return this.child
    const { file, args } = batchArgv(this.paths, 'ip', this.host, { force: true })
    this.stats.launches++
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    this.child = child
    this.lineNo = 0
    this.stderrBuf = ''
    child.stdin.on('error', () => undefined) // EPIPE after exit: reported through 'exit'
    child.stdout.resume()
    child.stderr.on('data', (d: Buffer) => this.onStderr(d.toString()))
    const onGone = (why: string): void => {
      if (this.child !== child) return
      this.child = undefined
      for (const p of this.queue.splice(0)) {
        const stderr = [...p.text, this.stderrBuf].join('\n').trim()
        p.reject(
          /Cannot open network namespace/.test(stderr)
            ? new NamespaceNotFoundError(`host network namespace ${this.host.label} not found: ${stderr}`)
            : new KernelError(`resident ip helper ${why}: ${stderr}`, { stderr, command: `${file} ${args.join(' ')}` }),
        )
      }
      if (!this.closing) this.log.error('resident ip helper %s', why)
    }
    child.on('error', (e) => onGone(`failed: ${e.message}`))
    child.on('exit', (code, sig) => onGone(`exited (${code ?? sig})`))
    this.setRef(child, false)
    return child
  }

  /** Idle helpers do not keep Node alive; one with a request in flight does. */
  private setRef(child: ChildProcessWithoutNullStreams, on: boolean): void {
    for (const h of [child, child.stdin, child.stdout, child.stderr] as unknown as Array<{
      ref?: () => void
      unref?: () => void
    }>) {
      if (on) h.ref?.()
      else h.unref?.()
    }
  }

  private onStderr(chunk: string): void {
    this.stderrBuf += chunk
    let nl: number
    while ((nl = this.stderrBuf.indexOf('\n')) >= 0) {
      const line = this.stderrBuf.slice(0, nl).trim()
      this.stderrBuf = this.stderrBuf.slice(nl + 1)
      const head = this.queue[0]
      if (head === undefined) {
        if (line !== '') this.log.trace('resident ip: stray stderr %s', line)
        continue
      }
      const m = FAILED.exec(line)
      if (m === null) {
        if (line !== '') head.text.push(line)
        continue
      }
      const n = Number(m[1])
      if (n === head.sentinel) {
        this.queue.shift()
        if (this.queue.length === 0 && this.child !== undefined) this.setRef(this.child, false)
        const first = head.failures[0]
        head.resolve({
          ok: head.failures.length === 0,
          stdout: '',
          stderr: head.text.join('\n'),
          failedIndex: first?.index ?? -1,
          message: first?.message ?? '',
          failures: head.failures,
          continued: true,
        })
      } else {
        head.failures.push({ index: n - head.first, message: head.text.join('\n') })
        head.text = []
      }
    }
  }

  async run(
    tool: Tool,
    ns: NsTarget,
    lines: readonly string[],
    opts: { force?: boolean; signal?: AbortSignal } = {},
  ): Promise<BatchOutcome> {
    if (tool !== 'ip' || ns.path !== this.host.path) {
      throw new KernelError('resident ip helper only runs ip lines in the host namespace', {
        stderr: '',
        command: tool,
      })
    }
    const job = this.chain.then(async () => await this.send(lines, opts.signal))
    this.chain = job.catch(() => undefined)
    return await job
  }

  private async send(lines: readonly string[], signal?: AbortSignal): Promise<BatchOutcome> {
    if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
    const child = this.start()
    this.stats.residentCommands += lines.length
    return await new Promise<BatchOutcome>((resolve, reject) => {
      const first = this.lineNo + 1
      this.lineNo += lines.length + 1
      if (this.queue.length === 0) this.setRef(child, true)
      this.queue.push({
        first,
        last: first + lines.length - 1,
        sentinel: this.lineNo,
        failures: [],
        text: [],
        resolve,
        reject,
      })
      child.stdin.write(`${[...lines, SENTINEL].join('\n')}\n`)
    })
  }

  /** Ends the helper (closes its stdin and waits for it to exit). */
  async close(): Promise<void> {
    this.closing = true
    const child = this.child
    if (child === undefined) return
    this.setRef(child, true) // keep Node alive until the helper is gone
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve())
      child.stdin.end()
    })
  }
}
