import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStore, memoryStore } from '@cnm/datastore'
const V = new Uint8Array(128).fill(7)
const key = (i) => `bench/pool/${String(i % 1000).padStart(4, '0')}/`
async function run(label, yieldEvery, sync = false) {
  const dir = mkdtempSync(join(tmpdir(), 'x-'))
  const s = lmdbStore({ path: dir, sync })
  for (let i = 0; i < 1000; i++) await s.put(key(i), V)
  await s.flush()
  const N = 20000
  const lat = []
  const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const a = performance.now()
    const cur = await s.get(key(i))
    await s.update(key(i), V, cur.index)
    lat.push(performance.now() - a)
    if (yieldEvery && i % yieldEvery === 0) await new Promise((r) => setImmediate(r))
  }
  const tot = performance.now() - t0
  const t1 = performance.now(); await s.flush(); const fl = performance.now() - t1
  lat.sort((a, b) => a - b)
  console.log(label, 'us/op', (tot * 1000 / N).toFixed(2), 'p50', (lat[N >> 1] * 1000).toFixed(2), 'p99', (lat[Math.floor(N * 0.99)] * 1000).toFixed(2), 'max ms', lat[N - 1].toFixed(1), 'flush ms', fl.toFixed(1))
  await s.close(); rmSync(dir, { recursive: true, force: true })
}
await run('no-yield', 0)
await run('yield/1', 1)
await run('yield/10', 10)
await run('yield/100', 100)
await run('no-yield', 0)
