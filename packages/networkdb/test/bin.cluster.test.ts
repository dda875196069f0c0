// The built cnm-gossip executable (dist/bin.js): flag errors, two processes forming a cluster, data
// written over HTTP on one and read on the other, graceful SIGTERM seen as a LEFT node on the survivor.
// Build first (with its dependencies): npx -y pnpm@10.34.9 --filter '@cnm/networkdb...' build
import { afterEach, describe, expect, it } from 'vitest'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { rows, until, type Envelope } from './diagnostic-replies.js'

const BIN = fileURLToPath(new URL('../dist/bin.js', import.meta.url))
const BUILD_HINT = `${BIN} is missing: build it first with \`npx -y pnpm@10.34.9 --filter '@cnm/networkdb...' build\``

interface Proc {
  readonly child: ChildProcess
  readonly pid: number
  stdout: string
  stderr: string
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
}

const started: Proc[] = []

afterEach(async () => {
  // Only the processes this file started, by their PID.
  for (const p of started.splice(0)) {
    if (p.child.exitCode === null && p.child.signalCode === null) {
      process.kill(p.pid, 'SIGKILL')
      await p.exited
    }
  }
})

function requireBin(): void {
  if (!existsSync(BIN)) throw new Error(BUILD_HINT)
}

function startBin(args: string[]): Proc {
  requireBin()
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
  if (child.pid === undefined) throw new Error('spawn failed')
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  )
  const p: Proc = { child, pid: child.pid, stdout: '', stderr: '', exited }
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (p.stdout += s))
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (p.stderr += s))
  started.push(p)
  return p
}

interface Ready {
  name: string
  gossip: string
  diagnostic: string
}

async function ready(p: Proc, timeoutMs = 20_000): Promise<Ready> {
  const end = Date.now() + timeoutMs
  while (!p.stdout.includes('\n')) {
    if (p.child.exitCode !== null) throw new Error(`cnm-gossip exited ${p.child.exitCode} before ready:\n${p.stderr}`)
    if (Date.now() > end) throw new Error(`cnm-gossip not ready after ${timeoutMs} ms:\n${p.stderr}`)
    await new Promise((r) => setTimeout(r, 50))
  }
  return JSON.parse(p.stdout.slice(0, p.stdout.indexOf('\n'))) as Ready
}

async function http(base: string, path: string): Promise<string> {
  return (await fetch(`${base}${path}`)).text()
}

async function json(base: string, path: string): Promise<Envelope> {
  return JSON.parse(await http(base, path)) as Envelope
}

describe('cnm-gossip executable', () => {
  it('exits 2 with a clear message on bad flags or keys; --help exits 0', async () => {
    const cases: [string[], RegExp][] = [
      [['--bind', '127.0.0.1:0'], /--name is required/],
      [['--name', 'a', '--bind', 'nowhere'], /not an IP address/],
      [['--name', 'a', '--bind', '127.0.0.1:0', '--keys', 'AAAA'], /key 1 is 3 bytes/],
      [['--name', 'a', '--bind', '127.0.0.1:0', '--keys', '!!'], /not valid base64/],
      [['--name', 'a', '--bind', '127.0.0.1:0', '--frobnicate'], /Unknown option/],
      [['--name', 'a', '--bind', '127.0.0.1:0', '--diag-port', '99999'], /--diag-port/],
    ]
    for (const [args, message] of cases) {
      const p = startBin(args)
      const { code } = await p.exited
      expect(code, args.join(' ')).toBe(2)
      expect(p.stderr).toMatch(message)
      expect(p.stderr).toContain('Usage: cnm-gossip')
      expect(p.stdout).toBe('')
    }
    const help = startBin(['--help'])
    expect((await help.exited).code).toBe(0)
    expect(help.stdout).toContain('--diag-port')
  })

  it('a failed --join is logged and the node still comes up (background retry, as Docker)', async () => {
    const p = startBin(['--name', 'lonely', '--bind', '127.0.0.1:0', '--join', '127.0.0.1:1', '--networks', 'n1,n2'])
    const r = await ready(p)
    expect(r.name).toBe('lonely')
    expect(p.stderr).toMatch(/join 127\.0\.0\.1:1 failed/)
    expect(await http(r.diagnostic, '/networkstats?nid=n2')).toBe('OK\nentries: 0, qlen: 0\n')
    process.kill(p.pid, 'SIGTERM')
    expect((await p.exited).code, p.stderr).toBe(0)
  })

  it('two processes: join, create on one, read on the other, SIGTERM shows LEFT on the survivor', async () => {
    const key = Buffer.alloc(16, 0x5a).toString('base64')
    const a = startBin(['--name', 'gossip-a', '--bind', '127.0.0.1:0', '--keys', key, '--networks', 'net1'])
    const ra = await ready(a)
    expect(ra.name).toBe('gossip-a')
    expect(ra.gossip).toMatch(/^127\.0\.0\.1:\d+$/)
    expect(ra.diagnostic).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect((await http(ra.diagnostic, '/ready')).startsWith('OK')).toBe(true)

    const b = startBin([
      '--name',
      'gossip-b',
      '--bind',
      '127.0.0.1:0',
      '--join',
      ra.gossip,
      '--keys',
      key,
      '--networks',
      'net1',
    ])
    const rb = await ready(b)
    expect(rb.name).toBe('gossip-b')

    for (const base of [ra.diagnostic, rb.diagnostic]) {
      await until('both members', async () =>
        (await json(base, '/clusterpeers?json')).details.size === 2 ? true : undefined,
      )
      await until('both in net1', async () =>
        (await json(base, '/networkpeers?nid=net1&json')).details.size === 2 ? true : undefined,
      )
    }

    const value = encodeURIComponent(Buffer.from('from-a').toString('base64'))
    expect(await http(ra.diagnostic, `/createentry?tname=svc&nid=net1&key=k1&value=${value}`)).toBe('OK')
    const entry = await until('k1 on b', async () => {
      const j = await json(rb.diagnostic, '/getentry?tname=svc&nid=net1&key=k1&unsafe&json')
      return j.message === 'OK' ? j.details : undefined
    })
    expect(entry).toEqual({ key: 'k1', value: 'from-a', owner: 'gossip-a' })
    expect(await http(rb.diagnostic, `/createentry?tname=svc&nid=net1&key=k2&unsafe&value=from-b`)).toBe('OK')
    await until('k2 on a', async () =>
      (await json(ra.diagnostic, '/gettable?tname=svc&nid=net1&json')).details.size === 2 ? true : undefined,
    )

    // graceful stop of b: exit 0, and a records it as left (not failed) and drops its entries
    process.kill(b.pid, 'SIGTERM')
    const exit = await b.exited
    expect(exit.code, b.stderr).toBe(0)
    expect(b.stderr).toMatch(/SIGTERM: leaving the cluster/)
    const stats = await until('b left on a', async () => {
      const s = await json(ra.diagnostic, '/stats?json')
      return s.details.nodes.left === 1 && s.details.nodes.active === 1 ? s.details : undefined
    })
    expect(stats.nodes.failed).toBe(0)
    expect(rows((await json(ra.diagnostic, '/clusterpeers?json')).details).map((e) => e.name)).toEqual(['gossip-a'])
    await until('b gone from net1 and its entry dropped', async () => {
      const peers = await json(ra.diagnostic, '/networkpeers?nid=net1&json')
      const table = await json(ra.diagnostic, '/gettable?tname=svc&nid=net1&json')
      return peers.details.size === 1 && table.details.size === 1 && rows(table.details)[0]?.key === 'k1'
        ? true
        : undefined
    })

    process.kill(a.pid, 'SIGINT')
    expect((await a.exited).code, a.stderr).toBe(0)
  })
})
