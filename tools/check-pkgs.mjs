#!/usr/bin/env node
// `pnpm check:pkgs`: publint and `attw --pack` over every public package (STYLE.md §2, §11).
// Checks the built output, so run `pnpm build` first. Usage: node tools/check-pkgs.mjs [name ...]
//
// attw runs with `--profile esm-only`: the packages are ESM only (`"type": "module"`, an `import`
// condition and no `require`, Node >= 20), so the `node10` resolution (which ignores `exports`) and
// `node16` from CommonJS (a `require` of ESM) are not supported consumers; every supported resolution
// (node16 from ESM, bundler) is still checked.
import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const bin = (name) => join(root, 'node_modules', '.bin', name)

const only = new Set(process.argv.slice(2).map((n) => n.replace(/^@cnm\//, '')))
const packages = readdirSync(join(root, 'packages'), { withFileTypes: true })
  .filter((d) => d.isDirectory() && existsSync(join(root, 'packages', d.name, 'package.json')))
  .map((d) => ({ dir: join(root, 'packages', d.name), folder: d.name }))
  .map((p) => ({ ...p, pkg: JSON.parse(readFileSync(join(p.dir, 'package.json'), 'utf8')) }))
  .filter((p) => p.pkg.private !== true)
  .filter((p) => only.size === 0 || only.has(p.folder))

if (only.size > 0 && packages.length !== only.size) {
  console.error(`check:pkgs: unknown or private package among: ${[...only].join(', ')}`)
  process.exit(2)
}

const failures = []
for (const { dir, pkg } of packages) {
  console.log(`\n=== ${pkg.name}`)
  if (!existsSync(join(dir, 'dist'))) {
    console.error(`${pkg.name}: no dist/; run \`pnpm build\` first`)
    failures.push(`${pkg.name} (not built)`)
    continue
  }
  // publint would pack with pnpm (it sees the pnpm lockfile); pnpm is not on PATH here (npx pnpm),
  // and npm pack yields the same file list (`files`).
  const checks = [
    ['publint', [bin('publint'), 'run', dir, '--pack', 'npm', '--strict']],
    ['attw', [bin('attw'), '--pack', dir, '--profile', 'esm-only', '--format', 'table-flipped']],
  ]
  for (const [tool, [cmd, ...args]] of checks) {
    const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' })
    if (r.status !== 0) failures.push(`${pkg.name} (${tool}${r.error ? `: ${r.error.message}` : ''})`)
  }
}

if (failures.length > 0) {
  console.error(`\ncheck:pkgs failed: ${failures.join(', ')}`)
  process.exit(1)
}
console.log(`\ncheck:pkgs: ${packages.length} packages pass publint and attw (esm-only)`)
