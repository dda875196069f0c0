import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe } from 'vitest'
import { lmdbStore, memoryStore, type Store } from '../src/index.js'
import { storeComplianceTests } from '../src/testing/index.js'

describe('MemoryStore', () => {
  storeComplianceTests({
    setup: () => memoryStore(),
    teardown: (store) => store.close(),
  })
})

for (const sync of [false, true]) {
  describe(`LmdbStore (sync: ${sync})`, () => {
    const dirs = new Map<Store, string>()
    storeComplianceTests({
      setup: () => {
        const dir = mkdtempSync(join(tmpdir(), 'cnm-datastore-'))
        const store = lmdbStore({ path: dir, sync })
        dirs.set(store, dir)
        return store
      },
      teardown: async (store) => {
        await store.close()
        rmSync(dirs.get(store) as string, { recursive: true, force: true })
        dirs.delete(store)
      },
    })
  })
}
