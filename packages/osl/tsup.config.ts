import { baseConfig } from '../../tsup.config.base.js'

export default { ...baseConfig, entry: ['src/index.ts', 'src/testing/index.ts'] }
