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
export async function exec(
  cmd: string,
  args: readonly string[],
  options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<CliResult> {
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

/**
 * A tiny authoritative DNS server for `node -e` (UDP, port 53): argv[1] is JSON `{ name: ipv4 }`.
 * Known names get their A record (other types: NOERROR, no answer); unknown names get an
 * authoritative NXDOMAIN. Every query is logged as `query <name> <type> <source address>`.
 */
export const UPSTREAM_DNS = `
const dgram = require('node:dgram')
const names = JSON.parse(process.argv[1] || '{}')
const net = require('node:net')
const s = dgram.createSocket('udp4')
function answer(m, from) {
  if (m.length < 12) return undefined
  let o = 12
  const labels = []
  while (o < m.length && m[o] !== 0) { const l = m[o]; labels.push(m.subarray(o + 1, o + 1 + l).toString()); o += l + 1 }
  const qEnd = o + 5
  if (qEnd > m.length) return undefined
  const name = labels.join('.').toLowerCase()
  const qtype = m.readUInt16BE(o + 1)
  console.log('query ' + name + ' ' + qtype + ' ' + from)
  const ip = names[name]
  const hdr = Buffer.alloc(12)
  m.copy(hdr, 0, 0, 2)
  hdr[2] = 0x84 | (m[2] & 1)
  hdr[3] = 0x80 | (ip === undefined ? 3 : 0)
  hdr.writeUInt16BE(1, 4)
  const answer = ip !== undefined && qtype === 1
  hdr.writeUInt16BE(answer ? 1 : 0, 6)
  const parts = [hdr, m.subarray(12, qEnd)]
  if (answer) {
    const a = Buffer.alloc(16)
    a.writeUInt16BE(0xc00c, 0); a.writeUInt16BE(1, 2); a.writeUInt16BE(1, 4); a.writeUInt32BE(60, 6); a.writeUInt16BE(4, 10)
    ip.split('.').forEach((x, i) => { a[12 + i] = Number(x) })
    parts.push(a)
  }
  return Buffer.concat(parts)
}
s.on('message', (m, r) => {
  const reply = answer(m, r.address)
  if (reply !== undefined) s.send(reply, r.port, r.address)
})
// TCP too, as real upstreams serve it: one length-prefixed query per frame
const t = net.createServer((c) => {
  let buf = Buffer.alloc(0)
  c.on('error', () => {})
  c.on('data', (d) => {
    buf = Buffer.concat([buf, d])
    while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
      const m = buf.subarray(2, 2 + buf.readUInt16BE(0))
      buf = buf.subarray(2 + m.length)
      const reply = answer(m, c.remoteAddress.replace(/^::ffff:/, '') + ' tcp')
      if (reply === undefined) continue
      const len = Buffer.alloc(2)
      len.writeUInt16BE(reply.length)
      c.write(Buffer.concat([len, reply]))
    }
  })
})
let ready = 0
const up = () => { if (++ready === 2) console.log('listening') }
s.bind(53, '0.0.0.0', up)
t.listen(53, '0.0.0.0', up)
process.on('SIGTERM', () => process.exit(0))
`

/** What `dig` printed, taken apart. */
export interface DigResult {
  code: number
  /** `NOERROR`, `NXDOMAIN`, `SERVFAIL` … (empty when no reply arrived). */
  status: string
  /** Header flags (`qr`, `aa`, `rd`, `ra`, `tc` …). */
  flags: string[]
  /** ANSWER section lines as `[owner, type, data]`. */
  answers: Array<[string, string, string]>
  additional: Array<[string, string, string]>
  queryTimeMs: number
  output: string
}

export function parseDig(r: CliResult): DigResult {
  const out = r.stdout
  const status = /status: ([A-Z]+)/.exec(out)?.[1] ?? ''
  const flags = (/;; flags: ([a-z ]+);/.exec(out)?.[1] ?? '')
    .trim()
    .split(/\s+/)
    .filter((f) => f !== '')
  const section = (name: string): Array<[string, string, string]> => {
    const m = new RegExp(`;; ${name} SECTION:\\n([\\s\\S]*?)(?:\\n\\n|$)`).exec(out)
    if (m === null) return []
    return (m[1] ?? '')
      .split('\n')
      .filter((l) => l.trim() !== '' && !l.startsWith(';'))
      .map((l) => {
        const f = l.split(/\s+/)
        return [f[0] ?? '', f[3] ?? '', f.slice(4).join(' ')] as [string, string, string]
      })
  }
  const t = /Query time: (\d+) msec/.exec(out)
  return {
    code: r.code,
    status,
    flags,
    answers: section('ANSWER'),
    additional: section('ADDITIONAL'),
    queryTimeMs: t === null ? -1 : Number(t[1]),
    output: out + r.stderr,
  }
}

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
    const args = [
      this.#bin,
      'daemon',
      '--root',
      this.root,
      '--exec-root',
      this.execRoot,
      '--host-netns',
      this.hostNetns,
      ...(this.#options.daemonArgs ?? []),
    ]
    const child = spawn(process.execPath, args, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, DEBUG: process.env['CNM_IT_DEBUG'] ?? '' },
    })
    this.daemon = child
    child.stdout?.on('data', (d: Buffer) => (this.daemonLog += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (this.daemonLog += d.toString()))
    const client = new CnmClient({ host: this.socket, timeoutMs: 2000 })
    try {
      const deadline = Date.now() + 20_000
      for (;;) {
        if (child.exitCode !== null || child.signalCode !== null)
          throw new Error(`the daemon exited at start:\n${this.daemonLog}`)
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
  async background(
    args: readonly string[],
    ready: RegExp,
  ): Promise<{ child: ChildProcess; output: () => string; exit: Promise<number> }> {
    const child = spawn(process.execPath, [this.#bin, ...args], { env: this.env, stdio: ['ignore', 'pipe', 'pipe'] })
    this.#spawned.add(child)
    let out = ''
    let err = ''
    const exit = new Promise<number>((resolve) =>
      child.once('exit', (code, sig) => resolve(code ?? (sig === 'SIGKILL' ? 137 : 143))),
    )
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

  /** `dig @127.0.0.11 ARGS` inside a sandbox namespace (by its key path), one try of 2 s. */
  async dig(key: string, args: readonly string[]): Promise<DigResult> {
    return parseDig(await exec('nsenter', [`--net=${key}`, '--', 'dig', '@127.0.0.11', '+time=2', '+tries=1', ...args]))
  }

  /**
   * A test upstream DNS server in its own namespace, reached from the host namespace over a veth pair
   * (`hostIp` on the host side, `upstreamIp` in the server's namespace, /24): the sandboxes' forwarded
   * queries travel sandbox → bridge → host namespace → upstream. Stopped (by PID) at cleanup.
   */
  async upstreamDns(
    names: Record<string, string>,
    opts: { hostIp?: string; upstreamIp?: string } = {},
  ): Promise<{ netns: string; queries: () => string[] }> {
    const hostIp = opts.hostIp ?? '10.99.0.1'
    const upIp = opts.upstreamIp ?? '10.99.0.2'
    const ns = await this.fixture.add('up')
    const tag = Math.random().toString(16).slice(2, 8)
    const ipIn = async (n: string, args: string[]): Promise<void> => {
      await execFileP('ip', ['-n', n, ...args])
    }
    await ipIn(this.hostNetns, ['link', 'add', `up${tag}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
    await ipIn(this.hostNetns, ['addr', 'add', `${hostIp}/24`, 'dev', `up${tag}`])
    await ipIn(this.hostNetns, ['link', 'set', `up${tag}`, 'up'])
    await ipIn(ns, ['addr', 'add', `${upIp}/24`, 'dev', 'eth0'])
    await ipIn(ns, ['link', 'set', 'eth0', 'up'])
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', UPSTREAM_DNS, JSON.stringify(names)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.#spawned.add(child)
    let out = ''
    child.stdout?.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr?.on('data', (d: Buffer) => (out += d.toString()))
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`upstream DNS not ready: ${out}`)), 10_000)
      const check = (): void => {
        if (out.includes('listening')) {
          clearTimeout(t)
          resolve()
        }
      }
      child.stdout?.on('data', check)
      child.once('exit', (code) => {
        clearTimeout(t)
        reject(new Error(`upstream DNS exited ${code}: ${out}`))
      })
    })
    return { netns: ns, queries: () => out.split('\n').filter((l) => l.startsWith('query ')) }
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
