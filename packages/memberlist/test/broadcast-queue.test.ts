import { describe, expect, it, vi } from 'vitest'
import { TransmitLimitedQueue, retransmitLimit } from '../src/broadcast-queue.js'
import type { Broadcast } from '../src/broadcast-queue.js'

function named(node: string, size: number, finished?: () => void): Broadcast & { node: string } {
  return {
    node,
    message: new Uint8Array(size).fill(node.charCodeAt(0)),
    invalidates(other: Broadcast): boolean {
      return (other as { node?: string }).node === node
    },
    ...(finished === undefined ? {} : { finished }),
  }
}

describe('retransmitLimit', () => {
  it('is mult × ceil(log10(n + 1))', () => {
    expect(retransmitLimit(4, 1)).toBe(4)
    expect(retransmitLimit(4, 3)).toBe(4)
    expect(retransmitLimit(4, 9)).toBe(4)
    expect(retransmitLimit(4, 10)).toBe(8)
    expect(retransmitLimit(4, 100)).toBe(12)
  })
})

describe('TransmitLimitedQueue', () => {
  it('hands each message out at most retransmitLimit times, then finishes it', () => {
    const done = vi.fn()
    const q = new TransmitLimitedQueue({ numNodes: () => 3, retransmitMult: 4 })
    q.queue(named('a', 10, done))
    for (let i = 0; i < 4; i++) expect(q.getBroadcasts(2, 1000)).toHaveLength(1)
    expect(done).toHaveBeenCalledTimes(1)
    expect(q.length).toBe(0)
    expect(q.getBroadcasts(2, 1000)).toEqual([])
  })

  it('a newer message about the same node replaces the queued one', () => {
    const first = vi.fn()
    const q = new TransmitLimitedQueue({ numNodes: () => 3, retransmitMult: 4 })
    q.queue(named('a', 10, first))
    q.queue(named('b', 10))
    q.queue(named('a', 12))
    expect(first).toHaveBeenCalledTimes(1)
    expect(q.length).toBe(2)
    const out = q.getBroadcasts(2, 1000)
    expect(out.map((m) => m.length).sort()).toEqual([10, 12])
  })

  it('respects the byte budget (overhead per message) and skips what does not fit', () => {
    const q = new TransmitLimitedQueue({ numNodes: () => 3, retransmitMult: 4 })
    q.queue(named('a', 100))
    q.queue(named('b', 50))
    q.queue(named('c', 30))
    // 100 + 2 does not fit in 90; 50 + 2 and 30 + 2 = 84 fit.
    const out = q.getBroadcasts(2, 90)
    expect(out.map((m) => m.length)).toEqual([50, 30])
    // Least-sent first: 'a' (0 sends) comes before the others now.
    const next = q.getBroadcasts(2, 110)
    expect(next[0]!.length).toBe(100)
  })

  it('caps the number of messages per fetch (compound part limit)', () => {
    const q = new TransmitLimitedQueue({ numNodes: () => 3, retransmitMult: 4 })
    for (let i = 0; i < 300; i++) q.queue(named(`n${i}`, 3))
    expect(q.getBroadcasts(2, 100_000, 127)).toHaveLength(127)
    expect(q.getBroadcasts(2, 100_000)).toHaveLength(300)
  })

  it('prune keeps the newest and reset finishes everything', () => {
    const done = vi.fn()
    const q = new TransmitLimitedQueue({ numNodes: () => 3, retransmitMult: 4 })
    for (let i = 0; i < 5; i++) q.queue(named(`n${i}`, 3, done))
    q.prune(2)
    expect(q.length).toBe(2)
    expect(done).toHaveBeenCalledTimes(3)
    q.reset()
    expect(q.length).toBe(0)
    expect(done).toHaveBeenCalledTimes(5)
  })

  it('the limit follows the node count at fetch time', () => {
    let n = 3
    const q = new TransmitLimitedQueue({ numNodes: () => n, retransmitMult: 4 })
    q.queue(named('a', 1))
    for (let i = 0; i < 3; i++) q.getBroadcasts(0, 10)
    n = 10 // limit 8 now
    for (let i = 0; i < 4; i++) expect(q.getBroadcasts(0, 10)).toHaveLength(1)
    expect(q.length).toBe(1)
  })
})
