import { execFile, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { promisify } from 'node:util'

const exec = promisify(execFile)

/** True when this process can create network namespaces (root or CAP_NET_ADMIN). */
export function canUseNetns(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/**
 * Use as `describe.skipIf(!netnsAvailable())(...)`. With CNM_REQUIRE_NETNS=1 (CI) a missing
 * capability throws instead, so privileged tests can never be skipped there.
 */
export function netnsAvailable(): boolean {
  const ok = canUseNetns()
  if (!ok) {
    if (process.env['CNM_REQUIRE_NETNS'] === '1') {
      throw new Error('CNM_REQUIRE_NETNS=1 but this process is not root: privileged tests cannot run')
    }
    // The printed skip reason STYLE.md §10 asks for; test-utils has no logger of its own here.
    // eslint-disable-next-line no-console
    console.warn('skipping privileged netns tests: not running as root')
  }
  return ok
}

/** A short unique prefix for names made by one test run (interface names max 15 chars). */
export function uniquePrefix(tag = 't'): string {
  return `${tag.slice(0, 3)}${randomBytes(3).toString('hex')}`
}

/** Runs a command, resolving stdout; rejects with stderr in the message. */
export async function run(cmd: string, args: string[], input?: string): Promise<string> {
  if (input === undefined) {
    try {
      const { stdout } = await exec(cmd, args, { maxBuffer: 64 * 1024 * 1024 })
      return stdout
    } catch (err) {
      const e = err as { stderr?: string; message: string }
      throw new Error(`${cmd} ${args.join(' ')}: ${e.stderr ?? e.message}`, { cause: err })
    }
  }
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] })
    let out = ''
    let errOut = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (errOut += d.toString()))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${errOut}`)),
    )
    child.stdin.end(input)
  })
}

/** Runs a command inside a named namespace (`ip netns exec`). */
export async function nsExec(ns: string, cmd: string, args: string[]): Promise<string> {
  return await run('ip', ['netns', 'exec', ns, cmd, ...args])
}

/**
 * A set of namespaces owned by one test. `add()` creates one (with lo up) and remembers it;
 * `cleanup()` deletes them all, also after failures. Register cleanup with afterEach/onTestFinished.
 */
export class NetnsFixture {
  readonly prefix: string
  private readonly names = new Set<string>()
  private readonly extraCleanups: Array<() => Promise<void>> = []

  constructor(tag = 't') {
    this.prefix = uniquePrefix(tag)
  }

  /** Creates namespace `<prefix>-<suffix>` with loopback up and returns its name. */
  async add(suffix: string): Promise<string> {
    const name = `${this.prefix}-${suffix}`
    await run('ip', ['netns', 'add', name])
    this.names.add(name)
    await run('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
    return name
  }

  /** Registers a namespace created by code under test so cleanup removes it too. */
  track(name: string): void {
    this.names.add(name)
  }

  onCleanup(fn: () => Promise<void>): void {
    this.extraCleanups.push(fn)
  }

  async cleanup(): Promise<void> {
    for (const fn of this.extraCleanups.reverse()) {
      try {
        await fn()
      } catch {
        // cleanup is best effort: the resource may already be gone
      }
    }
    this.extraCleanups.length = 0
    for (const name of this.names) {
      await run('ip', ['netns', 'del', name]).catch(() => undefined)
    }
    this.names.clear()
  }
}

/** Namespace names currently present (for leak checks). */
export async function listNetns(): Promise<string[]> {
  const out = await run('ip', ['netns', 'list'])
  return out
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((l) => l.length > 0)
}
