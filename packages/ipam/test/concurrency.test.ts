import { describe, expect, it } from 'vitest'
import { formatPrefix, isCnmError } from '@cnm/types'
import { LOCAL_ADDRESS_SPACE as LOCAL } from '../src/index.js'
import { TestStore } from './fixtures/test-store.js'
import { addr, make } from './helpers.js'

/** Deterministic pseudo-random numbers (xorshift), so failures reproduce. */
function rng(seed: number): () => number {
  let x = seed
  return () => {
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    return (x >>> 0) / 0x100000000
  }
}

for (const mode of ['in memory', 'with a store'] as const) {
  describe(`concurrency, ${mode} (libnetwork's parallel tests)`, () => {
    const build = (): ReturnType<typeof make> =>
      mode === 'in memory' ? make() : make(undefined, { store: new TestStore() })

    it('interleaved requestAddress/releaseAddress on one pool never hand out an address twice', async () => {
      const ipam = build()
      const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.10.0.0/23' })
      const held = new Set<string>()
      const rand = rng(42)
      const worker = async (w: number): Promise<void> => {
        const mine: string[] = []
        for (let i = 0; i < 60; i++) {
          if (mine.length > 0 && rand() < 0.4) {
            const ip = mine.splice(Math.floor(rand() * mine.length), 1)[0] as string
            held.delete(ip)
            await ipam.releaseAddress(p.poolId, ip)
          } else {
            const serial = (w + i) % 3 === 0
            const ip = await addr(
              ipam,
              p.poolId,
              serial ? { options: { 'com.docker.network.ipam.serial': 'true' } } : undefined,
            )
            expect(held.has(ip), `${ip} handed out twice`).toBe(false)
            held.add(ip)
            mine.push(ip)
          }
        }
      }
      await Promise.all(Array.from({ length: 16 }, (_, w) => worker(w)))
      expect(ipam.freeAddresses(p.poolId)).toBe(510n - BigInt(held.size))
    })

    it('hundreds of concurrent requests exhaust a pool exactly', async () => {
      const ipam = build()
      const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.11.0.0/24' })
      const res = await Promise.allSettled(Array.from({ length: 300 }, () => addr(ipam, p.poolId)))
      const ok = res.filter((r) => r.status === 'fulfilled').map((r) => r.value)
      expect(ok.length).toBe(254)
      expect(new Set(ok).size).toBe(254)
      const rejected = res.filter((r) => r.status === 'rejected')
      expect(rejected.every((r) => isCnmError(r.reason, 'ERR_IPAM_NO_AVAILABLE_ADDRESS'))).toBe(true)
    })

    it('concurrent preferred requests for one address: exactly one wins', async () => {
      const ipam = build()
      const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.12.0.0/24' })
      const res = await Promise.allSettled(
        Array.from({ length: 50 }, () => addr(ipam, p.poolId, { preferred: '10.12.0.9' })),
      )
      expect(res.filter((r) => r.status === 'fulfilled').length).toBe(1)
      expect(res.filter((r) => r.status === 'rejected' && isCnmError(r.reason, 'ERR_IPAM_ADDRESS_IN_USE')).length).toBe(
        49,
      )
    })

    it('concurrent requestPool calls never hand out one pool twice; interleaved with releases', async () => {
      const ipam = build()
      const res = await Promise.allSettled(Array.from({ length: 40 }, () => ipam.requestPool({ addressSpace: LOCAL })))
      const ok = res.filter((r) => r.status === 'fulfilled').map((r) => r.value)
      expect(ok.length).toBe(31)
      expect(new Set(ok.map((p) => p.poolId)).size).toBe(31)
      // Release and request concurrently: whatever is held at the end is distinct.
      const held = new Map(ok.map((p) => [p.poolId as string, p]))
      const ops: Array<Promise<unknown>> = []
      for (const [i, p] of ok.entries()) {
        if (i % 2 === 0) {
          held.delete(p.poolId)
          ops.push(ipam.releasePool(p.poolId))
        }
        ops.push(
          ipam.requestPool({ addressSpace: LOCAL }).then(
            (q) => {
              expect(held.has(q.poolId)).toBe(false)
              held.set(q.poolId, q)
            },
            (err: unknown) => expect(isCnmError(err, 'ERR_IPAM_NO_AVAILABLE_POOL')).toBe(true),
          ),
        )
      }
      await Promise.all(ops)
      expect(held.size).toBe(31)
      expect(new Set([...held.values()].map((p) => formatPrefix(p.pool))).size).toBe(31)
    })

    it('concurrent explicit requests for one pool: exactly one wins', async () => {
      const ipam = build()
      const res = await Promise.allSettled(
        Array.from({ length: 20 }, () => ipam.requestPool({ addressSpace: LOCAL, pool: '10.13.0.0/16' })),
      )
      expect(res.filter((r) => r.status === 'fulfilled').length).toBe(1)
      expect(res.filter((r) => r.status === 'rejected' && isCnmError(r.reason, 'ERR_IPAM_POOL_OVERLAP')).length).toBe(
        19,
      )
    })
  })
}
