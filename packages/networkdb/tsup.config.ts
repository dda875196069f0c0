import { defineConfig } from 'tsup'
import { baseConfig } from '../../tsup.config.base.js'

// A second entry for the `cnm-gossip` executable (dist/bin.js, with its shebang).
export default defineConfig({ ...baseConfig, entry: ['src/index.ts', 'src/bin.ts'] })
