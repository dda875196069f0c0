import { describe, expect, it } from 'vitest'
import { reapDeadNodes, reapLeavingNetworks, reapTombstones } from '../src/reaper.js'
import { EntryStore } from '../src/tables.js'

const v = new Uint8Array([1])

describe('reaper passes', () => {
  it('tombstones lose period + elapsed and go once no more than period + 1 s remains; live entries stay', () => {
    const store = new EntryStore()
    store.put('n', 't', 'live', { ltime: 1n, owner: 'a', value: v, deleting: false, reapTimeMs: 0 })
    store.put('n', 't', 'long', { ltime: 2n, owner: 'a', value: v, deleting: true, reapTimeMs: 30_000 })
    store.put('n', 't', 'short', { ltime: 3n, owner: 'a', value: v, deleting: true, reapTimeMs: 6_000 })
    store.put('other', 't', 'x', { ltime: 4n, owner: 'a', value: v, deleting: true, reapTimeMs: 1 })
    expect(reapTombstones(store, ['n'], 5_000, () => 0)).toBe(1)
    expect(store.get('n', 't', 'short')).toBeUndefined()
    expect(store.get('n', 't', 'long')?.reapTimeMs).toBe(25_000)
    expect(store.get('n', 't', 'live')).toBeDefined()
    expect(store.get('other', 't', 'x')).toBeDefined() // not a local network: untouched
    // 25 → 20 → 15 → 10 → 5 (5 ≤ 5 + 1: removed on the 5th pass)
    for (let i = 0; i < 4; i++) reapTombstones(store, ['n'], 5_000, () => 0)
    expect(store.get('n', 't', 'long')?.reapTimeMs).toBe(5_000)
    reapTombstones(store, ['n'], 5_000, () => 0)
    expect(store.get('n', 't', 'long')).toBeUndefined()
    expect(store.count('n')).toBe(1)
  })

  it('leaving network records count down and are removed at ≤ 0', () => {
    const nn = new Map([
      ['a', { leaving: true, reapTimeMs: 10_000 }],
      ['b', { leaving: false, reapTimeMs: 0 }],
    ])
    reapLeavingNetworks([nn], 5_000)
    reapLeavingNetworks([nn], 5_000)
    expect(nn.get('a')?.reapTimeMs).toBe(0)
    reapLeavingNetworks([nn], 5_000)
    expect([...nn.keys()]).toEqual(['b'])
  })

  it('left and failed nodes are forgotten when no more than one period remains', () => {
    const nodes = new Map([
      ['x', { status: 'left', reapTimeMs: 24 * 3_600_000 }],
      ['y', { status: 'active', reapTimeMs: 0 }],
    ])
    const period = 2 * 3_600_000
    let passes = 0
    while (nodes.has('x')) {
      reapDeadNodes(nodes, period)
      passes++
    }
    expect(passes).toBe(12)
    expect([...nodes.keys()]).toEqual(['y'])
  })
})

describe('EntryStore', () => {
  it('walks, counts and removes by owner', () => {
    const s = new EntryStore()
    s.put('n1', 't', 'a', { ltime: 1n, owner: 'x', value: v, deleting: false, reapTimeMs: 0 })
    s.put('n2', 't', 'b', { ltime: 1n, owner: 'y', value: v, deleting: true, reapTimeMs: 1000 })
    s.put('n2', 'u', 'c', { ltime: 1n, owner: 'x', value: v, deleting: false, reapTimeMs: 0 })
    const seen: string[] = []
    s.walkTable('t', (nid, key, e) => {
      seen.push(`${nid}/${key}/${e.deleting}`)
    })
    expect(seen).toEqual(['n1/a/false', 'n2/b/true'])
    expect(s.removeOwnedBy('x').map(([nid, table, key]) => `${nid}/${table}/${key}`)).toEqual(['n1/t/a', 'n2/u/c'])
    expect(s.networkIds()).toEqual(['n2'])
    expect(s.count('n2')).toBe(1)
  })
})
