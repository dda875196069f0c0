// Compiles the native addon with node-gyp against local Node headers (no download).
// Header search order: $npm_config_nodedir, the prefix of the running node (<prefix>/include/node), /usr.
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const require = createRequire(import.meta.url)

const hasHeaders = (dir) => dir !== undefined && dir !== '' && existsSync(join(dir, 'include', 'node', 'node_api.h'))
const candidates = [process.env.npm_config_nodedir, dirname(dirname(process.execPath)), '/usr', '/usr/local']
const nodedir = candidates.find(hasHeaders)
if (nodedir === undefined) {
  console.error(
    '@cnm/osl: Node.js headers not found (looked for include/node/node_api.h under ' +
      candidates.filter(Boolean).join(', ') +
      '). Install them (Debian: apt-get install libnode-dev, or nodejs from NodeSource ships them) ' +
      'or set npm_config_nodedir.',
  )
  process.exit(1)
}

const gyp = require.resolve('node-gyp/bin/node-gyp.js')
const args = [gyp, 'rebuild', `--nodedir=${nodedir}`, '--directory', here, '--loglevel', 'warn']
const r = spawnSync(process.execPath, args, { stdio: 'inherit' })
if (r.status !== 0) {
  console.error(`@cnm/osl: node-gyp failed (exit ${r.status}); needs python3, make and a C compiler`)
  process.exit(r.status ?? 1)
}
const out = join(here, 'build', 'Release', 'cnm_osl.node')
if (!existsSync(out)) {
  console.error(`@cnm/osl: node-gyp finished but ${out} is missing`)
  process.exit(1)
}
