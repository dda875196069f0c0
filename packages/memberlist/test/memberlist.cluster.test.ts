import { randomBytes } from 'node:crypto'
import { afterEach, describe, expect, it } from 'vitest'
import type { Address, Memberlist } from '../src/index.js'
import { addrOf, aliveNames, shutdownAll, startNode, stateOf, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const nodes: Memberlist[] = []
afterEach(async () => {
  await shutdownAll(nodes)
})

async function cluster(n: number, prefix: string): Promise<TestNode[]> {
  const out: TestNode[] = []
  for (let i = 0; i < n; i++) out.push(await startNode(`${prefix}${i}`, nodes))
  for (let i = 1; i < n; i++) await out[i]!.ml.join([addrOf(out[0]!.ml)])
  return out
}

describe('memberlist cluster on 127.0.0.1', () => {
  it('3 nodes join and all see 3 alive', async () => {
    const c = await cluster(3, 'j')
    const took = await waitFor(() => c.every((t) => aliveNames(t.ml).length === 3), 5000, 'all nodes to see 3 alive')
    for (const t of c) {
      expect(aliveNames(t.ml)).toEqual(['j0', 'j1', 'j2'])
      expect(t.ml.numMembers()).toBe(3)
      expect(
        t.rec.events
          .filter((e) => e.kind === 'join')
          .map((e) => e.node.name)
          .sort(),
      ).toEqual(['j0', 'j1', 'j2'])
    }
    // Everybody announced itself with incarnation 1.
    expect(c[0]!.ml.nodes().every((n) => n.incarnation === 1)).toBe(true)
    console.log(`[figures] 3-node convergence after the joins: ${took} ms`)
  })

  it('user messages arrive via sendBestEffort and sendReliable (also 20 MB)', async () => {
    const [a, b] = await cluster(2, 'u')
    await waitFor(() => aliveNames(a!.ml).length === 2, 3000, 'join')
    const to: Address = b!.ml.address
    a!.ml.sendBestEffort(to, new TextEncoder().encode('hello over udp'))
    await waitFor(() => b!.rec.messages.length >= 1, 3000, 'UDP user message')
    expect(new TextDecoder().decode(b!.rec.messages[0])).toBe('hello over udp')

    await a!.ml.sendReliable(to, new TextEncoder().encode('hello over tcp'))
    await waitFor(() => b!.rec.messages.length >= 2, 3000, 'TCP user message')
    expect(new TextDecoder().decode(b!.rec.messages[1])).toBe('hello over tcp')

    // Random bytes: LZW makes them bigger (about 28 MB on the wire), so this moves real volume.
    const big = randomBytes(20 * 1024 * 1024)
    const t0 = Date.now()
    await a!.ml.sendReliable(to, big)
    await waitFor(() => b!.rec.messages.length >= 3, 20_000, '20 MB TCP user message')
    const got = b!.rec.messages[2]!
    expect(got.length).toBe(big.length)
    expect(Buffer.compare(Buffer.from(got), Buffer.from(big))).toBe(0)
    console.log(`[figures] 20 MB sendReliable delivered in ${Date.now() - t0} ms`)
  })

  it('a node shut down without leave is marked suspect, then dead; a graceful leave shows left', async () => {
    const c = await cluster(4, 'f')
    await waitFor(() => c.every((t) => aliveNames(t.ml).length === 4), 5000, 'convergence')
    const victim = c[3]!
    const t0 = Date.now()
    await victim.ml.shutdown()
    const rest = c.slice(0, 3)
    const detect = await waitFor(
      () => rest.every((t) => stateOf(t.ml, 'f3') === 'dead'),
      15_000,
      'f3 to be dead everywhere',
    )
    const firstSuspect = Math.min(
      ...rest.flatMap((t) => t.rec.events.filter((e) => e.kind === 'leave' && e.node.name === 'f3').map((e) => e.at)),
    )
    for (const t of rest) {
      const leave = t.rec.events.find((e) => e.kind === 'leave' && e.node.name === 'f3')
      expect(leave?.node.state).toBe('dead')
    }
    console.log(
      `[figures] abrupt stop detected (dead on all 3 peers) after ${detect} ms; first declared dead after ${firstSuspect - t0} ms (probe 200 ms, suspicion min 800 ms)`,
    )

    // Graceful leave of f2: the others see 'left'.
    await c[2]!.ml.leave(2000)
    await c[2]!.ml.shutdown()
    await waitFor(() => [c[0]!, c[1]!].every((t) => stateOf(t.ml, 'f2') === 'left'), 5000, 'f2 left')
    for (const t of [c[0]!, c[1]!]) {
      const leave = t.rec.events.find((e) => e.kind === 'leave' && e.node.name === 'f2')
      expect(leave?.node.state).toBe('left')
    }
  })

  it('dead nodes are removed from the node list after gossipToTheDeadMs', async () => {
    const c = await cluster(3, 'r')
    await waitFor(() => c.every((t) => aliveNames(t.ml).length === 3), 5000, 'convergence')
    await c[2]!.ml.shutdown()
    await waitFor(() => stateOf(c[0]!.ml, 'r2') === 'dead', 10_000, 'r2 dead')
    // FAST.gossipToTheDeadMs = 3000: removed at the next probe-list wrap after that.
    await waitFor(() => stateOf(c[0]!.ml, 'r2') === undefined, 8000, 'r2 removed')
    expect(
      c[0]!.ml
        .nodes()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['r0', 'r1'])
  })

  it('a partition via the filter hook: both sides mark the other dead, a re-join heals it', async () => {
    let cut = false
    const sideOfPort = new Map<number, string>()
    const c: TestNode[] = []
    for (let i = 0; i < 4; i++) {
      const side = i < 2 ? 'A' : 'B'
      // Streams arrive from ephemeral ports (unknown side): the outbound filters on both sides cut them.
      const t = await startNode(`p${i}`, nodes, {
        filter: (peer) => {
          if (!cut) return true
          const other = sideOfPort.get(peer.port)
          return other === undefined || other === side
        },
      })
      sideOfPort.set(t.ml.address.port, side)
      c.push(t)
    }
    for (let i = 1; i < 4; i++) await c[i]!.ml.join([addrOf(c[0]!.ml)])
    await waitFor(() => c.every((t) => aliveNames(t.ml).length === 4), 5000, 'convergence')
    cut = true
    await waitFor(
      () =>
        ['p2', 'p3'].every((n) => stateOf(c[0]!.ml, n) === 'dead' && stateOf(c[1]!.ml, n) === 'dead') &&
        ['p0', 'p1'].every((n) => stateOf(c[2]!.ml, n) === 'dead' && stateOf(c[3]!.ml, n) === 'dead'),
      15_000,
      'both sides to mark the other dead',
    )
    cut = false
    await c[0]!.ml.join([addrOf(c[2]!.ml)])
    const healed = await waitFor(() => c.every((t) => aliveNames(t.ml).length === 4), 10_000, 'everyone alive again')
    console.log(`[figures] partition healed ${healed} ms after the re-join`)
  })

  it('a node killed and restarted under the same name and port refutes and comes back with a higher incarnation', async () => {
    const c = await cluster(3, 'z')
    await waitFor(() => c.every((t) => aliveNames(t.ml).length === 3), 5000, 'convergence')
    const port = c[2]!.ml.address.port
    await c[2]!.ml.shutdown()
    await waitFor(() => stateOf(c[0]!.ml, 'z2') === 'dead' && stateOf(c[1]!.ml, 'z2') === 'dead', 10_000, 'z2 dead')
    const back = await startNode('z2', nodes, { bindPort: port })
    await back.ml.join([addrOf(c[0]!.ml)])
    await waitFor(
      () => [c[0]!, c[1]!].every((t) => stateOf(t.ml, 'z2') === 'alive'),
      5000,
      'z2 alive again on both peers',
    )
    expect(back.ml.localNode().incarnation).toBeGreaterThanOrEqual(2)
    for (const t of [c[0]!, c[1]!]) {
      expect(t.ml.nodes().find((n) => n.name === 'z2')!.incarnation).toBe(back.ml.localNode().incarnation)
      expect(t.rec.events.filter((e) => e.kind === 'join' && e.node.name === 'z2')).toHaveLength(2)
    }
  })

  it('TCP fallback pings keep a node alive when UDP between two nodes is cut one way; without them it dies', async () => {
    for (const disableTcpPings of [false, true]) {
      let bPort = 0
      const a = await startNode(`t${disableTcpPings ? 'x' : 'a'}`, nodes, {
        disableTcpPings,
        filter: (peer, kind, dir) => !(kind === 'packet' && dir === 'out' && peer.port === bPort),
      })
      const b = await startNode(`t${disableTcpPings ? 'y' : 'b'}`, nodes, { disableTcpPings })
      await b.ml.join([addrOf(a.ml)])
      await waitFor(() => aliveNames(a.ml).length === 2 && aliveNames(b.ml).length === 2, 3000, 'pair joined')
      bPort = b.ml.address.port
      if (!disableTcpPings) {
        // Several probe rounds (200 ms) and a suspicion timeout (800 ms) pass: still alive both ways.
        await new Promise((r) => setTimeout(r, 2500))
        expect(stateOf(a.ml, b.ml.name)).toBe('alive')
        expect(stateOf(b.ml, a.ml.name)).toBe('alive')
      } else {
        await waitFor(() => stateOf(a.ml, b.ml.name) === 'dead', 5000, 'b dead on a without TCP pings')
      }
    }
  })

  it('delegate broadcasts ride on gossip and push-pull carries the delegate state', async () => {
    const a = await startNode('da', nodes, { pushPullIntervalMs: 300 })
    const pending = [new TextEncoder().encode('gossiped event')]
    a.rec.delegate.getBroadcasts = (overhead, limit) => {
      const out = pending.filter((m) => m.length + overhead <= limit)
      pending.length = 0
      return out
    }
    a.rec.delegate.localState = (join) => new TextEncoder().encode(`state of da, join=${String(join)}`)
    const merged: string[] = []
    const b = await startNode('db', nodes, { pushPullIntervalMs: 300 })
    b.rec.delegate.mergeRemoteState = (buf, join) => {
      merged.push(`${new TextDecoder().decode(buf)} (${String(join)})`)
    }
    await b.ml.join([addrOf(a.ml)])
    expect(merged[0]).toBe('state of da, join=true (true)')
    await waitFor(() => b.rec.messages.length === 1, 3000, 'gossiped delegate broadcast')
    expect(new TextDecoder().decode(b.rec.messages[0])).toBe('gossiped event')
    await waitFor(() => merged.some((m) => m === 'state of da, join=false (false)'), 3000, 'periodic push-pull')
  })
})
