import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { ipamComplianceTests } from '@cnm/ipamapi/testing'
import { lmdbStore, memoryStore, type Store } from '@cnm/datastore'
import { formatPrefix, noopLogger, type PoolId } from '@cnm/types'
import { defaultIpam, LOCAL_ADDRESS_SPACE as LOCAL } from '../src/index.js'
import { addr, expectReject, make } from './helpers.js'

const dirs: string[] = []
const stores: Store[] = []
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cnm-ipam-test-'))
  dirs.push(d)
  return d
}
afterEach(async () => {
  for (const s of stores.splice(0)) await s.close()
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('default ipam on memoryStore()', () => {
  ipamComplianceTests({
    setup: () => defaultIpam()({ logger: noopLogger(), store: memoryStore(), globalStore: memoryStore() }),
  })

  it('two instances sharing one store never hand out an address or a pool twice', async () => {
    const store = memoryStore()
    stores.push(store)
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    const p = await a.requestPool({ addressSpace: LOCAL, pool: '10.1.0.0/22' })
    const got = await Promise.all(Array.from({ length: 800 }, (_, i) => addr(i % 2 === 0 ? a : b, p.poolId)))
    expect(new Set(got).size).toBe(800)
    const pools = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).requestPool({ addressSpace: LOCAL })),
    )
    const ids = pools.filter((r) => r.status === 'fulfilled').map((r) => r.value.poolId)
    expect(ids.length).toBe(20)
    expect(new Set(ids).size).toBe(20)
  })
})

describe('default ipam on lmdbStore()', () => {
  ipamComplianceTests({
    setup: () => {
      const store = lmdbStore({ path: tmp() })
      stores.push(store)
      return defaultIpam()({ logger: noopLogger(), store })
    },
  })

  it('survives a restart: a new store handle and IPAM instance see every pool and address', async () => {
    const path = tmp()
    const s1 = lmdbStore({ path })
    const first = make(undefined, { store: s1 })
    const p = await first.requestPool({ addressSpace: LOCAL })
    const sub = await first.requestPool({ addressSpace: LOCAL, pool: '10.2.0.0/16', subPool: '10.2.7.0/24' })
    const taken = await Promise.all(Array.from({ length: 300 }, () => addr(first, p.poolId)))
    expect(await addr(first, sub.poolId)).toBe('10.2.7.0')
    await s1.close()

    const s2 = lmdbStore({ path })
    stores.push(s2)
    const second = make(undefined, { store: s2 })
    expect(second.capabilities.requiresRequestReplay).toBe(false)
    await expectReject(second.requestPool({ addressSpace: LOCAL, pool: formatPrefix(p.pool) }), 'ERR_IPAM_POOL_OVERLAP')
    await expectReject(second.requestAddress(p.poolId, { preferred: taken[123] as string }), 'ERR_IPAM_ADDRESS_IN_USE')
    expect(await addr(second, p.poolId)).toBe('172.17.1.45')
    expect(await addr(second, sub.poolId)).toBe('10.2.7.1')
    await second.releasePool(sub.poolId)
    await expectReject(second.requestAddress('LocalDefault/10.2.0.0/16' as PoolId), 'ERR_IPAM_POOL_NOT_FOUND')
    expect(formatPrefix((await second.requestPool({ addressSpace: LOCAL })).pool)).toBe('172.18.0.0/16')
  })
})
