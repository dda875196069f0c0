#!/usr/bin/env node
// Runs every benchmark script `packages/<pkg>/bench/<topic>.bench.mjs` (or those whose path
// contains one of the given filters) as its own process. Each script prints one JSON object on
// its last stdout line; it is saved as bench/results/<pkg>.<topic>.json and summarised.
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..', '..')
const filters = process.argv.slice(2)
const out = join(root, 'bench', 'results')
mkdirSync(out, { recursive: true })

const scripts = []
for (const pkg of readdirSync(join(root, 'packages')).sort()) {
  const dir = join(root, 'packages', pkg, 'bench')
  if (!existsSync(dir)) continue
  for (const f of readdirSync(dir).sort()) {
    if (!f.endsWith('.bench.mjs')) continue
    const path = join(dir, f)
    if (filters.length > 0 && !filters.some((x) => path.includes(x))) continue
    scripts.push({ pkg, topic: f.replace(/\.bench\.mjs$/, ''), path })
  }
}

let failed = 0
for (const s of scripts) {
  const started = Date.now()
  process.stderr.write(`bench ${s.pkg}/${s.topic} ...\n`)
  const r = spawnSync(process.execPath, [s.path], {
    cwd: join(root, 'packages', s.pkg),
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 256 * 1024 * 1024,
    env: { ...process.env, CNM_BENCH: '1' },
  })
  const lines = (r.stdout ?? '').trim().split('\n')
  let result
  try {
    result = JSON.parse(lines[lines.length - 1] ?? '')
  } catch {
    failed++
    process.stderr.write(`bench ${s.pkg}/${s.topic} failed (exit ${r.status}): no JSON result\n${r.stdout}\n`)
    continue
  }
  const doc = {
    package: `@cnm/${s.pkg}`,
    topic: s.topic,
    date: new Date().toISOString(),
    node: process.version,
    cpus: (await import('node:os')).cpus().length,
    elapsedMs: Date.now() - started,
    ...result,
  }
  writeFileSync(join(out, `${s.pkg}.${s.topic}.json`), JSON.stringify(doc, null, 2) + '\n')
  process.stdout.write(`${s.pkg}/${s.topic}: ${JSON.stringify(result.summary ?? result)}\n`)
  if (r.status !== 0) failed++
}
if (scripts.length === 0) process.stderr.write('no benchmark matched\n')
process.exit(failed > 0 ? 1 : 0)
