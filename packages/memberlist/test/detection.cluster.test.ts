import { afterEach, describe, expect, it } from 'vitest'
import { defaultConfig } from '../src/index.js'
import type { Memberlist } from '../src/index.js'
import { addrOf, aliveNames, shutdownAll, startNode, stateOf, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const nodes: Memberlist[] = []
afterEach(async () => {
  await shutdownAll(nodes)
})

/** networkdb's LAN timers (probe 1 s / 500 ms, suspicion mult 4, gossip 200 ms), push-pull off. */
const LAN = { ...defaultConfig(), bindPort: 0, pushPullIntervalMs: 0 }

describe('failure detection and propagation with LAN timers', () => {
  it('5 nodes: a killed node is suspected, then dead everywhere within probe + suspicion timeout', async () => {
    const c: TestNode[] = []
    for (let i = 0; i < 5; i++) c.push(await startNode(`d${i}`, nodes, LAN))
    for (let i = 1; i < 5; i++) await c[i]!.ml.join([addrOf(c[0]!.ml)])
    const conv = await waitFor(() => c.every((t) => aliveNames(t.ml).length === 5), 10_000, 'convergence')
    const victim = c[4]!
    const rest = c.slice(0, 4)
    const t0 = Date.now()
    await victim.ml.shutdown()
    let firstSuspect = 0
    await waitFor(
      () => {
        if (firstSuspect === 0 && rest.some((t) => stateOf(t.ml, 'd4') === 'suspect')) firstSuspect = Date.now() - t0
        return rest.every((t) => stateOf(t.ml, 'd4') === 'dead')
      },
      20_000,
      'd4 dead on all peers',
    )
    const allDead = Date.now() - t0
    // n = 5 → k = 2 confirmations expected, min 4 s, max 24 s; with confirmations from the other probers
    // the timer shortens towards 4 s.
    expect(allDead).toBeGreaterThan(4000)
    expect(allDead).toBeLessThan(20_000)
    for (const t of rest) {
      expect(t.rec.events.find((e) => e.kind === 'leave' && e.node.name === 'd4')?.node.state).toBe('dead')
    }
    console.log(
      `[figures] LAN timers, 5 nodes: convergence ${conv} ms; killed node first suspected after ${firstSuspect} ms, dead on all 4 peers after ${allDead} ms`,
    )
  })

  it('10 nodes: a new member reaches everybody by gossip', async () => {
    const c: TestNode[] = []
    for (let i = 0; i < 10; i++) c.push(await startNode(`g${i}`, nodes, LAN))
    for (let i = 1; i < 10; i++) await c[i]!.ml.join([addrOf(c[i - 1]!.ml)])
    await waitFor(() => c.every((t) => aliveNames(t.ml).length === 10), 15_000, '10 alive everywhere')
    const late = await startNode('late', nodes, LAN)
    const t0 = Date.now()
    await late.ml.join([addrOf(c[0]!.ml)])
    await waitFor(() => c.every((t) => stateOf(t.ml, 'late') === 'alive'), 10_000, 'late known everywhere')
    const took = Date.now() - t0
    expect(took).toBeLessThan(10_000)
    console.log(`[figures] LAN timers, 10 nodes: a join reached all 10 by gossip in ${took} ms`)
  })
})
