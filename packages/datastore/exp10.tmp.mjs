import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStore, memoryStore } from '@cnm/datastore'
const V = new Uint8Array(128).fill(7)
const key = (i) => `bench/pool/${String(i % 1000).padStart(4, '0')}/`
async function run(label, s, perTurn, N) {
  for (let i = 0; i < 1000; i++) await s.put(key(i), V)
  if (s.flush) await s.flush()
  const c0 = process.cpuUsage(); const t0 = performance.now()
  for (let i = 0; i < N; i++) {
    const cur = await s.get(key(i))
    await s.update(key(i), V, cur.index)
    if (i % perTurn === 0) await new Promise((r) => setImmediate(r))
  }
  const t1 = performance.now()
  if (s.flush) await s.flush()
  const c = process.cpuUsage(c0); const tot = performance.now() - t0
  console.log(label, 'perTurn', perTurn, 'wall us/op', (tot * 1000 / N).toFixed(2), '(excl. final flush', ((t1 - t0) * 1000 / N).toFixed(2), ') cpu us/op', ((c.user + c.system) / N).toFixed(2))
  await s.close()
}
for (const perTurn of [1, 10, 100, 1000]) {
  await run('memory', memoryStore(), perTurn, 20000)
  const dir = mkdtempSync(join(tmpdir(), 'x-'))
  await run('lmdb', lmdbStore({ path: dir }), perTurn, perTurn === 1 ? 3000 : 20000)
  rmSync(dir, { recursive: true, force: true })
}
