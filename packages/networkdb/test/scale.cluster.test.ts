// Bigger clusters, a partition that heals by itself, and key rotation, all with real memberlist nodes
// on 127.0.0.1 in this process (shortened timers, see real-cluster.ts).
import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { EntryNotFoundError } from '../src/index.js'
import type { NetworkDBConfig, NetworkDBNode } from '../src/index.js'
import { dec, enc } from './helpers.js'
import { FAST, seedOf, start, status, waitFor } from './real-cluster.js'

async function cluster(prefix: string, n: number, extra: Partial<NetworkDBConfig> = {}): Promise<NetworkDBNode[]> {
  const dbs: NetworkDBNode[] = []
  for (let i = 0; i < n; i++) dbs.push(await start(`${prefix}${i}`, extra))
  const seed = seedOf(dbs[0] as NetworkDBNode)
  for (const db of dbs.slice(1)) await db.join([seed])
  await waitFor(`${n} active nodes everywhere`, () => dbs.every((db) => db.stats().nodes.active === n), 60_000)
  return dbs
}

/** key → value of the live entries of table t in network nid. */
function table(db: NetworkDBNode, nid: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of db.getTableByNetwork('t', nid)) out[k] = dec(v.value)
  return out
}

describe('networkdb clusters on 127.0.0.1', () => {
  for (const n of [10, 30]) {
    it(`${n} nodes: an entry reaches every node of its network and no other; updates and deletes converge`, async () => {
      const dbs = await cluster(`s${n}-`, n)
      const blue = dbs.filter((_, i) => i % 2 === 0)
      const red = dbs.filter((_, i) => i % 2 === 1)
      await Promise.all([...blue.map((db) => db.joinNetwork('blue')), ...red.map((db) => db.joinNetwork('red'))])
      await waitFor('network peers', () =>
        dbs.every(
          (db) =>
            db.peers(blue.includes(db) ? 'blue' : 'red').length === (blue.includes(db) ? blue.length : red.length),
        ),
      )
      const origin = blue[blue.length - 1] as NetworkDBNode
      origin.createEntry('t', 'blue', 'k', enc('v1'))
      ;(red[0] as NetworkDBNode).createEntry('t', 'red', 'r', enc('red'))
      await waitFor('k on every blue node', () => blue.every((db) => table(db, 'blue')['k'] === 'v1'))
      await waitFor('r on every red node', () => red.every((db) => table(db, 'red')['r'] === 'red'))
      // nodes outside a network hold nothing of it
      for (const db of red) expect(db.getEntryInfo('t', 'blue', 'k')).toBeUndefined()
      for (const db of blue) expect(db.getEntryInfo('t', 'red', 'r')).toBeUndefined()

      origin.updateEntry('t', 'blue', 'k', enc('v2'))
      await waitFor('update everywhere', () => blue.every((db) => table(db, 'blue')['k'] === 'v2'))
      origin.deleteEntry('t', 'blue', 'k')
      await waitFor('delete everywhere', () => blue.every((db) => db.getEntryInfo('t', 'blue', 'k')?.deleting === true))
      for (const db of blue) expect(() => db.getEntry('t', 'blue', 'k')).toThrow(EntryNotFoundError)
    })
  }

  it('a partition: each side marks the other failed, and once lifted the cluster heals by itself with every entry converged', async () => {
    let cut = false
    const sideOfPort = new Map<number, number>()
    const filterFor =
      (mine: number) =>
      (peer: { port: number }): boolean =>
        !cut || (sideOfPort.get(peer.port) ?? mine) === mine
    const dbs: NetworkDBNode[] = []
    for (let i = 0; i < 6; i++) {
      const side = i < 3 ? 0 : 1
      const db = await start(`p${i}`, { memberlist: { ...FAST.memberlist, filter: filterFor(side) } })
      sideOfPort.set(db.address.port, side)
      dbs.push(db)
    }
    for (const db of dbs.slice(1)) await db.join([seedOf(dbs[0] as NetworkDBNode)])
    await waitFor('6 active', () => dbs.every((db) => db.stats().nodes.active === 6))
    await Promise.all(dbs.map((db) => db.joinNetwork('n')))
    await waitFor('network peers', () => dbs.every((db) => db.peers('n').length === 6))
    dbs.forEach((db, i) => db.createEntry('t', 'n', `e${i}`, enc(`v${i}`)))
    await waitFor('6 entries everywhere', () => dbs.every((db) => Object.keys(table(db, 'n')).length === 6))

    cut = true
    const [a0, a1, , b0, b1] = dbs as [NetworkDBNode, NetworkDBNode, NetworkDBNode, NetworkDBNode, NetworkDBNode]
    await waitFor(
      'each side sees the other failed',
      () => dbs.every((db, i) => dbs.every((other, j) => i < 3 === j < 3 || status(db, other.nodeId) === 'failed')),
      60_000,
    )
    // the other side's entries went with its nodes; each side keeps writing
    expect(Object.keys(table(a0, 'n')).sort()).toEqual(['e0', 'e1', 'e2'])
    a0.createEntry('t', 'n', 'during-a', enc('a'))
    a1.deleteEntry('t', 'n', 'e1')
    b0.createEntry('t', 'n', 'during-b', enc('b'))
    b1.updateEntry('t', 'n', 'e4', enc('v4-new'))

    cut = false // nobody calls join: the reconnect loop finds the failed nodes again
    const expected = { e0: 'v0', e2: 'v2', e3: 'v3', e4: 'v4-new', e5: 'v5', 'during-a': 'a', 'during-b': 'b' }
    await waitFor(
      '6 active again',
      () => dbs.every((db) => db.stats().nodes.active === 6 && db.stats().nodes.failed === 0),
      60_000,
    )
    await waitFor(
      'entries converged',
      () => dbs.every((db) => JSON.stringify(sorted(table(db, 'n'))) === JSON.stringify(sorted(expected))),
      60_000,
    )
    for (const db of dbs) expect(table(db, 'n')).toEqual(expected)
  })

  it('key rotation in a running cluster keeps the tables flowing; a node with only the old key is refused', async () => {
    const k1 = randomBytes(16)
    const k2 = randomBytes(32)
    const dbs = await cluster('k', 3, { keys: [k1] })
    await Promise.all(dbs.map((db) => db.joinNetwork('n')))
    const [a, b, c] = dbs as [NetworkDBNode, NetworkDBNode, NetworkDBNode]
    a.createEntry('t', 'n', 'before', enc('1'))
    await waitFor('before everywhere', () => dbs.every((db) => table(db, 'n')['before'] === '1'))

    for (const db of dbs) db.setKey(k2)
    for (const db of dbs) db.setPrimaryKey(k2)
    for (const db of dbs) db.removeKey(k1)
    c.createEntry('t', 'n', 'after', enc('2'))
    a.updateEntry('t', 'n', 'before', enc('1b'))
    await waitFor('after everywhere', () =>
      dbs.every((db) => table(db, 'n')['after'] === '2' && table(db, 'n')['before'] === '1b'),
    )
    expect(dbs.every((db) => db.stats().nodes.active === 3)).toBe(true)

    const stale = await start('stale', { keys: [k1] })
    await expect(stale.join([seedOf(b)])).rejects.toThrow()
    const fresh = await start('fresh', { keys: [k2] })
    await fresh.join([seedOf(b)])
    await fresh.joinNetwork('n')
    await waitFor('fresh node synced', () => table(fresh, 'n')['after'] === '2' && table(fresh, 'n')['before'] === '1b')
    await waitFor('4 active on the old nodes', () => dbs.every((db) => db.stats().nodes.active === 4))
    expect(dbs.every((db) => status(db, 'stale') === undefined)).toBe(true)
  })
})

function sorted(o: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(o).sort(([x], [y]) => (x < y ? -1 : x > y ? 1 : 0)))
}

describe('joining a network right after joining the cluster', () => {
  it('gets the bulk-sync replies of members that have not heard of it yet, without waiting for the timeout', async () => {
    const dbs = await cluster('j', 3)
    await Promise.all(dbs.map((db) => db.joinNetwork('n')))
    await waitFor('network peers', () => dbs.every((db) => db.peers('n').length === 3))
    dbs.forEach((db, i) => db.createEntry('t', 'n', `e${i}`, enc(`v${i}`)))
    await waitFor('entries everywhere', () => dbs.every((db) => Object.keys(table(db, 'n')).length === 3))
    // joins through the last node and syncs with all three at once: the other two learn of it by gossip
    // only later, and must still answer (or joinNetwork would wait bulkSyncTimeoutMs for them)
    const late = await start('late', { bulkSyncTimeoutMs: 20_000 })
    await late.join([seedOf(dbs[2] as NetworkDBNode)])
    const t0 = performance.now()
    await late.joinNetwork('n')
    expect(performance.now() - t0).toBeLessThan(10_000)
    expect(table(late, 'n')).toEqual({ e0: 'v0', e1: 'v1', e2: 'v2' })
  })
})
