// Memory per sandbox inside the cnm daemon, with the embedded DNS resolvers of every sandbox in the
// daemon's one process.
//
// The daemon runs as its own process (`node --expose-gc cnm daemon --host-netns H`) and reports its
// memory on GET /info?gc=1 (after a full garbage collection). For each mode, sandboxes are created
// one after another on one user network (each: namespace, endpoint, join, hosts/resolv.conf, and in
// the `dns` mode its resolver at 127.0.0.11 with UDP+TCP listeners and NAT rules). The daemon's heap
// and RSS are read at N1 (100) and N (300) sandboxes; the per-sandbox figures are the slope between
// the two. Heap snapshots of the daemon at the same two points give the objects' share (heap without
// compiled code, which V8 makes once per function and which makes heapUsed noisy). Then (dns mode) every sandbox's resolver answers one query from inside its namespace,
// then everything is removed and memory read again. The `nodns` mode (`--no-dns`) gives
// the cost of a sandbox without a resolver, so the difference is the resolver's share.
// Everything runs inside namespaces the bench creates and deletes. Needs root and a build
// (node tools/bench/run.mjs cli/bench/dns-memory).
import { spawn, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { CnmClient, removeExecRoot } from '@cnm/cli'

const execFileP = promisify(execFile)
const BIN = join(dirname(fileURLToPath(import.meta.resolve('@cnm/cli'))), 'bin.js')
// memory is read at N1 and at N2 sandboxes: the slope between them is the cost of one more sandbox,
// without the one-time costs (code compiled on first use, pools, caches) the first ones pay
const N1 = Number(process.env.CNM_BENCH_FIRST ?? 100)
const N = Number(process.env.CNM_BENCH_SANDBOXES ?? 300)
const tag = `cm${randomBytes(2).toString('hex')}`
const log = (s) => process.stderr.write(s + '\n')
const sh = async (cmd, args) => (await execFileP(cmd, args, { maxBuffer: 64 << 20 })).stdout

/**
 * A heap snapshot of the daemon (it runs with --heapsnapshot-signal=SIGUSR2 in `cwd`; the snapshot
 * starts with a full GC). Returns the self sizes summed: all, and without compiled code (bytecode,
 * machine code, feedback vectors: what V8 makes once per function, not per sandbox).
 */
async function snapshot(daemon, cwd) {
  const before = new Set(readdirSync(cwd))
  daemon.kill('SIGUSR2')
  let file
  for (let i = 0; i < 600; i++) {
    await new Promise((r) => setTimeout(r, 100))
    file ??= readdirSync(cwd).find((f) => f.endsWith('.heapsnapshot') && !before.has(f))
    if (file === undefined) continue
    const size = statSync(join(cwd, file)).size
    await new Promise((r) => setTimeout(r, 300))
    if (size > 0 && statSync(join(cwd, file)).size === size) {
      try {
        const snap = JSON.parse(readFileSync(join(cwd, file), 'utf8'))
        rmSync(join(cwd, file))
        const { node_fields: nf, node_types: nt } = snap.snapshot.meta
        const typeAt = nf.indexOf('type')
        const sizeAt = nf.indexOf('self_size')
        let all = 0
        let code = 0
        for (let j = 0; j < snap.nodes.length; j += nf.length) {
          const sz = snap.nodes[j + sizeAt]
          all += sz
          if (nt[0][snap.nodes[j + typeAt]] === 'code') code += sz
        }
        return { heapBytes: all, nonCodeHeapBytes: all - code }
      } catch {
        // still being written
      }
    }
  }
  throw new Error('no heap snapshot from the daemon')
}

async function round(mode) {
  const hostNs = `${tag}-${mode}`
  await sh('ip', ['netns', 'add', hostNs])
  const dir = mkdtempSync(join(tmpdir(), 'cnm-bench-'))
  const execRoot = join(dir, 'run')
  const args = [
    '--expose-gc',
    '--heapsnapshot-signal=SIGUSR2',
    BIN,
    'daemon',
    '--root',
    join(dir, 'root'),
    '--exec-root',
    execRoot,
    '--host-netns',
    hostNs,
  ]
  if (mode === 'nodns') args.push('--no-dns')
  const daemon = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], cwd: dir })
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
      if (mode === 'dns')
        await sh('nsenter', [`--net=${w.key}`, 'dig', '+short', '+time=2', '+tries=1', '@127.0.0.11', `warm${i}`])
      await client.removeSandbox(w.id)
    }
    const base = await client.info({ gc: true })
    // (answers: each of the first N1 sandboxes asks its resolver for a peer's name once)
    if (!base.gcCollected) throw new Error('the daemon did not collect garbage (--expose-gc missing?)')
    const sbs = []
    for (let i = 0; i < N1; i++) sbs.push(await client.createSandbox({ name: `s${i}`, networks: [{ network: 'mem' }] }))
    const first = await client.info({ gc: true })
    const t0 = performance.now()
    for (let i = N1; i < N; i++) sbs.push(await client.createSandbox({ name: `s${i}`, networks: [{ network: 'mem' }] }))
    const createMs = performance.now() - t0
    const idle = await client.info({ gc: true })
    // snapshots only now: writing one grows the daemon's RSS, which the figures above must not see
    const snapIdle = await snapshot(daemon, dir)
    for (const s of sbs.splice(N1)) await client.removeSandbox(s.id)
    const snapBack = await snapshot(daemon, dir)
    let answered = snapBack
    let answers = 0
    if (mode === 'dns') {
      for (const [i, s] of sbs.entries()) {
        const out = await sh('nsenter', [
          `--net=${s.key}`,
          'dig',
          '+short',
          '+time=2',
          '+tries=1',
          '@127.0.0.11',
          `s${(i + 1) % N1}`,
        ])
        if (out.trim() !== '') answers++
      }
      answered = await snapshot(daemon, dir)
    }
    for (const s of sbs) await client.removeSandbox(s.id)
    const after = await client.info({ gc: true })
    const per = (a, b, k, n) => Math.round((a.memory[k] - b.memory[k]) / n)
    return {
      mode,
      sandboxes: N,
      resolvers: idle.dns.resolvers,
      answers,
      createMsPerSandbox: Math.round((createMs / (N - N1)) * 10) / 10,
      heapPerSandboxBytes: per(idle, first, 'heapUsedBytes', N - N1),
      snapshotHeapPerSandboxBytes: Math.round((snapIdle.heapBytes - snapBack.heapBytes) / (N - N1)),
      snapshotNonCodeHeapPerSandboxBytes: Math.round(
        (snapIdle.nonCodeHeapBytes - snapBack.nonCodeHeapBytes) / (N - N1),
      ),
      snapshotAnsweringPerSandboxBytes: Math.round((answered.nonCodeHeapBytes - snapBack.nonCodeHeapBytes) / N1),
      rssPerSandboxBytes: per(idle, first, 'rssBytes', N - N1),
      externalPerSandboxBytes: per(idle, first, 'externalBytes', N - N1),
      heapPerSandboxFirstBytes: per(first, base, 'heapUsedBytes', N1),
      heapLeftAfterRemovalBytes: after.memory.heapUsedBytes - base.memory.heapUsedBytes,
      base: base.memory,
      first: first.memory,
      idle: idle.memory,
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
      objectHeapPerSandboxBytes: dns.snapshotNonCodeHeapPerSandboxBytes,
      objectHeapPerSandboxNoDnsBytes: nodns.snapshotNonCodeHeapPerSandboxBytes,
      resolverObjectHeapPerSandboxBytes:
        dns.snapshotNonCodeHeapPerSandboxBytes - nodns.snapshotNonCodeHeapPerSandboxBytes,
      heapPerSandboxBytes: dns.heapPerSandboxBytes,
      answeringObjectHeapPerSandboxBytes: dns.snapshotAnsweringPerSandboxBytes,
      rssPerSandboxBytes: dns.rssPerSandboxBytes,
      resolverHeapPerSandboxBytes: dns.heapPerSandboxBytes - nodns.heapPerSandboxBytes,
      resolverRssPerSandboxBytes: dns.rssPerSandboxBytes - nodns.rssPerSandboxBytes,
      heapPerSandboxNoDnsBytes: nodns.heapPerSandboxBytes,
      rssPerSandboxNoDnsBytes: nodns.rssPerSandboxBytes,
      heapLeftAfterRemovalBytes: dns.heapLeftAfterRemovalBytes,
    },
    dns,
    nodns,
  }),
)
