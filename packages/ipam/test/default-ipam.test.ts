import { describe, expect, it } from 'vitest'
import { formatCidr, formatIp, formatPrefix, parseIp, type PoolId } from '@cnm/types'
import { OPTION_REQUEST_ADDRESS_TYPE, OPTION_SERIAL, REQUEST_ADDRESS_TYPE_GATEWAY } from '@cnm/ipamapi'
import { GLOBAL_ADDRESS_SPACE as GLOBAL, LOCAL_ADDRESS_SPACE as LOCAL, defaultIpam } from '../src/index.js'
import { addr, expectReject, make } from './helpers.js'

const SERIAL = { options: { [OPTION_SERIAL]: 'true' } }

describe('default ipam: basics', () => {
  it('names LocalDefault and GlobalDefault and wants request replay without a store', async () => {
    const ipam = make()
    expect(await ipam.getDefaultAddressSpaces()).toEqual({ local: 'LocalDefault', global: 'GlobalDefault' })
    expect(ipam.builtIn).toBe(true)
    expect(ipam.capabilities).toEqual({ requiresMacAddress: false, requiresRequestReplay: true })
  })

  it('(§5.9) hands out 172.17.0.0/16 first, then a different pool', async () => {
    const ipam = make()
    const a = await ipam.requestPool({ addressSpace: LOCAL })
    const b = await ipam.requestPool({ addressSpace: LOCAL })
    expect(formatPrefix(a.pool)).toBe('172.17.0.0/16')
    expect(a.poolId).toBe('LocalDefault/172.17.0.0/16')
    expect(formatPrefix(b.pool)).toBe('172.18.0.0/16')
    expect(b.poolId).not.toBe(a.poolId)
  })

  it('walks the 31 local defaults in libnetwork order, then reports none left (not-found)', async () => {
    const ipam = make()
    const got: string[] = []
    for (let i = 0; i < 31; i++) got.push(formatPrefix((await ipam.requestPool({ addressSpace: LOCAL })).pool))
    const expected = [
      ...Array.from({ length: 15 }, (_, i) => `172.${17 + i}.0.0/16`),
      ...Array.from({ length: 16 }, (_, i) => `192.168.${i * 16}.0/20`),
    ]
    expect(got).toEqual(expected)
    const err = await expectReject(ipam.requestPool({ addressSpace: LOCAL }), 'ERR_IPAM_NO_AVAILABLE_POOL', 'not-found')
    expect(err.message).toContain('could not find an available, non-overlapping IPv4 address pool')
  })

  it('(§5.15) after exhausting, releasing all and re-requesting, never repeats a pool before the list wraps', async () => {
    const ipam = make()
    const first = []
    for (let i = 0; i < 31; i++) first.push(await ipam.requestPool({ addressSpace: LOCAL }))
    for (const p of first) await ipam.releasePool(p.poolId)
    const seen = new Set<string>()
    const order: string[] = []
    for (let i = 0; i < 31; i++) {
      const p = await ipam.requestPool({ addressSpace: LOCAL })
      expect(seen.has(p.poolId)).toBe(false)
      seen.add(p.poolId)
      order.push(formatPrefix(p.pool))
      await ipam.releasePool(p.poolId)
    }
    expect(seen.size).toBe(31)
    // The walk resumed at the start index, which had wrapped to the head of the list.
    expect(order[0]).toBe('172.17.0.0/16')
    // A 32nd request wraps around.
    expect(formatPrefix((await ipam.requestPool({ addressSpace: LOCAL })).pool)).toBe('172.17.0.0/16')
  })

  it('rotates the start index: a released default pool is not handed out again at once', async () => {
    const ipam = make()
    const a = await ipam.requestPool({ addressSpace: LOCAL })
    const b = await ipam.requestPool({ addressSpace: LOCAL })
    await ipam.releasePool(a.poolId)
    const c = await ipam.requestPool({ addressSpace: LOCAL })
    expect(formatPrefix(b.pool)).toBe('172.18.0.0/16')
    expect(formatPrefix(c.pool)).toBe('172.19.0.0/16')
  })

  it('skips default pools that overlap an explicit pool', async () => {
    const ipam = make()
    await ipam.requestPool({ addressSpace: LOCAL, pool: '172.16.0.0/12' })
    const p = await ipam.requestPool({ addressSpace: LOCAL })
    expect(formatPrefix(p.pool)).toBe('192.168.0.0/20')
    await ipam.requestPool({ addressSpace: LOCAL, pool: '192.168.17.0/24' })
    const q = await ipam.requestPool({ addressSpace: LOCAL })
    expect(formatPrefix(q.pool)).toBe('192.168.32.0/20')
  })

  it('(§5.10) overlap matrix for IPv4 and IPv6', async () => {
    const ipam = make()
    await ipam.requestPool({ addressSpace: LOCAL, pool: '10.0.0.0/8' })
    for (const pool of ['10.0.0.0/8', '10.128.0.0/9', '10.0.0.0/6', '10.20.2.0/24']) {
      await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool }), 'ERR_IPAM_POOL_OVERLAP', 'forbidden')
    }
    const ok = await ipam.requestPool({ addressSpace: LOCAL, pool: '11.0.0.0/8' })
    expect(formatPrefix(ok.pool)).toBe('11.0.0.0/8')

    await ipam.requestPool({ addressSpace: LOCAL, pool: '1003:1:2:3::/64', v6: true })
    await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, pool: '1003:1:2:3:4:5:6::/112', v6: true }),
      'ERR_IPAM_POOL_OVERLAP',
    )
    await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, pool: '1003:1:2::/48', v6: true }),
      'ERR_IPAM_POOL_OVERLAP',
    )
    await ipam.requestPool({ addressSpace: LOCAL, pool: '1003:1:2:4::/64', v6: true })
    const other = make()
    await other.requestPool({ addressSpace: LOCAL, pool: '1003:1:2:3:4:5:6::/112', v6: true })
    await expectReject(
      other.requestPool({ addressSpace: LOCAL, pool: '1003:1:2:3::/64', v6: true }),
      'ERR_IPAM_POOL_OVERLAP',
    )
  })

  it('(§5.11) the same CIDR in two address spaces gets two pool IDs', async () => {
    const ipam = make()
    const a = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.5.0.0/16' })
    const b = await ipam.requestPool({ addressSpace: GLOBAL, pool: '10.5.0.0/16' })
    expect(a.poolId).toBe('LocalDefault/10.5.0.0/16')
    expect(b.poolId).toBe('GlobalDefault/10.5.0.0/16')
    expect(await addr(ipam, a.poolId)).toBe('10.5.0.1')
    expect(await addr(ipam, b.poolId)).toBe('10.5.0.1')
  })

  it('canonicalises the pool (10.1.2.3/16 → 10.1.0.0/16)', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.1.2.3/16' })
    expect(p.poolId).toBe('LocalDefault/10.1.0.0/16')
    expect(formatPrefix(p.pool)).toBe('10.1.0.0/16')
  })

  it('(§5.15) releasing a pool twice fails the second time', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL })
    await ipam.releasePool(p.poolId)
    await expectReject(ipam.releasePool(p.poolId), 'ERR_IPAM_BAD_POOL', 'invalid-argument')
  })

  it('global space: 10.0.0.0/8 split into /24s, computed lazily, skipping a covering explicit pool in one jump', async () => {
    const ipam = make()
    const a = await ipam.requestPool({ addressSpace: GLOBAL })
    const b = await ipam.requestPool({ addressSpace: GLOBAL })
    expect([formatPrefix(a.pool), formatPrefix(b.pool)]).toEqual(['10.0.0.0/24', '10.0.1.0/24'])
    await ipam.requestPool({ addressSpace: GLOBAL, pool: '10.0.0.0/9', subPool: '10.0.5.0/24' }).catch(() => undefined)
    const c = await ipam.requestPool({ addressSpace: GLOBAL })
    expect(formatPrefix(c.pool)).toBe('10.128.0.0/24')
  })

  it('exhausts all 65 536 global default pools, then reports none left', async () => {
    const ipam = make()
    const started = performance.now()
    let last = ''
    for (let i = 0; i < 65536; i++) last = formatPrefix((await ipam.requestPool({ addressSpace: GLOBAL })).pool)
    expect(last).toBe('10.255.255.0/24')
    await expectReject(ipam.requestPool({ addressSpace: GLOBAL }), 'ERR_IPAM_NO_AVAILABLE_POOL')
    expect(performance.now() - started).toBeLessThan(20_000)
  }, 60_000)
})

describe('default ipam: configured default pools', () => {
  it('splits each base into subnets of the given size, in order', async () => {
    const ipam = make({
      localPools: [
        { base: '10.10.0.0/16', size: 24 },
        { base: '10.20.0.0/23', size: 24 },
      ],
    })
    const got = []
    for (let i = 0; i < 3; i++) got.push(formatPrefix((await ipam.requestPool({ addressSpace: LOCAL })).pool))
    expect(got).toEqual(['10.10.0.0/24', '10.10.1.0/24', '10.10.2.0/24'])
  })

  it('keeps the built-in lists when given empty lists', async () => {
    const ipam = make({ localPools: [], globalPools: [] })
    expect(formatPrefix((await ipam.requestPool({ addressSpace: LOCAL })).pool)).toBe('172.17.0.0/16')
    expect(formatPrefix((await ipam.requestPool({ addressSpace: GLOBAL })).pool)).toBe('10.0.0.0/24')
  })

  it('serves IPv6 defaults only when configured', async () => {
    const ipam = make({
      localPools: [
        { base: '172.30.0.0/16', size: 24 },
        { base: 'fd00:1::/48', size: 64 },
      ],
    })
    const p = await ipam.requestPool({ addressSpace: LOCAL, v6: true })
    expect(formatPrefix(p.pool)).toBe('fd00:1::/64')
    expect(formatPrefix((await ipam.requestPool({ addressSpace: LOCAL })).pool)).toBe('172.30.0.0/24')
  })

  it.each([
    [{ localPools: [{ base: '10.0.0.0/16', size: 0 }] }],
    [{ localPools: [{ base: '10.0.0.0/16', size: -8 }] }],
    [{ localPools: [{ base: '10.0.0.0/16', size: 8 }] }],
    [{ localPools: [{ base: '10.0.0.0/16', size: 33 }] }],
    [{ localPools: [{ base: '10.0.0.0/16', size: 24.5 }] }],
    [{ globalPools: [{ base: 'not-a-cidr', size: 24 }] }],
    [{ addressSpaces: [''] }],
    [{ addressSpaces: ['LocalDefault'] }],
    [{ addressSpaces: ['a/b'] }],
  ])('rejects invalid init %j at construction', (init) => {
    let err: unknown
    try {
      defaultIpam(init)
    } catch (e) {
      err = e
    }
    expect((err as { code?: string }).code).toBe('ERR_IPAM_INVALID_CONFIG')
    expect((err as { kind?: string }).kind).toBe('invalid-argument')
  })

  it('rejects missing components.logger', () => {
    expect(() => defaultIpam()({} as never)).toThrow(expect.objectContaining({ code: 'ERR_IPAM_INVALID_CONFIG' }))
  })

  it('extra address spaces take explicit pools only', async () => {
    const ipam = make({ addressSpaces: ['Custom'] })
    const p = await ipam.requestPool({ addressSpace: 'Custom', pool: '172.17.0.0/16' })
    expect(p.poolId).toBe('Custom/172.17.0.0/16')
    await expectReject(
      ipam.requestPool({ addressSpace: 'Custom' }),
      'ERR_IPAM_DEFAULT_POOL_NOT_SUPPORTED',
      'not-implemented',
    )
  })
})

describe('default ipam: request validation', () => {
  it('rejects bad address spaces, pools and sub-pools with typed errors', async () => {
    const ipam = make()
    await expectReject(ipam.requestPool({ addressSpace: '' }), 'ERR_IPAM_INVALID_ADDRESS_SPACE', 'invalid-argument')
    const unknown = await expectReject(ipam.requestPool({ addressSpace: 'Nope' }), 'ERR_IPAM_INVALID_ADDRESS_SPACE')
    expect(unknown.message).toContain('cannot find address space Nope')
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, subPool: '10.0.0.0/24' }), 'ERR_IPAM_INVALID_SUBPOOL')
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool: '10.0.0.0/33' }), 'ERR_IPAM_INVALID_POOL')
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool: 'x' }), 'ERR_IPAM_INVALID_POOL')
    await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, pool: '10.0.0.0/16', subPool: '10.0.0.0' }),
      'ERR_IPAM_INVALID_SUBPOOL',
    )
    // Outside the pool, shorter than the pool, or the other IP version: rejected (upstream accepted these).
    for (const subPool of ['10.1.0.0/24', '10.0.0.0/8', 'fd00::/64']) {
      await expectReject(
        ipam.requestPool({ addressSpace: LOCAL, pool: '10.0.0.0/16', subPool }),
        'ERR_IPAM_INVALID_SUBPOOL',
      )
    }
    // A sub-pool past the 2^64 - 1 addressable ordinals of a short IPv6 pool.
    await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, pool: 'fd00::/48', subPool: 'fd00:0:0:ffff::/64' }),
      'ERR_IPAM_INVALID_SUBPOOL',
    )
  })

  it('rejects malformed pool IDs and unknown pools', async () => {
    const ipam = make()
    for (const id of [
      '',
      'LocalDefault',
      'LocalDefault/10.0.0.0',
      'LocalDefault/10.0.0.0/16/10.0.0.0',
      '/10.0.0.0/16',
      'LocalDefault/x/16',
    ]) {
      await expectReject(ipam.requestAddress(id as PoolId), 'ERR_IPAM_INVALID_POOL_ID', 'invalid-argument')
      await expectReject(ipam.releasePool(id as PoolId), 'ERR_IPAM_INVALID_POOL_ID')
    }
    await expectReject(
      ipam.requestAddress('LocalDefault/10.0.0.0/16' as PoolId),
      'ERR_IPAM_POOL_NOT_FOUND',
      'not-found',
    )
    await expectReject(ipam.releaseAddress('LocalDefault/10.0.0.0/16' as PoolId, '10.0.0.1'), 'ERR_IPAM_POOL_NOT_FOUND')
    await expectReject(ipam.requestAddress('Other/10.0.0.0/16' as PoolId), 'ERR_IPAM_INVALID_ADDRESS_SPACE')
    await expectReject(ipam.releasePool('LocalDefault/10.0.0.0/16' as PoolId), 'ERR_IPAM_BAD_POOL', 'invalid-argument')
  })

  it('accepts a non-canonical spelling of a pool ID', async () => {
    const ipam = make()
    await ipam.requestPool({ addressSpace: LOCAL, pool: '10.3.0.0/16' })
    expect(await addr(ipam, 'LocalDefault/10.3.9.9/16' as PoolId)).toBe('10.3.0.1')
  })

  it('rejects malformed addresses', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.3.0.0/16' })
    await expectReject(
      ipam.requestAddress(p.poolId, { preferred: '10.3.0' }),
      'ERR_IPAM_INVALID_ADDRESS',
      'invalid-argument',
    )
    await expectReject(ipam.releaseAddress(p.poolId, 'nope'), 'ERR_IPAM_INVALID_ADDRESS')
    await expectReject(ipam.releaseAddress(p.poolId, null as never), 'ERR_IPAM_INVALID_ADDRESS')
    await expectReject(ipam.releaseAddress(p.poolId, { version: 4, value: 5 } as never), 'ERR_IPAM_INVALID_ADDRESS')
  })

  it('rejects with ERR_ABORTED, cause = reason, on an aborted signal', async () => {
    const ipam = make()
    const reason = new Error('cancelled')
    const signal = AbortSignal.abort(reason)
    const err = await expectReject(ipam.requestPool({ addressSpace: LOCAL, signal }), 'ERR_ABORTED', 'aborted')
    expect(err.cause).toBe(reason)
    const p = await ipam.requestPool({ addressSpace: LOCAL })
    await expectReject(ipam.requestAddress(p.poolId, { signal }), 'ERR_ABORTED')
    await expectReject(ipam.releaseAddress(p.poolId, '172.17.0.2', { signal }), 'ERR_ABORTED')
    await expectReject(ipam.releasePool(p.poolId, { signal }), 'ERR_ABORTED')
    await expectReject(ipam.getDefaultAddressSpaces({ signal }), 'ERR_ABORTED')
    // Nothing happened: the pool is still there and its first address is free.
    expect(await addr(ipam, p.poolId)).toBe('172.17.0.1')
  })
})

describe('default ipam: pools and sub-pools', () => {
  it('(§5.12) reference counts of a master and its sub-pools', async () => {
    const ipam = make()
    const master = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16' })
    const sub = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16', subPool: '172.28.30.0/24' })
    expect(sub.poolId).toBe('LocalDefault/172.28.0.0/16/172.28.30.0/24')
    await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16', subPool: '172.28.30.0/24' }),
      'ERR_IPAM_POOL_OVERLAP',
    )
    // The very same master twice fails too.
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16' }), 'ERR_IPAM_POOL_OVERLAP')
    // Release the sub-pool: the master (ref 2 → 1) survives.
    await ipam.releasePool(sub.poolId)
    expect(await addr(ipam, master.poolId)).toBe('172.28.0.1')
    await expectReject(ipam.requestAddress(sub.poolId), 'ERR_IPAM_POOL_NOT_FOUND')
    // Release the master: gone (1 → 0); requesting it again works (ref 1) and starts empty.
    await ipam.releasePool(master.poolId)
    await expectReject(ipam.requestAddress(master.poolId), 'ERR_IPAM_POOL_NOT_FOUND')
    const again = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16' })
    expect(await addr(ipam, again.poolId)).toBe('172.28.0.1')
    await ipam.releasePool(again.poolId)
    await expectReject(ipam.releasePool(again.poolId), 'ERR_IPAM_BAD_POOL')
  })

  it('creates the master implicitly for a sub-pool, and removes it with the last sub-pool', async () => {
    const ipam = make()
    const s1 = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.7.0.0/16', subPool: '10.7.1.0/24' })
    const s2 = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.7.0.0/16', subPool: '10.7.2.0/24' })
    // The implicit master is registered: asking for it explicitly is an overlap.
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool: '10.7.0.0/16' }), 'ERR_IPAM_POOL_OVERLAP')
    expect(await addr(ipam, s1.poolId)).toBe('10.7.1.0')
    expect(await addr(ipam, s2.poolId)).toBe('10.7.2.0')
    await ipam.releasePool(s1.poolId)
    expect(await addr(ipam, 'LocalDefault/10.7.0.0/16' as PoolId)).toBe('10.7.0.1')
    await ipam.releasePool(s2.poolId)
    await expectReject(ipam.requestAddress('LocalDefault/10.7.0.0/16' as PoolId), 'ERR_IPAM_POOL_NOT_FOUND')
    const m = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.7.0.0/16' })
    expect(await addr(ipam, m.poolId)).toBe('10.7.0.1')
  })

  it('allows a sub-pool equal to its master', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.8.0.0/24', subPool: '10.8.0.0/24' })
    expect(p.poolId).toBe('LocalDefault/10.8.0.0/24/10.8.0.0/24')
    expect(await addr(ipam, p.poolId)).toBe('10.8.0.1')
  })

  it('(§5.13) sub-pool 172.28.30.0/24 of 172.28.0.0/16: 256 addresses, last .255 with mask /16, then reuse', async () => {
    for (const opts of [undefined, SERIAL]) {
      const ipam = make()
      const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16', subPool: '172.28.30.0/24' })
      let last = ''
      for (let i = 0; i < 256; i++) {
        const r = await ipam.requestAddress(p.poolId, opts)
        last = r === undefined ? '' : formatCidr(r.address)
        if (i === 0) expect(last).toBe('172.28.30.0/16')
      }
      expect(last).toBe('172.28.30.255/16')
      await expectReject(ipam.requestAddress(p.poolId, opts), 'ERR_IPAM_NO_AVAILABLE_ADDRESS', 'unavailable')
      await ipam.releaseAddress(p.poolId, '172.28.30.97')
      expect(await addr(ipam, p.poolId, opts)).toBe('172.28.30.97')
    }
  })

  it('(§5.13) serial mode on sub-pool 10.2.2.0/24 of 10.2.0.0/16', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.2.0.0/16', subPool: '10.2.2.0/24' })
    expect(await addr(ipam, p.poolId, { preferred: '10.2.2.1' })).toBe('10.2.2.1')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.2.2.0')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.2.2.2')
    await ipam.releaseAddress(p.poolId, '10.2.2.0')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.2.2.3')
    await ipam.releaseAddress(p.poolId, '10.2.2.1')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.2.2.4')
    // First-free mode takes the lowest free address instead.
    expect(await addr(ipam, p.poolId)).toBe('10.2.2.0')
  })

  it('a preferred address only has to be inside the master, even for a sub-pool ID', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.2.0.0/16', subPool: '10.2.2.0/24' })
    expect(await addr(ipam, p.poolId, { preferred: '10.2.99.9' })).toBe('10.2.99.9')
    await ipam.releaseAddress(p.poolId, '10.2.99.9')
    await expectReject(ipam.requestAddress(p.poolId, { preferred: '10.3.0.1' }), 'ERR_IPAM_OUT_OF_RANGE')
  })
})

describe('default ipam: addresses', () => {
  it('(§3.7) 192.168.59.0/24: 254 addresses ending at .254, then none', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '192.168.59.0/24' })
    let last = ''
    for (let i = 0; i < 254; i++) last = await addr(ipam, p.poolId)
    expect(last).toBe('192.168.59.254')
    await expectReject(ipam.requestAddress(p.poolId), 'ERR_IPAM_NO_AVAILABLE_ADDRESS', 'unavailable')
    expect(ipam.freeAddresses(p.poolId)).toBe(0n)
  })

  it.each([
    ['192.168.0.0/16', 256, '192.168.1.0'],
    ['10.0.0.0/8', 256, '10.0.1.0'],
    ['192.168.128.0/18', 1023, '192.168.131.255'],
  ])('(§3.7) %s: request %i is %s', async (pool, n, want) => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool })
    let last = ''
    for (let i = 0; i < n; i++) last = await addr(ipam, p.poolId)
    expect(last).toBe(want)
  })

  it('returns the address with the pool mask and empty metadata; the gateway option is informational', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL })
    const gw = await ipam.requestAddress(p.poolId, {
      options: { [OPTION_REQUEST_ADDRESS_TYPE]: REQUEST_ADDRESS_TYPE_GATEWAY },
    })
    expect(gw === undefined ? '' : formatCidr(gw.address)).toBe('172.17.0.1/16')
    expect(gw?.meta).toEqual({})
    expect(await addr(ipam, p.poolId)).toBe('172.17.0.2')
  })

  it('(§5.14) preferred 192.168.100.250 twice → in use; 172.17.0.23 from 192.168/16 → out of range', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '192.168.0.0/16' })
    expect(await addr(ipam, p.poolId, { preferred: '192.168.100.250' })).toBe('192.168.100.250')
    const err = await expectReject(
      ipam.requestAddress(p.poolId, { preferred: '192.168.100.250' }),
      'ERR_IPAM_ADDRESS_IN_USE',
      'forbidden',
    )
    expect(err.message).toContain('already in use')
    await expectReject(
      ipam.requestAddress(p.poolId, { preferred: '172.17.0.23' }),
      'ERR_IPAM_OUT_OF_RANGE',
      'invalid-argument',
    )
    await expectReject(ipam.releaseAddress(p.poolId, '172.17.0.23'), 'ERR_IPAM_OUT_OF_RANGE')
    await expectReject(ipam.requestAddress(p.poolId, { preferred: 'fd00::1' }), 'ERR_IPAM_OUT_OF_RANGE')
    // The network and broadcast addresses are reserved.
    await expectReject(ipam.requestAddress(p.poolId, { preferred: '192.168.0.0' }), 'ERR_IPAM_ADDRESS_IN_USE')
    await expectReject(ipam.requestAddress(p.poolId, { preferred: '192.168.255.255' }), 'ERR_IPAM_ADDRESS_IN_USE')
    // An IpAddr value works as well as text.
    expect(await addr(ipam, p.poolId, { preferred: parseIp('192.168.7.7') })).toBe('192.168.7.7')
  })

  it('first-free reuses the lowest released address; serial reuses it last', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.9.0.0/24' })
    for (let i = 0; i < 10; i++) await addr(ipam, p.poolId)
    await ipam.releaseAddress(p.poolId, '10.9.0.3')
    expect(await addr(ipam, p.poolId)).toBe('10.9.0.3')
    await ipam.releaseAddress(p.poolId, '10.9.0.3')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.9.0.11')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('10.9.0.12')
  })

  it('releasing a free address changes nothing', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.9.0.0/29' })
    const free = ipam.freeAddresses(p.poolId)
    await ipam.releaseAddress(p.poolId, '10.9.0.4')
    await ipam.releaseAddress(p.poolId, '10.9.0.4')
    expect(ipam.freeAddresses(p.poolId)).toBe(free)
  })

  it('/31 and /32 pools have no usable address', async () => {
    const ipam = make()
    for (const pool of ['10.9.9.0/31', '10.9.9.8/32']) {
      const p = await ipam.requestPool({ addressSpace: LOCAL, pool })
      await expectReject(ipam.requestAddress(p.poolId), 'ERR_IPAM_NO_AVAILABLE_ADDRESS')
    }
  })

  it('(§5.16) IPv6: no default pool; explicit fe90::/64 hands out fe90::1 first, no broadcast reserved', async () => {
    const ipam = make()
    const err = await expectReject(
      ipam.requestPool({ addressSpace: LOCAL, v6: true }),
      'ERR_IPAM_NO_AVAILABLE_POOL',
      'not-found',
    )
    expect(err.message).toContain('IPv6')
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: 'fe90::/64', v6: true })
    expect(p.poolId).toBe('LocalDefault/fe90::/64')
    const r = await ipam.requestAddress(p.poolId)
    expect(r === undefined ? '' : formatCidr(r.address)).toBe('fe90::1/64')
    expect(await addr(ipam, p.poolId)).toBe('fe90::2')
    // The bitmap is clamped to 2^64 - 1 bits: the very last address of the /64 is not addressable.
    await expectReject(
      ipam.requestAddress(p.poolId, { preferred: 'fe90::ffff:ffff:ffff:ffff' }),
      'ERR_IPAM_OUT_OF_RANGE',
    )
    expect(await addr(ipam, p.poolId, { preferred: 'fe90::ffff:ffff:ffff:fffe' })).toBe('fe90::ffff:ffff:ffff:fffe')
    expect(ipam.freeAddresses(p.poolId)).toBe(2n ** 64n - 1n - 4n)
    // A small IPv6 pool: every address but ::0 (no broadcast).
    const small = await ipam.requestPool({ addressSpace: LOCAL, pool: 'fd00:9::/126' })
    const got = [await addr(ipam, small.poolId), await addr(ipam, small.poolId), await addr(ipam, small.poolId)]
    expect(got).toEqual(['fd00:9::1', 'fd00:9::2', 'fd00:9::3'])
    await expectReject(ipam.requestAddress(small.poolId), 'ERR_IPAM_NO_AVAILABLE_ADDRESS')
  })

  it('IPv6 sub-pool and serial allocation on a /48', async () => {
    const ipam = make()
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: 'fd00:1::/48', subPool: 'fd00:1::5:0/120' })
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('fd00:1::5:0')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('fd00:1::5:1')
    await ipam.releaseAddress(p.poolId, 'fd00:1::5:0')
    expect(await addr(ipam, p.poolId, SERIAL)).toBe('fd00:1::5:2')
    const r = await ipam.requestAddress(p.poolId)
    expect(r?.address.prefix.bits).toBe(48)
    expect(r === undefined ? '' : formatIp(r.address.ip)).toBe('fd00:1::5:0')
    // Only the first 2^64 - 1 ordinals of a pool shorter than /64 are addressable.
    await expectReject(ipam.requestAddress(p.poolId, { preferred: 'fd00:1:0:1::' }), 'ERR_IPAM_OUT_OF_RANGE')
  })
})
