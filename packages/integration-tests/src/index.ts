/**
 * @cnm/integration-tests: a harness that runs the real `cnm` daemon as a child process (by PID) with a
 * test-made namespace playing the host, plus helpers to drive the `cnm` CLI and to read kernel state.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { promisify } from 'node:util'
import { CnmClient, removeExecRoot } from '@cnm/cli'
import { NetnsFixture } from '@cnm/test-utils'

const execFileP = promisify(execFile)

/** Path of the built `cnm` executable (packages/cli/dist/bin.js; `pnpm build` makes it). */
export function cnmBin(): string {
  const pkg = createRequire(import.meta.url).resolve('@cnm/cli/package.json')
  const bin = join(dirname(pkg), 'dist', 'bin.js')
  if (!existsSync(bin)) throw new Error(`${bin} is missing: build the workspace first (npx -y pnpm@10.34.9 build)`)
  return bin
}

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

/** Runs a command to its end, never rejecting: code, stdout, stderr. */
export async function exec(cmd: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, [...args], { env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000)
    child.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    child.on('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code: code ?? 128 + (signal === 'SIGKILL' ? 9 : 15), stdout, stderr })
    })
  })
}

/** A TCP server script for `node -e`: greets with $CNM_SANDBOX, echoes one line, prints `listening` when ready. */
export const TCP_SERVER = `
const net = require('node:net')
const port = Number(process.argv[1] || 8080)
const s = net.createServer((c) => {
  c.write('hello from ' + process.env.CNM_SANDBOX + '\\n')
  c.on('data', (d) => c.end('echo ' + String(d).trim() + '\\n'))
  c.on('error', () => {})
})
s.listen(port, '0.0.0.0', () => console.log('listening'))
process.on('SIGTERM', () => { s.close(); process.exit(0) })
`

/** A TCP client script for `node -e`: connects to argv host port, sends a line, prints the reply; exit 1 on error, 2 on timeout. */
export const TCP_CLIENT = `
const net = require('node:net')
const [host, port, ms] = process.argv.slice(1)
let got = ''
const c = net.connect(Number(port), host, () => c.write('ping\\n'))
c.on('data', (d) => { got += d })
c.on('end', () => { process.stdout.write(got); process.exit(0) })
c.on('error', (e) => { console.error(e.code || e.message); process.exit(1) })
setTimeout(() => { console.error('timeout'); process.exit(2) }, Number(ms || 5000)).unref()
`

export interface HarnessOptions {
  /** Extra `cnm daemon` flags. */
  daemonArgs?: readonly string[]
}

/**
 * One test's cnm world: a namespace playing the host, temporary root and exec-root directories, and
 * the daemon as a child process. `cleanup()` (call it in afterEach) kills the daemon by PID and
 * removes every namespace, mount and directory.
 */
export class CnmHarness {
  readonly fixture: NetnsFixture
  readonly dir: string
  readonly root: string
  readonly execRoot: string
  readonly socket: string
  hostNetns = ''
  daemon: ChildProcess | undefined
  daemonLog = ''
  readonly #options: HarnessOptions
  readonly #bin: string
  readonly #clients: CnmClient[] = []
  readonly #spawned = new Set<ChildProcess>()

  constructor(options: HarnessOptions = {}) {
    this.#options = options
    this.#bin = cnmBin()
    this.fixture = new NetnsFixture('cnm')
    this.dir = mkdtempSync(join(tmpdir(), 'cnm-it-'))
    this.root = join(this.dir, 'root')
    this.execRoot = join(this.dir, 'run')
    this.socket = join(this.execRoot, 'cnm.sock')
  }

  /** Creates the host namespace and starts the daemon. */
  async start(): Promise<this> {
    this.hostNetns = await this.fixture.add('host')
    await this.startDaemon()
    return this
  }

  get env(): NodeJS.ProcessEnv {
    return { ...process.env, CNM_HOST: this.socket }
  }

  /** Starts the daemon (again) and waits until it answers /_ping. */
  async startDaemon(): Promise<void> {
    if (this.daemon !== undefined && this.daemon.exitCode === null && this.daemon.signalCode === null) {
      throw new Error('the daemon is already running')
    }
    const args = [this.#bin, 'daemon', '--root', this.root, '--exec-root', this.execRoot, '--host-netns', this.hostNetns, ...(this.#options.daemonArgs ?? [])]
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, DEBUG: process.env['CNM_IT_DEBUG'] ?? '' } })
    this.daemon = child
    child.stdout?.on('data', (d: Buffer) => (this.daemonLog += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.daemonLog += d.toString()))
    const client = new CnmClient({ host: this.socket, timeoutMs: 2000 })
    try {
      const deadline = Date.now() + 20_000
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null) throw new Error(`the daemon exited at start:\n${this.daemonLog}`)
        try {
          await client.ping()
          return
        } catch {
          if (Date.now() > deadline) throw new Error(`the daemon did not answer within 20 s:\n${this.daemonLog}`)
          await new Promise((r) => setTimeout(r, 50))
        }
      }
    } finally {
      client.close()
    }
  }

  /** Sends `signal` to the daemon's PID and waits for it to exit. */
  async stopDaemon(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const d = this.daemon
    if (d === undefined || d.exitCode !== null || d.signalCode !== null) return
    const exited = new Promise<void>((resolve) => d.once('exit', () => resolve()))
    d.kill(signal)
    await exited
  }

  /** A client on the daemon's socket (closed by cleanup). */
  client(timeoutMs = 60_000): CnmClient {
    const c = new CnmClient({ host: this.socket, timeoutMs })
    this.#clients.push(c)
    return c
  }

  /** Runs `cnm ARGS` to its end. */
  async cli(args: readonly string[], timeoutMs = 60_000): Promise<CliResult> {
    return await exec(process.execPath, [this.#bin, ...args], { env: this.env, timeoutMs })
  }

  /**
   * Starts `cnm ARGS` in the background (e.g. a `cnm run` server); resolves once a stdout line matches
   * `ready`. The process is killed (SIGTERM, by PID) at cleanup if still running.
   */
  async background(args: readonly string[], ready: RegExp): Promise<{ child: ChildProcess; output: () => string; exit: Promise<number> }> {
    const child = spawn(process.execPath, [this.#bin, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#spawned.add(child)
    let out = ''
    let err = ''
    const exit = new Promise<number>((resolve) => child.once('exit', (code, sig) => resolve(code ?? (sig === 'SIGKILL' ? 137 : 143))))
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`not ready within 20 s: ${out}\n${err}`)), 20_000)
      child.stdout?.on('data', (d: Buffer) => {
        out += d.toString()
        if (ready.test(out)) {
          clearTimeout(timer)
          resolve()
        }
      })
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()))
      void exit.then((code) => {
        clearTimeout(timer)
        reject(new Error(`exited ${code} before ready: ${out}\n${err}`))
      })
    })
    return { child, output: () => out + err, exit }
  }

  /** Runs a command inside the host namespace. */
  async inHost(cmd: string, args: readonly string[], timeoutMs = 30_000): Promise<CliResult> {
    return await exec('ip', ['netns', 'exec', this.hostNetns, cmd, ...args], { timeoutMs })
  }

  /** Runs a command inside a sandbox namespace (by its key path). */
  async inSandbox(key: string, cmd: string, args: readonly string[]): Promise<CliResult> {
    return await exec('nsenter', [`--net=${key}`, '--', cmd, ...args])
  }

  /** veth links in the host namespace. */
  async hostVeths(): Promise<string[]> {
    const { stdout } = await execFileP('ip', ['-n', this.hostNetns, '-o', 'link', 'show', 'type', 'veth'])
    return stdout
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')
  }

  /** Namespace files of the daemon's sandboxes. */
  netnsFiles(): string[] {
    const d = join(this.execRoot, 'netns')
    return existsSync(d) ? readdirSync(d).sort() : []
  }

  /** `iptables-save` of the host namespace (rules only). */
  async hostRules(): Promise<string[]> {
    const { stdout } = await execFileP('ip', ['netns', 'exec', this.hostNetns, 'iptables-save'])
    return stdout.split('\n').filter((l) => l.startsWith('-A '))
  }

  async cleanup(): Promise<void> {
    for (const c of this.#clients) c.close()
    // SIGTERM first: `cnm run` forwards it to the command, so nothing keeps running in a sandbox
    for (const c of this.#spawned) {
      if (c.exitCode !== null || c.signalCode !== null) continue
      const exited = new Promise<void>((resolve) => c.once('exit', () => resolve()))
      c.kill('SIGTERM')
      const t = setTimeout(() => c.kill('SIGKILL'), 5000)
      await exited
      clearTimeout(t)
    }
    await this.stopDaemon('SIGKILL')
    await removeExecRoot(this.execRoot).catch(() => undefined)
    await this.fixture.cleanup()
    await rm(this.dir, { recursive: true, force: true })
  }
}
