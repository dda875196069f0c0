import { AbortError, InvalidArgumentError, type AbortOptions, type Logger } from '@cnm/types'
import type { BatchOutcome, BatchRunner, NsTarget, Tool } from './batch.js'
import {
  EntryExistsError,
  GatewayUnreachableError,
  KernelError,
  LinkExistsError,
  LinkNotFoundError,
  NamespaceNotFoundError,
} from './errors.js'
import type { ExecStats } from './exec.js'
import type { NativeOps } from './native.js'
import { toNetlinkOp } from './netlink-ops.js'
import { mapNativeError } from './socket.js'

/** What a line creates, to map EEXIST to the right error. */
export type Creates = 'link' | 'entry' | 'none'

export type Undo =
  | { readonly tool: Tool; readonly ns: NsTarget; readonly line: string }
  | { readonly fn: () => Promise<void>; readonly label: string }

export type Step =
  | {
      readonly kind: 'cmd'
      readonly tool: Tool
      readonly ns: NsTarget
      readonly line: string
      readonly undo: readonly Undo[]
      readonly creates: Creates
    }
  | {
      readonly kind: 'sysctl'
      readonly ns: NsTarget
      readonly keys: readonly string[]
      readonly values: readonly string[]
      /** Read the old values first and write them back on rollback. */
      readonly restore: boolean
    }
  | {
      readonly kind: 'fn'
      readonly label: string
      readonly run: (signal?: AbortSignal) => Promise<void>
      readonly undo?: () => Promise<void>
    }

/** Runs one batch of lines for a namespace; the resident helper implements it too. */
export interface LineRunner {
  run(
    tool: Tool,
    ns: NsTarget,
    lines: readonly string[],
    opts: { force?: boolean; signal?: AbortSignal },
  ): Promise<BatchOutcome>
}

/** What a transaction needs from its Osl. */
export interface TxContext {
  readonly runner: BatchRunner
  /** Runner for lines in the host namespace (the resident helper when enabled). */
  readonly hostRunner: LineRunner
  readonly host: NsTarget
  readonly stats: ExecStats
  readonly log: Logger
  native(): NativeOps
  /** Send in-namespace address/link-up/route lines over rtnetlink from the addon instead of `ip`. */
  readonly nativeNetlink: boolean
}

/** Maps a failed batch line to a typed error; `stderr` is kept on the KernelError and as its cause. */
export function mapBatchError(
  step: { line: string; creates: Creates; ns: NsTarget },
  out: BatchOutcome,
  command: string,
): Error {
  const msg = out.message
  const cause = new Error(out.stderr.trim() || msg)
  const where = `in ${step.ns.label}`
  if (
    /Cannot open network namespace/.test(msg) ||
    (out.failedIndex < 0 && /No such file or directory|setns|Invalid argument/i.test(msg))
  ) {
    return new NamespaceNotFoundError(`network namespace ${step.ns.label} not found: ${msg}`, { cause })
  }
  if (/File exists/.test(msg)) {
    if (step.creates === 'link')
      return new LinkExistsError(`\`${step.line}\` ${where}: link exists (${msg})`, { cause })
    return new EntryExistsError(`\`${step.line}\` ${where}: already exists (${msg})`, { cause })
  }
  if (/Cannot find device|does not exist|No such device/.test(msg)) {
    return new LinkNotFoundError(`\`${step.line}\` ${where}: ${msg}`, { cause })
  }
  if (/Nexthop has invalid gateway|Network is unreachable/.test(msg)) {
    return new GatewayUnreachableError(`\`${step.line}\` ${where}: no direct route to the gateway (${msg})`, { cause })
  }
  return new KernelError(`\`${step.line}\` ${where} failed: ${msg}`, { stderr: out.stderr, command }, { cause })
}

/**
 * An ordered list of kernel changes across namespaces, applied with as few launches as possible:
 * consecutive lines for the same tool and namespace become one `ip -batch -` (or `bridge -batch -`);
 * sysctl steps are native calls (no launch). When a step fails, every step that had succeeded is undone in
 * reverse order (best effort, `-force` batches), rollback hooks run, and the step's typed error is thrown.
 *
 * Get one from `osl.transaction()`, queue steps with `tx.on(host).createVeth(...)`,
 * `tx.on(sandbox).addInterface(...)`, then `await tx.commit()`. A transaction commits once.
 */
export class Transaction {
  private readonly steps: Step[] = []
  private readonly commitHooks: Array<() => void> = []
  private readonly rollbackHooks: Array<() => void> = []
  private state: 'open' | 'committing' | 'committed' | 'failed' = 'open'

  /** @internal */
  constructor(readonly ctx: TxContext) {}

  /** Queues operations for a namespace: `tx.on(osl.host).createVeth(…)`, `tx.on(sandbox).addInterface(…)`. */
  on<P>(ns: { plan(tx: Transaction): P }): P {
    this.assertOpen()
    return ns.plan(this)
  }

  /** Number of queued steps. */
  get size(): number {
    return this.steps.length
  }

  /** Queued steps (for inspection and tests). */
  get queued(): readonly Step[] {
    return this.steps
  }

  /** @internal */
  assertOpen(): void {
    if (this.state !== 'open') {
      throw new InvalidArgumentError(`transaction already ${this.state}`, { code: 'ERR_OSL_TX_CLOSED' })
    }
  }

  /** Queues one command line. @internal */
  cmd(tool: Tool, ns: NsTarget, line: string, undo: readonly Undo[] = [], creates: Creates = 'none'): this {
    this.assertOpen()
    this.steps.push({ kind: 'cmd', tool, ns, line, undo, creates })
    return this
  }

  /** Queues sysctl writes (paths below /proc/sys). @internal */
  sysctl(ns: NsTarget, keys: string[], values: string[], restore: boolean): this {
    this.assertOpen()
    if (keys.length > 0) this.steps.push({ kind: 'sysctl', ns, keys, values, restore })
    return this
  }

  /** Queues an arbitrary async step with an optional undo. */
  call(label: string, run: (signal?: AbortSignal) => Promise<void>, undo?: () => Promise<void>): this {
    this.assertOpen()
    this.steps.push(undo === undefined ? { kind: 'fn', label, run } : { kind: 'fn', label, run, undo })
    return this
  }

  /** Runs after a successful commit (bookkeeping). */
  onCommit(fn: () => void): this {
    this.commitHooks.push(fn)
    return this
  }

  /** Runs after a failed commit's rollback (release reservations). */
  onRollback(fn: () => void): this {
    this.rollbackHooks.push(fn)
    return this
  }

  /** Drops the transaction without running anything; rollback hooks run. */
  discard(): void {
    if (this.state !== 'open') return
    this.state = 'failed'
    for (const fn of this.rollbackHooks.reverse()) fn()
  }

  /** Applies all steps; on failure undoes the applied ones and throws the failing step's typed error. */
  async commit(options: AbortOptions = {}): Promise<void> {
    this.assertOpen()
    this.state = 'committing'
    const signal = options.signal
    const done: Undo[][] = []
    try {
      let i = 0
      while (i < this.steps.length) {
        if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
        const step = this.steps[i] as Step
        if (step.kind === 'cmd') {
          let j = i + 1
          while (j < this.steps.length) {
            const next = this.steps[j] as Step
            if (next.kind !== 'cmd' || next.tool !== step.tool || next.ns.path !== step.ns.path) break
            j++
          }
          const group = this.steps.slice(i, j) as Array<Extract<Step, { kind: 'cmd' }>>
          const runner: LineRunner =
            step.ns.path === this.ctx.host.path && step.tool === 'ip' ? this.ctx.hostRunner : this.ctx.runner
          let out: BatchOutcome
          try {
            out =
              (await this.runNative(
                step.tool,
                step.ns,
                group.map((g) => g.line),
              )) ??
              (await runner.run(
                step.tool,
                step.ns,
                group.map((g) => g.line),
                signal === undefined ? {} : { signal },
              ))
          } catch (err) {
            // aborted or not started: we cannot tell which lines ran, so undo them all (best effort)
            for (const g of group) done.push([...g.undo])
            throw err
          }
          if (!out.ok) {
            const k = Math.max(out.failedIndex, 0)
            if (out.continued === true && out.failedIndex >= 0) {
              const failed = new Set(out.failures.map((f) => f.index))
              group.forEach((g, m) => {
                if (!failed.has(m)) done.push([...g.undo])
              })
            } else {
              for (let m = 0; m < k && m < group.length; m++) done.push([...(group[m] as (typeof group)[number]).undo])
            }
            const failed = group[Math.min(k, group.length - 1)] as (typeof group)[number]
            throw mapBatchError(failed, out, this.ctx.runner.describe(step.tool, step.ns))
          }
          for (const g of group) done.push([...g.undo])
          i = j
        } else if (step.kind === 'sysctl') {
          const native = this.ctx.native()
          this.ctx.stats.nativeCalls++
          let old: string[]
          try {
            old = await native.sysctl(
              step.ns.path ?? null,
              [...step.keys],
              [...step.values],
              step.restore ? [...step.keys] : [],
            )
          } catch (err) {
            throw mapNativeError(err, step.ns.label, `sysctl ${step.keys.join(', ')} in ${step.ns.label}`)
          }
          if (step.restore) {
            const ns = step.ns
            const keys = [...step.keys]
            done.push([
              {
                label: `restore sysctls ${keys.join(', ')} in ${ns.label}`,
                fn: async () => {
                  this.ctx.stats.nativeCalls++
                  await this.ctx.native().sysctl(ns.path ?? null, keys.reverse(), old.reverse(), [])
                },
              },
            ])
          } else {
            done.push([])
          }
          i++
        } else {
          await step.run(signal)
          done.push(step.undo === undefined ? [] : [{ fn: step.undo, label: step.label }])
          i++
        }
      }
    } catch (err) {
      await this.rollback(done)
      this.state = 'failed'
      for (const fn of this.rollbackHooks.reverse()) fn()
      throw err
    }
    this.state = 'committed'
    for (const fn of this.commitHooks) fn()
  }

  /**
   * Runs a group over the addon's rtnetlink when every line is one it covers (veth pairs, addresses, link
   * up, routes); undefined when the group must go through `ip` (or the resident helper).
   */
  private async runNative(tool: Tool, ns: NsTarget, lines: string[]): Promise<BatchOutcome | undefined> {
    if (!this.ctx.nativeNetlink || tool !== 'ip') return undefined
    const ops: string[][] = []
    for (const l of lines) {
      const op = toNetlinkOp(l)
      if (op === undefined) return undefined
      ops.push(op)
    }
    this.ctx.stats.nativeCalls++
    try {
      await this.ctx.native().netlink(ns.path ?? null, ops)
      return { ok: true, stdout: '', stderr: '', failedIndex: -1, message: '', failures: [] }
    } catch (err) {
      const e = err as { index?: number; message?: string }
      if (typeof e.index !== 'number' || e.index < 0) throw mapNativeError(err, ns.label, `netlink in ${ns.label}`)
      const message = e.message ?? String(err)
      return {
        ok: false,
        stdout: '',
        stderr: message,
        failedIndex: e.index,
        message,
        failures: [{ index: e.index, message }],
      }
    }
  }

  /** Undoes applied steps in reverse order, batching consecutive lines per tool and namespace. */
  private async rollback(done: Undo[][]): Promise<void> {
    const undos = done.reverse().flatMap((u) => [...u].reverse())
    let i = 0
    while (i < undos.length) {
      const u = undos[i] as Undo
      if ('fn' in u) {
        try {
          await u.fn()
        } catch (err) {
          this.ctx.log.error('rollback step %s failed: %s', u.label, (err as Error).message)
        }
        i++
        continue
      }
      let j = i + 1
      while (j < undos.length) {
        const n = undos[j] as Undo
        if ('fn' in n || n.tool !== u.tool || n.ns.path !== u.ns.path) break
        j++
      }
      const lines = (undos.slice(i, j) as Array<Extract<Undo, { line: string }>>).map((x) => x.line)
      try {
        const out = await this.ctx.runner.run(u.tool, u.ns, lines, { force: true })
        for (const f of out.failures) {
          // an undo line can fail when a later undo already removed its object (or the kernel did)
          this.ctx.log.trace('rollback line `%s` in %s failed: %s', lines[f.index], u.ns.label, f.message)
        }
      } catch (err) {
        this.ctx.log.error('rollback in %s failed: %s', u.ns.label, (err as Error).message)
      }
      i = j
    }
  }
}
