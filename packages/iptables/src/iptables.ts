import { AbortError, isCnmError, throwIfAborted } from '@cnm/types'
import type { AbortOptions, ComponentLogger, IpVersion, Logger } from '@cnm/types'
import {
  ChainNotFoundError,
  CommandFailure,
  InvalidChainError,
  InvalidFirewallOptionError,
  InvalidRuleError,
  IptablesCommandError,
  IptablesNotFoundError,
} from './errors.js'
import { inNetns, isValidNetnsName, spawnCommand } from './internal/exec.js'
import type { CommandResult, CommandRunner } from './internal/exec.js'
import { cloneModel, parseSave, savedRule } from './internal/model.js'
import { residentCommandRunner } from './internal/resident.js'
import type { ResidentCommandRunner } from './internal/resident.js'
import { ResidentWriter } from './internal/resident-writer.js'
import type { ChainModel, SavedRule, TablesModel } from './internal/model.js'
import {
  assertChain,
  assertRuleArgs,
  assertTable,
  isBuiltinChain,
  quoteArg,
  ruleKey,
  targetOf,
} from './internal/rule.js'
import type { Table } from './internal/rule.js'

export type { Table } from './internal/rule.js'
export type { CommandRunner, CommandResult, RunOptions } from './internal/exec.js'

/** Which iptables implementation talks to the kernel. */
export type IptablesBackend = 'nft' | 'legacy'

export interface IptablesInit {
  /**
   * Network namespace every command runs in: a name under /run/netns (`ip netns exec`) or an
   * absolute path to a namespace file such as a sandbox key (`nsenter --net=PATH`).
   * @default undefined (the namespace of this process)
   */
  netns?: string
  /** 4 → iptables, 6 → ip6tables. */
  family: IpVersion
  /**
   * `auto` asks `iptables --version` (`ip6tables` for family 6) which variant the system's
   * alternatives point at; `nft` and `legacy` force `iptables-nft*` / `iptables-legacy*`.
   * @default 'auto'
   */
  backend?: 'auto' | IptablesBackend
  /**
   * Seconds to wait for the xtables lock (legacy backend; passed as `--wait`).
   * @default 10
   */
  waitSeconds?: number
  /**
   * User-defined chains this instance alone writes (cnm's own chains). A change set that touches only
   * such chains is planned against the in-memory view of the ruleset (kept from the last read and
   * every successful apply) and costs one `iptables-restore`, without an `iptables-save` first. The
   * view is read again after any failure, on `invalidate()`, and whenever a change set touches another
   * chain (built-in chains are shared with other programs and are always read). See `claimChains`.
   * @default []
   */
  ownedChains?: readonly string[]
  /**
   * Run iptables through one long-lived shell (`residentCommandRunner`) instead of one Node `spawn`
   * per command. Ignored when `runCommand` is injected. `close()` ends the shell.
   * @default true
   */
  resident?: boolean
  /**
   * Milliseconds the resident shell (and the resident writer) stay alive without work (they start
   * again when needed).
   * @default 10000
   */
  residentIdleMs?: number
  /**
   * nft backend: write change sets through one long-lived `iptables-nft-restore --noflush` in the
   * namespace, acknowledged by a long-lived `xtables-monitor` (NEWGEN events), so a write starts no
   * process (about 0.5 ms instead of an exec). The two processes keep the namespace alive while they
   * run (they exit after `residentIdleMs` idle and on `close()`): use it for long-lived namespaces such
   * as the host's. Falls back to one `iptables-restore` per write when the tools are missing.
   * @default false
   */
  residentWriter?: boolean
}

export interface IptablesComponents {
  logger: ComponentLogger
  /**
   * Runs one command. @default a resident shell owned by this instance (`resident: true`), else
   * child_process.spawn per command
   */
  runCommand?: CommandRunner
}

export const DEFAULT_IPTABLES_INIT = Object.freeze({
  backend: 'auto' as const,
  waitSeconds: 10,
  ownedChains: Object.freeze([]) as readonly string[],
  resident: true,
  residentIdleMs: 10_000,
  residentWriter: false,
})

/** What an Iptables instance has run so far (for tests, benchmarks and diagnostics). */
export interface IptablesStats {
  /** `iptables-save` runs (reads of the ruleset). */
  saves: number
  /** `iptables-restore` runs (writes). */
  restores: number
  /** Change sets planned against the in-memory view, without a read. */
  cachedPlans: number
  /** Restores that went through the resident writer (no process started). */
  residentRestores: number
  /** Processes the resident writer started (restore and monitor, counted at each start). */
  writerLaunches: number
}

/** Append the rule unless an identical rule is already in the chain. */
export interface EnsureRuleChange {
  op: 'ensure'
  table: Table
  chain: string
  rule: readonly string[]
}
/** Delete the rule if it is in the chain (the first copy). */
export interface DeleteRuleChange {
  op: 'delete'
  table: Table
  chain: string
  rule: readonly string[]
}
/**
 * Insert the rule at `position` (1-based, default 1) unless it is already in the chain. With
 * `pin: true` a copy found elsewhere is moved to `position` (libnetwork's ensureJumpRule).
 */
export interface InsertRuleChange {
  op: 'insert'
  table: Table
  chain: string
  rule: readonly string[]
  position?: number
  pin?: boolean
}
/** Create a user-defined chain unless it exists (an existing chain keeps its rules). */
export interface EnsureChainChange {
  op: 'ensureChain'
  table: Table
  chain: string
}
/** Remove every rule that jumps (-j/-g) to the chain, flush it and delete it; no-op if absent. */
export interface DeleteChainChange {
  op: 'deleteChain'
  table: Table
  chain: string
}
/** Remove all rules of a chain (no-op when absent or empty). */
export interface FlushChainChange {
  op: 'flushChain'
  table: Table
  chain: string
}
/** Set a built-in chain's policy. */
export interface PolicyChange {
  op: 'policy'
  table: Table
  chain: string
  policy: 'ACCEPT' | 'DROP'
}

/**
 * Delete every rule of the chain for which `where` returns true, judged against the same
 * iptables-save read as the rest of the change set (no-op when the chain is absent). `where` gets
 * the rule's tokens as iptables-save prints them (after `-A <chain>`).
 */
export interface DeleteWhereChange {
  op: 'deleteWhere'
  table: Table
  chain: string
  where: (rule: readonly string[]) => boolean
}

export type RuleChange = EnsureRuleChange | DeleteRuleChange | InsertRuleChange
export type Change =
  RuleChange | EnsureChainChange | DeleteChainChange | FlushChainChange | PolicyChange | DeleteWhereChange

export interface ApplyOptions extends AbortOptions {
  /**
   * Plan only: read the current state and return the script that would run, without running it.
   * @default false
   */
  dryRun?: boolean
}

export interface ApplyResult {
  /** Changes that altered the ruleset. */
  readonly applied: number
  /** Changes that were already satisfied. */
  readonly skipped: number
  /** The iptables-restore input that ran (empty when nothing had to change). */
  readonly script: string
  /**
   * A change set that puts back exactly what this one changed (apply it to undo). Empty when
   * nothing changed.
   */
  readonly undo: readonly Change[]
}

export interface SaveOptions extends AbortOptions {
  /** One table only. @default all tables */
  table?: Table
}

type ChainsOf = Map<string, ChainModel>

interface RestoreOutcome extends CommandResult {
  /** The failing line of the script (1-based), when iptables named one. */
  readonly failedLine: number | undefined
}

interface Plan {
  /** Restore lines per table, in table order of first use. */
  blocks: Map<Table, string[]>
  applied: number
  skipped: number
  /** The ruleset as it will be once the plan ran. */
  model: TablesModel
  /** Changes that put back what the plan changes, in the order to apply them. */
  undo: Change[]
}

/**
 * iptables (or ip6tables) for one network namespace. Every change goes through `apply()`, which
 * reads the current rules once, drops what is already satisfied and runs the rest as one
 * `iptables-restore --noflush`. Calls on one instance are serialised; share one instance per
 * namespace and family.
 */
export class Iptables {
  readonly netns: string | undefined
  readonly family: IpVersion
  private readonly log: Logger
  private readonly runCommand: CommandRunner
  private readonly config: { backend: 'auto' | IptablesBackend; waitSeconds: number }
  private detected: Promise<IptablesBackend> | undefined
  private queue: Promise<unknown> = Promise.resolve()
  /** The resident shell this instance started (and closes), when no runner was injected. */
  private readonly ownRunner: ResidentCommandRunner | undefined
  private readonly claimed = new Set<string>()
  /** The ruleset per table as of the last read or successful apply; empty after a failure. */
  private readonly view = new Map<Table, ChainsOf>()
  private readonly counters: Omit<IptablesStats, 'writerLaunches'> = {
    saves: 0,
    restores: 0,
    cachedPlans: 0,
    residentRestores: 0,
  }
  private readonly writerWanted: boolean
  private readonly idleMs: number
  private writer: ResidentWriter | undefined

  constructor(init: IptablesInit, components: IptablesComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidFirewallOptionError('init must be an object')
    if (init.family !== 4 && init.family !== 6) {
      throw new InvalidFirewallOptionError(`family must be 4 or 6, got ${JSON.stringify(init.family)}`)
    }
    if (init.netns !== undefined && (typeof init.netns !== 'string' || !isValidNetnsName(init.netns))) {
      throw new InvalidFirewallOptionError(`invalid netns name ${JSON.stringify(init.netns)}`)
    }
    const config = { ...DEFAULT_IPTABLES_INIT, ...stripUndefined(init) }
    if (!['auto', 'nft', 'legacy'].includes(config.backend)) {
      throw new InvalidFirewallOptionError(`backend must be auto, nft or legacy, got ${JSON.stringify(config.backend)}`)
    }
    if (!Number.isInteger(config.waitSeconds) || config.waitSeconds < 0 || config.waitSeconds > 3600) {
      throw new InvalidFirewallOptionError(`waitSeconds must be an integer in 0..3600, got ${config.waitSeconds}`)
    }
    if (typeof config.resident !== 'boolean') throw new InvalidFirewallOptionError('resident must be a boolean')
    if (!Number.isInteger(config.residentIdleMs) || config.residentIdleMs < 0) {
      throw new InvalidFirewallOptionError(
        `residentIdleMs must be a non-negative integer, got ${String(config.residentIdleMs)}`,
      )
    }
    if (!Array.isArray(config.ownedChains))
      throw new InvalidFirewallOptionError('ownedChains must be an array of chain names')
    if (typeof config.residentWriter !== 'boolean')
      throw new InvalidFirewallOptionError('residentWriter must be a boolean')
    this.writerWanted = config.residentWriter
    this.idleMs = config.residentIdleMs
    this.netns = init.netns
    this.family = init.family
    this.config = { backend: config.backend, waitSeconds: config.waitSeconds }
    this.claimChains(config.ownedChains)
    if (components.runCommand !== undefined) {
      this.runCommand = components.runCommand
    } else if (config.resident) {
      this.ownRunner = residentCommandRunner({ idleMs: config.residentIdleMs })
      this.runCommand = this.ownRunner
    } else {
      this.runCommand = spawnCommand
    }
    const base = components.logger.forComponent('cnm:iptables')
    this.log = base.child(`${init.netns ?? 'root'}:v${init.family}`)
  }

  /** Counters of reads, writes and cached plans. */
  get stats(): Readonly<IptablesStats> {
    return { ...this.counters, writerLaunches: this.writer?.stats.launches ?? 0 }
  }

  /**
   * Declares user-defined chains that only this instance writes (see `ownedChains`). Built-in chains
   * cannot be claimed.
   */
  claimChains(chains: readonly string[]): void {
    for (const c of chains) {
      assertChain(c)
      for (const t of ['filter', 'nat', 'mangle', 'raw'] as const) {
        if (isBuiltinChain(t, c)) throw new InvalidChainError(`${c} is a built-in chain and cannot be claimed`)
      }
    }
    for (const c of chains) this.claimed.add(c)
  }

  /** Forgets the in-memory view: the next apply reads the ruleset first (e.g. after a firewall reload). */
  invalidate(): void {
    this.view.clear()
  }

  /**
   * Ends the resident writer and the resident shell this instance started, if any. Safe to call twice;
   * the instance stays usable (they start again on demand).
   */
  async close(): Promise<void> {
    await this.serialize(async () => {
      await this.writer?.close()
      await this.ownRunner?.close()
    })
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  /** The backend in use (detected once, on first use, and logged). */
  async backend(options: AbortOptions = {}): Promise<IptablesBackend> {
    throwIfAborted(options.signal)
    if (this.detected === undefined) {
      const p = this.detect(options.signal)
      this.detected = p
      // a failed detection (e.g. aborted) may be retried by the next call
      p.catch(() => {
        if (this.detected === p) this.detected = undefined
      })
    }
    return await this.detected
  }

  /** Creates the chain unless it exists. */
  async ensureChain(table: Table, chain: string, options: AbortOptions = {}): Promise<ApplyResult> {
    return await this.apply([{ op: 'ensureChain', table, chain }], options)
  }

  /** Removes jumps into the chain, flushes and deletes it; no-op when absent. */
  async deleteChain(table: Table, chain: string, options: AbortOptions = {}): Promise<ApplyResult> {
    return await this.apply([{ op: 'deleteChain', table, chain }], options)
  }

  /** True when the chain exists in the table. */
  async hasChain(table: Table, chain: string, options: AbortOptions = {}): Promise<boolean> {
    assertTable(table)
    assertChain(chain)
    const model = await this.serialize(() => this.read([table], options.signal))
    return model.get(table)?.has(chain) ?? false
  }

  /** True when the rule is in the chain, as iptables itself decides (`-C`). False when the chain is missing. */
  async exists(table: Table, chain: string, rule: readonly string[], options: AbortOptions = {}): Promise<boolean> {
    throwIfAborted(options.signal)
    assertTable(table)
    assertChain(chain)
    assertRuleArgs(rule)
    ruleKey(rule, this.family)
    const backend = await this.backend(options)
    const argv = [this.bin(backend, ''), '-w', String(this.config.waitSeconds), '-t', table, '-C', chain, ...rule]
    const r = await this.exec(argv, undefined, options.signal)
    if (r.code === 0) return true
    if (r.code === 1) return false
    throw new IptablesCommandError(`checking a rule in ${table}/${chain} failed`, {
      cause: new CommandFailure(inNetns(this.netns, argv), r.code, r.stderr, r.stdout),
    })
  }

  /** Raw iptables-save output (for diagnostics and tests). */
  async save(options: SaveOptions = {}): Promise<string> {
    throwIfAborted(options.signal)
    if (options.table !== undefined) assertTable(options.table)
    const backend = await this.backend(options)
    const argv = [this.bin(backend, '-save')]
    if (options.table !== undefined) argv.push('-t', options.table)
    this.counters.saves++
    const r = await this.exec(argv, undefined, options.signal)
    if (r.code !== 0) {
      throw new IptablesCommandError('iptables-save failed', {
        cause: new CommandFailure(inNetns(this.netns, argv), r.code, r.stderr, r.stdout),
      })
    }
    return r.stdout
  }

  /** Rules of one chain as iptables-save prints them (tokens after `-A <chain>`); undefined if no such chain. */
  async listRules(table: Table, chain: string, options: AbortOptions = {}): Promise<string[][] | undefined> {
    assertTable(table)
    assertChain(chain)
    const model = await this.serialize(() => this.read([table], options.signal))
    return model
      .get(table)
      ?.get(chain)
      ?.rules.map((r) => [...r.tokens])
  }

  /**
   * All rules of the given tables from one iptables-save: table → chain → rules (tokens after
   * `-A <chain>`). Tables not loaded yet show their built-in chains, empty.
   */
  async ruleset(tables: readonly Table[], options: AbortOptions = {}): Promise<Map<Table, Map<string, string[][]>>> {
    for (const t of tables) assertTable(t)
    const model = await this.serialize(() => this.read(tables, options.signal))
    const out = new Map<Table, Map<string, string[][]>>()
    for (const t of tables) {
      const chains = new Map<string, string[][]>()
      for (const [name, c] of model.get(t) ?? [])
        chains.set(
          name,
          c.rules.map((r) => [...r.tokens]),
        )
      out.set(t, chains)
    }
    return out
  }

  /** Names of all chains of a table (built-in first, as saved). */
  async listChains(table: Table, options: AbortOptions = {}): Promise<string[]> {
    assertTable(table)
    const model = await this.serialize(() => this.read([table], options.signal))
    return [...(model.get(table)?.keys() ?? [])]
  }

  /**
   * Applies a change set as one `iptables-restore --noflush`, after dropping what the current
   * ruleset already satisfies. The current ruleset is one iptables-save read, or, when every change
   * touches only chains this instance owns (`ownedChains`, `claimChains`), the in-memory view of the
   * last read and applies. A write planned from that view that fails is planned again from a fresh
   * read and retried once. Everything is validated first: invalid input throws before anything is
   * read or changed. iptables commits table by table; if a later table fails, the tables already
   * committed are rolled back, so the change set is all or nothing.
   */
  async apply(changes: readonly Change[], options: ApplyOptions = {}): Promise<ApplyResult> {
    throwIfAborted(options.signal)
    if (!Array.isArray(changes as unknown)) throw new InvalidRuleError('changes must be an array')
    for (const c of changes) this.validate(c)
    return await this.serialize(async () => {
      throwIfAborted(options.signal)
      if (changes.length === 0) return { applied: 0, skipped: 0, script: '', undo: [] }
      const tables: Table[] = []
      for (const c of changes) if (!tables.includes(c.table)) tables.push(c.table)
      let fromView = this.trusted(changes, tables)
      let plan: Plan | undefined
      if (fromView) {
        try {
          plan = this.plan(changes, this.viewOf(tables))
          this.counters.cachedPlans++
        } catch (err) {
          if (!isCnmError(err, 'ERR_IPTABLES_NO_CHAIN')) throw err
          // a chain we own is missing from the view: someone else changed the ruleset; read it
          this.log('planning from the in-memory view failed (%s); reading the ruleset', (err as Error).message)
          fromView = false
          this.view.clear()
        }
      }
      plan ??= this.plan(changes, await this.read(tables, options.signal))
      let rendered = render(plan.blocks)
      if (rendered.script.length === 0 || options.dryRun === true) {
        return { applied: plan.applied, skipped: plan.skipped, script: rendered.script, undo: plan.undo }
      }
      try {
        await this.restore(rendered.script, plan, rendered.commitLines, options.signal)
      } catch (err) {
        this.view.clear()
        if (!fromView || !isCnmError(err, 'ERR_IPTABLES_COMMAND')) throw err
        // the view was stale (rules or chains changed behind our back): plan again from a fresh read
        this.log(
          'applying from the in-memory view failed (%s); reading the ruleset and retrying',
          (err as Error).message,
        )
        plan = this.plan(changes, await this.read(tables, options.signal))
        rendered = render(plan.blocks)
        if (rendered.script.length > 0) {
          try {
            await this.restore(rendered.script, plan, rendered.commitLines, options.signal)
          } catch (again) {
            this.view.clear()
            throw again
          }
        }
      }
      for (const t of tables) this.view.set(t, plan.model.get(t) as ChainsOf)
      this.log.trace('applied %d changes (%d already satisfied)', plan.applied, plan.skipped)
      return { applied: plan.applied, skipped: plan.skipped, script: rendered.script, undo: plan.undo }
    })
  }

  /** True when every change touches only claimed chains and the view holds every table involved. */
  private trusted(changes: readonly Change[], tables: readonly Table[]): boolean {
    if (tables.some((t) => !this.view.has(t))) return false
    return changes.every((c) => c.op !== 'policy' && c.op !== 'deleteChain' && this.claimed.has(c.chain))
  }

  private viewOf(tables: readonly Table[]): TablesModel {
    const m: TablesModel = new Map()
    for (const t of tables) m.set(t, this.view.get(t) as ChainsOf)
    return m
  }

  private validate(c: Change): void {
    if (c === null || typeof c !== 'object') throw new InvalidRuleError('a change must be an object')
    assertTable(c.table)
    assertChain(c.chain)
    switch (c.op) {
      case 'ensure':
      case 'delete':
      case 'insert':
        assertRuleArgs(c.rule)
        ruleKey(c.rule, this.family)
        if (c.op === 'insert' && c.position !== undefined && (!Number.isInteger(c.position) || c.position < 1)) {
          throw new InvalidRuleError(`insert position must be an integer >= 1, got ${String(c.position)}`)
        }
        return
      case 'deleteWhere':
        if (typeof c.where !== 'function') throw new InvalidRuleError('deleteWhere needs a where function')
        return
      case 'ensureChain':
      case 'deleteChain':
      case 'flushChain':
        if (c.op !== 'flushChain' && isBuiltinChain(c.table, c.chain)) {
          throw new InvalidChainError(`${c.chain} is a built-in chain of ${c.table}`)
        }
        return
      case 'policy':
        if (!isBuiltinChain(c.table, c.chain))
          throw new InvalidChainError(`${c.chain} is not a built-in chain of ${c.table}`)
        if (c.policy !== 'ACCEPT' && c.policy !== 'DROP') {
          throw new InvalidRuleError(`policy must be ACCEPT or DROP, got ${JSON.stringify(c.policy)}`)
        }
        return
      default:
        throw new InvalidRuleError(`unknown op ${JSON.stringify((c as { op?: unknown }).op)}`)
    }
  }

  private plan(changes: readonly Change[], current: TablesModel): Plan {
    const model = cloneModel(current)
    const blocks = new Map<Table, string[]>()
    const undoSteps: Change[][] = []
    let applied = 0
    let skipped = 0
    const line = (tokens: readonly string[]): string => tokens.map(quoteArg).join(' ')

    for (const c of changes) {
      const chains = model.get(c.table) as Map<string, ChainModel>
      const chain = chains.get(c.chain)
      const lines: string[] = []
      const undo: Change[] = []
      const { table } = c
      switch (c.op) {
        case 'ensureChain':
          if (chain !== undefined) break
          chains.set(c.chain, { policy: undefined, rules: [] })
          lines.push(`:${c.chain} - [0:0]`)
          undo.push({ op: 'deleteChain', table, chain: c.chain })
          break
        case 'deleteChain': {
          if (chain === undefined) break
          const refs: Change[] = []
          for (const [name, other] of chains) {
            if (name === c.chain) continue
            for (let i = 0; i < other.rules.length;) {
              const r = other.rules[i] as SavedRule
              if (targetOf(r.tokens) !== c.chain) {
                i++
                continue
              }
              lines.push(`-D ${name} ${line(r.tokens)}`)
              refs.unshift({ op: 'insert', table, chain: name, rule: r.tokens, position: i + 1 })
              other.rules.splice(i, 1)
            }
          }
          if (chain.rules.length > 0) lines.push(`-F ${c.chain}`)
          lines.push(`-X ${c.chain}`)
          undo.push({ op: 'ensureChain', table, chain: c.chain })
          for (const r of chain.rules) undo.push({ op: 'ensure', table, chain: c.chain, rule: r.tokens })
          undo.push(...refs)
          chains.delete(c.chain)
          break
        }
        case 'deleteWhere': {
          if (chain === undefined) break
          const undoInserts: Change[] = []
          for (let i = 0; i < chain.rules.length;) {
            const r = chain.rules[i] as SavedRule
            if (!c.where(r.tokens)) {
              i++
              continue
            }
            lines.push(`-D ${c.chain} ${line(r.tokens)}`)
            undoInserts.unshift({ op: 'insert', table, chain: c.chain, rule: r.tokens, position: i + 1 })
            chain.rules.splice(i, 1)
          }
          undo.push(...undoInserts)
          break
        }
        case 'flushChain':
          if (chain === undefined || chain.rules.length === 0) break
          lines.push(`-F ${c.chain}`)
          for (const r of chain.rules) undo.push({ op: 'ensure', table, chain: c.chain, rule: r.tokens })
          chain.rules = []
          break
        case 'policy': {
          const was = chain?.policy ?? 'ACCEPT'
          if (was === c.policy) break
          lines.push(`-P ${c.chain} ${c.policy}`)
          undo.push({ op: 'policy', table, chain: c.chain, policy: was === 'DROP' ? 'DROP' : 'ACCEPT' })
          chains.set(c.chain, { policy: c.policy, rules: chain?.rules ?? [] })
          break
        }
        case 'ensure':
        case 'delete':
        case 'insert': {
          if (chain === undefined) {
            throw new ChainNotFoundError(`chain ${c.chain} does not exist in table ${c.table}`)
          }
          const key = ruleKey(c.rule, this.family)
          const idx = chain.rules.findIndex((r) => r.key === key)
          if (c.op === 'ensure') {
            if (idx >= 0) break
            chain.rules.push(savedRule(c.rule, this.family))
            lines.push(`-A ${c.chain} ${line(c.rule)}`)
            undo.push({ op: 'delete', table, chain: c.chain, rule: c.rule })
            break
          }
          if (c.op === 'delete') {
            if (idx < 0) break
            const r = chain.rules[idx] as SavedRule
            lines.push(`-D ${c.chain} ${line(r.tokens)}`)
            undo.push({ op: 'insert', table, chain: c.chain, rule: r.tokens, position: idx + 1 })
            chain.rules.splice(idx, 1)
            break
          }
          const wanted = c.position ?? 1
          if (idx >= 0) {
            const effective = Math.min(wanted, chain.rules.length) - 1
            if (c.pin !== true || idx === effective) break
            const r = chain.rules[idx] as SavedRule
            lines.push(`-D ${c.chain} ${line(r.tokens)}`)
            chain.rules.splice(idx, 1)
            const pos = Math.min(wanted, chain.rules.length + 1)
            chain.rules.splice(pos - 1, 0, r)
            lines.push(`-I ${c.chain} ${pos} ${line(r.tokens)}`)
            undo.push({ op: 'insert', table, chain: c.chain, rule: r.tokens, position: idx + 1, pin: true })
            break
          }
          const pos = Math.min(wanted, chain.rules.length + 1)
          chain.rules.splice(pos - 1, 0, savedRule(c.rule, this.family))
          lines.push(`-I ${c.chain} ${pos} ${line(c.rule)}`)
          undo.push({ op: 'delete', table, chain: c.chain, rule: c.rule })
          break
        }
      }
      if (lines.length === 0) {
        skipped++
        continue
      }
      applied++
      let b = blocks.get(table)
      if (b === undefined) {
        b = []
        blocks.set(table, b)
      }
      b.push(...lines)
      undoSteps.push(undo)
    }
    return { blocks, applied, skipped, model, undo: undoSteps.reverse().flat() }
  }

  private async restore(
    script: string,
    plan: Plan,
    commitLines: Map<Table, number>,
    signal?: AbortSignal,
  ): Promise<void> {
    const backend = await this.backend({ ...(signal === undefined ? {} : { signal }) })
    const argv = [this.bin(backend, '-restore'), '--noflush', `--wait=${this.config.waitSeconds}`]
    this.counters.restores++
    const started = Date.now()
    let r: RestoreOutcome
    try {
      r = await this.runRestore(backend, argv, script, commitLines.size, signal)
    } catch (err) {
      // aborted while iptables-restore ran: the kernel may or may not have the change; say so
      if (isCnmError(err, 'ERR_ABORTED')) this.log.error('apply aborted while iptables-restore was running')
      throw err
    }
    const tookMs = Date.now() - started
    if (tookMs > 2000) this.log('iptables-restore took %d ms (xtables lock contention?)', tookMs)
    if (r.code === 0) return
    const failure = new CommandFailure(inNetns(this.netns, argv), r.code, r.stderr, r.stdout)
    const failedLine = r.failedLine
    if (failedLine === undefined) {
      this.log.error('iptables-restore failed without a line number; some tables may be committed: %s', r.stderr.trim())
    }
    const committed = new Set(
      [...commitLines].filter(([, commit]) => failedLine !== undefined && commit < failedLine).map(([t]) => t),
    )
    if (committed.size > 0) {
      // iptables commits table by table: put the tables that made it back as they were
      const undo = plan.undo.filter((c) => committed.has(c.table))
      const rollback = render(this.plan(undo, plan.model).blocks).script
      this.counters.restores++
      const u = await this.runRestore(backend, argv, rollback, committed.size, undefined)
      if (u.code !== 0) {
        this.log.error('rolling back tables %s failed: %s', [...committed].join(','), u.stderr.trim())
      } else {
        this.log('rolled back tables %s after a failed apply', [...committed].join(','))
      }
    }
    throw new IptablesCommandError(`iptables-restore failed: ${firstLine(r.stderr)}`, { cause: failure })
  }

  /** One restore script through the resident writer when it is on and works, else one iptables-restore. */
  private async runRestore(
    backend: IptablesBackend,
    argv: readonly string[],
    script: string,
    tables: number,
    signal: AbortSignal | undefined,
  ): Promise<RestoreOutcome> {
    if (this.writerWanted && backend === 'nft') {
      this.writer ??= new ResidentWriter({
        netns: this.netns,
        family: this.family,
        restoreBin: argv[0] as string,
        waitSeconds: this.config.waitSeconds,
        idleMs: this.idleMs,
        log: this.log,
      })
      const w = this.writer
      if (w.unusable === undefined) {
        try {
          const o = await w.write(script, tables, signal)
          this.counters.residentRestores++
          return { code: o.code, stdout: '', stderr: o.stderr, failedLine: o.failedLine }
        } catch (err) {
          if (isCnmError(err, 'ERR_ABORTED') || w.unusable === undefined) throw err
          this.log.error(
            'resident iptables writer unavailable (%s); one iptables-restore per change from now on',
            w.unusable,
          )
        }
      }
    }
    const r = await this.exec(argv, script, signal)
    const m = /line:?\s*(\d+)/i.exec(r.stderr)
    return { ...r, failedLine: m === null ? undefined : Number(m[1]) }
  }

  /** One iptables-save (of one table, or of all when several are involved), parsed; refreshes the view. */
  private async read(tables: readonly Table[], signal?: AbortSignal): Promise<TablesModel> {
    const only = tables.length === 1 ? tables[0] : undefined
    const text = await this.save({
      ...(only === undefined ? {} : { table: only }),
      ...(signal === undefined ? {} : { signal }),
    })
    const model = parseSave(text, this.family, tables)
    for (const [t, chains] of model) this.view.set(t, chains)
    return model
  }

  private bin(backend: IptablesBackend, suffix: '' | '-save' | '-restore'): string {
    return `${this.family === 4 ? 'iptables' : 'ip6tables'}-${backend}${suffix}`
  }

  private async detect(signal?: AbortSignal): Promise<IptablesBackend> {
    const base = this.family === 4 ? 'iptables' : 'ip6tables'
    if (this.config.backend !== 'auto') {
      const r = await this.tryVersion(`${base}-${this.config.backend}`, signal)
      if (r === undefined) throw new IptablesNotFoundError(`${base}-${this.config.backend} not found`)
      this.log('using %s backend (%s)', this.config.backend, r)
      return this.config.backend
    }
    for (const cmd of [base, `${base}-nft`, `${base}-legacy`]) {
      const version = await this.tryVersion(cmd, signal)
      if (version === undefined) continue
      const backend: IptablesBackend = /legacy/.test(version) ? 'legacy' : /nf_tables/.test(version) ? 'nft' : 'legacy'
      this.log('using %s backend (%s reports %s)', backend, cmd, version)
      return backend
    }
    throw new IptablesNotFoundError(this.family === 4 ? 'iptables not found' : 'ip6tables is missing')
  }

  private async tryVersion(cmd: string, signal?: AbortSignal): Promise<string | undefined> {
    try {
      const r = await this.runCommand([cmd, '--version'], signal === undefined ? {} : { signal })
      if (r.code !== 0) return undefined
      return r.stdout.trim()
    } catch (err) {
      if (err instanceof AbortError) throw err
      this.log.trace('%s --version failed: %s', cmd, (err as Error).message)
      return undefined
    }
  }

  private async exec(argv: readonly string[], input: string | undefined, signal?: AbortSignal): Promise<CommandResult> {
    const full = inNetns(this.netns, argv)
    this.log.trace('run %s', full.join(' '))
    try {
      return await this.runCommand(full, {
        ...(input === undefined ? {} : { input }),
        ...(signal === undefined ? {} : { signal }),
      })
    } catch (err) {
      if (isCnmError(err)) throw err
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new IptablesNotFoundError(`${full[0] ?? ''} not found`, { cause: err })
      }
      throw new IptablesCommandError(`could not run ${full[0] ?? ''}`, { cause: err })
    }
  }

  private async serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    // the queue only orders calls; each caller sees its own result or error
    this.queue = run.catch(() => undefined)
    return await run
  }
}

/** Creates an Iptables for one namespace and family. */
export function iptables(init: IptablesInit, components: IptablesComponents): Iptables {
  return new Iptables(init, components)
}

function render(blocks: Map<Table, string[]>): { script: string; commitLines: Map<Table, number> } {
  const out: string[] = []
  const commitLines = new Map<Table, number>()
  for (const [table, lines] of blocks) {
    if (lines.length === 0) continue
    out.push(`*${table}`, ...lines, 'COMMIT')
    commitLines.set(table, out.length)
  }
  return { script: out.length === 0 ? '' : out.join('\n') + '\n', commitLines }
}

function firstLine(s: string): string {
  return s.trim().split('\n')[0] ?? ''
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
