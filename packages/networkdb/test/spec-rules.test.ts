/**
 * Rule-by-rule checks of spec/cluster.md §3, §5.3, §5.4, §6 and §7: remote events are injected into one
 * node of an in-memory cluster and the node's state, watch events and broadcast queues are inspected.
 */
import { capturingLogger } from '@cnm/test-utils'
import { describe, expect, it } from 'vitest'
import type { Delegate } from '@cnm/memberlist'
import { buildBulkSyncMessages } from '../src/bulk-sync.js'
import { EntryExistsError, EntryNotFoundError, NetworkNotJoinedError, createNetworkDB } from '../src/index.js'
import type { NetworkDBNode } from '../src/index.js'
import {
  MessageType,
  NetworkEventType,
  NodeEventType,
  TableEventType,
  decodeGossip,
  decodeNetworkPushPull,
  encodeGossip,
  encodeNetworkEvent,
  encodeNetworkPushPull,
  encodeNodeEvent,
  encodeTableEvent,
  makeCompound,
} from '../src/proto.js'
import type { NetworkEntryMsg } from '../src/proto.js'
import { collect, dec, enc, fakeCluster, settle } from './helpers.js'
import type { TestCluster } from './helpers.js'

const nodeEvent = (type: number, ltime: bigint, nodeName: string): Uint8Array =>
  encodeGossip(MessageType.NODE_EVENT, encodeNodeEvent({ type, ltime, nodeName }))

const networkEvent = (type: number, ltime: bigint, nodeName: string, networkId: string): Uint8Array =>
  encodeGossip(MessageType.NETWORK_EVENT, encodeNetworkEvent({ type, ltime, nodeName, networkId }))

const tableEvent = (
  type: number,
  ltime: bigint,
  nodeName: string,
  key: string,
  value: string,
  residualReapTime = 0,
  networkId = 'N',
): Uint8Array =>
  encodeGossip(
    MessageType.TABLE_EVENT,
    encodeTableEvent({ type, ltime, nodeName, networkId, tableName: 't', key, value: enc(value), residualReapTime }),
  )

const bulk = (events: Uint8Array[], networks = ['N']): Uint8Array =>
  buildBulkSyncMessages({ ltime: 0n, nodeName: 'node1', networks, unsolicited: false }, events, 1 << 20)[0]!

/** The (node, network) records a node would send in its push-pull state. */
const pushPullRecords = (c: TestCluster, db: NetworkDBNode, join = false): NetworkEntryMsg[] => {
  const g = decodeGossip(c.member(db).localState(join)!)
  return decodeNetworkPushPull(g.data).networks
}

const record = (c: TestCluster, db: NetworkDBNode, node: string, nid: string): NetworkEntryMsg | undefined =>
  pushPullRecords(c, db).find((r) => r.nodeName === node && r.networkId === nid)

const queueOf = (db: NetworkDBNode, nid: string): number =>
  db.stats().networks.find((n) => n.networkId === nid)?.queueLength ?? -1

const nodeOf = (db: NetworkDBNode, name: string) => db.nodes().find((n) => n.name === name)

/** Two nodes (node0 = a, node1 = b) both in network N, every queue drained; eager gossip off. */
async function twoInN(extra: Parameters<typeof fakeCluster>[1] = {}) {
  const c = await fakeCluster(2, { eagerGossipIntervalMs: 0, ...extra })
  const [a, b] = c.dbs as [NetworkDBNode, NetworkDBNode]
  const j = Promise.all([a.joinNetwork('N'), b.joinNetwork('N')])
  await settle(1_000)
  await j
  await settle(2_000)
  return { c, a, b, ma: c.member(a) }
}

describe('§5.4 node events', () => {
  it('witness; unknown → drop; stale → drop; JOIN of an active node changes nothing; LEAVE → LEFT once, rebroadcast only then', async () => {
    const { c, a, ma } = await twoInN()
    expect(a.stats().nodeEventQueue).toBe(0)

    ma.inject(nodeEvent(NodeEventType.LEAVE, 1_000n, 'ghost'))
    expect(a.stats().networkClock).toBe(1_001n)
    expect(nodeOf(a, 'ghost')).toBeUndefined()
    expect(a.stats().nodeEventQueue).toBe(0)

    ma.inject(nodeEvent(NodeEventType.JOIN, 1_100n, 'node1'))
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'active', ltime: 1_100n })
    expect(a.stats().nodeEventQueue).toBe(0)

    ma.inject(nodeEvent(NodeEventType.LEAVE, 1_100n, 'node1'))
    ma.inject(nodeEvent(NodeEventType.LEAVE, 1_050n, 'node1'))
    expect(nodeOf(a, 'node1')?.status).toBe('active')
    expect(a.stats().nodeEventQueue).toBe(0)

    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 5n, 'node1', 'live', 'l')]))
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 6n, 'node1', 'gone', 'g')]))
    ma.inject(makeCompound([tableEvent(TableEventType.DELETE, 7n, 'node1', 'gone', 'g', 100)]))
    const onA = collect(a.watch({ table: 't' }))
    ma.inject(nodeEvent(NodeEventType.LEAVE, 1_200n, 'node1'))
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'left', ltime: 1_200n, reapTimeMs: 24 * 3_600_000 })
    // LEFT: every entry of the node is removed at once, Delete for the live ones
    expect(a.getEntryInfo('t', 'N', 'live')).toBeUndefined()
    expect(a.getEntryInfo('t', 'N', 'gone')).toBeUndefined()
    await settle(0)
    expect(onA.map((e) => `${e.type}:${e.key}:${dec(e.value)}`)).toEqual(['delete:live:l'])
    expect(a.stats().nodeEventQueue).toBe(1)
    expect(a.peers('N').map((p) => p.name)).toEqual(['node0'])
    expect(record(c, a, 'node1', 'N')).toBeUndefined()

    // not active: the ltime is stored, nothing else happens (JOIN never moves a node by itself)
    ma.inject(nodeEvent(NodeEventType.JOIN, 1_300n, 'node1'))
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'left', ltime: 1_300n })
    expect(a.stats().nodeEventQueue).toBe(1)
  })
})

describe('§6 node state machine', () => {
  it('FAILED: entries removed at once (Delete for live ones), out of networkNodes; a LEAVE for it changes nothing; reapTime kept when moved to LEFT', async () => {
    const { c, a, b, ma } = await twoInN({ nodeReapTimeMs: 60_000, reapDeadNodeIntervalMs: 10_000 })
    b.createEntry('t', 'N', 'live', enc('l'))
    b.createEntry('t', 'N', 'dead', enc('d'))
    await settle(1_000)
    b.deleteEntry('t', 'N', 'dead')
    await settle(1_000)
    expect(a.getEntryInfo('t', 'N', 'dead')?.deleting).toBe(true)
    const onA = collect(a.watch({ table: 't' }))

    await b.shutdown()
    await settle(2_500)
    expect(nodeOf(a, 'node1')?.status).toBe('failed')
    expect(a.getEntryInfo('t', 'N', 'live')).toBeUndefined()
    expect(a.getEntryInfo('t', 'N', 'dead')).toBeUndefined()
    expect(onA.map((e) => `${e.type}:${e.key}:${dec(e.value)}:${e.owner}`)).toEqual(['delete:live:l:node1'])
    expect(a.peers('N').map((p) => p.name)).toEqual(['node0'])

    const ltime = nodeOf(a, 'node1')!.ltime
    ma.inject(nodeEvent(NodeEventType.LEAVE, ltime + 100n, 'node1'))
    expect(nodeOf(a, 'node1')?.status).toBe('failed')
    expect(a.stats().nodeEventQueue).toBe(0)

    await settle(20_000)
    const left = nodeOf(a, 'node1')!.reapTimeMs
    expect(left).toBeLessThan(60_000)
    expect(left).toBeGreaterThan(0)
    const b2 = await c.add('node1-new', { bindPort: b.address.port, eagerGossipIntervalMs: 0 })
    await b2.join([c.seed])
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'left', reapTimeMs: left })
  })

  it('back to ACTIVE (memberlist join of a known name) clears reapTime; the returning node’s CREATEs are accepted', async () => {
    const { c, a, b } = await twoInN({ rejoinBootstrapIntervalMs: 3_600_000, reconnectIntervalMs: 3_600_000 })
    b.createEntry('t', 'N', 'k', enc('v1'))
    await settle(1_000)
    const ltime = a.getEntryInfo('t', 'N', 'k')!.ltime
    await b.shutdown()
    await settle(2_500)
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'failed', reapTimeMs: 24 * 3_600_000 })
    expect(a.getEntryInfo('t', 'N', 'k')).toBeUndefined()

    const again = await c.add('node1', { bindPort: b.address.port })
    await again.join([c.seed])
    expect(nodeOf(a, 'node1')).toMatchObject({ status: 'active', reapTimeMs: 0 })
    const j = again.joinNetwork('N')
    await settle(1_000)
    await j
    expect(
      a
        .peers('N')
        .map((p) => p.name)
        .sort(),
    ).toEqual(['node0', 'node1'])
    c.member(a).inject(makeCompound([tableEvent(TableEventType.CREATE, ltime, 'node1', 'k', 'again')]))
    expect(dec(a.getEntry('t', 'N', 'k'))).toBe('again')
  })
})

describe('§5.4 network events', () => {
  it('own node → drop; stale → drop; LEAVE tombstones the node’s entries, sets reapTime, leaves networkNodes; JOIN re-adds', async () => {
    const { c, a, b, ma } = await twoInN({ reapEntryIntervalMs: 30_000 })
    b.createEntry('t', 'N', 'b1', enc('1'))
    b.createEntry('t', 'N', 'b2', enc('2'))
    a.createEntry('t', 'N', 'a1', enc('a'))
    await settle(1_000)
    b.deleteEntry('t', 'N', 'b2')
    await settle(2_000)
    const b1 = a.getEntryInfo('t', 'N', 'b1')!
    const b2 = a.getEntryInfo('t', 'N', 'b2')!
    expect(b2.deleting).toBe(true)
    const onA = collect(a.watch({}))
    expect(a.stats().networkEventQueue).toBe(0)

    // own node
    ma.inject(networkEvent(NetworkEventType.LEAVE, 5_000n, 'node0', 'N'))
    expect(a.stats().networkClock).toBe(5_001n)
    expect(a.networks()).toEqual(['N'])
    expect(a.peers('N').map((p) => p.name)).toContain('node0')
    expect(a.stats().networkEventQueue).toBe(0)

    // stale
    const stored = record(c, a, 'node1', 'N')!.ltime
    ma.inject(networkEvent(NetworkEventType.LEAVE, stored, 'node1', 'N'))
    expect(record(c, a, 'node1', 'N')?.leaving).toBe(false)
    expect(a.peers('N').map((p) => p.name)).toContain('node1')
    expect(a.stats().networkEventQueue).toBe(0)

    // LEAVE
    ma.inject(networkEvent(NetworkEventType.LEAVE, 6_000n, 'node1', 'N'))
    expect(record(c, a, 'node1', 'N')).toMatchObject({ ltime: 6_000n, leaving: true })
    expect(a.peers('N').map((p) => p.name)).toEqual(['node0'])
    expect(a.getEntryInfo('t', 'N', 'b1')).toMatchObject({ deleting: true, ltime: b1.ltime, reapTimeMs: 30_000 })
    expect(a.getEntryInfo('t', 'N', 'b2')).toMatchObject({ deleting: true, ltime: b2.ltime })
    expect(a.getEntryInfo('t', 'N', 'a1')?.deleting).toBe(false)
    await settle(0)
    expect(onA.map((e) => `${e.type}:${e.key}:${dec(e.value)}`)).toEqual(['delete:b1:1'])
    expect(a.stats().networkEventQueue).toBe(1)

    // JOIN again
    ma.inject(networkEvent(NetworkEventType.JOIN, 6_001n, 'node1', 'N'))
    expect(record(c, a, 'node1', 'N')).toMatchObject({ ltime: 6_001n, leaving: false })
    expect(
      a
        .peers('N')
        .map((p) => p.name)
        .sort(),
    ).toEqual(['node0', 'node1'])
    expect(a.stats().networkEventQueue).toBe(1) // the JOIN replaced the queued LEAVE of (N, node1)
  })

  it('a LEAVE record is reaped after reapNetworkInterval, after the tombstones it made', async () => {
    const { c, a, b, ma } = await twoInN({ reapEntryIntervalMs: 30_000 })
    b.createEntry('t', 'N', 'b1', enc('1'))
    await settle(1_000)
    // keep node1 from re-announcing itself in N while the records count down
    c.hub.filter = (from) => from !== 'node1'
    ma.inject(networkEvent(NetworkEventType.LEAVE, 6_000n, 'node1', 'N'))
    expect(a.getEntryInfo('t', 'N', 'b1')?.deleting).toBe(true)
    await settle(36_000)
    expect(a.getEntryInfo('t', 'N', 'b1')).toBeUndefined()
    expect(record(c, a, 'node1', 'N')?.leaving).toBe(true)
    await settle(30_000)
    expect(record(c, a, 'node1', 'N')).toBeUndefined()
    expect(b.networks()).toEqual(['N'])
  })

  it('unknown record: LEAVE → drop; JOIN from a node that is not active → drop; JOIN from an active node → created', async () => {
    const { c, a, ma } = await twoInN()
    ma.inject(networkEvent(NetworkEventType.LEAVE, 100n, 'node1', 'M'))
    expect(record(c, a, 'node1', 'M')).toBeUndefined()
    ma.inject(networkEvent(NetworkEventType.JOIN, 100n, 'ghost', 'M'))
    expect(record(c, a, 'ghost', 'M')).toBeUndefined()
    expect(a.peers('M')).toEqual([])
    expect(a.stats().networkEventQueue).toBe(0)

    ma.inject(networkEvent(NetworkEventType.JOIN, 100n, 'node1', 'M'))
    expect(record(c, a, 'node1', 'M')).toMatchObject({ ltime: 100n, leaving: false })
    expect(a.peers('M').map((p) => p.name)).toEqual(['node1'])
    expect(a.stats().networkEventQueue).toBe(1)
  })
})

describe('§5.4 table events', () => {
  it('witness; drop when we are not in the network, are leaving it, or the owner is not in networkNodes', async () => {
    const { a, ma } = await twoInN()
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 7_000n, 'node1', 'x', 'x', 0, 'X')]))
    expect(a.stats().tableClock).toBe(7_001n)
    expect(a.getEntryInfo('t', 'X', 'x')).toBeUndefined()

    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 7_001n, 'node0', 'own', 'x')]))
    expect(a.getEntryInfo('t', 'N', 'own')).toBeUndefined()

    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 7_002n, 'ghost', 'g', 'x')]))
    expect(a.getEntryInfo('t', 'N', 'g')).toBeUndefined()

    a.leaveNetwork('N')
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 7_010n, 'node1', 'late', 'x')]))
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 7_011n, 'node1', 'late2', 'x', 600)]))
    expect(a.getEntryInfo('t', 'N', 'late')).toBeUndefined()
    expect(a.getEntryInfo('t', 'N', 'late2')).toBeUndefined()
    expect(a.stats().tableClock).toBe(7_012n)
  })

  it('a DELETE with residual 0 gets the full reapEntryInterval; the Delete carries the value', async () => {
    const { a, ma } = await twoInN()
    const onA = collect(a.watch({ table: 't' }))
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 10n, 'node1', 'k', 'v')]))
    ma.inject(makeCompound([tableEvent(TableEventType.DELETE, 11n, 'node1', 'k', 'v', 0)]))
    expect(a.getEntryInfo('t', 'N', 'k')).toMatchObject({ deleting: true, ltime: 11n, reapTimeMs: 30 * 60_000 })
    expect(() => a.getEntry('t', 'N', 'k')).toThrow(EntryNotFoundError)
    await settle(0)
    expect(onA.map((e) => `${e.type}:${dec(e.value)}`)).toEqual(['create:v', 'delete:v'])
  })

  it('unknown key + bulk-sync DELETE: stored silently, rebroadcast only if residual > reapEntryInterval/6', async () => {
    const { a, ma } = await twoInN()
    const onA = collect(a.watch({}))
    expect(queueOf(a, 'N')).toBe(0)
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 20n, 'node1', 'at', 'x', 300)]))
    expect(a.getEntryInfo('t', 'N', 'at')).toMatchObject({ deleting: true, reapTimeMs: 300_000 })
    expect(queueOf(a, 'N')).toBe(0)
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 21n, 'node1', 'above', 'x', 301)]))
    expect(a.getEntryInfo('t', 'N', 'above')).toMatchObject({ deleting: true, reapTimeMs: 301_000 })
    expect(queueOf(a, 'N')).toBe(1)
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 22n, 'node1', 'old-peer', 'x', 0)]))
    expect(a.getEntryInfo('t', 'N', 'old-peer')).toMatchObject({ deleting: true, reapTimeMs: 30 * 60_000 })
    expect(queueOf(a, 'N')).toBe(2)
    // gossip DELETE of an unknown key: dropped
    ma.inject(makeCompound([tableEvent(TableEventType.DELETE, 23n, 'node1', 'gossiped', 'x', 1_000)]))
    expect(a.getEntryInfo('t', 'N', 'gossiped')).toBeUndefined()
    expect(queueOf(a, 'N')).toBe(2)
    await settle(0)
    expect(onA).toEqual([])
  })

  it('while the network is not in sync yet: events are applied and reported, never rebroadcast', async () => {
    const c = await fakeCluster(2, { eagerGossipIntervalMs: 0 })
    const [a, b] = c.dbs as [NetworkDBNode, NetworkDBNode]
    await b.joinNetwork('N')
    await settle(2_000)
    expect(a.peers('N').map((p) => p.name)).toEqual(['node1'])
    // node1's reply to the joining sync never arrives: node0 stays out of sync for bulkSyncTimeoutMs
    c.hub.filter = (from) => from !== 'node1'
    const joining = a.joinNetwork('N')
    await settle(100)
    const onA = collect(a.watch({ table: 't' }))
    const ma = c.member(a)
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 30n, 'node1', 'tomb', 'x', 1_000)]))
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 31n, 'node1', 'live', 'v')]))
    expect(a.getEntryInfo('t', 'N', 'tomb')?.deleting).toBe(true)
    expect(dec(a.getEntry('t', 'N', 'live'))).toBe('v')
    expect(queueOf(a, 'N')).toBe(0)
    await settle(0)
    expect(onA.map((e) => `${e.type}:${e.key}`)).toEqual(['create:live'])
    c.hub.filter = undefined
    await settle(31_000)
    await joining
    ma.inject(makeCompound([tableEvent(TableEventType.UPDATE, 32n, 'node1', 'live', 'v2')]))
    expect(queueOf(a, 'N')).toBe(1)
  })

  it('a known entry with ltime ≥ the event’s wins; bulk-learned events are not re-queued above 500 queued', async () => {
    const { a, ma } = await twoInN()
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 40n, 'node1', 'k', 'v40')]))
    ma.inject(bulk([tableEvent(TableEventType.UPDATE, 40n, 'node1', 'k', 'same')]))
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 39n, 'node1', 'k', 'older', 100)]))
    expect(a.getEntryInfo('t', 'N', 'k')).toMatchObject({ ltime: 40n, deleting: false })
    expect(dec(a.getEntry('t', 'N', 'k'))).toBe('v40')
    expect(queueOf(a, 'N')).toBe(1)

    for (let i = 1; queueOf(a, 'N') < 500; i++) a.createEntry('t', 'N', `own${i}`, enc('x'))
    expect(queueOf(a, 'N')).toBe(500)
    ma.inject(bulk([tableEvent(TableEventType.CREATE, 1_000n, 'node1', 'b1', 'x')]))
    expect(queueOf(a, 'N')).toBe(501)
    ma.inject(bulk([tableEvent(TableEventType.CREATE, 1_001n, 'node1', 'b2', 'x')]))
    expect(a.getEntryInfo('t', 'N', 'b2')?.deleting).toBe(false)
    expect(queueOf(a, 'N')).toBe(501)
    ma.inject(makeCompound([tableEvent(TableEventType.CREATE, 1_002n, 'node1', 'g1', 'x')]))
    expect(queueOf(a, 'N')).toBe(502)
  })
})

describe('§5.3 push-pull state', () => {
  it('localState(join) bumps the ltime of every local network to a fresh networkClock value; leaving flags travel', async () => {
    const { c, a } = await twoInN()
    await a.joinNetwork('L')
    a.leaveNetwork('L')
    const before = pushPullRecords(c, a)
    expect(before.find((r) => r.nodeName === 'node0' && r.networkId === 'L')?.leaving).toBe(true)
    const clock = a.stats().networkClock
    expect(pushPullRecords(c, a)).toEqual(before)
    const after = pushPullRecords(c, a, true)
    expect(a.stats().networkClock).toBe(clock + 1n)
    for (const r of after) {
      const old = before.find((o) => o.nodeName === r.nodeName && o.networkId === r.networkId)!
      if (r.nodeName === 'node0') expect(r).toEqual({ ...old, ltime: clock + 1n })
      else expect(r).toEqual(old)
    }
    expect(after.length).toBe(before.length)
  })

  it('mergeRemoteState applies a synthetic NodeEvent JOIN and a NetworkEvent per record; bad payloads are dropped', async () => {
    const logger = capturingLogger()
    const c = await fakeCluster(1, { eagerGossipIntervalMs: 0 })
    let delegate: Delegate | undefined
    const a = await createNetworkDB(
      {
        nodeId: 'probe',
        bindAddr: '127.0.0.1',
        bindPort: 0,
        eagerGossipIntervalMs: 0,
        logger: logger.forComponent('x'),
      },
      {
        createMemberlist: (cfg) => {
          delegate = cfg.delegate
          return c.hub.create(cfg)
        },
      },
    )
    c.dbs.push(a)
    await a.join([c.seed])
    await a.joinNetwork('N')
    await c.dbs[0]!.joinNetwork('N')
    await settle(2_000)
    a.createEntry('t', 'N', 'mine', enc('m'))
    c.member(a).inject(makeCompound([tableEvent(TableEventType.CREATE, 50n, 'node0', 'theirs', 'x')]))
    expect(a.getEntryInfo('t', 'N', 'theirs')?.deleting).toBe(false)
    const state = (ltime: bigint, networks: NetworkEntryMsg[]): Uint8Array =>
      encodeGossip(MessageType.PUSH_PULL, encodeNetworkPushPull({ ltime, nodeName: 'node0', networks }))

    delegate!.mergeRemoteState(
      state(900n, [
        { networkId: 'N', ltime: 901n, nodeName: 'node0', leaving: true },
        { networkId: 'M', ltime: 902n, nodeName: 'node0', leaving: false },
        { networkId: 'N', ltime: 903n, nodeName: 'probe', leaving: true },
      ]),
      false,
    )
    expect(nodeOf(a, 'node0')).toMatchObject({ status: 'active', ltime: 900n })
    expect(a.stats().networkClock).toBeGreaterThan(903n)
    expect(a.peers('N').map((p) => p.name)).toEqual(['probe'])
    expect(a.getEntryInfo('t', 'N', 'theirs')?.deleting).toBe(true)
    expect(a.peers('M').map((p) => p.name)).toEqual(['node0'])
    expect(a.networks()).toEqual(['N'])
    expect(dec(a.getEntry('t', 'N', 'mine'))).toBe('m')

    const errors = (): number => logger.lines.filter((l) => l.level === 'error').length
    const e0 = errors()
    delegate!.mergeRemoteState(new Uint8Array(0), false)
    delegate!.mergeRemoteState(new Uint8Array([0x0a, 0xff]), false)
    expect(errors()).toBe(e0 + 2)
    // a wrong type is logged, and the payload still decoded
    delegate!.mergeRemoteState(
      encodeGossip(
        MessageType.NODE_EVENT,
        encodeNetworkPushPull({
          ltime: 950n,
          nodeName: 'node0',
          networks: [{ networkId: 'M', ltime: 951n, nodeName: 'node0', leaving: true }],
        }),
      ),
      false,
    )
    expect(errors()).toBe(e0 + 3)
    expect(nodeOf(a, 'node0')?.ltime).toBe(950n)
    expect(a.peers('M')).toEqual([])
  })
})

describe('§3 local API', () => {
  it('leaveNetwork: own entries → tombstones with ltime + 1, others removed, Delete for every live entry, record leaving', async () => {
    const { c, a, b } = await twoInN({ reapEntryIntervalMs: 30_000 })
    a.createEntry('t', 'N', 'a-live', enc('al'))
    a.createEntry('t', 'N', 'a-dead', enc('ad'))
    a.deleteEntry('t', 'N', 'a-dead')
    b.createEntry('t', 'N', 'b-live', enc('bl'))
    b.createEntry('t', 'N', 'b-dead', enc('bd'))
    await settle(1_000)
    b.deleteEntry('t', 'N', 'b-dead')
    await settle(1_000)
    const aLive = a.getEntryInfo('t', 'N', 'a-live')!
    const aDead = a.getEntryInfo('t', 'N', 'a-dead')!
    const onA = collect(a.watch({}))
    const queued = a.stats().networkEventQueue
    const clock = a.stats().networkClock

    a.leaveNetwork('N')
    expect(a.getEntryInfo('t', 'N', 'a-live')).toMatchObject({
      deleting: true,
      ltime: aLive.ltime + 1n,
      reapTimeMs: 30_000,
    })
    expect(dec(a.getEntryInfo('t', 'N', 'a-live')!.value)).toBe('al')
    expect(a.getEntryInfo('t', 'N', 'a-dead')).toEqual(aDead)
    expect(a.getEntryInfo('t', 'N', 'b-live')).toBeUndefined()
    expect(a.getEntryInfo('t', 'N', 'b-dead')).toBeUndefined()
    await settle(0)
    expect(onA.map((e) => `${e.type}:${e.key}:${dec(e.value)}:${e.owner}`).sort()).toEqual([
      'delete:a-live:al:node0',
      'delete:b-live:bl:node1',
    ])
    expect(a.networks()).toEqual([])
    expect(a.peers('N').map((p) => p.name)).toEqual(['node1'])
    expect(record(c, a, 'node0', 'N')).toMatchObject({ leaving: true, ltime: clock + 1n })
    expect(a.stats().networkEventQueue).toBe(queued + 1)
    await settle(2_000)
    expect(b.peers('N').map((p) => p.name)).toEqual(['node1'])
    expect(() => a.leaveNetwork('never')).toThrow(NetworkNotJoinedError)
  })

  it('createEntry over a tombstone works, deleteEntry keeps the old value, getEntry hides tombstones, updateEntry needs an entry', async () => {
    const { a } = await twoInN()
    a.createEntry('t', 'N', 'k', enc('v1'))
    expect(() => a.createEntry('t', 'N', 'k', enc('v2'))).toThrow(EntryExistsError)
    a.deleteEntry('t', 'N', 'k')
    expect(a.getEntryInfo('t', 'N', 'k')).toMatchObject({ deleting: true, reapTimeMs: 30 * 60_000 })
    expect(dec(a.getEntryInfo('t', 'N', 'k')!.value)).toBe('v1')
    expect(() => a.getEntry('t', 'N', 'k')).toThrow(EntryNotFoundError)
    expect(a.getTableByNetwork('t', 'N').size).toBe(0)
    const walked: string[] = []
    a.walkTable('t', (nid, key, value, deleting) => {
      walked.push(`${nid}/${key}=${dec(value)}:${deleting}`)
    })
    expect(walked).toEqual(['N/k=v1:true'])
    expect(() => a.deleteEntry('t', 'N', 'k')).toThrow(EntryNotFoundError)
    const before = a.getEntryInfo('t', 'N', 'k')!.ltime
    a.createEntry('t', 'N', 'k', enc('v3'))
    expect(a.getEntryInfo('t', 'N', 'k')).toMatchObject({ deleting: false, reapTimeMs: 0, owner: 'node0' })
    expect(a.getEntryInfo('t', 'N', 'k')!.ltime).toBeGreaterThan(before)
    expect(dec(a.getEntry('t', 'N', 'k'))).toBe('v3')
    expect(() => a.updateEntry('t', 'N', 'missing', enc('x'))).toThrow(EntryNotFoundError)
  })
})

describe('§7 reaping', () => {
  it('a tombstone loses 5 s per pass and goes once no more than 5 s + 1 s would remain; the residual on the wire stays ≥ 1', async () => {
    const { a, ma } = await twoInN()
    ma.inject(bulk([tableEvent(TableEventType.DELETE, 60n, 'node1', 'k', 'x', 11)]))
    const seen: number[] = []
    for (let i = 0; i < 4; i++) {
      seen.push(a.getEntryInfo('t', 'N', 'k')?.reapTimeMs ?? -1)
      await settle(5_000)
    }
    // 11 s → 6 s (> 5 s + 1 s? no: 6 s is not > 6 s) → removed
    expect(seen[0]).toBe(11_000)
    expect(seen[1]).toBe(6_000)
    expect(seen[2]).toBe(-1)
  })
})
