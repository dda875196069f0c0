// Memory per sandbox inside the cnm daemon, with the embedded DNS resolvers of every sandbox in the
// daemon's one process.
//
// The daemon runs as its own process (`node --expose-gc cnm daemon --host-netns H`) and reports its
// memory on GET /info?gc=1 (after a full garbage collection). For each mode, N sandboxes are created
// one after another on one user network (each: namespace, endpoint, join, hosts/resolv.conf, and in
// the `dns` mode its resolver at 127.0.0.11 with UDP+TCP listeners and NAT rules), the daemon's heap
// and RSS are read, then (dns mode) every sandbox's resolver answers one query from inside its
// namespace, then everything is removed and memory read again. The `nodns` mode (`--no-dns`) gives
// the cost of a sandbox without a resolver, so the difference is the resolver's share.
// Everything runs inside namespaces the bench creates and deletes. Needs root and a build
// (node tools/bench/run.mjs cli/bench/dns-memory).
import { spawn, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { CnmClient, removeExecRoot } from '@cnm/cli'

const execFileP = promisify(execFile)
const BIN = join(dirname(fileURLToPath(import.meta.resolve('@cnm/cli'))), 'bin.js')
const N = Number(process.env.CNM_BENCH_SANDBOXES ?? 200)
const tag = `cm${randomBytes(2).toString('hex')}`
const log = (s) => process.stderr.write(s + '\n')
const sh = async (cmd, args) => (await execFileP(cmd, args, { maxBuffer: 64 << 20 })).stdout

async function round(mode) {
  const hostNs = `${tag}-${mode}`
  await sh('ip', ['netns', 'add', hostNs])
  const dir = mkdtempSync(join(tmpdir(), 'cnm-bench-'))
  const execRoot = join(dir, 'run')
  const args = ['--expose-gc', BIN, 'daemon', '--root', join(dir, 'root'), '--exec-root', execRoot, '--host-netns', hostNs]
  if (mode === 'nodns') args.push('--no-dns')
  const daemon = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] })
  let err = ''
  daemon.stderr.on('data', (d) => (err += d))
  const client = new CnmClient({ host: join(execRoot, 'cnm.sock'), timeoutMs: 120_000 })
  try {
    await sh('ip', ['-n', hostNs, 'link', 'set', 'lo', 'up'])
    for (let i = 0; ; i++) {
      try {
        await client.ping()
        break
      } catch (e) {
        if (i > 400 || daemon.exitCode !== null) throw new Error(`daemon did not start: ${err}`, { cause: e })
        await new Promise((r) => setTimeout(r, 25))
      }
    }
    await client.createNetwork({ name: 'mem', ipam: { config: [{ subnet: '10.231.0.0/16' }] } })
    // warm the daemon's code paths and pools (not counted)
    for (let i = 0; i < 5; i++) {
      const w = await client.createSandbox({ name: `warm${i}`, networks: [{ network: 'mem' }] })
      if (mode === 'dns') await sh('nsenter', [`--net=${w.key}`, 'dig', '+short', '+time=2', '+tries=1', '@127.0.0.11', `warm${i}`])
      await client.removeSandbox(w.id)
    }
    const base = await client.info({ gc: true })
    if (!base.gcCollected) throw new Error('the daemon did not collect garbage (--expose-gc missing?)')
    const t0 = performance.now()
    const sbs = []
    for (let i = 0; i < N; i++) sbs.push(await client.createSandbox({ name: `s${i}`, networks: [{ network: 'mem' }] }))
    const createMs = performance.now() - t0
    const idle = await client.info({ gc: true })
    let answered = idle
    let answers = 0
    if (mode === 'dns') {
      for (const [i, s] of sbs.entries()) {
        const out = await sh('nsenter', [`--net=${s.key}`, 'dig', '+short', '+time=2', '+tries=1', '@127.0.0.11', `s${(i + 1) % N}`])
        if (out.trim() !== '') answers++
      }
      answered = await client.info({ gc: true })
    }
    for (const s of sbs) await client.removeSandbox(s.id)
    const after = await client.info({ gc: true })
    const per = (a, b, k) => Math.round((a.memory[k] - b.memory[k]) / N)
    return {
      mode,
      sandboxes: N,
      resolvers: idle.dns.resolvers,
      answers,
      createMsPerSandbox: Math.round((createMs / N) * 10) / 10,
      heapPerSandboxBytes: per(idle, base, 'heapUsedBytes'),
      heapPerSandboxAnsweredBytes: per(answered, base, 'heapUsedBytes'),
      rssPerSandboxBytes: per(idle, base, 'rssBytes'),
      externalPerSandboxBytes: per(idle, base, 'externalBytes'),
      heapLeftAfterRemovalBytes: after.memory.heapUsedBytes - base.memory.heapUsedBytes,
      base: base.memory,
      idle: idle.memory,
      answered: answered.memory,
      after: after.memory,
    }
  } finally {
    client.close()
    if (daemon.exitCode === null) {
      const exited = new Promise((r) => daemon.once('exit', r))
      daemon.kill('SIGTERM')
      await exited
    }
    await removeExecRoot(execRoot).catch(() => undefined)
    rmSync(dir, { recursive: true, force: true })
    await sh('ip', ['netns', 'del', hostNs]).catch(() => undefined)
  }
}

const dns = await round('dns')
log(`dns: ${JSON.stringify(dns)}`)
const nodns = await round('nodns')
log(`nodns: ${JSON.stringify(nodns)}`)
console.log(
  JSON.stringify({
    summary: {
      sandboxes: N,
      heapPerSandboxBytes: dns.heapPerSandboxBytes,
      heapPerSandboxAnsweredBytes: dns.heapPerSandboxAnsweredBytes,
      rssPerSandboxBytes: dns.rssPerSandboxBytes,
      resolverHeapPerSandboxBytes: dns.heapPerSandboxBytes - nodns.heapPerSandboxBytes,
      resolverRssPerSandboxBytes: dns.rssPerSandboxBytes - nodns.rssPerSandboxBytes,
      heapPerSandboxNoDnsBytes: nodns.heapPerSandboxBytes,
      heapLeftAfterRemovalBytes: dns.heapLeftAfterRemovalBytes,
    },
    dns,
    nodns,
  }),
)
