import { Buffer } from 'node:buffer'
import { describe, expect, it } from 'vitest'
import { Bitseq } from '@cnm/bitseq'
import { formatIp, formatPrefix, isCnmError, type PoolId } from '@cnm/types'
import {
  CONFIG_KEY_PREFIX,
  DATA_KEY_PREFIX,
  GLOBAL_ADDRESS_SPACE as GLOBAL,
  LOCAL_ADDRESS_SPACE as LOCAL,
} from '../src/index.js'
import { TestStore } from './fixtures/test-store.js'
import { addr, expectReject, make } from './helpers.js'

const CFG = `${CONFIG_KEY_PREFIX}LocalDefault/`
const dataKey = (id: string): string => `${DATA_KEY_PREFIX}${id}/`

function bitmapOf(store: TestStore, id: string): Bitseq {
  const text = store.text(dataKey(id))
  if (text === undefined) throw new Error(`no bitmap for ${id}`)
  const doc = JSON.parse(text) as { id: string; sequence: string }
  expect(doc.id).toBe(id)
  return Bitseq.deserialize(new Uint8Array(Buffer.from(doc.sequence, 'base64')))
}

describe('default ipam with a store: persistence format', () => {
  it('writes address spaces and bitmaps in libnetwork format under the spec keys (§3.10, §5.12)', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    expect(ipam.capabilities.requiresRequestReplay).toBe(false)
    const master = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16' })
    const sub = await ipam.requestPool({ addressSpace: LOCAL, pool: '172.28.0.0/16', subPool: '172.28.30.0/24' })
    expect(JSON.parse(store.text(CFG) ?? '')).toEqual({
      Scope: 'local',
      Subnets: {
        'LocalDefault/172.28.0.0/16': {
          ParentKey: { AddressSpace: '', Subnet: '', ChildSubnet: '' },
          Pool: '172.28.0.0/16',
          RefCount: 2,
        },
        'LocalDefault/172.28.0.0/16/172.28.30.0/24': {
          ParentKey: { AddressSpace: 'LocalDefault', Subnet: '172.28.0.0/16', ChildSubnet: '' },
          Pool: '172.28.0.0/16',
          Range: { Sub: '172.28.30.0/24', Start: 7680, End: 7935 },
          RefCount: 1,
        },
      },
    })
    // Only the master has a bitmap: 2^16 bits, network and broadcast reserved.
    const bm = bitmapOf(store, 'LocalDefault/172.28.0.0/16')
    expect(bm.bits()).toBe(65536n)
    expect(bm.unselected()).toBe(65534n)
    expect(bm.isSet(0n) && bm.isSet(65535n)).toBe(true)
    expect(store.text(dataKey('LocalDefault/172.28.0.0/16/172.28.30.0/24'))).toBeUndefined()

    expect(await addr(ipam, sub.poolId)).toBe('172.28.30.0')
    expect(await addr(ipam, master.poolId)).toBe('172.28.0.1')
    const after = bitmapOf(store, 'LocalDefault/172.28.0.0/16')
    expect(after.unselected()).toBe(65532n)
    expect(after.isSet(7680n) && after.isSet(1n)).toBe(true)

    await ipam.releasePool(sub.poolId)
    const stored = JSON.parse(store.text(CFG) ?? '') as { Subnets: Record<string, { RefCount: number }> }
    expect(stored.Subnets['LocalDefault/172.28.0.0/16']?.RefCount).toBe(1)
    await ipam.releasePool(master.poolId)
    expect(JSON.parse(store.text(CFG) ?? '')).toEqual({ Scope: 'local', Subnets: {} })
    expect(store.text(dataKey('LocalDefault/172.28.0.0/16'))).toBeUndefined()
  })

  it('keeps 64-bit IPv6 range ordinals exact in the JSON', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    await ipam.requestPool({ addressSpace: LOCAL, pool: 'fd00::/64', subPool: 'fd00::ffff:ffff:ffff:fe00/120' })
    const text = store.text(CFG) ?? ''
    expect(text).toContain('"Start":18446744073709551104,"End":18446744073709551359')
    // A restarted instance reads it back and allocates in the range.
    const again = make(undefined, { store })
    expect(await addr(again, 'LocalDefault/fd00::/64/fd00::ffff:ffff:ffff:fe00/120' as PoolId)).toBe(
      'fd00::ffff:ffff:ffff:fe00',
    )
  })

  it('keeps the global space in the global store, and in memory without one', async () => {
    const local = new TestStore()
    const global = new TestStore()
    const ipam = make(undefined, { store: local, globalStore: global })
    const g = await ipam.requestPool({ addressSpace: GLOBAL })
    expect(formatPrefix(g.pool)).toBe('10.0.0.0/24')
    expect(global.text(`${CONFIG_KEY_PREFIX}GlobalDefault/`)).toContain('"Scope":"global"')
    expect(global.text(dataKey('GlobalDefault/10.0.0.0/24'))).toBeDefined()
    expect(local.data.size).toBe(0)

    const memOnly = make(undefined, { store: local })
    await memOnly.requestPool({ addressSpace: GLOBAL })
    expect(local.data.size).toBe(0)
  })

  it('batches concurrent address requests into few compare-and-swap writes (group commit)', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.20.0.0/16' })
    const before = store.calls.update
    const got = await Promise.all(Array.from({ length: 500 }, () => addr(ipam, p.poolId)))
    expect(new Set(got).size).toBe(500)
    expect(store.calls.update - before).toBeLessThanOrEqual(5)
    expect(bitmapOf(store, p.poolId).unselected()).toBe(65534n - 500n)
  })
})

describe('default ipam with a store: restart replay', () => {
  it('a new instance on the same store sees existing pools and addresses', async () => {
    const store = new TestStore()
    const first = make(undefined, { store })
    const a = await first.requestPool({ addressSpace: LOCAL })
    const b = await first.requestPool({ addressSpace: LOCAL, pool: '10.30.0.0/24', subPool: '10.30.0.128/25' })
    const taken = [await addr(first, a.poolId), await addr(first, a.poolId), await addr(first, b.poolId)]
    expect(taken).toEqual(['172.17.0.1', '172.17.0.2', '10.30.0.128'])

    const second = make(undefined, { store })
    await expectReject(second.requestPool({ addressSpace: LOCAL, pool: '172.17.0.0/16' }), 'ERR_IPAM_POOL_OVERLAP')
    await expectReject(second.requestAddress(a.poolId, { preferred: '172.17.0.2' }), 'ERR_IPAM_ADDRESS_IN_USE')
    expect(await addr(second, a.poolId)).toBe('172.17.0.3')
    expect(await addr(second, b.poolId)).toBe('10.30.0.129')
    // A default request skips the pool the first instance holds.
    expect(formatPrefix((await second.requestPool({ addressSpace: LOCAL })).pool)).toBe('172.18.0.0/16')
    await second.releaseAddress(a.poolId, '172.17.0.1')
    expect(await addr(second, a.poolId)).toBe('172.17.0.1')
    await second.releasePool(b.poolId)
    await expectReject(second.requestAddress(b.poolId), 'ERR_IPAM_POOL_NOT_FOUND')
    expect(store.text(dataKey('LocalDefault/10.30.0.0/24'))).toBeUndefined()
  })

  it('clears a leftover bitmap when its pool is created again', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.40.0.0/24' })
    for (let i = 0; i < 10; i++) await addr(ipam, p.poolId)
    const leftover = store.data.get(dataKey(p.poolId))
    await ipam.releasePool(p.poolId)
    // Simulate a crash between the records write and the bitmap delete: the full bitmap is still there.
    if (leftover === undefined) throw new Error('no bitmap')
    await store.put(dataKey(p.poolId), leftover.value)
    const again = make(undefined, { store })
    const q = await again.requestPool({ addressSpace: LOCAL, pool: '10.40.0.0/24' })
    expect(await addr(again, q.poolId)).toBe('10.40.0.1')
  })

  it('reports undecodable stored state as ERR_IPAM_STORE', async () => {
    const store = new TestStore()
    await store.put(CFG, new TextEncoder().encode('{"Scope":"local","Subnets":{"bad id":{}}}'))
    const ipam = make(undefined, { store })
    await expectReject(ipam.requestPool({ addressSpace: LOCAL }), 'ERR_IPAM_STORE', 'internal')
    await store.put(CFG, new TextEncoder().encode('not json'))
    await expectReject(make(undefined, { store }).requestPool({ addressSpace: LOCAL }), 'ERR_IPAM_STORE')

    const ok = new TestStore()
    const a = make(undefined, { store: ok })
    const p = await a.requestPool({ addressSpace: LOCAL, pool: '10.41.0.0/24' })
    await ok.put(dataKey(p.poolId), new TextEncoder().encode('{"id":"x","sequence":"AAAA"}'))
    const b = make(undefined, { store: ok })
    await expectReject(b.requestAddress(p.poolId), 'ERR_IPAM_STORE', 'internal')
  })
})

describe('default ipam with a store: failures', () => {
  it('a failed bitmap write rejects with ERR_IPAM_STORE and hands out nothing twice afterwards', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.50.0.0/24' })
    expect(await addr(ipam, p.poolId)).toBe('10.50.0.1')
    const disk = new Error('disk full')
    store.failNext('update', disk, (k) => k.startsWith(DATA_KEY_PREFIX))
    const err = await expectReject(ipam.requestAddress(p.poolId), 'ERR_IPAM_STORE', 'internal')
    expect(err.cause).toBe(disk)
    // The failed allocation was not committed: .2 is handed out now, exactly once.
    const got = await Promise.all([addr(ipam, p.poolId), addr(ipam, p.poolId)])
    expect(got.sort()).toEqual(['10.50.0.2', '10.50.0.3'])
    store.failNext('get', new Error('io'), (k) => k.startsWith(DATA_KEY_PREFIX))
    store.failNext('update', new Error('io'), (k) => k.startsWith(DATA_KEY_PREFIX))
    await expectReject(ipam.releaseAddress(p.poolId, '10.50.0.2'), 'ERR_IPAM_STORE')
    await expectReject(ipam.releaseAddress(p.poolId, '10.50.0.2'), 'ERR_IPAM_STORE')
    await ipam.releaseAddress(p.poolId, '10.50.0.2')
    expect(bitmapOf(store, p.poolId).isSet(2n)).toBe(false)
  })

  it('a failed records write rejects with ERR_IPAM_STORE and registers nothing', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    store.failNext('create', new Error('io'), (k) => k === CFG)
    await expectReject(ipam.requestPool({ addressSpace: LOCAL, pool: '10.60.0.0/16' }), 'ERR_IPAM_STORE', 'internal')
    await expectReject(ipam.requestAddress('LocalDefault/10.60.0.0/16' as PoolId), 'ERR_IPAM_POOL_NOT_FOUND')
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.60.0.0/16' })
    store.failNext('update', new Error('io'), (k) => k === CFG)
    await expectReject(ipam.releasePool(p.poolId), 'ERR_IPAM_STORE')
    expect(await addr(ipam, p.poolId)).toBe('10.60.0.1')
    store.failNext('get', new Error('io'), (k) => k === CFG)
    await expectReject(make(undefined, { store }).requestAddress(p.poolId), 'ERR_IPAM_STORE')
  })

  it('a caller that aborts while queued gets ERR_ABORTED and consumes no address', async () => {
    const store = new TestStore()
    const ipam = make(undefined, { store })
    const p = await ipam.requestPool({ addressSpace: LOCAL, pool: '10.70.0.0/24' })
    const first = ipam.requestAddress(p.poolId)
    const ac = new AbortController()
    const second = ipam.requestAddress(p.poolId, { signal: ac.signal })
    ac.abort(new Error('gave up'))
    const r = await first
    expect(r === undefined ? '' : formatIp(r.address.ip)).toBe('10.70.0.1')
    const err = await expectReject(second, 'ERR_ABORTED', 'aborted')
    expect((err.cause as Error).message).toBe('gave up')
    expect(await addr(ipam, p.poolId)).toBe('10.70.0.2')
  })
})

describe('default ipam with a store: two instances', () => {
  it('sees a pool created by the other instance, and forgets one it released', async () => {
    const store = new TestStore()
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    await b.getDefaultAddressSpaces()
    const p = await a.requestPool({ addressSpace: LOCAL, pool: '10.80.0.0/24' })
    expect(await addr(b, p.poolId)).toBe('10.80.0.1')
    expect(await addr(a, p.poolId)).toBe('10.80.0.2')
    await a.releasePool(p.poolId)
    await expectReject(b.requestAddress(p.poolId), 'ERR_IPAM_POOL_NOT_FOUND')
    await expectReject(b.releasePool(p.poolId), 'ERR_IPAM_BAD_POOL')
  })

  it('answers from the stored state, not a stale cache', async () => {
    const store = new TestStore()
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    const p = await a.requestPool({ addressSpace: LOCAL, pool: '10.81.0.0/24' })
    expect(await addr(b, p.poolId)).toBe('10.81.0.1')
    // a's cache predates b's write: its answers must still be right.
    expect(await addr(a, p.poolId, { preferred: '10.81.0.5' })).toBe('10.81.0.5')
    await expectReject(b.requestAddress(p.poolId, { preferred: '10.81.0.5' }), 'ERR_IPAM_ADDRESS_IN_USE')
    await b.releaseAddress(p.poolId, '10.81.0.5')
    expect(bitmapOf(store, p.poolId).isSet(5n)).toBe(false)
    expect(await addr(a, p.poolId, { preferred: '10.81.0.5' })).toBe('10.81.0.5')
    // Full pool seen through a stale cache: b frees one, a must find it.
    const small = await a.requestPool({ addressSpace: LOCAL, pool: '10.82.0.0/30' })
    expect([await addr(a, small.poolId), await addr(a, small.poolId)]).toEqual(['10.82.0.1', '10.82.0.2'])
    await expectReject(b.requestAddress(small.poolId), 'ERR_IPAM_NO_AVAILABLE_ADDRESS')
    await a.releaseAddress(small.poolId, '10.82.0.2')
    expect(await addr(b, small.poolId)).toBe('10.82.0.2')
    // Overlap seen through a stale records cache.
    await b.releasePool(small.poolId)
    const again = await a.requestPool({ addressSpace: LOCAL, pool: '10.82.0.0/30' })
    expect(again.poolId).toBe(small.poolId)
  })

  it('hundreds of interleaved requests from two instances never hand out an address twice', async () => {
    const store = new TestStore()
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    const p = await a.requestPool({ addressSpace: LOCAL, pool: '10.90.0.0/22' })
    const ops: Array<Promise<string>> = []
    for (let i = 0; i < 600; i++)
      ops.push(
        addr(
          i % 2 === 0 ? a : b,
          p.poolId,
          i % 3 === 0 ? { options: { 'com.docker.network.ipam.serial': 'true' } } : undefined,
        ),
      )
    const got = await Promise.all(ops)
    expect(new Set(got).size).toBe(600)
    // Release half from the other instance, concurrently with new requests.
    const rel = got.slice(0, 300).map((ip, i) => (i % 2 === 0 ? b : a).releaseAddress(p.poolId, ip))
    const more = Array.from({ length: 300 }, (_, i) => addr(i % 2 === 0 ? a : b, p.poolId))
    await Promise.all(rel)
    const got2 = await Promise.all(more)
    const held = new Set([...got.slice(300), ...got2])
    expect(held.size).toBe(600)
    expect(bitmapOf(store, p.poolId).unselected()).toBe(1022n - 600n)
  })

  it('concurrent default pool requests from two instances get distinct pools', async () => {
    const store = new TestStore()
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    const res = await Promise.allSettled(
      Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? a : b).requestPool({ addressSpace: LOCAL })),
    )
    const ok = res.filter((r) => r.status === 'fulfilled').map((r) => r.value.poolId)
    const failed = res.filter((r) => r.status === 'rejected').map((r) => r.reason as unknown)
    expect(new Set(ok).size).toBe(ok.length)
    expect(ok.length).toBe(31)
    expect(failed.every((e) => isCnmError(e, 'ERR_IPAM_NO_AVAILABLE_POOL'))).toBe(true)
    const subnets = Object.keys((JSON.parse(store.text(CFG) ?? '') as { Subnets: object }).Subnets)
    expect(subnets.sort()).toEqual([...ok].sort())
  })

  it('concurrent pool create/release churn on one pool ID stays consistent', async () => {
    const store = new TestStore()
    const a = make(undefined, { store })
    const b = make(undefined, { store })
    for (let round = 0; round < 20; round++) {
      const results = await Promise.allSettled([
        a.requestPool({ addressSpace: LOCAL, pool: '10.99.0.0/24' }),
        b.requestPool({ addressSpace: LOCAL, pool: '10.99.0.0/24' }),
      ])
      const won = results.filter((r) => r.status === 'fulfilled')
      expect(won.length).toBe(1)
      const loser = results.find((r) => r.status === 'rejected')
      expect(isCnmError(loser?.reason, 'ERR_IPAM_POOL_OVERLAP')).toBe(true)
      const winner = results[0]?.status === 'fulfilled' ? a : b
      const other = winner === a ? b : a
      const id = 'LocalDefault/10.99.0.0/24' as PoolId
      const got = await Promise.all([addr(winner, id), addr(other, id), addr(winner, id)])
      expect(new Set(got).size).toBe(3)
      expect(got.includes('10.99.0.1')).toBe(true)
      await other.releasePool(id)
    }
  })
})
