import { mkdtempSync, rmSync, writeFileSync, existsSync, unlinkSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ComponentLogger } from '@cnm/types'
// types only: the caller passes the `osl` factory, so this entry carries no second copy of the classes
import type { Exec, ExecResult, NativeOps, OslComponents, OslInit } from '../index.js'

/** One recorded launch of the fake: the tool, its namespace (`-n NAME` or `--net=PATH`), and its batch lines. */
export interface RecordedCall {
  readonly file: string
  readonly args: readonly string[]
  /** The namespace the command ran in; undefined = the process's own (the host when hostNetns is unset). */
  readonly netns: string | undefined
  readonly lines: readonly string[]
}

export interface FakeNative extends NativeOps {
  readonly calls: Array<{ op: keyof NativeOps; args: unknown[] }>
}

/** What fakeOsl needs of an Osl: the `close()` it calls in cleanup. */
export interface Closable {
  close(): Promise<void>
}

export interface FakeOsl<O extends Closable> {
  /** A real Osl wired to a recording exec and a fake addon; no kernel state is touched. */
  readonly osl: O
  /** Every `ip`/`bridge` launch, in order. */
  readonly calls: RecordedCall[]
  readonly native: FakeNative
  /** All batch lines run in a namespace (a name, a path, or undefined for the process's own). */
  linesIn(netns: string | undefined): string[]
  /** Makes every later line matching `pattern` fail with `message` (e.g. `RTNETLINK answers: File exists`). */
  failLines(pattern: RegExp, message: string): void
  /** Closes the Osl and removes the temporary netnsDir. */
  cleanup(): Promise<void>
}

/**
 * A fake OS layer for unit tests of packages that use @cnm/osl (bridge driver, controller, resolver): the
 * real Osl (from the `osl` factory you pass) with a recording process launcher and a fake addon. Commands
 * always "succeed" (queries answer `[]`) unless told otherwise with `failLines`; namespaces are plain
 * files in a temporary netnsDir. The resident helper and native rtnetlink are off so every kernel line
 * shows up in `calls`.
 *
 * ```ts
 * import { osl } from '@cnm/osl'
 * import { fakeOsl } from '@cnm/osl/testing'
 * const fake = fakeOsl(osl, { hostNetns: 'h' })
 * ```
 */
export function fakeOsl<O extends Closable>(
  factory: (init: OslInit) => (components: OslComponents) => O,
  init: Omit<OslInit, 'residentHost' | 'nativeNetlink'> = {},
  logger?: ComponentLogger,
): FakeOsl<O> {
  const dir = init.netnsDir ?? mkdtempSync(join(tmpdir(), 'cnm-osl-fake-'))
  const calls: RecordedCall[] = []
  const failures: Array<{ pattern: RegExp; message: string }> = []

  const exec: Exec = async (file, args, options) => {
    const lines = (options?.input ?? '').split('\n').filter((l) => l !== '')
    let netns: string | undefined
    const n = args.indexOf('-n')
    if (n >= 0) netns = args[n + 1]
    const net = args.find((a) => a.startsWith('--net='))
    if (net !== undefined) netns = net.slice('--net='.length)
    calls.push({ file, args: [...args], netns, lines })
    const idx = lines.findIndex((l) => failures.some((f) => f.pattern.test(l)))
    if (idx >= 0) {
      const f = failures.find((x) => x.pattern.test(lines[idx] as string))
      const result: ExecResult = {
        code: 1,
        stdout: '',
        stderr: `${f?.message ?? 'failed'}\nCommand failed -:${idx + 1}\n`,
      }
      return result
    }
    const stdout = args.includes('-json') ? lines.map(() => '[]').join('\n') + '\n' : ''
    return { code: 0, stdout, stderr: '' }
  }

  const nativeCalls: FakeNative['calls'] = []
  const missing = (path: string): Error =>
    Object.assign(new Error(`netns(${path}): No such file or directory`), { code: 'ENOENT', errno: 2 })
  const native: FakeNative = {
    calls: nativeCalls,
    openSocket: async (...args) => {
      nativeCalls.push({ op: 'openSocket', args })
      if (args[0] !== null && !existsSync(args[0])) throw missing(args[0])
      return { fd: -1, port: args[4] === 0 ? 40000 + nativeCalls.length : args[4] }
    },
    createNetns: async (...args) => {
      nativeCalls.push({ op: 'createNetns', args })
      if (existsSync(args[0])) {
        throw Object.assign(new Error(`create(${args[0]}): File exists`), { code: 'EEXIST', errno: 17 })
      }
      writeFileSync(args[0], '')
    },
    sysctl: async (...args) => {
      nativeCalls.push({ op: 'sysctl', args })
      if (args[0] !== null && !existsSync(args[0])) throw missing(args[0])
      return args[3].map(() => (args[3][0]?.includes('disable_ipv6') === true ? '1' : '0'))
    },
    unmount: async (...args) => {
      nativeCalls.push({ op: 'unmount', args })
      if (!existsSync(args[0]))
        throw Object.assign(new Error(`umount(${args[0]}): Invalid argument`), { code: 'EINVAL' })
    },
    netlink: async (...args) => {
      nativeCalls.push({ op: 'netlink', args })
    },
    connectSocket: async (...args) => {
      nativeCalls.push({ op: 'connectSocket', args })
      if (args[0] !== null && !existsSync(args[0])) throw missing(args[0])
      throw Object.assign(new Error(`connect(${args[2]}): Connection refused`), { code: 'ECONNREFUSED', errno: 111 })
    },
  }

  const o = factory({ ...init, netnsDir: dir, residentHost: false, nativeNetlink: false })({
    exec,
    native,
    ...(logger === undefined ? {} : { logger }),
  })
  return {
    osl: o,
    calls,
    native,
    linesIn: (netns) => calls.filter((c) => c.netns === netns).flatMap((c) => c.lines),
    failLines: (pattern, message) => {
      failures.push({ pattern, message })
    },
    cleanup: async () => {
      await o.close()
      if (init.netnsDir === undefined) rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** Removes a fake namespace file (simulates a namespace deleted behind the Osl's back). */
export function removeFakeNamespace(path: string): void {
  if (existsSync(path)) unlinkSync(path)
}
