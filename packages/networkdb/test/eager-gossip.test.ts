import { describe, expect, it } from 'vitest'
import { EntryNotFoundError } from '../src/index.js'
import { dec, enc, fakeCluster, settle } from './helpers.js'

// The periodic gossip tick and bulk sync are pushed out of the way (their first run is staggered at random
// within the period, so the period is made far longer than any test): anything that arrives came through
// eager gossip.
async function twoInNetwork(eagerGossipIntervalMs: number) {
  const never = 2_000_000_000
  const { dbs } = await fakeCluster(3, { gossipIntervalMs: never, bulkSyncIntervalMs: never, eagerGossipIntervalMs })
  const [a, b, c] = dbs as [(typeof dbs)[0], (typeof dbs)[0], (typeof dbs)[0]]
  const joining = [a.joinNetwork('N'), b.joinNetwork('N'), c.joinNetwork('N')]
  await settle(2_000)
  await Promise.all(joining)
  await settle(2_000)
  return { a, b, c }
}

describe('eager table gossip', () => {
  it('a create, update and delete reach the other nodes of the network before the next gossip tick', async () => {
    const { a, b, c } = await twoInNetwork(5)
    a.createEntry('t', 'N', 'k', enc('v1'))
    await settle(50)
    expect(dec(b.getEntry('t', 'N', 'k'))).toBe('v1')
    expect(dec(c.getEntry('t', 'N', 'k'))).toBe('v1')
    a.updateEntry('t', 'N', 'k', enc('v2'))
    await settle(50)
    expect(dec(b.getEntry('t', 'N', 'k'))).toBe('v2')
    a.deleteEntry('t', 'N', 'k')
    await settle(50)
    expect(() => c.getEntry('t', 'N', 'k')).toThrow(EntryNotFoundError)
  })

  it('a burst is sent in rate-limited rounds, every event arriving', async () => {
    const { a, b } = await twoInNetwork(5)
    for (let i = 0; i < 500; i++) a.createEntry('t', 'N', `k${i}`, enc(`value-${i}`))
    // 500 events of ~45 bytes: about 30 per datagram, one round per 5 ms
    await settle(1_000)
    expect(b.getTableByNetwork('t', 'N').size).toBe(500)
  })

  it('0 turns it off: events wait in the queue for the periodic gossip tick, as in Docker', async () => {
    const { a, b } = await twoInNetwork(0)
    a.createEntry('t', 'N', 'k', enc('v1'))
    await settle(5_000)
    expect(() => b.getEntry('t', 'N', 'k')).toThrow(EntryNotFoundError)
    expect(a.stats().networks.find((n) => n.networkId === 'N')?.queueLength).toBe(1)
  })
})
