/**
 * A rule-by-rule check of the protocol layer against spec/memberlist.md §5.6 and §8–§11: logic tests on
 * the state machine with fake timers, and real UDP/TCP sockets on 127.0.0.1 playing hand-built peers.
 */
import dgram from 'node:dgram'
import net from 'node:net'
import { noopLogger } from '@cnm/types'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { Awareness } from '../src/awareness.js'
import { NodeTable, verifyProtocol } from '../src/state.js'
import type { AliveMessage, DeadMessage, StateHost, SuspectMessage } from '../src/state.js'
import type { Delegate, Memberlist, Node } from '../src/index.js'
import {
  KeyringImpl,
  encodeMessage,
  ipToBytes,
  packPacket,
  packStream,
  readStreamMessage,
  unpackPacket,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { shutdownAll, startNode, stateOf, waitFor } from './helpers.js'

const VSN = new Uint8Array([1, 5, 2, 0, 0, 0])
const ADDR = new Uint8Array([127, 0, 0, 1])

// ------------------------------------------------------------------ state machine (logic, fake timers)

type Sent = AliveMessage | SuspectMessage | DeadMessage

function table() {
  const sent: Sent[] = []
  const events = { join: [] as Node[], leave: [] as Node[], update: [] as Node[] }
  const awareness = new Awareness(8)
  let rnd = 0
  const host: StateHost = {
    name: 'self',
    config: { suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeIntervalMs: 1000 },
    awareness,
    log: noopLogger().forComponent('test'),
    events: {
      notifyJoin: (n) => events.join.push(n),
      notifyLeave: (n) => events.leave.push(n),
      notifyUpdate: (n) => events.update.push(n),
    },
    localVsn: () => VSN,
    hasLeft: () => false,
    broadcast: (_node, msg) => {
      sent.push(msg)
    },
    formatAddr: (b) => [...b].join('.'),
    now: () => Date.now(),
    random: () => (rnd = (rnd + 0.37) % 1),
  }
  const t = new NodeTable(host)
  t.aliveNode(alive('self', t.nextIncarnation(), 7000), true)
  return { t, sent, events, awareness }
}

function alive(node: string, incarnation: number, port = 7001, meta: Uint8Array = new Uint8Array(0)): AliveMessage {
  return { type: 'alive', node, incarnation, addr: ADDR, port, meta, vsn: VSN }
}

describe('§10 alive about ourselves', () => {
  it('a higher incarnation is refuted like any accusation: max(own + 1, accused + 1) and awareness + 1', () => {
    const { t, sent, awareness } = table()
    t.aliveNode(alive('self', 5, 7000))
    expect(sent.at(-1)).toEqual({
      type: 'alive',
      node: 'self',
      incarnation: 6,
      addr: ADDR,
      port: 7000,
      meta: new Uint8Array(0),
      vsn: VSN,
    })
    expect(awareness.score).toBe(1)
    // Equal incarnation, different Vsn: refuted too (own + 1 = 7), and awareness rises again.
    t.aliveNode({ ...alive('self', 6, 7000), vsn: new Uint8Array([1, 5, 3, 0, 0, 0]) })
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 7 })
    expect(awareness.score).toBe(2)
    // Equal incarnation with identical Meta and Vsn: nothing happens.
    const n = sent.length
    t.aliveNode(alive('self', 7, 7000))
    expect(sent).toHaveLength(n)
    expect(awareness.score).toBe(2)
  })

  it('an alive about us at the top of the uint32 range is refuted (uint32 wrap as in Go) without hanging', () => {
    const { t, sent } = table()
    t.aliveNode(alive('self', 0xffffffff, 7000))
    const last = sent.at(-1)!
    expect(last).toMatchObject({ type: 'alive', node: 'self' })
    // Go: inc = own + 1, then skipIncarnation(accused − inc + 1) → accused + 1 wrapped to 32 bits.
    expect(last.incarnation).toBe(0)
    expect(t.incarnation).toBe(0)
  })
})

describe('§10 suspect and dead', () => {
  afterEach(() => {
    vi.useRealTimers()
  })

  it('a suspect about a dead node (no timer running) is ignored', () => {
    vi.useFakeTimers()
    const { t, sent } = table()
    t.aliveNode(alive('n1', 1))
    t.deadNode({ type: 'dead', node: 'n1', incarnation: 1, from: 'x' })
    const n = sent.length
    t.suspectNode({ type: 'suspect', node: 'n1', incarnation: 1, from: 'y' })
    t.suspectNode({ type: 'suspect', node: 'n1', incarnation: 5, from: 'y' })
    expect(sent).toHaveLength(n)
    expect(t.map.get('n1')).toMatchObject({ state: 'dead', incarnation: 1 })
    expect(t.hasSuspicion('n1')).toBe(false)
  })

  it('the first suspect starts the timer and is re-broadcast with its incarnation stored', () => {
    vi.useFakeTimers()
    const { t, sent } = table()
    t.aliveNode(alive('n1', 1))
    const s: SuspectMessage = { type: 'suspect', node: 'n1', incarnation: 3, from: 'x' }
    t.suspectNode(s)
    expect(sent.at(-1)).toBe(s)
    expect(t.map.get('n1')).toMatchObject({ state: 'suspect', incarnation: 3 })
    expect(t.hasSuspicion('n1')).toBe(true)
  })

  it('a dead message cancels a running suspicion timer (no second death when it would have fired)', () => {
    vi.useFakeTimers()
    const { t, sent, events } = table()
    t.aliveNode(alive('n1', 1))
    t.aliveNode(alive('n2', 1, 7002))
    t.suspectNode({ type: 'suspect', node: 'n1', incarnation: 1, from: 'n2' })
    const d: DeadMessage = { type: 'dead', node: 'n1', incarnation: 1, from: 'n2' }
    t.deadNode(d)
    expect(sent.at(-1)).toBe(d)
    expect(t.hasSuspicion('n1')).toBe(false)
    const n = sent.length
    vi.advanceTimersByTime(120_000)
    expect(sent).toHaveLength(n)
    expect(events.leave.map((x) => [x.name, x.state])).toEqual([['n1', 'dead']])
  })

  it('a dead or suspect message about an unknown node is ignored', () => {
    const { t, sent, events } = table()
    const n = sent.length
    t.deadNode({ type: 'dead', node: 'ghost', incarnation: 9, from: '' })
    t.suspectNode({ type: 'suspect', node: 'ghost', incarnation: 9, from: 'x' })
    expect(sent).toHaveLength(n)
    expect(t.map.has('ghost')).toBe(false)
    expect(events.leave).toEqual([])
  })

  it('push-pull merge: suspect and dead entries become suspect messages with From = self', () => {
    vi.useFakeTimers()
    const { t, sent } = table()
    t.aliveNode(alive('n1', 1))
    t.aliveNode(alive('n2', 1, 7002))
    t.mergeState([
      { name: 'n1', addr: ADDR, port: 7001, meta: null, incarnation: 1, state: 1, vsn: VSN },
      { name: 'n2', addr: ADDR, port: 7002, meta: null, incarnation: 2, state: 2, vsn: VSN },
    ])
    expect(sent.slice(-2)).toEqual([
      { type: 'suspect', node: 'n1', incarnation: 1, from: 'self' },
      { type: 'suspect', node: 'n2', incarnation: 2, from: 'self' },
    ])
    expect(t.map.get('n2')).toMatchObject({ state: 'suspect', incarnation: 2 })
  })
})

describe('§8 version ranges', () => {
  const n = (name: string, vsn: number[], state: number) => ({
    name,
    addr: ADDR,
    port: 1,
    meta: null,
    incarnation: 1,
    state,
    vsn: new Uint8Array(vsn),
  })

  it('only alive nodes define the ranges: a suspect or dead node with a narrow range does not reject the merge', () => {
    const local = [n('a', [1, 5, 2, 0, 0, 0], 0)]
    expect(verifyProtocol(local, [n('b', [1, 5, 2, 0, 0, 0], 0), n('old', [3, 3, 3, 0, 0, 0], 2)])).toBeUndefined()
    expect(verifyProtocol(local, [n('old', [3, 3, 3, 0, 0, 0], 1)])).toBeUndefined()
    // The same node alive narrows the range to [3, 3] and our pcur 2 falls out of it.
    expect(verifyProtocol(local, [n('old', [3, 3, 3, 0, 0, 0], 0)])).toMatch(
      /'a' protocol version \(2\) is incompatible: \[3, 3\]/,
    )
    // And a node whose pcur is outside the alive range is rejected whatever its own state.
    expect(verifyProtocol(local, [n('gone', [1, 5, 6, 0, 0, 0], 2)])).toMatch(/'gone' protocol version \(6\)/)
  })
})
