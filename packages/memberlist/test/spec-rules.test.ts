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

// ------------------------------------------------------------------ real sockets on 127.0.0.1

const nodes: Memberlist[] = []
const closers: (() => Promise<void>)[] = []
afterEach(async () => {
  for (const c of closers.splice(0)) await c()
  await shutdownAll(nodes)
})

interface Got {
  at: number
  msg: Message
  parts: number
}

interface RawPeer {
  name: string
  port: number
  got: Got[]
  /** Every datagram as received (before decryption). */
  raw: { at: number; buf: Buffer }[]
  sock: dgram.Socket
  /** TCP pings received (SeqNo) when a TCP listener was asked for. */
  tcpPings: number[]
  send(ml: Memberlist, msgs: Uint8Array[]): void
}

/**
 * A hand-built peer: a UDP socket (and optionally a TCP listener on the same port) that records every
 * message it receives. `ack` decides how it answers a ping (undefined = silent).
 */
async function rawPeer(
  ml: Memberlist | undefined,
  opts: {
    name?: string
    pmax?: number
    ack?: (seqNo: number) => number | undefined
    tcpAck?: boolean
    keys?: Uint8Array[]
  } = {},
): Promise<RawPeer> {
  const sock = dgram.createSocket('udp4')
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
  const port = sock.address().port
  const name = opts.name ?? `raw${port}`
  const got: Got[] = []
  const raw: { at: number; buf: Buffer }[] = []
  const tcpPings: number[] = []
  const keyring = new KeyringImpl(opts.keys ?? [])
  sock.on('message', (m, rinfo) => {
    raw.push({ at: Date.now(), buf: m })
    const res = unpackPacket(m, { keyring })
    for (const msg of res.messages) {
      got.push({ at: Date.now(), msg, parts: res.messages.length })
      if (msg.type === 'ping' && opts.ack !== undefined) {
        const seq = opts.ack(msg.seqNo)
        if (seq !== undefined)
          sock.send(encodeMessage({ type: 'ack', seqNo: seq, payload: null }), rinfo.port, rinfo.address)
      }
    }
  })
  let server: net.Server | undefined
  if (opts.tcpAck === true) {
    const srv = net.createServer((c) => {
      let buf = Buffer.alloc(0)
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        const r = readStreamMessage(buf, {})
        if (r?.message.type === 'ping') {
          tcpPings.push(r.message.seqNo)
          c.end(packStream(encodeMessage({ type: 'ack', seqNo: r.message.seqNo, payload: null }), { compress: true }))
        }
      })
      c.on('error', () => undefined)
    })
    server = srv
    await new Promise<void>((resolve, reject) => {
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => resolve())
    })
  }
  closers.push(async () => {
    sock.close()
    if (server !== undefined) await new Promise<void>((r) => server.close(() => r()))
  })
  const peer: RawPeer = {
    name,
    port,
    got,
    raw,
    sock,
    tcpPings,
    send(to, msgs) {
      sock.send(packPacket(msgs, { compress: false, crc: false, keyring }), to.address.port, '127.0.0.1')
    },
  }
  if (ml !== undefined) {
    peer.send(ml, [
      encodeMessage({
        type: 'alive',
        node: name,
        incarnation: 1,
        addr: ipToBytes('127.0.0.1'),
        port,
        meta: new Uint8Array(0),
        vsn: new Uint8Array([1, opts.pmax ?? 5, 2, 0, 0, 0]),
      }),
    ])
    await waitFor(() => stateOf(ml, name) === 'alive', 2000, `${name} known`)
  }
  return peer
}

const ofType = <T extends Message['type']>(g: Got[], type: T): (Got & { msg: Extract<Message, { type: T }> })[] =>
  g.filter((x) => x.msg.type === type) as (Got & { msg: Extract<Message, { type: T }> })[]

/** Raises the health score by `n` by making `peer` accuse us n times (each refute: awareness + 1). */
async function raiseAwareness(ml: Memberlist, peer: RawPeer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const inc = ml.localNode().incarnation
    peer.send(ml, [encodeMessage({ type: 'suspect', node: ml.name, incarnation: inc, from: peer.name })])
    await waitFor(() => ml.localNode().incarnation > inc, 2000, 'refute')
  }
}

describe('§9 probe loop (real sockets)', () => {
  it('an alive target gets a bare ping naming it; a suspect target gets [ping, suspect{its inc, it, from = us}]', async () => {
    const { ml } = await startNode('prober', nodes, { suspicionMult: 100, gossipIntervalMs: 0 })
    let acks = true
    const t = await rawPeer(ml, { pmax: 2, ack: (s) => (acks ? s : undefined) })
    await waitFor(() => ofType(t.got, 'ping').length >= 2, 3000, 'pings')
    for (const p of ofType(t.got, 'ping')) expect(p.msg.node).toBe(t.name)
    expect(ofType(t.got, 'suspect')).toEqual([])
    // Someone else suspects it: our next probe carries the suspicion so that it can refute.
    acks = false
    t.send(ml, [encodeMessage({ type: 'suspect', node: t.name, incarnation: 1, from: 'other' })])
    await waitFor(() => ofType(t.got, 'suspect').length >= 1, 3000, 'suspect piggybacked on the probe')
    const s = ofType(t.got, 'suspect')[0]!
    expect(s.msg).toEqual({ type: 'suspect', node: t.name, incarnation: 1, from: 'prober' })
    expect(s.parts).toBe(2)
    const ping = t.got[t.got.indexOf(s) - 1]!
    expect(ping.msg).toMatchObject({ type: 'ping', node: t.name })
  })

  it('no ack within ProbeTimeout: indirect pings with the same SeqNo to at most 3 alive helpers, Nack = pmax ≥ 4', async () => {
    const { ml } = await startNode('prober', nodes, {
      suspicionMult: 100,
      gossipIntervalMs: 0,
      probeIntervalMs: 300,
      probeTimeoutMs: 100,
    })
    const ack = (s: number) => s
    const helpers = [
      await rawPeer(ml, { pmax: 4, ack }),
      await rawPeer(ml, { pmax: 5, ack }),
      await rawPeer(ml, { pmax: 3, ack }),
      await rawPeer(ml, { pmax: 2, ack }),
    ]
    const suspectHelper = await rawPeer(ml, { pmax: 5, ack })
    suspectHelper.send(ml, [encodeMessage({ type: 'suspect', node: suspectHelper.name, incarnation: 1, from: 'x' })])
    await waitFor(() => stateOf(ml, suspectHelper.name) === 'suspect', 2000, 'suspect helper')
    const target = await rawPeer(ml, { pmax: 2 })
    await waitFor(() => ofType(target.got, 'ping').length >= 1, 5000, 'ping to the target')
    const ping = ofType(target.got, 'ping')[0]!
    const forIt = (h: RawPeer) => ofType(h.got, 'indirectPing').filter((g) => g.msg.seqNo === ping.msg.seqNo)
    await waitFor(() => helpers.filter((h) => forIt(h).length > 0).length === 3, 3000, 'three indirect pings')
    await new Promise((r) => setTimeout(r, 100))
    expect(helpers.filter((h) => forIt(h).length > 0)).toHaveLength(3)
    expect(ofType(suspectHelper.got, 'indirectPing')).toEqual([])
    for (const [h, pmax] of helpers.map((x, i) => [x, [4, 5, 3, 2][i]!] as const)) {
      for (const g of forIt(h)) {
        expect([...g.msg.target]).toEqual([127, 0, 0, 1])
        expect(g.msg).toMatchObject({
          type: 'indirectPing',
          seqNo: ping.msg.seqNo,
          port: target.port,
          node: target.name,
          nack: pmax >= 4,
        })
        // Sent after ProbeTimeout, not before.
        expect(g.at - ping.at).toBeGreaterThanOrEqual(80)
      }
    }
    await waitFor(() => stateOf(ml, target.name) === 'suspect', 3000, 'target suspect')
  })

  it('an ack with an unknown SeqNo, or one arriving after the probe deadline, is ignored', async () => {
    const { ml } = await startNode('prober', nodes, { suspicionMult: 100, gossipIntervalMs: 0 })
    const t = await rawPeer(ml, { pmax: 2 })
    t.sock.on('message', (m, rinfo) => {
      for (const msg of unpackPacket(m, {}).messages) {
        if (msg.type !== 'ping') continue
        t.sock.send(encodeMessage({ type: 'ack', seqNo: msg.seqNo + 1000, payload: null }), rinfo.port, rinfo.address)
        const late = encodeMessage({ type: 'ack', seqNo: msg.seqNo, payload: null })
        setTimeout(() => {
          try {
            t.sock.send(late, rinfo.port, rinfo.address)
          } catch {
            // the test is over and the socket closed
          }
        }, 400).unref() // after the probe deadline: ProbeInterval 200 ms × (1 + 0)
      }
    })
    await waitFor(() => stateOf(ml, t.name) === 'suspect', 3000, 'suspect despite the stray acks')
  })

  it('TCP fallback ping to a target with pmax ≥ 3 keeps it alive (and counts as a success for awareness); pmax 2 gets none', async () => {
    const { ml } = await startNode('prober', nodes, { suspicionMult: 100, gossipIntervalMs: 0 })
    const accuser = await rawPeer(undefined)
    await raiseAwareness(ml, accuser, 2)
    expect(ml.healthScore()).toBe(2)
    const t3 = await rawPeer(ml, { pmax: 3, tcpAck: true })
    await waitFor(() => t3.tcpPings.length >= 3, 8000, 'three TCP fallback pings')
    const udpSeqs = ofType(t3.got, 'ping').map((g) => g.msg.seqNo)
    for (const s of t3.tcpPings) expect(udpSeqs).toContain(s)
    expect(stateOf(ml, t3.name)).toBe('alive')
    // Go leaves awarenessDelta at −1 when the TCP fallback reached the node.
    expect(ml.healthScore()).toBe(0)
    const t2 = await rawPeer(ml, { pmax: 2, tcpAck: true })
    await waitFor(() => stateOf(ml, t2.name) === 'suspect', 5000, 'pmax 2 target suspect')
    expect(t2.tcpPings).toEqual([])
  })

  it('the probe deadline scales with the health score, ProbeTimeout does not', async () => {
    const { ml } = await startNode('prober', nodes, { suspicionMult: 100, gossipIntervalMs: 0 })
    const accuser = await rawPeer(undefined)
    await raiseAwareness(ml, accuser, 7)
    expect(ml.healthScore()).toBe(7) // the maximum with AwarenessMaxMultiplier 8
    const helper = await rawPeer(ml, { pmax: 4, ack: (s) => s })
    const target = await rawPeer(ml, { pmax: 2 })
    await waitFor(() => stateOf(ml, target.name) === 'suspect', 8000, 'target suspect')
    const suspectedAt = Date.now()
    const ping = ofType(target.got, 'ping')[0]!
    const ind = ofType(helper.got, 'indirectPing').find((g) => g.msg.seqNo === ping.msg.seqNo)!
    expect(ind).toBeDefined()
    // The score is ≥ 6 when the target is probed (a successful probe of the helper may come first, −1).
    // ProbeTimeout (100 ms) is not scaled: scaled it would be ≥ 600 ms…
    expect(ind.at - ping.at).toBeLessThan(400)
    // …while the deadline is ProbeInterval 200 ms × (1 + score) ≥ 1400 ms.
    expect(suspectedAt - ping.at).toBeGreaterThanOrEqual(1200)
  })

  it('helper role: nack to the requester only after ProbeTimeout, and only when Nack was asked', async () => {
    const { ml } = await startNode('helper', nodes, { gossipIntervalMs: 0, probeTimeoutMs: 300 })
    const req = await rawPeer(undefined)
    const silent = await rawPeer(undefined)
    const ind = (seqNo: number, nack: boolean) =>
      encodeMessage({
        type: 'indirectPing',
        seqNo,
        target: ipToBytes('127.0.0.1'),
        port: silent.port,
        node: 'tgt',
        nack,
      })
    const sentAt = Date.now()
    req.send(ml, [ind(501, true)])
    req.send(ml, [ind(502, false)])
    await waitFor(() => ofType(req.got, 'nack').length >= 1, 3000, 'nack')
    expect(ofType(req.got, 'nack')[0]!.at - sentAt).toBeGreaterThanOrEqual(280)
    await new Promise((r) => setTimeout(r, 500))
    expect(ofType(req.got, 'nack').map((g) => g.msg)).toEqual([{ type: 'nack', seqNo: 501 }])
    // The target was pinged with the helper's own SeqNos, naming the target.
    const pings = ofType(silent.got, 'ping')
    expect(pings.map((g) => g.msg.node)).toEqual(['tgt', 'tgt'])
    expect(pings.map((g) => g.msg.seqNo)).not.toContain(501)
  })
})

/** A delegate that always has one 10-byte broadcast and records every getBroadcasts call. */
function recordingDelegate(): Delegate & { calls: { overhead: number; limit: number }[]; merged: Uint8Array[] } {
  const d = {
    calls: [] as { overhead: number; limit: number }[],
    merged: [] as Uint8Array[],
    nodeMeta: () => new Uint8Array(0),
    notifyMsg: () => undefined,
    getBroadcasts: (overhead: number, limit: number) => {
      d.calls.push({ overhead, limit })
      return [new Uint8Array(10).fill(0x55)]
    },
    localState: () => new Uint8Array(0),
    mergeRemoteState: (p: Uint8Array) => {
      d.merged.push(new Uint8Array(p))
    },
  }
  return d
}

const KEY = new Uint8Array(16).fill(3)
const NO_PROBES = { probeIntervalMs: 600_000, pushPullIntervalMs: 0 }

describe('§5.6 byte budgets (real sockets)', () => {
  for (const keys of [[], [KEY]]) {
    const enc = keys.length > 0
    it(`ack piggyback: own queue first, then GetBroadcasts(3, budget − own) with budget 1400 − len(ack) − 4${enc ? ' − 29' : ''}`, async () => {
      const d = recordingDelegate()
      const { ml } = await startNode('pb', nodes, { ...NO_PROBES, gossipIntervalMs: 0, delegate: d, keys })
      const peer = await rawPeer(undefined, { keys })
      peer.send(ml, [encodeMessage({ type: 'ping', seqNo: 9, node: 'pb' })])
      await waitFor(() => ofType(peer.got, 'ack').length === 1, 2000, 'ack')
      const msgs = peer.got.map((g) => g.msg)
      expect(msgs[0]).toEqual({ type: 'ack', seqNo: 9, payload: null })
      // [ack, alive about us (our queue), user (the delegate's)], in that order.
      expect(msgs.map((m) => m.type)).toEqual(['ack', 'alive', 'user'])
      expect(d.calls).toHaveLength(1)
      const own = encodeMessage(msgs[1]!).length + 2
      // Go: 1400 − len(msg) − 2; we also reserve the 2-byte length of the message's own compound part so
      // that the datagram stays within 1400 bytes.
      expect(d.calls[0]).toEqual({
        overhead: 3,
        limit: 1400 - encodeMessage(msgs[0]!).length - 4 - (enc ? 29 : 0) - own,
      })
    })

    it(`gossip tick: GetBroadcasts(3, 1400 − 2 − 5 (hasCrc)${enc ? ' − 29' : ''} − own), one message bare, several as a compound`, async () => {
      const d = recordingDelegate()
      const { ml } = await startNode('gt', nodes, { ...NO_PROBES, gossipIntervalMs: 30, delegate: d, keys })
      const peer = await rawPeer(ml, { pmax: 5, keys })
      await waitFor(() => peer.raw.length >= 8, 3000, 'gossip packets')
      const keyring = new KeyringImpl(keys)
      let bare = 0
      let compound = 0
      for (const [i, { buf }] of peer.raw.slice(0, 8).entries()) {
        const res = unpackPacket(buf, { keyring })
        expect(res.crc).toBe(true)
        const types = res.messages.map((m) => m.type)
        // Own queue (alive messages) first, then exactly one delegate message.
        expect(types.at(-1)).toBe('user')
        expect(types.slice(0, -1).every((t) => t === 'alive')).toBe(true)
        const own = res.messages.slice(0, -1).reduce((n, m) => n + encodeMessage(m).length + 2, 0)
        expect(d.calls[i]).toEqual({ overhead: 3, limit: 1400 - 2 - 5 - (enc ? 29 : 0) - own })
        const plain = enc ? null : buf
        if (res.messages.length === 1) {
          bare++
          if (plain !== null) expect(plain[5]).toBe(8)
        } else {
          compound++
          if (plain !== null) expect([7, 9]).toContain(plain[5])
        }
      }
      // Two alives (ours and the peer's, re-broadcast) go 4 times each (n = 2), then the user message alone.
      expect(compound).toBe(4)
      expect(bare).toBe(4)
    })
  }

  it('gossips to a dead node for gossipToTheDeadMs, then stops', async () => {
    const d = recordingDelegate()
    const { ml } = await startNode('gd', nodes, {
      ...NO_PROBES,
      gossipIntervalMs: 30,
      gossipToTheDeadMs: 1500,
      delegate: d,
    })
    const peer = await rawPeer(ml, { pmax: 5 })
    peer.send(ml, [encodeMessage({ type: 'dead', node: peer.name, incarnation: 1, from: 'x' })])
    await waitFor(() => stateOf(ml, peer.name) === 'dead', 2000, 'peer dead')
    const diedAt = Date.now()
    await new Promise((r) => setTimeout(r, 2500))
    const after = peer.raw.filter((p) => p.at > diedAt + 100).map((p) => p.at - diedAt)
    expect(after.some((t) => t > 1000 && t < 1500)).toBe(true)
    expect(after.filter((t) => t > 1700)).toEqual([])
  })
})

describe('§11 leave and §6 push-pull user state (real sockets)', () => {
  it('leave: dead{own incarnation, From ""} is sent its full 4 × ceil(log10(n + 1)) times before leave resolves', async () => {
    const { ml } = await startNode('lv', nodes, { gossipIntervalMs: 50 })
    const peer = await rawPeer(ml, { pmax: 5, ack: (s) => s })
    const inc = ml.localNode().incarnation
    await ml.leave(5000)
    const deads = () => ofType(peer.got, 'dead').filter((g) => g.msg.node === 'lv')
    await new Promise((r) => setTimeout(r, 50))
    expect(deads()).toHaveLength(4) // n = 2 → 4 × ceil(log10 3) = 4
    for (const g of deads()) expect(g.msg).toEqual({ type: 'dead', node: 'lv', incarnation: inc, from: '' })
    expect(ml.localNode().state).toBe('left')
    // An alive about ourselves arriving later is ignored.
    peer.send(ml, [
      encodeMessage({
        type: 'alive',
        node: 'lv',
        incarnation: inc + 5,
        addr: ipToBytes('127.0.0.1'),
        port: ml.address.port,
        meta: new Uint8Array(0),
        vsn: VSN,
      }),
    ])
    await new Promise((r) => setTimeout(r, 300))
    expect(ml.localNode()).toMatchObject({ state: 'left', incarnation: inc })
    expect(deads()).toHaveLength(4)
  })

  it('leave gives up at the timeout when the broadcast cannot go out', async () => {
    const { ml } = await startNode('lt', nodes, { ...NO_PROBES, gossipIntervalMs: 0 })
    const peer = await rawPeer(ml, { pmax: 5 })
    const t0 = Date.now()
    await ml.leave(300)
    const took = Date.now() - t0
    expect(took).toBeGreaterThanOrEqual(280)
    expect(took).toBeLessThan(2000)
    expect(ofType(peer.got, 'dead')).toEqual([])
  })

  it('MergeRemoteState runs only when UserStateLen > 0, with the Join flag', async () => {
    const d = recordingDelegate()
    const { ml } = await startNode('pp', nodes, { ...NO_PROBES, gossipIntervalMs: 0, delegate: d })
    const merged: [number[], boolean][] = []
    d.mergeRemoteState = (p: Uint8Array, join: boolean) => {
      merged.push([[...p], join])
    }
    const push = async (userState: Uint8Array, join: boolean) => {
      const req = packStream(encodeMessage({ type: 'pushPull', join, nodes: [], userState }), { compress: true })
      const reply = await new Promise<Buffer>((resolve, reject) => {
        const chunks: Buffer[] = []
        const s = net.connect({ host: '127.0.0.1', port: ml.address.port }, () => s.write(req))
        s.on('data', (c: Buffer) => chunks.push(c))
        s.on('error', reject)
        s.on('close', () => resolve(Buffer.concat(chunks)))
      })
      expect(readStreamMessage(reply, {})?.message).toMatchObject({ type: 'pushPull', join })
    }
    await push(new Uint8Array(0), true)
    await push(new Uint8Array([1, 2, 3]), false)
    await push(new Uint8Array([4]), true)
    await waitFor(() => merged.length === 2, 2000, 'merges')
    expect(merged).toEqual([
      [[1, 2, 3], false],
      [[4], true],
    ])
  })
})

describe('§5.6 queue replacement, §9 probe skipping, §8 join version check (real sockets)', () => {
  it('a suspect about X replaces the queued alive about X: the peer never sees that alive', async () => {
    const { ml } = await startNode('rq', nodes, { ...NO_PROBES, gossipIntervalMs: 30, suspicionMult: 100 })
    const peer = await rawPeer(ml, { pmax: 5 })
    const x = encodeMessage({
      type: 'alive',
      node: 'x',
      incarnation: 1,
      addr: ipToBytes('127.0.0.1'),
      port: 9,
      meta: new Uint8Array(0),
      vsn: VSN,
    })
    peer.send(ml, [x, encodeMessage({ type: 'suspect', node: 'x', incarnation: 1, from: 'other' })])
    // n = 3: every message goes 4 times, spread over the peer and x itself (suspect nodes get gossip too).
    await waitFor(() => ml.stats().broadcastQueue === 0, 3000, 'queue drained')
    await new Promise((r) => setTimeout(r, 100))
    expect(ofType(peer.got, 'alive').filter((g) => g.msg.node === 'x')).toEqual([])
    const sus = ofType(peer.got, 'suspect').map((g) => g.msg)
    expect(sus.length).toBeGreaterThan(0)
    expect(sus.length).toBeLessThanOrEqual(4)
    for (const m of sus) expect(m).toEqual({ type: 'suspect', node: 'x', incarnation: 1, from: 'other' })
  })

  it('dead nodes are not probed', async () => {
    const { ml } = await startNode('pd', nodes, { gossipIntervalMs: 0, probeIntervalMs: 50, probeTimeoutMs: 25 })
    const live = await rawPeer(ml, { pmax: 2, ack: (s) => s })
    const gone = await rawPeer(ml, { pmax: 2, ack: (s) => s })
    gone.send(ml, [encodeMessage({ type: 'dead', node: gone.name, incarnation: 1, from: 'x' })])
    await waitFor(() => stateOf(ml, gone.name) === 'dead', 2000, 'dead')
    const before = ofType(gone.got, 'ping').length
    const liveBefore = ofType(live.got, 'ping').length
    await new Promise((r) => setTimeout(r, 600))
    expect(ofType(live.got, 'ping').length).toBeGreaterThan(liveBefore + 3)
    expect(ofType(gone.got, 'ping')).toHaveLength(before)
  })

  it('join: a push-pull reply listing an alive node with an incompatible version fails the exchange and merges nothing', async () => {
    const server = net.createServer((c) => {
      let buf = Buffer.alloc(0)
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        if (readStreamMessage(buf, {}) === undefined) return
        const reply = encodeMessage({
          type: 'pushPull',
          join: true,
          nodes: [
            { name: 'new', addr: ipToBytes('127.0.0.1'), port: 1, meta: null, incarnation: 1, state: 0, vsn: VSN },
            {
              name: 'future',
              addr: ipToBytes('127.0.0.1'),
              port: 2,
              meta: null,
              incarnation: 1,
              state: 0,
              vsn: new Uint8Array([3, 5, 3, 0, 0, 0]),
            },
          ],
          userState: new Uint8Array(0),
        })
        c.end(packStream(reply, { compress: true }))
      })
      c.on('error', () => undefined)
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    closers.push(() => new Promise<void>((r) => server.close(() => r())))
    const { ml } = await startNode('jv', nodes, NO_PROBES)
    const port = (server.address() as net.AddressInfo).port
    await expect(ml.join([`127.0.0.1:${port}`])).rejects.toThrow(/protocol version \(2\) is incompatible: \[3, 5\]/)
    expect(ml.nodes().map((n) => n.name)).toEqual(['jv'])
  })
})

describe('§9 push-pull interval scaling (real sockets)', () => {
  /** `count` members that all live at one fake peer (UDP acks, TCP push-pull replies); returns connection times. */
  async function crowd(ml: Memberlist, count: number): Promise<number[]> {
    const pushes: number[] = []
    const peer = await rawPeer(undefined, { ack: (s) => s })
    const server = net.createServer((c) => {
      let buf = Buffer.alloc(0)
      c.on('data', (d: Buffer) => {
        buf = Buffer.concat([buf, d])
        const r = readStreamMessage(buf, {})
        if (r?.message.type !== 'pushPull') return
        pushes.push(Date.now())
        const reply = encodeMessage({ type: 'pushPull', join: false, nodes: [], userState: new Uint8Array(0) })
        c.end(packStream(reply, { compress: true }))
      })
      c.on('error', () => undefined)
    })
    await new Promise<void>((r) => server.listen(peer.port, '127.0.0.1', () => r()))
    closers.push(() => new Promise<void>((r) => server.close(() => r())))
    const alives = Array.from({ length: count }, (_, i) =>
      encodeMessage({
        type: 'alive',
        node: `m${i}`,
        incarnation: 1,
        addr: ipToBytes('127.0.0.1'),
        port: peer.port,
        meta: new Uint8Array(0),
        vsn: VSN,
      }),
    )
    for (let i = 0; i < alives.length; i += 10) peer.send(ml, alives.slice(i, i + 10))
    await waitFor(() => ml.numMembers() === count + 1, 2000, 'members')
    return pushes
  }

  for (const [others, factor] of [
    [31, 1],
    [32, 2],
  ] as const) {
    it(`${others + 1} nodes: push-pull every ${factor} × the interval`, async () => {
      const { ml } = await startNode(`pp${others}`, nodes, { pushPullIntervalMs: 600, gossipIntervalMs: 0 })
      const pushes = await crowd(ml, others)
      await waitFor(() => pushes.length >= 3, 8000, 'three push-pulls')
      const gap = pushes[2]! - pushes[1]!
      expect(gap).toBeGreaterThanOrEqual(600 * factor - 50)
      expect(gap).toBeLessThan(600 * factor + 500)
    })
  }
})
