import { describe, expect, it } from 'vitest'
import { TableEventQueue } from '../src/table-queue.js'

const msg = (n: number, fill = 1): Uint8Array => new Uint8Array(n).fill(fill)

describe('TableEventQueue', () => {
  it('hands a message out mult × ceil(log10(n+1)) times', () => {
    const q = new TableEventQueue({ numNodes: () => 3, retransmitMult: 4 })
    q.queue('a', msg(10))
    let sent = 0
    for (let i = 0; i < 10; i++) sent += q.getBroadcasts(4, 1395).length
    expect(sent).toBe(4)
    expect(q.length).toBe(0)
  })

  it('a newer event for the same key replaces the queued one', () => {
    const q = new TableEventQueue({ numNodes: () => 2, retransmitMult: 4 })
    q.queue('k', msg(10, 1))
    q.queue('k', msg(10, 2))
    q.queue('other', msg(10, 3))
    expect(q.length).toBe(2)
    const out = q.getBroadcasts(4, 1395)
    expect(out.map((m) => m[0]).sort()).toEqual([2, 3])
  })

  it('packs within the byte budget, fewest-sent first', () => {
    const q = new TableEventQueue({ numNodes: () => 10, retransmitMult: 4 })
    for (let i = 0; i < 20; i++) q.queue(`k${i}`, msg(100, i))
    const first = q.getBroadcasts(4, 1395)
    expect(first).toHaveLength(13) // 13 × 104 = 1352 ≤ 1395
    const second = q.getBroadcasts(4, 1395)
    // the 7 never-sent messages come before any second transmission
    expect(second.slice(0, 7).every((m) => !first.includes(m))).toBe(true)
  })

  it('queues and drains 100,000 keyed messages in linear time', () => {
    const q = new TableEventQueue({ numNodes: () => 2, retransmitMult: 4 })
    const t0 = performance.now()
    for (let i = 0; i < 100_000; i++) q.queue(`k${i}`, msg(60))
    for (let i = 0; i < 100_000; i += 2) q.queue(`k${i}`, msg(60))
    expect(q.length).toBe(100_000)
    for (let i = 0; i < 100; i++) expect(q.getBroadcasts(4, 1395).length).toBeGreaterThan(0)
    expect(performance.now() - t0).toBeLessThan(3_000)
  })

  it('counts the messages never handed out', () => {
    const q = new TableEventQueue({ numNodes: () => 10, retransmitMult: 4 })
    for (let i = 0; i < 20; i++) q.queue(`k${i}`, msg(100, i))
    expect(q.unsent).toBe(20)
    q.queue('k0', msg(100, 99)) // a replacement is still one unsent message
    expect(q.unsent).toBe(20)
    q.getBroadcasts(4, 1395)
    expect(q.unsent).toBe(7)
    q.queue('k19', msg(100, 98)) // replaces one that was sent: unsent again
    expect(q.unsent).toBe(8)
    q.getBroadcasts(4, 1395)
    expect(q.unsent).toBe(0)
    q.reset()
    expect(q.unsent).toBe(0)
  })
})
