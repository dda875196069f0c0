// Per-operation cost of getId/release on a 65,536-ID set in memory. Prints one JSON object as its last line.
import { loadavg } from 'node:os'
import { Idm } from '@cnm/idm'

const IDS = 65_536
const START = 256
const ROUNDS = 7

function rng(seed) {
  let s = seed >>> 0
  return () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

// The machine may be shared: per-op figures are process CPU time (what the code costs), with wall
// time alongside (what a caller waited, including time other processes had the CPU).
const start = () => ({ wall: process.hrtime.bigint(), cpu: process.cpuUsage() })
const elapsed = (t0, n) => {
  const cpu = process.cpuUsage(t0.cpu)
  return { cpu: ((cpu.user + cpu.system) * 1000) / n, wall: Number(process.hrtime.bigint() - t0.wall) / n }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const round1 = (x) => Math.round(x * 10) / 10

async function measure(round) {
  const acc = {}
  for (let r = 0; r <= ROUNDS; r++) {
    const res = await round(r)
    if (r === 0) continue
    for (const [k, v] of Object.entries(res)) {
      ;(acc[k] ??= []).push(v.cpu)
      ;(acc[`${k.replace(/NsPerOp$/, '')}WallNsPerOp`] ??= []).push(v.wall)
    }
  }
  const out = {}
  for (const [k, v] of Object.entries(acc)) out[k] = round1(median(v))
  return out
}

const newSet = () => Idm.create({ id: 'bench', start: START, end: START + IDS - 1 })
const ids = Array.from({ length: IDS }, (_, i) => BigInt(START + i))

// Async API (what callers await), fill then release in order, first-free and serial.
const asyncApi = await measure(async () => {
  const m = await newSet()
  let t = start()
  for (let i = 0; i < IDS; i++) await m.getId()
  const getId = elapsed(t, IDS)
  t = start()
  for (let i = 0; i < IDS; i++) await m.release(ids[i])
  const release = elapsed(t, IDS)
  t = start()
  for (let i = 0; i < IDS; i++) await m.getId(true)
  return { getIdNsPerOp: getId, releaseNsPerOp: release, getIdSerialNsPerOp: elapsed(t, IDS) }
})

// Sync variants.
const syncApi = await measure(async () => {
  const m = await newSet()
  let t = start()
  for (let i = 0; i < IDS; i++) m.getIdSync()
  const getId = elapsed(t, IDS)
  t = start()
  for (let i = 0; i < IDS; i++) m.releaseSync(ids[i])
  return { getIdSyncNsPerOp: getId, releaseSyncNsPerOp: elapsed(t, IDS) }
})

// Churn at 50% use: release a random held id, take a new one (alternating serial / first-free).
const churn = await measure(async (round) => {
  const m = await newSet()
  const r = rng(round + 1)
  const held = []
  for (let i = 0; i < IDS / 2; i++) held.push(await m.getId())
  const OPS = 100_000
  const t = start()
  for (let i = 0; i < OPS; i++) {
    const j = Math.floor(r() * held.length)
    await m.release(held[j])
    held[j] = await m.getId(i % 2 === 0)
  }
  return { churnNsPerOp: elapsed(t, 2 * OPS) }
})

console.log(
  JSON.stringify({
    summary: {
      ids: IDS,
      getIdNsPerOp: asyncApi.getIdNsPerOp,
      releaseNsPerOp: asyncApi.releaseNsPerOp,
      churnNsPerOp: churn.churnNsPerOp,
      getIdSyncNsPerOp: syncApi.getIdSyncNsPerOp,
      releaseSyncNsPerOp: syncApi.releaseSyncNsPerOp,
      loadAverage1m: loadavg()[0],
    },
    asyncApi,
    syncApi,
    churn,
    rounds: ROUNDS,
    note: '*NsPerOp = median process CPU time per operation; *WallNsPerOp = median wall time',
  }),
)
