/**
 * @cnm/ipamapi/testing: the compliance suite every IPAM runs (in its `test/compliance.test.ts`).
 *
 * ```ts
 * import { ipamComplianceTests } from '@cnm/ipamapi/testing'
 * ipamComplianceTests({ setup: () => myIpam(), teardown: async () => {} })
 * ```
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  formatIp,
  formatPrefix,
  isCnmError,
  parseIp,
  parsePrefix,
  prefixContains,
  type IpAddr,
  type PoolId,
} from '@cnm/types'
import type { Ipam } from '../index.js'

export interface IpamComplianceOptions {
  /** Returns a fresh IPAM with no pools registered. Called before every test. */
  setup(): Ipam | Promise<Ipam>
  /** Disposes of what setup made. Called after every test, also on failure. */
  teardown?(ipam: Ipam): void | Promise<void>
  /**
   * The IPAM accepts explicit pools (`pool`, `subPool`) and hands out addresses. The null IPAM does neither;
   * the suite then checks that it refuses explicit pools and returns no address instead.
   * @default true
   */
  allocates?: boolean
}

/** Runs `fn` and returns the error it rejected with; fails the test when it resolves. */
async function rejection(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  throw new Error('expected the call to reject, but it resolved')
}

function expectCode(err: unknown, code: string): void {
  expect(isCnmError(err), `not a CnmError: ${String(err)}`).toBe(true)
  expect((err as { code: string }).code).toBe(code)
}

function expectKind(err: unknown, kind: string): void {
  expect(isCnmError(err), `not a CnmError: ${String(err)}`).toBe(true)
  expect((err as { kind: string }).kind).toBe(kind)
}

/**
 * Registers a vitest `describe` block with the generic behaviour of the IPAM contract.
 * Explicit pools used: 198.18.0.0/15 (benchmarking range) and fd00:c0de::/48, which no default list contains.
 */
export function ipamComplianceTests(opts: IpamComplianceOptions): void {
  const allocates = opts.allocates ?? true

  describe('ipam compliance', () => {
    let ipam: Ipam
    beforeEach(async () => {
      ipam = await opts.setup()
    })
    afterEach(async () => {
      await opts.teardown?.(ipam)
    })

    it('names two default address spaces', async () => {
      const spaces = await ipam.getDefaultAddressSpaces()
      expect(typeof spaces.local).toBe('string')
      expect(typeof spaces.global).toBe('string')
      expect(spaces.local.length).toBeGreaterThan(0)
      expect(spaces.global.length).toBeGreaterThan(0)
    })

    it('declares its capabilities as booleans', () => {
      expect(typeof ipam.builtIn).toBe('boolean')
      expect(typeof ipam.capabilities.requiresMacAddress).toBe('boolean')
      expect(typeof ipam.capabilities.requiresRequestReplay).toBe('boolean')
    })

    it('rejects an empty address space', async () => {
      expectCode(await rejection(() => ipam.requestPool({ addressSpace: '' })), 'ERR_IPAM_INVALID_ADDRESS_SPACE')
    })

    it('rejects a sub-pool without a pool', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const err = await rejection(() => ipam.requestPool({ addressSpace: local, subPool: '198.18.1.0/24' }))
      expectCode(err, 'ERR_IPAM_INVALID_SUBPOOL')
    })

    it('hands out an IPv4 pool of the local space and takes it back', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local })
      expect(typeof p.poolId).toBe('string')
      expect(p.poolId.length).toBeGreaterThan(0)
      expect(p.pool.version).toBe(4)
      expect(typeof p.meta).toBe('object')
      await ipam.releasePool(p.poolId)
    })

    it('rejects every call with ERR_ABORTED when the signal is already aborted', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local })
      const signal = AbortSignal.abort(new Error('stop'))
      expectCode(await rejection(() => ipam.getDefaultAddressSpaces({ signal })), 'ERR_ABORTED')
      expectCode(await rejection(() => ipam.requestPool({ addressSpace: local, signal })), 'ERR_ABORTED')
      expectCode(await rejection(() => ipam.requestAddress(p.poolId, { signal })), 'ERR_ABORTED')
      expectCode(await rejection(() => ipam.releaseAddress(p.poolId, '0.0.0.1', { signal })), 'ERR_ABORTED')
      expectCode(await rejection(() => ipam.releasePool(p.poolId, { signal })), 'ERR_ABORTED')
      const err = await rejection(() => ipam.requestPool({ addressSpace: local, signal }))
      expect((err as Error).cause).toBe(signal.reason)
      await ipam.releasePool(p.poolId)
    })

    it('rejects a malformed pool id as invalid', async () => {
      expectCode(await rejection(() => ipam.requestAddress('' as PoolId)), 'ERR_IPAM_INVALID_POOL_ID')
      expectCode(await rejection(() => ipam.releaseAddress('x' as PoolId, '10.0.0.1')), 'ERR_IPAM_INVALID_POOL_ID')
    })

    if (!allocates) {
      it('returns no address from its pool', async () => {
        const { local } = await ipam.getDefaultAddressSpaces()
        const p = await ipam.requestPool({ addressSpace: local })
        expect(await ipam.requestAddress(p.poolId)).toBeUndefined()
        await ipam.releaseAddress(p.poolId, '10.0.0.1')
        await ipam.releasePool(p.poolId)
      })

      it('refuses explicit pools as invalid arguments', async () => {
        const { local } = await ipam.getDefaultAddressSpaces()
        expectKind(
          await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })),
          'invalid-argument',
        )
        const err = await rejection(() =>
          ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24', subPool: '198.18.0.0/25' }),
        )
        expectKind(err, 'invalid-argument')
      })
      return
    }

    it('canonicalises an explicit pool and refuses it twice', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.7/24' })
      expect(formatPrefix(p.pool)).toBe('198.18.0.0/24')
      expectCode(
        await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })),
        'ERR_IPAM_POOL_OVERLAP',
      )
      expectCode(
        await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/16' })),
        'ERR_IPAM_POOL_OVERLAP',
      )
      expectCode(
        await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.128/25' })),
        'ERR_IPAM_POOL_OVERLAP',
      )
      const other = await ipam.requestPool({ addressSpace: local, pool: '198.18.1.0/24' })
      expect(other.poolId).not.toBe(p.poolId)
      await ipam.releasePool(other.poolId)
      await ipam.releasePool(p.poolId)
      const again = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })
      await ipam.releasePool(again.poolId)
    })

    it('rejects unparsable pools and sub-pools', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      expectCode(
        await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.0' })),
        'ERR_IPAM_INVALID_POOL',
      )
      expectCode(
        await rejection(() => ipam.requestPool({ addressSpace: local, pool: 'nope/24' })),
        'ERR_IPAM_INVALID_POOL',
      )
      const err = await rejection(() => ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24', subPool: 'x' }))
      expectCode(err, 'ERR_IPAM_INVALID_SUBPOOL')
    })

    it('rejects a sub-pool outside its pool', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const err = await rejection(() =>
        ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24', subPool: '198.19.0.0/25' }),
      )
      expectCode(err, 'ERR_IPAM_INVALID_SUBPOOL')
    })

    it('hands out distinct addresses inside the pool, with the pool mask', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })
      const results = await Promise.all(Array.from({ length: 100 }, () => ipam.requestAddress(p.poolId)))
      const seen = new Set<string>()
      for (const r of results) {
        expect(r).toBeDefined()
        if (r === undefined) continue
        expect(formatPrefix(r.address.prefix)).toBe('198.18.0.0/24')
        expect(prefixContains(p.pool, r.address.ip)).toBe(true)
        expect(r.address.ip.value).not.toBe(p.pool.network)
        seen.add(formatIp(r.address.ip))
      }
      expect(seen.size).toBe(100)
      await Promise.all(results.filter((r) => r !== undefined).map((r) => ipam.releaseAddress(p.poolId, r.address.ip)))
      await ipam.releasePool(p.poolId)
    })

    it('reserves a preferred address once and frees it again', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })
      const r = await ipam.requestAddress(p.poolId, { preferred: '198.18.0.77' })
      expect(r === undefined ? undefined : formatIp(r.address.ip)).toBe('198.18.0.77')
      expect(r?.address.prefix.bits).toBe(24)
      expectCode(
        await rejection(() => ipam.requestAddress(p.poolId, { preferred: '198.18.0.77' })),
        'ERR_IPAM_ADDRESS_IN_USE',
      )
      await ipam.releaseAddress(p.poolId, '198.18.0.77')
      const again = await ipam.requestAddress(p.poolId, { preferred: parseIp('198.18.0.77') })
      expect(again === undefined ? undefined : formatIp(again.address.ip)).toBe('198.18.0.77')
      await ipam.releasePool(p.poolId)
    })

    it('rejects addresses outside the pool and unparsable addresses', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })
      expectCode(
        await rejection(() => ipam.requestAddress(p.poolId, { preferred: '198.18.1.1' })),
        'ERR_IPAM_OUT_OF_RANGE',
      )
      expectCode(await rejection(() => ipam.releaseAddress(p.poolId, '198.18.1.1')), 'ERR_IPAM_OUT_OF_RANGE')
      expectCode(
        await rejection(() => ipam.requestAddress(p.poolId, { preferred: 'bogus' })),
        'ERR_IPAM_INVALID_ADDRESS',
      )
      expectCode(await rejection(() => ipam.releaseAddress(p.poolId, '198.18.0.300')), 'ERR_IPAM_INVALID_ADDRESS')
      await ipam.releasePool(p.poolId)
    })

    it('runs out of addresses, and reuses a released one', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/29' })
      const got: IpAddr[] = []
      for (;;) {
        let r
        try {
          r = await ipam.requestAddress(p.poolId)
        } catch (err) {
          expectCode(err, 'ERR_IPAM_NO_AVAILABLE_ADDRESS')
          break
        }
        expect(r).toBeDefined()
        if (r !== undefined) got.push(r.address.ip)
        expect(got.length).toBeLessThanOrEqual(8)
      }
      expect(got.length).toBeGreaterThan(0)
      expect(new Set(got.map((a) => a.value)).size).toBe(got.length)
      const freed = got[0] as IpAddr
      await ipam.releaseAddress(p.poolId, freed)
      const r = await ipam.requestAddress(p.poolId)
      expect(r?.address.ip.value).toBe(freed.value)
      await ipam.releasePool(p.poolId)
    })

    it('forgets a released pool', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/24' })
      await ipam.releasePool(p.poolId)
      expectCode(await rejection(() => ipam.requestAddress(p.poolId)), 'ERR_IPAM_POOL_NOT_FOUND')
      expectCode(await rejection(() => ipam.releaseAddress(p.poolId, '198.18.0.1')), 'ERR_IPAM_POOL_NOT_FOUND')
      expectCode(await rejection(() => ipam.releasePool(p.poolId)), 'ERR_IPAM_BAD_POOL')
    })

    it('allocates from a sub-pool inside its range', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: '198.18.0.0/16', subPool: '198.18.5.0/24' })
      expect(formatPrefix(p.pool)).toBe('198.18.0.0/16')
      const sub = parsePrefix('198.18.5.0/24')
      for (let i = 0; i < 20; i++) {
        const r = await ipam.requestAddress(p.poolId)
        expect(r).toBeDefined()
        if (r === undefined) continue
        expect(prefixContains(sub, r.address.ip)).toBe(true)
        expect(r.address.prefix.bits).toBe(16)
      }
      await ipam.releasePool(p.poolId)
    })

    it('allocates from an explicit IPv6 pool, never the network address', async () => {
      const { local } = await ipam.getDefaultAddressSpaces()
      const p = await ipam.requestPool({ addressSpace: local, pool: 'fd00:c0de::/64', v6: true })
      expect(p.pool.version).toBe(6)
      const r = await ipam.requestAddress(p.poolId)
      expect(r).toBeDefined()
      if (r !== undefined) {
        expect(r.address.ip.version).toBe(6)
        expect(prefixContains(p.pool, r.address.ip)).toBe(true)
        expect(r.address.ip.value).not.toBe(p.pool.network)
        expect(r.address.prefix.bits).toBe(64)
        await ipam.releaseAddress(p.poolId, r.address.ip)
      }
      await ipam.releasePool(p.poolId)
    })
  })
}
