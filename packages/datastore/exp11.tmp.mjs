import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStore } from '@cnm/datastore'
const V = new Uint8Array(128).fill(7)
const key = (i) => `bench/pool/${String(i % 1000).padStart(4, '0')}/`
const perTurn = Number(process.argv[2] ?? 10)
const dir = mkdtempSync(join(tmpdir(), 'x-'))
const s = lmdbStore({ path: dir })
for (let i = 0; i < 1000; i++) await s.put(key(i), V)
await s.flush()
const N = 20000
const c0 = process.cpuUsage(); const t0 = performance.now()
for (let i = 0; i < N; i++) {
  const cur = await s.get(key(i))
  await s.update(key(i), V, cur.index)
  if (i % perTurn === 0) await new Promise((r) => setImmediate(r))
}
await s.flush()
const c = process.cpuUsage(c0)
console.log('perTurn', perTurn, 'wall us/op', ((performance.now() - t0) * 1000 / N).toFixed(2), 'cpu', ((c.user + c.system) / N).toFixed(2), 'user', (c.user / N).toFixed(2), 'sys', (c.system / N).toFixed(2))
await s.close(); rmSync(dir, { recursive: true, force: true })
