// Per-container attach through the cnm daemon, against the Debian peers in the same run.
//
// cnm: the daemon runs as its own process (`cnm daemon --host-netns H`), and the bench is a client on
// its socket doing what `cnm run -p` asks for: one POST /sandboxes that creates the sandbox (network
// namespace, embedded DNS), the endpoint (address, veth), the join (interface moved in, gateway) and
// one published port. Timed per container, sequentially, for N = 1, 10, 100 on one network; then
// DELETE /sandboxes/:id per container. A second cnm round with no published ports counts firewall rules.
// Peers (peers.sh, the peer-bench approach): CNI bridge + host-local + portmap, and netavark, each with
// one published port per container, exec'd as their runtimes do.
// Everything runs inside namespaces the bench creates and deletes; the machine's own namespace is never
// changed. Needs root and a build (node tools/bench/run.mjs cli).
import { spawn, execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import { performance } from 'node:perf_hooks'
import { CnmClient, removeExecRoot } from '@cnm/cli'

const execFileP = promisify(execFile)
const HERE = dirname(fileURLToPath(import.meta.url))
const BIN = join(dirname(fileURLToPath(import.meta.resolve('@cnm/cli'))), 'bin.js')
const SIZES = (process.env.CNM_BENCH_SIZES ?? '1,10,100').split(',').map(Number)
const tag = `cb${randomBytes(2).toString('hex')}`
const log = (s) => process.stderr.write(s + '\n')

function stats(us) {
  const s = [...us].sort((a, b) => a - b)
  const n = s.length
  const rank = (q) => s[Math.max(0, Math.ceil(q * n) - 1)]
  const med = n % 2 === 1 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
  const r = (x) => Math.round(x / 10) / 100 // µs → ms, 2 decimals
  return { n, medianMs: r(med), p95Ms: r(rank(0.95)), minMs: r(s[0]), maxMs: r(s[n - 1]) }
}

async function sh(cmd, args) {
  return (await execFileP(cmd, args, { maxBuffer: 64 << 20 })).stdout
}

async function hostRules(ns) {
  return (await sh('ip', ['netns', 'exec', ns, 'iptables-save'])).split('\n').filter((l) => l.startsWith('-A ')).length
}

async function withHostNs(name, fn) {
  await sh('ip', ['netns', 'add', name])
  try {
    await sh('ip', ['-n', name, 'link', 'set', 'lo', 'up'])
    return await fn(name)
  } finally {
    await sh('ip', ['netns', 'del', name]).catch(() => undefined)
  }
}

async function cnmRound(n, round, ports) {
  return await withHostNs(`${tag}-h${round}`, async (hostNs) => {
    const dir = mkdtempSync(join(tmpdir(), 'cnm-bench-'))
    const execRoot = join(dir, 'run')
    const daemon = spawn(
      process.execPath,
      [BIN, 'daemon', '--root', join(dir, 'root'), '--exec-root', execRoot, '--host-netns', hostNs],
      {
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    )
    let err = ''
    daemon.stderr.on('data', (d) => (err += d))
    const client = new CnmClient({ host: join(execRoot, 'cnm.sock') })
    try {
      for (let i = 0; ; i++) {
        try {
          await client.ping()
          break
        } catch (e) {
          if (i > 400 || daemon.exitCode !== null) throw new Error(`daemon did not start: ${err}`, { cause: e })
          await new Promise((r) => setTimeout(r, 25))
        }
      }
      await client.createNetwork({ name: 'bench', ipam: { config: [{ subnet: '10.230.0.0/16' }] } })
      // warm the daemon's code paths (not counted): one attach/detach
      const w = await client.createSandbox({
        name: 'warm',
        networks: [{ network: 'bench', portBindings: ['19999:80'] }],
      })
      await client.removeSandbox(w.id)
      const rulesBefore = await hostRules(hostNs)
      const attach = []
      const ids = []
      for (let i = 0; i < n; i++) {
        const t0 = performance.now()
        const sb = await client.createSandbox({
          name: `c${i}`,
          networks: [{ network: 'bench', ...(ports && { portBindings: [`${20000 + i}:80/tcp`] }) }],
        })
        attach.push((performance.now() - t0) * 1000)
        ids.push(sb.id)
      }
      const rulesAttached = await hostRules(hostNs)
      const detach = []
      for (const id of ids) {
        const t0 = performance.now()
        await client.removeSandbox(id)
        detach.push((performance.now() - t0) * 1000)
      }
      return { attach, detach, rulesBefore, rulesAttached }
    } finally {
      client.close()
      const exited = new Promise((r) => daemon.once('exit', r))
      daemon.kill('SIGTERM')
      await exited
      await removeExecRoot(execRoot).catch(() => undefined)
      rmSync(dir, { recursive: true, force: true })
    }
  })
}

async function peerRound(tool, n, round) {
  return await withHostNs(`${tag}-p${round}`, async (hostNs) => {
    const out = await sh('ip', [
      'netns',
      'exec',
      hostNs,
      'bash',
      join(HERE, 'peers.sh'),
      tool,
      `${tag}p${round}`,
      String(n),
    ])
    const attach = []
    const detach = []
    let rulesBefore = 0
    let rulesAttached = 0
    for (const line of out.split('\n')) {
      const f = line.split(' ')
      if (f[0] === 'SAMPLE') (f[1] === 'attach' ? attach : detach).push(Number(f[2]))
      if (f[0] === 'STATE' && f[1] === 'before') rulesBefore = Number(f[2])
      if (f[0] === 'STATE' && f[1] === 'attached') rulesAttached = Number(f[2])
    }
    if (attach.length !== n) throw new Error(`${tool}: ${attach.length} samples for N=${n}:\n${out}`)
    return { attach, detach, rulesBefore, rulesAttached }
  })
}

const results = { cnm: {}, cni: {}, netavark: {} }
let round = 0
for (const n of SIZES) {
  for (const tool of ['cnm', 'cni', 'netavark']) {
    const r = tool === 'cnm' ? await cnmRound(n, round++, true) : await peerRound(tool, n, round++)
    const a = stats(r.attach)
    results[tool][n] = {
      attach: a,
      detach: stats(r.detach),
      firewallRulesPerContainer: Math.round(((r.rulesAttached - r.rulesBefore) / n) * 100) / 100,
    }
    log(
      `${tool} N=${n}: attach median ${a.medianMs} ms p95 ${a.p95Ms} ms, detach median ${results[tool][n].detach.medianMs} ms, rules/container ${results[tool][n].firewallRulesPerContainer}`,
    )
  }
}
const noPorts = await cnmRound(10, round++, false)
const byN = (f) => Object.fromEntries(SIZES.map((n) => [String(n), f(n)]))
const r2 = (x) => Math.round(x * 100) / 100
const fastestPeer = (n, k) => Math.min(results.cni[n].attach[k], results.netavark[n].attach[k])
console.log(
  JSON.stringify({
    summary: {
      cnmAttachMedianMs: byN((n) => results.cnm[n].attach.medianMs),
      cnmAttachP95Ms: byN((n) => results.cnm[n].attach.p95Ms),
      cniAttachMedianMs: byN((n) => results.cni[n].attach.medianMs),
      cniAttachP95Ms: byN((n) => results.cni[n].attach.p95Ms),
      netavarkAttachMedianMs: byN((n) => results.netavark[n].attach.medianMs),
      netavarkAttachP95Ms: byN((n) => results.netavark[n].attach.p95Ms),
      medianRatioToFastestPeer: byN((n) => r2(results.cnm[n].attach.medianMs / fastestPeer(n, 'medianMs'))),
      p95RatioToFastestPeer: byN((n) => r2(results.cnm[n].attach.p95Ms / fastestPeer(n, 'p95Ms'))),
      cnmFirewallRulesPerContainer: {
        withOnePort: results.cnm[SIZES.at(-1)].firewallRulesPerContainer,
        withoutPorts: r2((noPorts.rulesAttached - noPorts.rulesBefore) / 10),
      },
    },
    what: 'per-container attach, sequential, one network, one published TCP port each: cnm = one POST /sandboxes to the daemon (netns + embedded DNS + endpoint + join + port) from a client process; cni = bridge+host-local+portmap exec; netavark = setup exec; all inside bench-made host namespaces',
    results,
    cnmWithoutPorts: {
      attach: stats(noPorts.attach),
      rulesPerContainer: r2((noPorts.rulesAttached - noPorts.rulesBefore) / 10),
    },
  }),
)
