// Membership figures of @cnm/memberlist with networkdb's LAN timers (probe 1 s / 500 ms, suspicion
// mult 4, gossip 200 ms × 3), all nodes in this one process on 127.0.0.1:
// - convergence: N nodes join one seed in turn; time until every node lists N alive
// - propagation: a new node joins one member; time until all N know it (gossip only, push-pull off)
// - failure detection: a node is shut down without leave; time until the first peer suspects it and
//   until every peer has it dead
// - graceful leave: time until every peer has the node as 'left'
// - sendReliable: a 20 MB incompressible TCP user message, time until delivered
// Prints one JSON object on its last line.
import { randomBytes } from 'node:crypto'
import { createMemberlist, defaultConfig } from '@cnm/memberlist'

const LAN = { ...defaultConfig(), bindPort: 0, pushPullIntervalMs: 0 }
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

async function waitFor(cond, timeoutMs) {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) throw new Error('timeout')
    await sleep(10)
  }
  return Date.now() - start
}

function stateOf(ml, name) {
  return ml.nodes().find((n) => n.name === name)?.state
}

async function startCluster(n, prefix, extra = {}) {
  const nodes = []
  for (let i = 0; i < n; i++) nodes.push(await createMemberlist({ ...LAN, name: `${prefix}${i}`, ...extra }))
  const t0 = Date.now()
  for (let i = 1; i < n; i++) await nodes[i].join([`127.0.0.1:${nodes[0].address.port}`])
  const convergenceMs = (await waitFor(() => nodes.every((m) => m.numMembers() === n), 60_000)) + 0
  return { nodes, convergenceMs: Date.now() - t0, waitMs: convergenceMs }
}

async function measure(n) {
  const { nodes, convergenceMs } = await startCluster(n, `n${n}-`)
  // propagation of a join by gossip
  const late = await createMemberlist({ ...LAN, name: `late${n}` })
  const t1 = Date.now()
  await late.join([`127.0.0.1:${nodes[0].address.port}`])
  await waitFor(() => nodes.every((m) => stateOf(m, late.name) === 'alive'), 30_000)
  const propagationMs = Date.now() - t1
  // failure detection
  const victim = nodes.pop()
  const t2 = Date.now()
  await victim.shutdown()
  let firstSuspectMs = 0
  await waitFor(() => {
    if (firstSuspectMs === 0 && nodes.some((m) => stateOf(m, victim.name) === 'suspect'))
      firstSuspectMs = Date.now() - t2
    return nodes.every((m) => stateOf(m, victim.name) === 'dead')
  }, 60_000)
  const deadEverywhereMs = Date.now() - t2
  // graceful leave
  const t3 = Date.now()
  await late.leave(2000)
  await late.shutdown()
  await waitFor(() => nodes.every((m) => stateOf(m, late.name) === 'left'), 30_000)
  const leftEverywhereMs = Date.now() - t3
  const healthScores = nodes.map((m) => m.healthScore())
  await Promise.all(nodes.map((m) => m.shutdown()))
  return {
    nodes: n,
    convergenceMs,
    propagationMs,
    firstSuspectMs,
    deadEverywhereMs,
    leftEverywhereMs,
    maxHealthScore: Math.max(...healthScores),
  }
}

async function reliable() {
  let got = 0
  const delegate = {
    nodeMeta: () => new Uint8Array(0),
    notifyMsg: (p) => {
      got = p.length
    },
    getBroadcasts: () => [],
    localState: () => new Uint8Array(0),
    mergeRemoteState: () => {},
  }
  const a = await createMemberlist({ ...LAN, name: 'ra' })
  const b = await createMemberlist({ ...LAN, name: 'rb', delegate })
  const payload = randomBytes(20 * 1024 * 1024)
  const t0 = Date.now()
  try {
    await a.sendReliable(b.address, payload)
    await waitFor(() => got === payload.length, 30_000)
    return { bytes: payload.length, deliveredMs: Date.now() - t0, ok: true }
  } catch (err) {
    return { bytes: payload.length, ok: false, error: String(err?.message ?? err) }
  } finally {
    await a.shutdown()
    await b.shutdown()
  }
}

const runs = []
for (const n of [3, 10, 30]) runs.push(await measure(n))
const big = await reliable()
const by = Object.fromEntries(runs.map((r) => [r.nodes, r]))
console.log(
  JSON.stringify({
    summary: {
      convergence30Ms: by[30].convergenceMs,
      propagation30Ms: by[30].propagationMs,
      failureDetection10Ms: by[10].deadEverywhereMs,
      failureDetection3Ms: by[3].deadEverywhereMs,
      leave10Ms: by[10].leftEverywhereMs,
      reliable20MBMs: big.ok ? big.deliveredMs : null,
    },
    runs,
    reliable: big,
    timers: {
      probeIntervalMs: LAN.probeIntervalMs,
      probeTimeoutMs: LAN.probeTimeoutMs,
      gossipIntervalMs: LAN.gossipIntervalMs,
      suspicionMult: LAN.suspicionMult,
    },
  }),
)
