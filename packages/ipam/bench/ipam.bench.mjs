// Benchmark of @cnm/ipam: fill every address of a /16 and release them all.
//   (a) in memory (no store): sequential awaits, one op at a time;
//   (b) on the embedded LMDB store (@cnm/datastore lmdbStore, default mode: a write resolves once it is
//       in the store's write-ahead log, so it survives kill -9): with a window of concurrent requests
//       (group commit), and one at a time for latency;
//   plus heap used by a full /16, and a kill -9 check: every address a killed process saw resolved is
//   still allocated when a new instance opens the store.
// Prints one JSON object as its last stdout line. Run: node tools/bench/run.mjs ipam (build first).
import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { defaultIpam } from '@cnm/ipam'
import { lmdbStore } from '@cnm/datastore'
import { isCnmError, noopLogger, parseIp } from '@cnm/types'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc')
const logger = noopLogger()
const POOL = '10.16.0.0/16'
const USABLE = 65534
const base = parseIp('10.16.0.0').value

function heapUsed() {
  gc()
  gc()
  return process.memoryUsage().heapUsed
}

const round = (x, d = 3) => Math.round(x * 10 ** d) / 10 ** d

/** Fills the pool with a window of `window` requests in flight, then releases everything the same way. */
async function fillAndRelease(ipam, poolId, window) {
  const addrs = new Array(USABLE)
  let next = 0
  const fillWorker = async () => {
    while (next < USABLE) {
      const i = next++
      addrs[i] = (await ipam.requestAddress(poolId)).address.ip
    }
  }
  const releaseWorker = async () => {
    while (next < USABLE) {
      const i = next++
      await ipam.releaseAddress(poolId, addrs[i])
    }
  }
  const t0 = performance.now()
  if (window === 1) {
    for (let i = 0; i < USABLE; i++) addrs[i] = (await ipam.requestAddress(poolId)).address.ip
  } else {
    await Promise.all(Array.from({ length: window }, fillWorker))
  }
  const t1 = performance.now()
  // Every address handed out exactly once, and nothing left (checks not timed).
  const seen = new Set(addrs.map((a) => a.value))
  if (seen.size !== USABLE) throw new Error(`duplicates: ${USABLE - seen.size}`)
  try {
    await ipam.requestAddress(poolId)
    throw new Error('pool not full')
  } catch (err) {
    if (!isCnmError(err, 'ERR_IPAM_NO_AVAILABLE_ADDRESS')) throw err
  }
  next = 0
  const t2 = performance.now()
  if (window === 1) {
    for (let i = 0; i < USABLE; i++) await ipam.releaseAddress(poolId, addrs[i])
  } else {
    await Promise.all(Array.from({ length: window }, releaseWorker))
  }
  const t3 = performance.now()
  if (ipam.freeAddresses(poolId) !== BigInt(USABLE)) throw new Error('not everything released')
  return {
    fillMs: round(t1 - t0, 1),
    releaseMs: round(t3 - t2, 1),
    usPerOp: round(((t1 - t0 + t3 - t2) * 1000) / (2 * USABLE)),
    fillUsPerOp: round(((t1 - t0) * 1000) / USABLE),
    releaseUsPerOp: round(((t3 - t2) * 1000) / USABLE),
  }
}

/** (a) in memory. */
async function memoryBench() {
  const ipam = defaultIpam()({ logger })
  const warm = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: '10.200.0.0/16' })
  for (let r = 0; r < 5; r++) await fillAndRelease(ipam, warm.poolId, 1)
  const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: POOL })
  const runs = []
  for (let r = 0; r < 9; r++) runs.push(await fillAndRelease(ipam, poolId, 1))
  runs.sort((a, b) => a.usPerOp - b.usPerOp)
  const S = { options: { 'com.docker.network.ipam.serial': 'true' } }
  const serialRuns = []
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now()
    for (let i = 0; i < USABLE; i++) await ipam.requestAddress(poolId, S)
    for (let i = 1; i <= USABLE; i++) await ipam.releaseAddress(poolId, { version: 4, value: base + BigInt(i) })
    serialRuns.push(round(((performance.now() - t0) * 1000) / (2 * USABLE)))
  }
  const serial = serialRuns.sort((a, b) => a - b)[2]
  return { runs: runs.length, best: runs[0], median: runs[4], worst: runs[8], serialMedianUsPerOp: serial }
}

/**
 * Heap held per IPAM instance with one /16 pool: empty, full, and half full in a checkerboard (the worst
 * case for run-length encoding). Measured over K instances at once and divided, to rise above GC noise.
 */
async function memoryFootprint() {
  const K = 16
  const before = heapUsed()
  const ipams = []
  for (let k = 0; k < K; k++) {
    const ipam = defaultIpam()({ logger })
    const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: POOL })
    ipams.push({ ipam, poolId })
  }
  const empty = heapUsed()
  for (const { ipam, poolId } of ipams) for (let i = 0; i < USABLE; i++) await ipam.requestAddress(poolId)
  const full = heapUsed()
  for (const { ipam, poolId } of ipams) {
    for (let i = 1; i <= USABLE; i += 2) await ipam.releaseAddress(poolId, { version: 4, value: base + BigInt(i) })
  }
  const checkerboard = heapUsed()
  const free = Number(ipams[0].ipam.freeAddresses(ipams[0].poolId))
  return {
    instances: K,
    emptyPoolBytes: Math.round((empty - before) / K),
    fullPoolBytes: Math.round((full - before) / K),
    checkerboardPoolBytes: Math.round((checkerboard - before) / K),
    checkerboardFree: free,
  }
}

/** (b) LMDB store. */
async function lmdbBench(window, count, sync = false) {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-ipam-bench-'))
  const store = lmdbStore({ path: dir, sync })
  try {
    const ipam = defaultIpam()({ logger, store })
    const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: POOL })
    if (count === undefined) return await fillAndRelease(ipam, poolId, window)
    // Latency of one op at a time over `count` ops, after a warm-up round of the same size.
    let usPerOp = 0
    for (let r = 0; r < 2; r++) {
      const t0 = performance.now()
      const got = []
      for (let i = 0; i < count; i++) got.push((await ipam.requestAddress(poolId)).address.ip)
      for (const a of got) await ipam.releaseAddress(poolId, a)
      usPerOp = round(((performance.now() - t0) * 1000) / (2 * count), 1)
    }
    return { ops: 2 * count, usPerOp }
  } finally {
    await store.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

/**
 * A child allocates addresses of a /8 on an LMDB store (64 in flight), appending every address to a file
 * with a synchronous write as soon as its request resolves; we kill -9 it mid-flight, open the store in a
 * new instance and check that every address in the file is still allocated.
 */
async function killCheck() {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-ipam-kill-'))
  const log = join(dir, 'resolved.txt')
  try {
    const child = `
      import { openSync, writeSync } from 'node:fs'
      import { defaultIpam } from '@cnm/ipam'
      import { lmdbStore } from '@cnm/datastore'
      import { formatIp, noopLogger } from '@cnm/types'
      const fd = openSync(${JSON.stringify(log)}, 'a')
      const ipam = defaultIpam()({ logger: noopLogger(), store: lmdbStore({ path: ${JSON.stringify(
        join(dir, 'db'),
      )} }) })
      const { poolId } = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: '10.0.0.0/8' })
      const worker = async () => {
        for (;;) writeSync(fd, formatIp((await ipam.requestAddress(poolId)).address.ip) + '\\n')
      }
      await Promise.all(Array.from({ length: 64 }, worker))
    `
    const proc = spawn(process.execPath, ['--input-type=module', '-e', child], {
      cwd: new URL('..', import.meta.url).pathname,
      stdio: ['ignore', 'inherit', 'inherit'],
    })
    const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve(signal ?? code)))
    const started = performance.now()
    for (;;) {
      await new Promise((r) => setTimeout(r, 20))
      let size = 0
      try {
        size = statSync(log).size
      } catch {
        // the log file does not exist yet
      }
      if (size > 20000 * 10 || performance.now() - started > 20000 || proc.exitCode !== null) break
    }
    proc.kill('SIGKILL')
    const how = await exited
    const lines = readFileSync(log, 'utf8').split('\n')
    lines.pop() // a partial last line is not an address we know resolved
    const store = lmdbStore({ path: join(dir, 'db') })
    try {
      const ipam = defaultIpam()({ logger, store })
      const poolId = 'LocalDefault/10.0.0.0/8'
      const results = await Promise.allSettled(lines.map((a) => ipam.requestAddress(poolId, { preferred: a })))
      const lost = results.filter((r) => r.status === 'fulfilled').length
      const other = results.filter((r) => r.status === 'rejected' && !isCnmError(r.reason, 'ERR_IPAM_ADDRESS_IN_USE'))
      if (other.length > 0) throw other[0].reason
      return {
        exit: how,
        resolvedBeforeKill: lines.length,
        lostAfterRestart: lost,
        freeAfterRestart: Number(ipam.freeAddresses(poolId)),
      }
    } finally {
      await store.close()
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

const memory = await memoryBench()
const footprint = await memoryFootprint()
const lmdbWindow = await lmdbBench(256)
const lmdbWindow64 = await lmdbBench(64)
const lmdbSequential = await lmdbBench(1, 5000)
const lmdbSync = await lmdbBench(256, undefined, true)
const kill = await killCheck()

const result = {
  summary: {
    memoryUsPerOp: memory.median.usPerOp,
    memoryBestUsPerOp: memory.best.usPerOp,
    lmdbUsPerOp: lmdbWindow.usPerOp,
    lmdbSequentialUsPerOp: lmdbSequential.usPerOp,
    lmdbFsyncUsPerOp: lmdbSync.usPerOp,
    fullSlash16HeapBytes: footprint.fullPoolBytes,
    killMinus9Lost: kill.lostAfterRestart,
    targets: { memoryUsPerOp: 1, lmdbUsPerOp: 20 },
    libnetwork: { memoryUsPerOp: 4.7, boltdbUsPerOp: 650 },
  },
  workload: `fill all ${USABLE} addresses of ${POOL}, then release them all (${2 * USABLE} ops)`,
  memory,
  footprint,
  lmdb: {
    note: 'default mode: a write resolves once in the write-ahead log (survives kill -9); sync: once fsynced',
    window256: lmdbWindow,
    window64: lmdbWindow64,
    sequential: lmdbSequential,
    syncWindow256: lmdbSync,
  },
  killMinus9: kill,
}
console.log(JSON.stringify(result))
