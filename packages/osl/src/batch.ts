import type { Logger } from '@cnm/types'
import type { Exec } from './exec.js'

/** Where a command runs. `path` undefined = this process's own namespace. */
export interface NsTarget {
  /** For messages: the name, path, or `self`. */
  readonly label: string
  /** The namespace file; undefined = the namespace Node runs in. */
  readonly path: string | undefined
  /** Name under /run/netns usable with `ip -n`; undefined when the file lives elsewhere. */
  readonly ipName: string | undefined
}

export type Tool = 'ip' | 'bridge'

export interface ToolPaths {
  ip: string
  bridge: string
  nsenter: string
}

/**
 * The command that runs `tool -batch -` in `ns` with one launch: `ip -n NAME` for namespaces under
 * /run/netns, `nsenter --net=PATH ip` for other paths, plain `ip` for this process's namespace.
 */
export function batchArgv(
  paths: ToolPaths,
  tool: Tool,
  ns: NsTarget,
  opts: { force?: boolean; json?: boolean; stats?: boolean; details?: boolean } = {},
): { file: string; args: string[] } {
  const flags: string[] = []
  if (opts.json === true) flags.push('-json')
  if (opts.stats === true) flags.push('-s')
  if (opts.details === true) flags.push('-d')
  if (opts.force === true) flags.push('-force')
  flags.push('-batch', '-')
  const bin = paths[tool]
  if (ns.path === undefined) return { file: bin, args: flags }
  if (ns.ipName !== undefined) return { file: bin, args: ['-n', ns.ipName, ...flags] }
  return { file: paths.nsenter, args: [`--net=${ns.path}`, bin, ...flags] }
}

export interface BatchOutcome {
  ok: boolean
  stdout: string
  stderr: string
  /** Index (0-based) of the first failed line; -1 when the tool failed before running any line. */
  failedIndex: number
  /** The error text for the first failure. */
  message: string
  /** Every failed line (with -force more than one). */
  failures: Array<{ index: number; message: string }>
  /** Lines after a failed one ran too (-force, the resident helper): undo every line that did not fail. */
  continued?: boolean
}

const FAILED = /^Command failed .*:(\d+)$/

/** Reads `ip`/`bridge` batch stderr: messages accumulate until `Command failed -:N` assigns them to line N. */
export function parseBatchOutput(code: number, stdout: string, stderr: string): BatchOutcome {
  const failures: Array<{ index: number; message: string }> = []
  let pending: string[] = []
  for (const line of stderr.split('\n')) {
    const m = FAILED.exec(line.trim())
    if (m !== null) {
      failures.push({ index: Number(m[1]) - 1, message: pending.join('\n').trim() })
      pending = []
    } else if (line.trim() !== '') {
      pending.push(line)
    }
  }
  if (code === 0 && failures.length === 0) {
    return { ok: true, stdout, stderr, failedIndex: -1, message: '', failures }
  }
  const first = failures[0]
  if (first === undefined) {
    return { ok: false, stdout, stderr, failedIndex: -1, message: stderr.trim() || `exit code ${code}`, failures }
  }
  return { ok: false, stdout, stderr, failedIndex: first.index, message: first.message || stderr.trim(), failures }
}

/** Runs batches of lines through the injected Exec, one launch per call. */
export class BatchRunner {
  constructor(
    private readonly exec: Exec,
    private readonly paths: ToolPaths,
    private readonly log: Logger,
  ) {}

  /** The command line, for error messages. */
  describe(tool: Tool, ns: NsTarget, opts: { force?: boolean; json?: boolean } = {}): string {
    const { file, args } = batchArgv(this.paths, tool, ns, opts)
    return [file, ...args].join(' ')
  }

  async run(
    tool: Tool,
    ns: NsTarget,
    lines: readonly string[],
    opts: { force?: boolean; json?: boolean; stats?: boolean; details?: boolean; signal?: AbortSignal } = {},
  ): Promise<BatchOutcome> {
    const { file, args } = batchArgv(this.paths, tool, ns, opts)
    this.log.trace('run %s %s in %s: %o', file, args.join(' '), ns.label, lines)
    const input = lines.length === 0 ? '' : `${lines.join('\n')}\n`
    const res = await this.exec(file, args, opts.signal === undefined ? { input } : { input, signal: opts.signal })
    return parseBatchOutput(res.code, res.stdout, res.stderr)
  }
}

/** Splits `ip -json -batch` output (one JSON value per command, concatenated) into values. */
export function splitJsonOutput(stdout: string): unknown[] {
  const out: unknown[] = []
  let depth = 0
  let start = -1
  let inString = false
  for (let i = 0; i < stdout.length; i++) {
    const c = stdout[i]
    if (inString) {
      if (c === '\\') i++
      else if (c === '"') inString = false
      continue
    }
    if (c === '"') inString = true
    else if (c === '[' || c === '{') {
      if (depth === 0) start = i
      depth++
    } else if (c === ']' || c === '}') {
      depth--
      if (depth === 0) out.push(JSON.parse(stdout.slice(start, i + 1)))
    }
  }
  return out
}
