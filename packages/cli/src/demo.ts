import { execFile, type ChildProcess } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { noopLogger } from '@cnm/types'
import { CnmClient } from './client.js'
import { Daemon, removeExecRoot } from './daemon.js'
import { networksTable, sandboxesTable } from './format.js'
import { runInSandbox } from './run.js'
import type { SandboxView } from './service.js'

const execFileP = promisify(execFile)

export interface DemoOptions {
  /** Use the daemon at `host` instead of a private one. @default false */
  useDaemon?: boolean
  host?: string
  out: (s: string) => void
  err: (s: string) => void
}

// A TCP server: greets each connection with its host name, then echoes one line upper-cased.
const SERVER = `
const net = require('node:net'); const os = require('node:os')
const s = net.createServer((c) => {
  c.write('hello from ' + os.hostname() + ' (' + process.env.CNM_IPV4 + ')\\n')
  c.on('data', (d) => { c.end('echo: ' + String(d).trim().toUpperCase() + '\\n') })
  c.on('error', () => {})
})
s.listen(8080, '0.0.0.0', () => console.log('listening'))
process.on('SIGTERM', () => s.close(() => process.exit(0)))
`

// A TCP client: connects to argv[1]:argv[2], sends a line, prints what it got back.
const CLIENT = `
const net = require('node:net')
const [host, port] = process.argv.slice(1)
let got = ''
const c = net.connect(Number(port), host, () => c.write('ping from ' + process.env.CNM_SANDBOX + '\\n'))
c.on('data', (d) => { got += d })
c.on('end', () => { process.stdout.write(got); process.exit(0) })
c.on('error', (e) => { console.error(e.message); process.exit(1) })
setTimeout(() => { console.error('timeout'); process.exit(2) }, 5000).unref()
`

async function sh(cmd: string, args: string[]): Promise<string> {
  const { stdout } = await execFileP(cmd, args)
  return stdout
}

/** A TCP exchange from this process (or from inside `netns`) to host:port: what the server said. */
async function talk(host: string, port: number, netns: string | undefined): Promise<string> {
  if (netns !== undefined) {
    const { stdout } = await execFileP(
      'ip',
      ['netns', 'exec', netns, process.execPath, '-e', CLIENT, host, String(port)],
      {
        env: { ...process.env, CNM_SANDBOX: 'the host' },
      },
    )
    return stdout
  }
  return await new Promise((resolve, reject) => {
    let got = ''
    const c = connect(port, host, () => c.write('ping from the host\n'))
    c.setTimeout(5000, () => c.destroy(new Error('timeout')))
    c.on('data', (d: Buffer) => (got += d.toString()))
    c.on('end', () => resolve(got))
    c.on('error', reject)
  })
}

/**
 * `cnm demo`: a private daemon whose "host" is a namespace the demo makes (so the machine's own
 * network is never touched), one network, a server and a client in two sandboxes talking TCP, a
 * published port reached from the host, a listing of what was built, and removal of everything.
 * Resolves the exit code.
 */
export async function runDemo(opts: DemoOptions): Promise<number> {
  const say = (s: string): void => opts.out(s + '\n')
  const tag = randomBytes(3).toString('hex')
  const cleanups: Array<() => Promise<unknown>> = []
  let hostNetns: string | undefined
  let client: CnmClient
  try {
    if (opts.useDaemon === true) {
      client = new CnmClient(opts.host === undefined ? {} : { host: opts.host })
      hostNetns = (await client.version()).hostNetns ?? undefined
    } else {
      hostNetns = `cnmdemo-${tag}`
      await sh('ip', ['netns', 'add', hostNetns])
      const ns = hostNetns
      cleanups.push(() => sh('ip', ['netns', 'del', ns]))
      await sh('ip', ['-n', hostNetns, 'link', 'set', 'lo', 'up'])
      const dir = await mkdtemp(join(tmpdir(), 'cnm-demo-'))
      cleanups.push(() => removeExecRoot(join(dir, 'run')).then(() => rm(dir, { recursive: true, force: true })))
      const d = new Daemon(
        { root: join(dir, 'root'), execRoot: join(dir, 'run'), hostNetns, dnsUpstreams: [] },
        { logger: noopLogger() },
      )
      await d.start()
      cleanups.push(() => d.stop())
      client = new CnmClient({ host: d.config.socket })
      say(`daemon: private, socket ${d.config.socket}, host namespace ${hostNetns} (made by the demo)`)
    }
    const c = client
    cleanups.push(async () => c.close())

    const netName = `demo-${tag}`
    const net = await c.createNetwork({ name: netName, driver: 'bridge' })
    cleanups.push(() => c.removeNetwork(net.id))
    say(`network: ${net.name} ${net.ipam.config.map((x) => `${x.subnet} gateway ${x.gateway ?? '-'}`).join(', ')}`)

    // server: sandbox "web", port 8080 published on an ephemeral host port
    let server: ChildProcess | undefined
    let web: SandboxView | undefined
    const listening = new Promise<void>((resolve, reject) => {
      const run = runInSandbox(c, {
        network: net.id,
        name: `web-${tag}`,
        hostname: 'web',
        publish: ['0:8080/tcp'],
        command: [process.execPath, '-e', SERVER],
        stdio: ['ignore', 'pipe', 'inherit'],
        onStart: (sb, child) => {
          web = sb
          server = child
          child.stdout?.once('data', () => resolve())
        },
      })
      run.catch(reject)
      cleanups.push(async () => {
        server?.kill('SIGTERM')
        await run.catch(() => undefined)
      })
      run.then(
        () => reject(new Error('the server exited early')),
        () => undefined,
      )
    })
    await listening
    if (web === undefined) throw new Error('no server sandbox')
    const webEp = web.endpoints[0]
    const webIp = (webEp?.ipv4Address ?? '').replace(/\/\d+$/, '')
    const hostPort = webEp?.ports[0]?.hostPort ?? 0
    say(`sandbox: ${web.name} ${webIp} (${web.key}), 8080/tcp published on host port ${hostPort}`)

    // client in a second sandbox, over the bridge
    let clientOut = ''
    const r = await runInSandbox(c, {
      network: net.id,
      name: `client-${tag}`,
      command: [process.execPath, '-e', CLIENT, webIp, '8080'],
      stdio: ['ignore', 'pipe', 'inherit'],
      onStart: (sb, child) => {
        say(
          `sandbox: ${sb.name} ${(sb.endpoints[0]?.ipv4Address ?? '').replace(/\/\d+$/, '')} connects to ${webIp}:8080`,
        )
        child.stdout?.on('data', (d: Buffer) => (clientOut += d.toString()))
      },
    })
    if (r.code !== 0) throw new Error(`the client sandbox failed (exit ${r.code})`)
    say('  ' + clientOut.trim().split('\n').join('\n  '))

    // the published port, from the host (the demo's host namespace)
    const fromHost = await talk('127.0.0.1', hostPort, hostNetns)
    say(`host: 127.0.0.1:${hostPort} -> ${web.name}:8080`)
    say('  ' + fromHost.trim().split('\n').join('\n  '))

    say('\nwhat was built:')
    say(networksTable([await c.inspectNetwork(net.id)]))
    say('')
    say(sandboxesTable([await c.inspectSandbox(web.id)]))
    if (hostNetns !== undefined) {
      const rules = (await sh('ip', ['netns', 'exec', hostNetns, 'iptables-save', '-t', 'nat']))
        .split('\n')
        .filter((l) => l.includes('DNAT'))
      say(`\nhost NAT rules for the published port:\n  ${rules.join('\n  ')}`)
    }
    say('\nremoving everything ...')
    return 0
  } catch (err) {
    opts.err(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`)
    return 1
  } finally {
    for (const c of cleanups.reverse()) {
      try {
        await c()
      } catch (err) {
        opts.err(`cleanup: ${(err as Error).message}\n`)
      }
    }
    if (cleanups.length > 0) say('done: sandboxes, network, daemon and namespace removed')
  }
}
