import type { Options } from 'tsup'

/** Shared build options: every package re-exports this from its own tsup.config.ts. */
export const baseConfig: Options = {
  entry: ['src/index.ts'],
  format: ['esm'],
  dts: { compilerOptions: { customConditions: [] } },
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  splitting: false,
}

export default baseConfig
