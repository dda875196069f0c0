// Per-operation cost of setAny/unset on a 65,536-bit handle (an IPv4 /16) in memory, and the memory a
// fully allocated /16 handle takes. Prints one JSON object as its last line.
import { loadavg } from 'node:os'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { Bitseq } from '@cnm/bitseq'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')

const BITS = 65_536
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

function permutation(n, seed) {
  const r = rng(seed)
  const a = Array.from({ length: n }, (_, i) => BigInt(i))
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
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

/** Runs `round` ROUNDS times (plus one warm-up) and returns the median CPU and wall ns/op per phase. */
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

const ordered = Array.from({ length: BITS }, (_, i) => BigInt(i))
const shuffled = permutation(BITS, 7)

// 1. Sequential: fill with setAny, release in order (the IPAM's common case).
const sequentialSync = await measure(async () => {
  const h = await Bitseq.create({ bits: BigInt(BITS) })
  let t = start()
  for (let i = 0; i < BITS; i++) h.setAnySync()
  const setAny = elapsed(t, BITS)
  t = start()
  for (let i = 0; i < BITS; i++) h.unsetSync(ordered[i])
  return { setAnyNsPerOp: setAny, unsetNsPerOp: elapsed(t, BITS) }
})

// 2. Fragmented: full handle released in random order (list grows to ~2k sequences and shrinks),
//    then refilled first-free through the holes.
const randomSync = await measure(async () => {
  const h = await Bitseq.create({ bits: BigInt(BITS) })
  for (let i = 0; i < BITS; i++) h.setAnySync()
  let t = start()
  for (let i = 0; i < BITS; i++) h.unsetSync(shuffled[i])
  const unset = elapsed(t, BITS)
  for (let i = 0; i < BITS / 2; i++) h.setSync(shuffled[i])
  t = start()
  for (let i = 0; i < BITS / 2; i++) h.setAnySync()
  return { unsetRandomNsPerOp: unset, setAnyIntoHolesNsPerOp: elapsed(t, BITS / 2) }
})

// 3. Steady churn at 50% occupancy: release a random allocated bit, allocate one (serial and first-free).
const churn = await measure(async (round) => {
  const h = await Bitseq.create({ bits: BigInt(BITS) })
  const r = rng(round + 1)
  const held = []
  for (let i = 0; i < BITS / 2; i++) held.push(BigInt(i * 2))
  for (const o of held) h.setSync(o)
  const OPS = 100_000
  const t = start()
  for (let i = 0; i < OPS; i++) {
    const j = Math.floor(r() * held.length)
    h.unsetSync(held[j])
    held[j] = h.setAnySync(i % 2 === 0)
  }
  return { churnNsPerOp: elapsed(t, 2 * OPS) }
})

// 4. The async API without a store (what a caller awaiting setAny()/unset() pays).
const asyncApi = await measure(async () => {
  const h = await Bitseq.create({ bits: BigInt(BITS) })
  let t = start()
  for (let i = 0; i < BITS; i++) await h.setAny()
  const setAny = elapsed(t, BITS)
  t = start()
  for (let i = 0; i < BITS; i++) await h.unset(ordered[i])
  return { asyncSetAnyNsPerOp: setAny, asyncUnsetNsPerOp: elapsed(t, BITS) }
})

// 5. Memory: heap retained per handle.
async function settleHeap() {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((resolve) => setImmediate(resolve))
  }
}
async function heapPerHandle(n, build) {
  const keep = []
  await settleHeap()
  const before = process.memoryUsage()
  for (let i = 0; i < n; i++) keep.push(await build(i))
  await settleHeap()
  const after = process.memoryUsage()
  const perHandle = (after.heapUsed - before.heapUsed + (after.arrayBuffers - before.arrayBuffers)) / n
  keep.length = 0
  return Math.round(perHandle)
}
// A fully allocated /16, filled by setAny (the list never exceeds 3 sequences on the way, so its arrays
// keep their initial capacity); copies are made from its bytes so that building thousands of them does
// not churn the heap while measuring.
const filled = await Bitseq.create({ bits: BigInt(BITS) })
for (let i = 0; i < BITS; i++) filled.setAnySync()
const filledBytes = filled.serialize()
const fullBytes = await heapPerHandle(5000, () => Bitseq.deserialize(filledBytes))
const freshBytes = await heapPerHandle(5000, () => Bitseq.create({ bits: BigInt(BITS) }))
const fragmented = await Bitseq.create({ bits: BigInt(BITS) })
for (let i = 0; i < BITS / 2; i++) fragmented.setSync(shuffled[i])
const fragmentedSequences = fragmented.sequenceString().split('->').length - 1
const fragmentedBytes = await heapPerHandle(200, () => Bitseq.deserialize(fragmented.serialize()))

const full = Bitseq.deserialize(filledBytes)
if (!full.equals(filled)) throw new Error('deserialized copy differs')

const worst = Math.max(
  sequentialSync.setAnyNsPerOp,
  sequentialSync.unsetNsPerOp,
  randomSync.unsetRandomNsPerOp,
  randomSync.setAnyIntoHolesNsPerOp,
  churn.churnNsPerOp,
)

console.log(
  JSON.stringify({
    summary: {
      bits: BITS,
      setAnyNsPerOp: sequentialSync.setAnyNsPerOp,
      unsetNsPerOp: sequentialSync.unsetNsPerOp,
      churnNsPerOp: churn.churnNsPerOp,
      worstSyncNsPerOp: worst,
      asyncSetAnyNsPerOp: asyncApi.asyncSetAnyNsPerOp,
      asyncUnsetNsPerOp: asyncApi.asyncUnsetNsPerOp,
      loadAverage1m: loadavg()[0],
      fullyAllocatedHandleBytes: fullBytes,
    },
    sequentialSync,
    randomSync,
    churn,
    asyncApi,
    memory: {
      fullyAllocatedHandleBytes: fullBytes,
      fullyAllocatedSequence: full.sequenceString(),
      fullyAllocatedSerializedBytes: full.serialize().length,
      freshHandleBytes: freshBytes,
      randomHalfAllocatedHandleBytes: fragmentedBytes,
      randomHalfAllocatedSequences: fragmentedSequences,
      randomHalfAllocatedSerializedBytes: fragmented.serialize().length,
    },
    rounds: ROUNDS,
    note: '*NsPerOp = median process CPU time per operation; *WallNsPerOp = median wall time',
  }),
)
