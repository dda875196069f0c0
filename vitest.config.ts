import { defineConfig } from 'vitest/config'

const conditions = ['@cnm/source', 'node', 'import', 'module', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@cnm/source'] } },
  test: {
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          sequence: { groupOrder: 0 },
          include: ['packages/*/test/**/*.test.ts', 'tools/*/test/**/*.test.ts'],
          exclude: ['**/*.netns.test.ts', '**/*.cluster.test.ts', '**/node_modules/**'],
          testTimeout: 30_000,
        },
      },
      {
        // Many gossip nodes on 127.0.0.1 with real timers: one file at a time so CPU starvation
        // on a small machine does not look like a failed node.
        extends: true,
        test: {
          name: 'cluster',
          sequence: { groupOrder: 1 },
          include: ['packages/*/test/**/*.cluster.test.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 60_000,
        },
      },
      {
        extends: true,
        test: {
          name: 'netns',
          sequence: { groupOrder: 2 },
          include: ['packages/*/test/**/*.netns.test.ts'],
          exclude: ['**/node_modules/**'],
          fileParallelism: false,
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
})
