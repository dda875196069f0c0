// networkdb gossip benchmark: every node is its own process (bench/node.mjs) on 127.0.0.1 with Docker's
// default timers (gossip 200 ms, probe 1 s, push-pull 30 s, bulk sync 30 s).
//  - propagation: create/update/delete on one node until every other node of the network saw it, N = 3, 10, 30
//  - bytes sent per entry (all nodes, UDP + TCP, from memberlist counters)
//  - failure detection: kill -9 of one node until every other node reports it gone
//  - bulk sync: 100,000 entries of one network reach a node that joins the network afterwards
// Reference (issue 6, Docker's networkdb on this machine): propagation to a third node ~100 ms median
// (0–200 ms, its gossip tick), killed node noticed after ~5.5 s.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import os from 'node:os'

const nodeScript = fileURLToPath(new URL('./node.mjs', import.meta.url))
const DOCKER = { propagationMedianMs3: 100, propagationMaxMs3: 200, failureDetectionMs: 5500 }
const quick = process.env.BENCH_QUICK === '1'
const sizes = quick ? [3, 10] : [3, 10, 30]
const bulkCount = Number(process.env.BULK_COUNT ?? (quick ? 20_000 : 100_000))
const children = new Set()

const sleep = (ms) => new Promise((r) => setTimeout(r, ms))
const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)] : NaN
}
const round = (x, d = 1) => Math.round(x * 10 ** d) / 10 ** d

class Peer {
  static async start(options = {}) {
    const child = fork(nodeScript, [JSON.stringify(options)], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    children.add(child)
    const peer = new Peer(child)
    const ready = await peer.next((m) => m.ready, 30_000)
    peer.name = ready.name
    peer.address = ready.address
    return peer
  }
  constructor(child) {
    this.child = child
    this.seq = 0
    this.listeners = new Set()
    child.on('message', (m) => {
      for (const l of [...this.listeners]) l(m)
    })
    child.on('exit', () => children.delete(child))
  }
  get pid() {
    return this.child.pid
  }
  next(pred, timeoutMs = 60_000) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.listeners.delete(l)
        reject(new Error(`timeout waiting on ${this.name ?? this.pid}`))
      }, timeoutMs)
      const l = (m) => {
        if (!pred(m)) return
        clearTimeout(timer)
        this.listeners.delete(l)
        resolve(m)
      }
      this.listeners.add(l)
    })
  }
  async call(cmd, args = {}, timeoutMs = 120_000) {
    const id = ++this.seq
    const reply = this.next((m) => m.id === id, timeoutMs)
    this.child.send({ cmd, id, ...args })
    const m = await reply
    if (!m.ok) throw new Error(`${cmd} on ${this.name}: ${m.error}`)
    return m
  }
  kill() {
    this.child.kill('SIGKILL')
  }
}

async function startCluster(n, nid) {
  const peers = [await Peer.start()]
  const seed = `${peers[0].address.addr}:${peers[0].address.port}`
  const rest = await Promise.all(Array.from({ length: n - 1 }, () => Peer.start()))
  for (const p of rest) {
    await p.call('join', { members: [seed] })
    peers.push(p)
  }
  for (const p of peers) await p.call('joinNetwork', { nid })
  // Until every node lists every other one in the network.
  const deadline = Date.now() + 60_000
  for (;;) {
    const stats = await Promise.all(peers.map((p) => p.call('stats')))
    const ok = stats.every(
      (s) => s.stats.networks.find((x) => x.networkId === nid)?.peers === n && s.stats.nodes.active === n,
    )
    if (ok) break
    if (Date.now() > deadline) throw new Error(`cluster of ${n} did not converge`)
    await sleep(200)
  }
  return peers
}

async function closeAll(peers) {
  await Promise.allSettled(peers.map((p) => p.call('close', {}, 15_000)))
  for (const p of peers) if (p.child.exitCode === null) p.kill()
}

function bytesSent(stats) {
  return stats.reduce((sum, s) => sum + Number(s.stats.memberlist?.bytesSent ?? NaN), 0)
}

async function propagation(n) {
  const nid = `net-prop-${n}`
  const peers = await startCluster(n, nid)
  try {
    const [origin, ...others] = peers
    for (const p of others) await p.call('watch', { table: 'bench' })
    await sleep(1_000)
    const before = bytesSent(await Promise.all(peers.map((p) => p.call('stats'))))
    const ops = quick ? 20 : n >= 30 ? 40 : 60
    const latencies = { create: [], update: [], delete: [] }
    for (let i = 0; i < ops; i++) {
      for (const type of ['create', 'update', 'delete']) {
        const key = `key-${i}`
        const seen = others.map((p) => p.next((m) => m.event && m.key === key && m.type === type, 20_000))
        const { at } = await origin.call(type, { table: 'bench', nid, key, value: `value-${type}-${i}` })
        const events = await Promise.all(seen)
        latencies[type].push(Math.max(...events.map((e) => e.at)) - at)
        await sleep(50 + Math.random() * 150)
      }
    }
    await sleep(3_000) // let the retransmissions finish before counting bytes
    const after = bytesSent(await Promise.all(peers.map((p) => p.call('stats'))))
    const all = [...latencies.create, ...latencies.update, ...latencies.delete]
    return {
      nodes: n,
      operations: all.length,
      medianMs: round(pct(all, 50)),
      p95Ms: round(pct(all, 95)),
      p99Ms: round(pct(all, 99)),
      maxMs: round(Math.max(...all)),
      createMedianMs: round(pct(latencies.create, 50)),
      updateMedianMs: round(pct(latencies.update, 50)),
      deleteMedianMs: round(pct(latencies.delete, 50)),
      bytesPerOperation: Math.round((after - before) / all.length),
      bytesPerOperationPerNode: Math.round((after - before) / all.length / n),
    }
  } finally {
    await closeAll(peers)
  }
}

async function failureDetection(n) {
  const nid = `net-fail-${n}`
  const peers = await startCluster(n, nid)
  try {
    const victim = peers[n - 1]
    const watchers = peers.slice(0, n - 1)
    for (const p of watchers) await p.call('watch', { table: 'NodeTable' })
    await sleep(2_000)
    const gone = watchers.map((p) => p.next((m) => m.event && m.type === 'delete', 60_000))
    const killedAt = performance.timeOrigin + performance.now()
    victim.kill()
    const events = await Promise.all(gone)
    const times = events.map((e) => e.at - killedAt)
    return { nodes: n, firstMs: Math.round(Math.min(...times)), allMs: Math.round(Math.max(...times)) }
  } finally {
    await closeAll(peers.slice(0, n - 1))
  }
}

async function bulkSync(count) {
  const nid = 'net-bulk'
  const [a] = await startCluster(1, nid)
  let b
  try {
    const t0 = performance.now()
    await a.call('createMany', { table: 'endpoint_table', nid, count, size: 100 })
    const createMs = performance.now() - t0
    b = await Peer.start()
    await b.call('join', { members: [`${a.address.addr}:${a.address.port}`] })
    await b.call('watchCount', { table: 'endpoint_table', count })
    const counted = b.next((m) => m.counted, 120_000)
    const start = performance.timeOrigin + performance.now()
    await b.call('joinNetwork', { nid }, 120_000)
    const done = await counted
    const { count: have } = await b.call('count', { table: 'endpoint_table', nid })
    const stats = await b.call('stats')
    return {
      entries: count,
      valueBytes: 100,
      createOnOriginMs: Math.round(createMs),
      syncedMs: Math.round(done.at - start),
      entriesOnNewNode: have,
      newNodeRssMB: round(stats.memory.rss / 2 ** 20),
    }
  } finally {
    await closeAll(b ? [a, b] : [a])
  }
}

async function main() {
  const propagationResults = []
  for (const n of sizes) propagationResults.push(await propagation(n))
  const failure = [await failureDetection(3)]
  if (!quick) failure.push(await failureDetection(10))
  const bulk = await bulkSync(bulkCount)
  const p3 = propagationResults[0]
  const p30 = propagationResults.find((r) => r.nodes === 30)
  const summary = {
    propagationMedianMs3: p3.medianMs,
    propagationP99Ms3: p3.p99Ms,
    propagationMedianMs10: propagationResults.find((r) => r.nodes === 10)?.medianMs,
    propagationP99Ms10: propagationResults.find((r) => r.nodes === 10)?.p99Ms,
    propagationMedianMs30: p30?.medianMs,
    propagationP99Ms30: p30?.p99Ms,
    ratioMedian3VsDocker: round(p3.medianMs / DOCKER.propagationMedianMs3, 2),
    failureDetectionMs3: failure[0].allMs,
    ratioFailureDetectionVsDocker: round(failure[0].allMs / DOCKER.failureDetectionMs, 2),
    bytesPerOperation3: p3.bytesPerOperation,
    bytesPerOperation30: p30?.bytesPerOperation,
    bulkSyncEntries: bulk.entries,
    bulkSyncMs: bulk.syncedMs,
  }
  return {
    summary,
    reference: DOCKER,
    propagation: propagationResults,
    failure,
    bulk,
    loadavg: os.loadavg(),
    cpus: os.cpus().length,
  }
}

const cleanup = () => {
  for (const c of children) c.kill('SIGKILL')
}
process.on('exit', cleanup)
try {
  const result = await main()
  console.log(JSON.stringify(result))
} catch (err) {
  console.error(err)
  process.exitCode = 1
} finally {
  cleanup()
}
