import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStore, memoryStore } from '@cnm/datastore'
const V = new Uint8Array(128).fill(7)
const key = (i) => `bench/pool/${String(i % 1000).padStart(4, '0')}/`
async function run(label, s) {
  for (let i = 0; i < 1000; i++) await s.put(key(i), V)
  if (s.flush) await s.flush()
  const N = 30000
  const c0 = process.cpuUsage(); const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const cur = await s.get(key(i))
    await s.update(key(i), V, cur.index)
    if (i % 100 === 0) await new Promise((r) => setImmediate(r))
  }
  if (s.flush) await s.flush()
  const c = process.cpuUsage(c0); const tot = performance.now() - t0
  console.log(label, 'wall us/op', (tot * 1000 / N).toFixed(2), 'cpu us/op', ((c.user + c.system) / N).toFixed(2), 'sys', (c.system / N).toFixed(2))
  await s.close()
}
await run('memory', memoryStore())
for (const sync of [false]) {
  const dir = mkdtempSync(join(tmpdir(), 'x-'))
  await run('lmdb sync=' + sync, lmdbStore({ path: dir, sync }))
  rmSync(dir, { recursive: true, force: true })
}
