import { baseConfig } from '../../tsup.config.base.js'

// the testing entry imports the main one by the package's own name: keep it external so both share classes
export default { ...baseConfig, entry: ['src/index.ts', 'src/testing/index.ts'], external: ['@cnm/osl'] }
