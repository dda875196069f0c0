#!/usr/bin/env node
// dns.bench.mjs — query throughput and latency of the cnm embedded resolver vs aardvark-dns (podman's
// per-network DNS server), both loaded by dnsperf from a "container" namespace, in the same run.
//
// Topology (namespaces created here; nothing in the root namespace changes):
//   <p>-h : bridge br0 10.238.N.1/24 = the "host" of the network.
//           aardvark-dns on 10.238.N.1:53 (records: client + web1..webR), forwarding to a stub upstream
//           on 127.0.0.1:53 (the shared peer-bench dns-stub-upstream.js, as in dns-qps.sh);
//           a second stub on 10.238.N.1:5300 (upstream of the cnm resolver in the sandbox).
//           cnm "veth" resolver: sockets in <p>-h on 10.238.N.1:5301, forwarding to 127.0.0.1:53 there:
//           exactly aardvark's path.
//           cnm "vethNative": the same with the native fast path, on 10.238.N.1:5302.
//   <p>-c : eth0 10.238.N.2/24 = the container; dnsperf runs here.
//           cnm "sandbox" resolver (node:dgram): the real placement, 127.0.0.11:53 DNAT'ed to its ports
//           inside <p>-c, forwarding from inside <p>-c to the stub on 10.238.N.1:5300.
//   <p>-n : eth0 10.238.N.3/24 = a second container, same placement with the native fast path (osl's
//           DnsResponderEngine: one worker thread answers cached local names with recvmmsg/sendmmsg).
//   <p>-r : eth0 10.238.N.4/24 = a third container, the same with the fast path's worker thread at
//           real-time priority (SCHED_FIFO RT_PRIO), for the latency test on a loaded host.
// All resolvers run in this process (JS on one thread, plus the fast path's worker thread); aardvark-dns
// and the stubs are separate processes. Server CPU = this process's CPU (all threads) for cnm.
//
// Query sets (as dns-qps.sh): local = web<i> A (container names), forward = h<i>.fwd.test A (forwarded).
// Per set and server, per round: `sat` (CLIENTS clients, OUTSTANDING in flight, DUR s: QPS, server CPU
// per query) and `rate` (-Q RATE with per-query output: p50/p95/p99). Servers are interleaved and their
// order alternates across ROUNDS rounds; figures are medians over rounds (the VM is shared and noisy), and
// every run records the load average when it started. Ratios are taken per round (same conditions), then
// the median of the ratios.
//
// Env: DUR=5 ROUNDS=3 RATE=1000 CLIENTS=4 OUTSTANDING=100 RECORDS=20 AARDVARK=/usr/lib/podman/aardvark-dns
//      DNS_STUB=<path to dns-stub-upstream.js>  SETS=local,forward
//      SERVERS=aardvark,cnm,cnmNative,cnmNativeRt,cnmVeth,cnmVethNative (subsets for debugging; the summary
//      needs all)  PERF_THREADS=2 (dnsperf -T of the saturation run: with one thread dnsperf, not the fast path,
//      is the limit; the latency run uses one thread)
//      RT_PRIO=50 (SCHED_FIFO priority of cnmNativeRt's worker)
//      RATE_CLIENT_RT=10: the 1,000 QPS latency test runs dnsperf under `chrt -f 10` (it uses ~3% CPU there), so
//      the client's own wake-ups on a loaded host do not count as server latency; the same for every server.
//      0 = normal scheduling.
// Prints one JSON object as its last stdout line. Needs root, dnsperf, aardvark-dns, iproute2, iptables.
import { spawn, spawnSync, execFileSync } from 'node:child_process'
import { randomInt } from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { iptables } from '@cnm/iptables'
import { DnsResponderEngine, connectSocketInNetns, openSocketInNetns } from '@cnm/osl'
import { NetworkRecords, Resolver, SandboxRecords, netnsSocketFactory, startSandboxResolver } from '@cnm/resolver'

const env = (k, d) => Number(process.env[k] ?? d)
const DUR = env('DUR', 5)
const ROUNDS = env('ROUNDS', 3)
const RATE = env('RATE', 1000)
const CLIENTS = env('CLIENTS', 4)
const OUTSTANDING = env('OUTSTANDING', 100)
const RECORDS = env('RECORDS', 20)
const PERF_THREADS = env('PERF_THREADS', 2)
const RT_PRIO = env('RT_PRIO', 50)
const RATE_CLIENT_RT = env('RATE_CLIENT_RT', 10)
const AARDVARK = process.env.AARDVARK ?? '/usr/lib/podman/aardvark-dns'
const STUB =
  process.env.DNS_STUB ?? path.resolve(import.meta.dirname, '../../../../shared/peer-bench/dns-stub-upstream.js')

const log = (...a) => process.stderr.write(`${a.join(' ')}\n`)
const sh = (cmd, args) => execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const median = (xs) => {
  const a = xs.filter((x) => Number.isFinite(x)).sort((x, y) => x - y)
  if (a.length === 0) return null
  return a.length % 2 ? a[(a.length - 1) / 2] : (a[a.length / 2 - 1] + a[a.length / 2]) / 2
}
const round1 = (x) => (x === null ? null : Math.round(x * 10) / 10)

function skip(reason) {
  console.log(JSON.stringify({ summary: { skipped: reason } }))
  process.exit(0)
}
if (process.getuid?.() !== 0) skip('needs root (network namespaces)')
for (const [what, p] of [
  ['dnsperf', '/usr/bin/dnsperf'],
  ['aardvark-dns', AARDVARK],
  ['dns stub', STUB],
]) {
  if (!fs.existsSync(p)) skip(`missing ${what} (${p})`)
}

const tag = `cnmdns${randomInt(0, 0xffff).toString(16)}`
const H = `${tag}-h`
const C = `${tag}-c`
const N = `${tag}-n`
const R = `${tag}-r`
const NET = `10.238.${randomInt(0, 255)}`
const SERVER = `${NET}.1`
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'cnm-dnsbench-'))
const cfgDir = path.join(work, 'aardvark')
const children = []
const cleanups = []
const CLK_TCK = Number(sh('getconf', ['CLK_TCK']).trim()) || 100

async function cleanup() {
  for (const c of cleanups.splice(0).reverse()) {
    try {
      await c()
    } catch (err) {
      log('cleanup:', err.message)
    }
  }
}
process.on('SIGINT', () => void cleanup().then(() => process.exit(130)))
process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)))

function startChild(args, logFile) {
  const out = fs.openSync(logFile, 'w')
  const child = spawn(args[0], args.slice(1), { stdio: ['ignore', out, out] })
  fs.closeSync(out)
  children.push(child)
  cleanups.push(async () => {
    if (child.exitCode === null) {
      child.kill('SIGTERM')
      await new Promise((r) => child.once('exit', r))
    }
  })
  return child
}

function cpuTicks(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ')
  return Number(rest[11]) + Number(rest[12]) // utime + stime (fields 14, 15)
}

/** Runs dnsperf inside `ns` with output to a file (keeps this process's event loop free for serving). */
async function dnsperf(ns, args, file, rtPriority = 0) {
  const out = fs.openSync(file, 'w')
  const rt = rtPriority > 0 ? ['chrt', '-f', String(rtPriority)] : []
  const child = spawn('ip', ['netns', 'exec', ns, ...rt, 'dnsperf', ...args], { stdio: ['ignore', out, out] })
  fs.closeSync(out)
  await new Promise((r) => child.once('exit', r))
  return fs.readFileSync(file, 'utf8')
}

function parseStats(text) {
  const num = (re) => {
    const m = re.exec(text)
    return m ? Number(m[1]) : null
  }
  return {
    qps: num(/Queries per second:\s+([\d.]+)/),
    completed: num(/Queries completed:\s+(\d+)/),
    lost: num(/Queries lost:\s+(\d+)/),
    avgUs: (() => {
      const a = num(/Average Latency \(s\):\s+([\d.]+)/)
      return a === null ? null : a * 1e6
    })(),
    rcodes: /Response codes:\s+(.*)/.exec(text)?.[1]?.trim() ?? '',
  }
}

function percentiles(text) {
  const lat = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('> ')) continue
    const f = line.trim().split(/\s+/)
    lat.push(Number(f[f.length - 1]) * 1e6)
  }
  lat.sort((a, b) => a - b)
  const p = (q) => (lat.length === 0 ? null : lat[Math.max(0, Math.ceil((lat.length * q) / 100) - 1)])
  return { n: lat.length, p50Us: p(50), p95Us: p(95), p99Us: p(99) }
}

try {
  // --- namespaces and links
  sh('ip', ['netns', 'add', H])
  cleanups.push(() => sh('ip', ['netns', 'del', H]))
  sh('ip', ['netns', 'add', C])
  cleanups.push(() => sh('ip', ['netns', 'del', C]))
  sh('ip', ['netns', 'add', N])
  cleanups.push(() => sh('ip', ['netns', 'del', N]))
  sh('ip', ['netns', 'add', R])
  cleanups.push(() => sh('ip', ['netns', 'del', R]))
  for (const ns of [H, C, N, R]) sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up'])
  sh('ip', ['-n', H, 'link', 'add', 'br0', 'type', 'bridge'])
  sh('ip', ['-n', H, 'addr', 'add', `${SERVER}/24`, 'dev', 'br0'])
  sh('ip', ['-n', H, 'link', 'set', 'br0', 'up'])
  sh('ip', ['-n', H, 'link', 'add', 'veth-c0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', C])
  sh('ip', ['-n', H, 'link', 'set', 'veth-c0', 'master', 'br0', 'up'])
  sh('ip', ['-n', C, 'addr', 'add', `${NET}.2/24`, 'dev', 'eth0'])
  sh('ip', ['-n', C, 'link', 'set', 'eth0', 'up'])
  sh('ip', ['-n', H, 'link', 'add', 'veth-n0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', N])
  sh('ip', ['-n', H, 'link', 'set', 'veth-n0', 'master', 'br0', 'up'])
  sh('ip', ['-n', N, 'addr', 'add', `${NET}.3/24`, 'dev', 'eth0'])
  sh('ip', ['-n', N, 'link', 'set', 'eth0', 'up'])
  sh('ip', ['-n', H, 'link', 'add', 'veth-r0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', R])
  sh('ip', ['-n', H, 'link', 'set', 'veth-r0', 'master', 'br0', 'up'])
  sh('ip', ['-n', R, 'addr', 'add', `${NET}.4/24`, 'dev', 'eth0'])
  sh('ip', ['-n', R, 'link', 'set', 'eth0', 'up'])
  // aardvark-dns reads the namespace's resolv.conf: keep everything inside the namespace
  fs.mkdirSync(`/etc/netns/${H}`, { recursive: true })
  fs.writeFileSync(`/etc/netns/${H}/resolv.conf`, 'nameserver 127.0.0.1\n')
  cleanups.push(() => {
    fs.rmSync(`/etc/netns/${H}`, { recursive: true, force: true })
    try {
      fs.rmdirSync('/etc/netns')
    } catch {
      // other namespaces still use it
    }
  })
  cleanups.push(() => fs.rmSync(work, { recursive: true, force: true }))

  // --- upstream stubs (bounded lifetime)
  const budget = String(ROUNDS * 2 * 3 * (2 * DUR + 3) + 120)
  startChild(
    ['ip', 'netns', 'exec', H, process.execPath, STUB, '127.0.0.1', '53', budget],
    path.join(work, 'stub1.log'),
  )
  startChild(['ip', 'netns', 'exec', H, process.execPath, STUB, SERVER, '5300', budget], path.join(work, 'stub2.log'))

  // --- aardvark-dns (daemonizes, writes aardvark.pid)
  fs.mkdirSync(cfgDir)
  const lines = [`${SERVER} 127.0.0.1`, `${'1'.padStart(64, '0')} ${NET}.2  client`]
  for (let i = 1; i <= RECORDS; i++)
    lines.push(`${(i + 1000).toString(16).padStart(64, '0')} ${NET}.${i + 10}  web${i}`)
  fs.writeFileSync(path.join(cfgDir, 'dnsbench'), `${lines.join('\n')}\n`)
  // it daemonizes: no pipes to wait on
  spawnSync('ip', ['netns', 'exec', H, AARDVARK, '--config', cfgDir, '-p', '53', 'run'], { stdio: 'ignore' })
  await sleep(500)
  const aardPid = Number(fs.readFileSync(path.join(cfgDir, 'aardvark.pid'), 'utf8').trim())
  cleanups.push(() => {
    const cmd = fs.readFileSync(`/proc/${aardPid}/cmdline`, 'utf8')
    if (cmd.includes(cfgDir)) process.kill(aardPid, 'SIGTERM') // only the one we started
  })
  const aardVersion = sh(AARDVARK, ['--version']).trim().split(/\s+/)[1] ?? '?'

  // --- the cnm resolvers (same records)
  const network = new NetworkRecords('dnsbench')
  network.addName('client', `${NET}.2`)
  for (let i = 1; i <= RECORDS; i++) network.addName(`web${i}`, `${NET}.${i + 10}`)
  const records = new SandboxRecords([{ network }])
  // errors only, to stderr (hot-path trace logging stays off)
  const quiet = () => undefined
  const errLog = Object.assign(quiet, {
    error: (f, ...a) => log('ERROR', f, ...a.map(String)),
    trace: quiet,
    enabled: false,
    child: () => errLog,
  })
  const logger = { forComponent: () => errLog }
  const sandbox = await startSandboxResolver(
    { upstreams: [{ address: SERVER, port: 5300 }] },
    { logger, records, netns: C, openSocket: openSocketInNetns, nat: iptables({ netns: C, family: 4 }, { logger }) },
  )
  cleanups.push(() => sandbox.stop())
  // one fast-path engine per daemon, shared by every sandbox
  const engine = new DnsResponderEngine({ threads: 1 }, { logger })
  cleanups.push(() => engine.close())
  const rtEngine = new DnsResponderEngine({ threads: 1, realtimePriority: RT_PRIO }, { logger })
  cleanups.push(() => rtEngine.close())
  const nativeRt = await startSandboxResolver(
    { upstreams: [{ address: SERVER, port: 5300 }] },
    {
      logger,
      records,
      netns: R,
      openSocket: openSocketInNetns,
      fastPath: rtEngine,
      nat: iptables({ netns: R, family: 4 }, { logger }),
    },
  )
  cleanups.push(() => nativeRt.stop())
  const native = await startSandboxResolver(
    { upstreams: [{ address: SERVER, port: 5300 }] },
    {
      logger,
      records,
      netns: N,
      openSocket: openSocketInNetns,
      connectSocket: connectSocketInNetns,
      fastPath: engine,
      nat: iptables({ netns: N, family: 4 }, { logger }),
    },
  )
  cleanups.push(() => native.stop())
  const vu = await openSocketInNetns(H, { type: 'udp4', address: SERVER, port: 5301 })
  const vt = await openSocketInNetns(H, { type: 'tcp4', address: SERVER, port: 5301 })
  const veth = new Resolver(
    { upstreams: [{ address: '127.0.0.1', port: 53 }] },
    {
      logger,
      records,
      listen: { udp: { fd: vu.fd, type: 'udp4' }, tcp: { fd: vt.fd, type: 'tcp' } },
      sockets: netnsSocketFactory({ netns: H, openSocket: openSocketInNetns }),
    },
  )
  await veth.start()
  cleanups.push(() => veth.stop())
  const nu = await openSocketInNetns(H, { type: 'udp4', address: SERVER, port: 5302 })
  const nt = await openSocketInNetns(H, { type: 'tcp4', address: SERVER, port: 5302 })
  const vethNative = new Resolver(
    { upstreams: [{ address: '127.0.0.1', port: 53 }] },
    {
      logger,
      records,
      listen: { udp: { fd: nu.fd, type: 'udp4' }, tcp: { fd: nt.fd, type: 'tcp' } },
      sockets: netnsSocketFactory({ netns: H, openSocket: openSocketInNetns, connectSocket: connectSocketInNetns }),
      fastPath: engine,
    },
  )
  await vethNative.start()
  cleanups.push(() => vethNative.stop())

  const selfCpu = () => {
    const u = process.cpuUsage()
    return u.user + u.system
  }
  const allServers = [
    { id: 'aardvark', ns: C, addr: SERVER, port: 53, cpu: () => (cpuTicks(aardPid) * 1e6) / CLK_TCK },
    { id: 'cnm', ns: C, addr: '127.0.0.11', port: 53, cpu: selfCpu },
    { id: 'cnmNative', ns: N, addr: '127.0.0.11', port: 53, cpu: selfCpu },
    { id: 'cnmNativeRt', ns: R, addr: '127.0.0.11', port: 53, cpu: selfCpu, sets: ['local'] },
    { id: 'cnmVeth', ns: C, addr: SERVER, port: 5301, cpu: selfCpu, sets: ['local'] },
    { id: 'cnmVethNative', ns: C, addr: SERVER, port: 5302, cpu: selfCpu, sets: ['local'] },
  ]

  const only = (process.env.SERVERS ?? '').split(',').filter(Boolean)
  const servers = only.length > 0 ? allServers.filter((x) => only.includes(x.id)) : allServers

  // --- sanity: every server answers both kinds of names (dig from the container)
  const checks = {}
  for (const s of servers) {
    const dig = async (name) => {
      const out = fs.openSync(path.join(work, 'dig.out'), 'w')
      const c = spawn(
        'ip',
        ['netns', 'exec', s.ns, 'dig', '+short', '+time=1', '+tries=1', `@${s.addr}`, '-p', String(s.port), name],
        { stdio: ['ignore', out, 'ignore'] },
      )
      fs.closeSync(out)
      await new Promise((r) => c.once('exit', r))
      return fs.readFileSync(path.join(work, 'dig.out'), 'utf8').trim()
    }
    checks[s.id] = { web1: await dig('web1'), forward: await dig('h1.fwd.test') }
    log(`# check ${s.id}: web1 -> ${checks[s.id].web1}, h1.fwd.test -> ${checks[s.id].forward}`)
  }

  const allSets = {
    local: Array.from({ length: RECORDS }, (_, i) => `web${i + 1} A`),
    forward: Array.from({ length: RECORDS }, (_, i) => `h${i + 1}.fwd.test A`),
  }
  const onlySets = (process.env.SETS ?? '').split(',').filter(Boolean)
  const sets = Object.fromEntries(
    Object.entries(allSets).filter(([k]) => onlySets.length === 0 || onlySets.includes(k)),
  )
  for (const [k, v] of Object.entries(sets)) fs.writeFileSync(path.join(work, `${k}.txt`), `${v.join('\n')}\n`)

  const loadStart = os.loadavg()
  log(
    `# aardvark-dns ${aardVersion} pid ${aardPid}; ${RECORDS} records; DUR=${DUR}s ROUNDS=${ROUNDS} CLIENTS=${CLIENTS} OUTSTANDING=${OUTSTANDING} RATE=${RATE}; ${os.cpus().length} cpus; load ${loadStart.join(' ')}`,
  )
  const runs = []
  for (let round = 0; round < ROUNDS; round++) {
    for (const set of Object.keys(sets)) {
      const inSet = servers.filter((s) => s.sets === undefined || s.sets.includes(set))
      // interleaved, order rotated every round so no server always runs right after the same one
      const k = round % inSet.length
      const rotated = [...inSet.slice(k), ...inSet.slice(0, k)]
      const order = round % 2 === 0 ? rotated : rotated.reverse()
      for (const s of order) {
        const base = [
          '-s',
          s.addr,
          '-p',
          String(s.port),
          '-d',
          path.join(work, `${set}.txt`),
          '-l',
          String(DUR),
          '-t',
          '2',
        ]
        const loadavg1 = os.loadavg()[0]
        const c0 = s.cpu()
        const sat = parseStats(
          await dnsperf(
            s.ns,
            [...base, '-T', String(PERF_THREADS), '-c', String(CLIENTS), '-q', String(OUTSTANDING)],
            path.join(work, 'sat.out'),
          ),
        )
        const cpuUs = s.cpu() - c0
        const rateText = await dnsperf(
          s.ns,
          [...base, '-Q', String(RATE), '-v'],
          path.join(work, 'rate.out'),
          RATE_CLIENT_RT,
        )
        const rate = { ...parseStats(rateText), ...percentiles(rateText) }
        const r = {
          round,
          set,
          server: s.id,
          loadavg1,
          sat: { ...sat, cpuUsPerQuery: sat.completed ? cpuUs / sat.completed : null },
          rate,
        }
        runs.push(r)
        log(
          `RESULT r${round} ${set} ${s.id.padEnd(13)} load=${loadavg1.toFixed(2)} sat qps=${Math.round(sat.qps ?? 0)} lost=${sat.lost} cpu/q=${round1(r.sat.cpuUsPerQuery)}us ` +
            `| rate=${RATE} p50=${Math.round(rate.p50Us ?? 0)}us p99=${Math.round(rate.p99Us ?? 0)}us lost=${rate.lost} ${sat.rcodes}`,
        )
      }
    }
  }
  const loadEnd = os.loadavg()

  const agg = (set, server, pick) => median(runs.filter((r) => r.set === set && r.server === server).map(pick))
  const perServer = {}
  for (const set of Object.keys(sets)) {
    perServer[set] = {}
    for (const s of servers.filter((x) => x.sets === undefined || x.sets.includes(set))) {
      perServer[set][s.id] = {
        qps: round1(agg(set, s.id, (r) => r.sat.qps)),
        cpuUsPerQuery: round1(agg(set, s.id, (r) => r.sat.cpuUsPerQuery)),
        satAvgLatencyUs: round1(agg(set, s.id, (r) => r.sat.avgUs)),
        lost: agg(set, s.id, (r) => r.sat.lost),
        p50UsAtRate: round1(agg(set, s.id, (r) => r.rate.p50Us)),
        p95UsAtRate: round1(agg(set, s.id, (r) => r.rate.p95Us)),
        p99UsAtRate: round1(agg(set, s.id, (r) => r.rate.p99Us)),
      }
    }
  }
  // ratio per round (same conditions), then the median of the ratios
  const ratio = (set, a, b, pick) =>
    round1(
      median(
        [...Array(ROUNDS).keys()].map((round) => {
          const x = runs.find((r) => r.round === round && r.set === set && r.server === a)
          const y = runs.find((r) => r.round === round && r.set === set && r.server === b)
          return x && y ? pick(x) / pick(y) : NaN
        }),
      ) * 100,
    ) / 100
  const L = perServer.local
  const full = servers.length === allServers.length && Object.keys(sets).length === Object.keys(allSets).length
  const ids = (set) => Object.keys(perServer[set] ?? {})
  const pick = (set, key) => Object.fromEntries(ids(set).map((id) => [id, perServer[set][id][key]]))
  const lat = (set) =>
    Object.fromEntries(
      ids(set).map((id) => [id, { p50Us: perServer[set][id].p50UsAtRate, p99Us: perServer[set][id].p99UsAtRate }]),
    )
  const qpsRatio = (set, a) => ratio(set, a, 'aardvark', (r) => r.sat.qps)
  const summary = !full
    ? { partial: true, perServer }
    : {
        // headline: the real placement (127.0.0.11 DNAT'ed inside the container) with the native fast path
        localQpsRatioVsAardvark: qpsRatio('local', 'cnmNative'),
        localQps: pick('local', 'qps'),
        localQpsRatiosVsAardvark: Object.fromEntries(
          ids('local')
            .filter((id) => id !== 'aardvark')
            .map((id) => [id, qpsRatio('local', id)]),
        ),
        localCpuUsPerQuery: pick('local', 'cpuUsPerQuery'),
        localAt1000Qps: lat('local'),
        forwardQps: pick('forward', 'qps'),
        forwardQpsRatiosVsAardvark: Object.fromEntries(
          ids('forward')
            .filter((id) => id !== 'aardvark')
            .map((id) => [id, qpsRatio('forward', id)]),
        ),
        forwardAt1000Qps: lat('forward'),
        load: {
          atStart: loadStart,
          atEnd: loadEnd,
          medianPerRun: round1(median(runs.map((r) => r.loadavg1))),
          maxPerRun: Math.max(...runs.map((r) => r.loadavg1)),
        },
        targets: {
          localQps2xAardvark: qpsRatio('local', 'cnmNative') >= 2,
          localP99Under300UsAt1000Qps: (L.cnmNative.p99UsAtRate ?? Infinity) < 300,
          localP99Under300UsAt1000QpsRealtime: (L.cnmNativeRt.p99UsAtRate ?? Infinity) < 300,
        },
      }
  const result = {
    summary,
    config: {
      DUR,
      ROUNDS,
      RATE,
      CLIENTS,
      OUTSTANDING,
      RECORDS,
      PERF_THREADS,
      RT_PRIO,
      RATE_CLIENT_RT,
      aardvark: aardVersion,
      loadavg: loadEnd,
    },
    checks,
    perServer,
    stats: {
      cnm: sandbox.resolver.stats(),
      cnmNative: native.resolver.stats(),
      cnmNativeRt: nativeRt.resolver.stats(),
      cnmVeth: veth.stats(),
      cnmVethNative: vethNative.stats(),
    },
    runs,
  }
  await cleanup()
  console.log(JSON.stringify(result))
} catch (err) {
  log('bench failed:', err?.stack ?? String(err))
  await cleanup()
  process.exit(1)
}
