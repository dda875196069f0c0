import { noopLogger } from '@cnm/types'
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Awareness } from '../src/awareness.js'
import { NodeTable, verifyProtocol } from '../src/state.js'
import type { AliveMessage, DeadMessage, StateHost, SuspectMessage } from '../src/state.js'
import type { Node } from '../src/types.js'

const VSN = new Uint8Array([1, 5, 2, 0, 0, 0])
const ADDR = new Uint8Array([127, 0, 0, 1])

type Sent = AliveMessage | SuspectMessage | DeadMessage

function setup(opts: { left?: boolean } = {}) {
  const sent: Sent[] = []
  const finishers: (() => void)[] = []
  const events = { join: [] as Node[], leave: [] as Node[], update: [] as Node[] }
  const awareness = new Awareness(8)
  const state = { left: opts.left ?? false }
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
    hasLeft: () => state.left,
    broadcast: (_node, msg, onFinished) => {
      sent.push(msg)
      if (onFinished !== undefined) finishers.push(onFinished)
    },
    formatAddr: (b) => [...b].join('.'),
    now: () => Date.now(),
    random: () => (rnd = (rnd + 0.37) % 1),
  }
  const table = new NodeTable(host)
  table.aliveNode(alive('self', table.nextIncarnation(), 7000), true)
  return { table, sent, events, awareness, state, finishers }
}

function alive(node: string, incarnation: number, port = 7001, meta: Uint8Array = new Uint8Array(0)): AliveMessage {
  return { type: 'alive', node, incarnation, addr: ADDR, port, meta, vsn: VSN }
}
const suspect = (node: string, incarnation: number, from = 'x'): SuspectMessage => ({
  type: 'suspect',
  node,
  incarnation,
  from,
})
const dead = (node: string, incarnation: number, from = 'x'): DeadMessage => ({ type: 'dead', node, incarnation, from })

describe('NodeTable: alive (§10)', () => {
  it('announces ourselves with incarnation 1 and fires NotifyJoin', () => {
    const { table, sent, events } = setup()
    expect(table.incarnation).toBe(1)
    expect(sent).toHaveLength(1)
    expect(sent[0]).toMatchObject({ type: 'alive', node: 'self', incarnation: 1 })
    expect(events.join.map((n) => n.name)).toEqual(['self'])
  })

  it('accepts a new node, re-broadcasts it unchanged and fires NotifyJoin once', () => {
    const { table, sent, events } = setup()
    const a = alive('n1', 1)
    table.aliveNode(a)
    expect(sent.at(-1)).toBe(a)
    expect(table.map.get('n1')).toMatchObject({ state: 'alive', incarnation: 1, addr: '127.0.0.1', port: 7001 })
    table.aliveNode(alive('n1', 1))
    expect(events.join.map((n) => n.name)).toEqual(['self', 'n1'])
    expect(sent).toHaveLength(2)
  })

  it('an alive with incarnation 0 leaves a dead placeholder that push-pull never lists', () => {
    const { table, events } = setup()
    table.aliveNode(alive('n0', 0))
    expect(table.map.get('n0')).toMatchObject({ state: 'dead', incarnation: 0 })
    expect(events.join).toHaveLength(1)
    expect(table.localStates().map((n) => n.name)).toEqual(['self'])
    expect(verifyProtocol(table.localStates(), [])).toBeUndefined()
  })

  it('needs a strictly greater incarnation; a Meta change fires NotifyUpdate', () => {
    const { table, events } = setup()
    table.aliveNode(alive('n1', 1))
    table.aliveNode(alive('n1', 1, 7001, new Uint8Array([1])))
    expect(events.update).toHaveLength(0)
    table.aliveNode(alive('n1', 2, 7001, new Uint8Array([1])))
    expect(events.update.map((n) => n.name)).toEqual(['n1'])
    expect(table.map.get('n1')!.incarnation).toBe(2)
  })

  it('ignores an alive with a conflicting address or port', () => {
    const { table, sent } = setup()
    table.aliveNode(alive('n1', 1))
    const before = sent.length
    table.aliveNode(alive('n1', 5, 9999))
    expect(sent).toHaveLength(before)
    expect(table.map.get('n1')!.incarnation).toBe(1)
  })

  it('about ourselves: equal incarnation with same Meta/Vsn is ignored, a different one refuted', () => {
    const { table, sent } = setup()
    const before = sent.length
    table.aliveNode(alive('self', 1, 7000))
    expect(sent).toHaveLength(before)
    table.aliveNode(alive('self', 1, 7000, new Uint8Array([9])))
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 2 })
    table.aliveNode(alive('self', 7, 7000))
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 8 })
    expect(table.incarnation).toBe(8)
    // Lower numbers are ignored.
    const n = sent.length
    table.aliveNode(alive('self', 3, 7000, new Uint8Array([9])))
    expect(sent).toHaveLength(n)
  })

  it('dead → alive fires NotifyJoin again', () => {
    const { table, events } = setup()
    table.aliveNode(alive('n1', 1))
    table.deadNode(dead('n1', 1))
    table.aliveNode(alive('n1', 2))
    expect(events.join.map((n) => n.name)).toEqual(['self', 'n1', 'n1'])
    expect(events.leave.map((n) => n.state)).toEqual(['dead'])
  })
})

describe('NodeTable: suspect and dead (§10)', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('suspect → dead after the suspicion timeout (3 nodes: 4 s), From = self', () => {
    const { table, sent, events } = setup()
    table.aliveNode(alive('n1', 1))
    table.aliveNode(alive('n2', 1, 7002))
    table.suspectNode(suspect('n1', 1, 'n2'))
    expect(table.map.get('n1')!.state).toBe('suspect')
    expect(sent.at(-1)).toMatchObject({ type: 'suspect', node: 'n1' })
    vi.advanceTimersByTime(3999)
    expect(table.map.get('n1')!.state).toBe('suspect')
    vi.advanceTimersByTime(1)
    expect(table.map.get('n1')!.state).toBe('dead')
    expect(sent.at(-1)).toEqual({ type: 'dead', node: 'n1', incarnation: 1, from: 'self' })
    expect(events.leave.map((n) => [n.name, n.state])).toEqual([['n1', 'dead']])
  })

  it('ignores suspicions of unknown nodes and lower incarnations; a refuting alive cancels the timer', () => {
    const { table } = setup()
    table.suspectNode(suspect('ghost', 1))
    expect(table.map.has('ghost')).toBe(false)
    table.aliveNode(alive('n1', 3))
    table.suspectNode(suspect('n1', 2))
    expect(table.map.get('n1')!.state).toBe('alive')
    table.suspectNode(suspect('n1', 3))
    expect(table.hasSuspicion('n1')).toBe(true)
    table.aliveNode(alive('n1', 4))
    expect(table.hasSuspicion('n1')).toBe(false)
    vi.advanceTimersByTime(60_000)
    expect(table.map.get('n1')!.state).toBe('alive')
  })

  it('counts confirmations from other accusers and re-broadcasts only new ones', () => {
    const { table, sent } = setup()
    for (let i = 1; i <= 9; i++) table.aliveNode(alive(`n${i}`, 1, 7000 + i))
    table.suspectNode(suspect('n1', 1, 'n2'))
    const n = sent.length
    table.suspectNode(suspect('n1', 1, 'n2'))
    expect(sent).toHaveLength(n)
    table.suspectNode(suspect('n1', 1, 'n3'))
    expect(sent).toHaveLength(n + 1)
    // 10 nodes, one confirmation: 11.381 s.
    vi.advanceTimersByTime(11380)
    expect(table.map.get('n1')!.state).toBe('suspect')
    vi.advanceTimersByTime(1)
    expect(table.map.get('n1')!.state).toBe('dead')
  })

  it('refutes a suspicion about ourselves: incarnation max(own+1, accused+1), awareness + 1', () => {
    const { table, sent, awareness } = setup()
    table.suspectNode(suspect('self', 1, 'n1'))
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 2 })
    expect(awareness.score).toBe(1)
    table.suspectNode(suspect('self', 10, 'n1'))
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 11, vsn: VSN })
    expect(awareness.score).toBe(2)
    expect(table.map.get('self')!.state).toBe('alive')
  })

  it('refutes a dead message about ourselves unless we are leaving', () => {
    const { table, sent, state, finishers, events } = setup()
    table.deadNode(dead('self', 1, 'n1'))
    expect(sent.at(-1)).toMatchObject({ type: 'alive', node: 'self', incarnation: 2 })
    state.left = true
    const done = vi.fn()
    table.deadNode(dead('self', 2, ''), done)
    expect(sent.at(-1)).toEqual(dead('self', 2, ''))
    expect(table.map.get('self')!.state).toBe('dead')
    finishers.at(-1)!()
    expect(done).toHaveBeenCalled()
    expect(events.leave.at(-1)).toMatchObject({ name: 'self', state: 'left' })
    // An alive about ourselves after leaving is ignored.
    table.aliveNode(alive('self', 9, 7000))
    expect(table.map.get('self')!.state).toBe('dead')
  })

  it('a dead with empty From is a graceful leave (state left); lower incarnations and repeats are ignored', () => {
    const { table, events } = setup()
    table.aliveNode(alive('n1', 2))
    table.deadNode(dead('n1', 1, ''))
    expect(table.map.get('n1')!.state).toBe('alive')
    table.deadNode(dead('n1', 2, ''))
    expect(events.leave.map((n) => n.state)).toEqual(['left'])
    table.deadNode(dead('n1', 3, 'x'))
    expect(events.leave).toHaveLength(1)
  })

  it('push-pull merge turns dead and suspect entries into suspicions, never into deaths', () => {
    const { table, sent } = setup()
    table.aliveNode(alive('n1', 1))
    table.mergeState([
      { name: 'n1', addr: ADDR, port: 7001, meta: null, incarnation: 1, state: 2, vsn: VSN },
      { name: 'n2', addr: ADDR, port: 7002, meta: null, incarnation: 1, state: 0, vsn: VSN },
      { name: 'self', addr: ADDR, port: 7000, meta: null, incarnation: 1, state: 2, vsn: VSN },
    ])
    expect(table.map.get('n1')!.state).toBe('suspect')
    expect(table.map.get('n2')!.state).toBe('alive')
    expect(table.map.get('self')!.state).toBe('alive')
    expect(sent.some((m) => m.type === 'alive' && m.node === 'self' && m.incarnation === 2)).toBe(true)
  })

  it('resetNodes removes dead nodes older than gossipToTheDead and keeps fresh ones', () => {
    const { table } = setup()
    table.aliveNode(alive('n1', 1))
    table.aliveNode(alive('n2', 1, 7002))
    table.deadNode(dead('n1', 1))
    vi.advanceTimersByTime(20_000)
    table.deadNode(dead('n2', 1))
    vi.advanceTimersByTime(11_000)
    expect(table.resetNodes(30_000)).toEqual(['n1'])
    expect(table.map.has('n1')).toBe(false)
    expect(table.map.has('n2')).toBe(true)
    expect(table.size).toBe(2)
  })
})

describe('verifyProtocol (§8)', () => {
  const n = (name: string, vsn: number[], state = 0) => ({
    name,
    addr: ADDR,
    port: 1,
    meta: null,
    incarnation: 1,
    state,
    vsn: new Uint8Array(vsn),
  })
  it('accepts Go peers [1,5,2,0,0,0]', () => {
    expect(verifyProtocol([n('a', [1, 5, 2, 0, 0, 0])], [n('b', [1, 5, 2, 0, 0, 0])])).toBeUndefined()
  })
  it('rejects a current version outside the common range', () => {
    expect(verifyProtocol([n('a', [1, 5, 2, 0, 0, 0])], [n('b', [3, 5, 3, 0, 0, 0])])).toMatch(/protocol version \(2\)/)
    expect(verifyProtocol([n('a', [1, 5, 2, 0, 0, 0])], [n('b', [1, 5, 2, 1, 1, 1])])).toMatch(/delegate/)
  })
  it('a node without a version vector counts as version 0 (the dead-placeholder hazard)', () => {
    expect(verifyProtocol([n('a', [1, 5, 2, 0, 0, 0]), n('z', [0, 0, 0, 0, 0, 0], 2)], [])).toMatch(/'z'/)
    expect(verifyProtocol([n('a', [1, 5, 2, 0, 0, 0])], [n('b', [], 0)])).toMatch(/'b'/)
  })
})
