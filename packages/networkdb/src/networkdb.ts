import diagnostics from 'node:diagnostics_channel'
import { TransmitLimitedQueue, createMemberlist as realCreateMemberlist } from '@cnm/memberlist'
import type {
  Address,
  Broadcast,
  Delegate,
  EventDelegate,
  Memberlist,
  MemberlistConfig,
  MemberlistStats,
  Node,
} from '@cnm/memberlist'
import { noopLogger, throwIfAborted } from '@cnm/types'
import type { AbortOptions, Logger } from '@cnm/types'
import { buildBulkSyncMessages } from './bulk-sync.js'
import { LamportClock } from './clock.js'
import { resolveConfig } from './config.js'
import type { ResolvedConfig } from './config.js'
import {
  EntryExistsError,
  EntryNotFoundError,
  JoinFailedError,
  NetworkDBClosedError,
  NetworkNotJoinedError,
} from './errors.js'
import {
  MessageType,
  NetworkEventType,
  NodeEventType,
  TableEventType,
  decodeBulkSync,
  decodeCompound,
  decodeGossip,
  decodeNetworkEvent,
  decodeNetworkPushPull,
  decodeNodeEvent,
  decodeTableEvent,
  encodeGossip,
  encodeNetworkEvent,
  encodeNetworkPushPull,
  encodeNodeEvent,
  encodeTableEvent,
  makeCompound,
} from './proto.js'
import type { NetworkEntryMsg, NetworkEventMsg, NodeEventMsg, TableEventMsg } from './proto.js'
import { findReincarnated, joinAddress, sample, splitHostPort } from './nodes.js'
import type { NodeRecord } from './nodes.js'
import { reapDeadNodes, reapLeavingNetworks, reapTombstones } from './reaper.js'
import { TableEventQueue } from './table-queue.js'
import { EntryStore } from './tables.js'
import type { Entry } from './tables.js'
import type {
  EntryInfo,
  NetworkDB,
  NetworkDBConfig,
  NetworkDBStats,
  NetworkStats,
  NodeInfo,
  NodeStatus,
  PeerInfo,
  TableEvent,
  TableEventType as WatchEventType,
  TableWatch,
  WatchFilter,
} from './types.js'
import { WatchHub } from './watch.js'

/** `{ nodeId, name, status }` whenever a node changes state (active, left, failed). */
const nodeStateChannel = diagnostics.channel('cnm:networkdb:node-state')
/** `{ nodeId, peer, networks, entries, messages, unsolicited }` for every bulk sync sent. */
const bulkSyncChannel = diagnostics.channel('cnm:networkdb:bulk-sync')

/** The pseudo table of node join/leave events. */
export const NODE_TABLE = 'NodeTable'

/** Bulk-learned table events are not re-queued when the network's queue already holds more. */
const MAX_QUEUE_LEN_BROADCAST_ON_SYNC = 500
/** Per compound part: the payload plus this many bytes (Go's compoundOverhead). */
const COMPOUND_OVERHEAD = 4
/** Go's compoundHeaderOverhead. */
const COMPOUND_HEADER_OVERHEAD = 5
const RETRANSMIT_MULT = 4

export type CreateMemberlistFn = (
  config: Partial<MemberlistConfig> & { name: string },
) => Memberlist | Promise<Memberlist>

export interface NetworkDBDeps {
  /** Membership layer factory; default `createMemberlist` of `@cnm/memberlist`. */
  createMemberlist?: CreateMemberlistFn
}

interface NetworkRecord {
  readonly id: string
  ltime: bigint
  leaving: boolean
  reapTimeMs: number
  /** Local networks only. */
  inSync: boolean
  /** Local networks only. */
  queue: TableEventQueue | undefined
}

/** One networkdb node: see spec/cluster.md §2–§7. */
export class NetworkDBNode implements NetworkDB {
  readonly #cfg: ResolvedConfig
  readonly #log: Logger
  #ml!: Memberlist
  readonly #networkClock = new LamportClock()
  readonly #tableClock = new LamportClock()
  readonly #nodes = new Map<string, NodeRecord>()
  /** networks[node][nid] */
  readonly #networks = new Map<string, Map<string, NetworkRecord>>()
  readonly #networkNodes = new Map<string, Set<string>>()
  readonly #store = new EntryStore()
  readonly #watch = new WatchHub()
  readonly #networkQueue: TransmitLimitedQueue
  readonly #nodeQueue: TransmitLimitedQueue
  /** Initiators waiting for the reply to an unsolicited bulk sync, by peer name. */
  readonly #bulkSyncWaiters = new Map<string, Set<() => void>>()
  #bootstrap: string[] = []
  readonly #ac = new AbortController()
  readonly #timers: NodeJS.Timeout[] = []
  /** Eager gossip per network: the pending send, and when the last one went out. */
  readonly #eager = new Map<string, { timer: NodeJS.Timeout | undefined; last: number }>()
  readonly #tasks = new Set<Promise<unknown>>()
  #busy = { bulkSync: false, reconnect: false, rejoin: false }
  #closed = false
  #closing: Promise<void> | undefined

  constructor(cfg: ResolvedConfig) {
    this.#cfg = cfg
    this.#log = cfg.logger ?? noopLogger().forComponent('cnm:networkdb')
    const activeCount = (): number => {
      let n = 0
      for (const node of this.#nodes.values()) if (node.status === 'active') n++
      return n
    }
    this.#networkQueue = new TransmitLimitedQueue({ numNodes: activeCount, retransmitMult: RETRANSMIT_MULT })
    this.#nodeQueue = new TransmitLimitedQueue({ numNodes: activeCount, retransmitMult: RETRANSMIT_MULT })
  }

  /** Creates the memberlist and starts the periodic tasks. */
  async start(createMl: CreateMemberlistFn): Promise<void> {
    const delegate: Delegate = {
      nodeMeta: () => new Uint8Array(0),
      notifyMsg: (buf) => this.#guard('notifyMsg', () => this.#notifyMsg(buf)),
      getBroadcasts: (overhead, limit) =>
        this.#guard('getBroadcasts', () => this.#getBroadcasts(overhead, limit)) ?? [],
      localState: (join) => this.#guard('localState', () => this.#localState(join)) ?? new Uint8Array(0),
      mergeRemoteState: (buf) => this.#guard('mergeRemoteState', () => this.#mergeRemoteState(buf)),
    }
    const events: EventDelegate = {
      notifyJoin: (node) => this.#guard('notifyJoin', () => this.#notifyJoin(node)),
      notifyLeave: (node) => this.#guard('notifyLeave', () => this.#notifyLeave(node)),
      notifyUpdate: () => undefined,
    }
    const c = this.#cfg
    const mlConfig: Partial<MemberlistConfig> & { name: string } = {
      ...c.memberlist,
      name: c.nodeId,
      bindAddr: c.bindAddr,
      bindPort: c.bindPort,
      keys: c.keys,
      udpBufferSize: c.packetBufferSize,
      delegate,
      events,
    }
    if (c.advertiseAddr !== undefined) mlConfig.advertiseAddr = c.advertiseAddr
    if (c.advertisePort !== undefined) mlConfig.advertisePort = c.advertisePort
    if (c.memberlist?.logger === undefined && c.logger !== undefined) mlConfig.logger = c.logger.child('memberlist')
    this.#ml = await createMl(mlConfig)
    if (!this.#nodes.has(c.nodeId)) this.#notifyJoin(this.#ml.localNode())
    this.#log('started node %s (%s) on %s:%d', c.nodeId, c.hostname, this.#ml.address.addr, this.#ml.address.port)

    this.#every(c.reapIntervalMs, () => this.#reapState())
    this.#every(c.gossipIntervalMs, () => this.#gossip())
    this.#every(c.bulkSyncIntervalMs, () => this.#exclusive('bulkSync', () => this.#bulkSyncTables()))
    this.#every(c.reconnectIntervalMs, () => this.#exclusive('reconnect', () => this.#reconnectNode()))
    this.#every(c.rejoinBootstrapIntervalMs, () => this.#exclusive('rejoin', () => this.#rejoinClusterBootstrap()))
    this.#every(c.reapDeadNodeIntervalMs, () => this.#reapDeadNodes())
  }

  get nodeId(): string {
    return this.#cfg.nodeId
  }

  get address(): Address {
    return this.#ml.address
  }

  // ---------------------------------------------------------------- lifecycle

  async join(members: readonly string[], opts?: AbortOptions): Promise<void> {
    throwIfAborted(opts?.signal)
    this.#assertOpen()
    this.#bootstrap = [...members]
    try {
      await this.#ml.join(members, opts?.signal === undefined ? undefined : { signal: opts.signal })
    } catch (err) {
      throwIfAborted(opts?.signal)
      throw new JoinFailedError(members, err)
    }
    void this.#sendNodeEvent(NodeEventType.JOIN)
  }

  async close(): Promise<void> {
    this.#closing ??= this.#doClose()
    return this.#closing
  }

  async #doClose(): Promise<void> {
    if (this.#closed) return
    const others = [...this.#nodes.values()].some((n) => n.status === 'active' && n.name !== this.nodeId)
    const sent = this.#sendNodeEvent(NodeEventType.LEAVE)
    if (others) {
      const timeout = new Promise<void>((resolve) => {
        const t = setTimeout(resolve, this.#cfg.nodeLeaveBroadcastTimeoutMs)
        t.unref()
        void sent.then(() => clearTimeout(t))
      })
      await Promise.race([sent, timeout])
    }
    try {
      await this.#ml.leave(this.#cfg.leaveTimeoutMs)
    } catch (err) {
      this.#log.error('memberlist leave failed: %s', err)
    }
    this.#stop()
    await this.#ml.shutdown()
    await Promise.allSettled([...this.#tasks])
    this.#log('closed node %s', this.nodeId)
  }

  /** Stops without announcing anything (as a crash would); for tests of failure handling. */
  async shutdown(): Promise<void> {
    if (this.#closed) return
    this.#stop()
    await this.#ml.shutdown()
    await Promise.allSettled([...this.#tasks])
  }

  #stop(): void {
    this.#closed = true
    this.#ac.abort(new NetworkDBClosedError())
    for (const t of this.#timers) clearTimeout(t)
    this.#timers.length = 0
    for (const e of this.#eager.values()) if (e.timer !== undefined) clearTimeout(e.timer)
    this.#eager.clear()
    for (const set of this.#bulkSyncWaiters.values()) for (const release of set) release()
    this.#bulkSyncWaiters.clear()
    this.#watch.closeAll()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  #assertOpen(): void {
    if (this.#closed) throw new NetworkDBClosedError()
  }

  /** Runs `fn` every `period` ms after a random stagger within the period. */
  #every(period: number, fn: () => void): void {
    const first = setTimeout(
      () => {
        if (this.#closed) return
        const t = setInterval(() => {
          if (!this.#closed) this.#guard('periodic task', fn)
        }, period)
        t.unref()
        this.#timers.push(t)
        this.#guard('periodic task', fn)
      },
      Math.floor(Math.random() * period),
    )
    first.unref()
    this.#timers.push(first)
  }

  /** Starts an async task unless one of the same kind still runs; tracked so close() can await it. */
  #exclusive(k: 'bulkSync' | 'reconnect' | 'rejoin', fn: () => Promise<void>): void {
    if (this.#busy[k]) return
    this.#busy[k] = true
    this.#track(
      fn().finally(() => {
        this.#busy[k] = false
      }),
    )
  }

  #track(p: Promise<unknown>): void {
    const tracked = p.catch((err: unknown) => {
      if (!this.#closed) this.#log.error('background task failed: %s', err)
    })
    this.#tasks.add(tracked)
    void tracked.finally(() => this.#tasks.delete(tracked))
  }

  #guard<T>(what: string, fn: () => T): T | undefined {
    try {
      return fn()
    } catch (err) {
      this.#log.error('%s failed: %s', what, err)
      return undefined
    }
  }

  // ---------------------------------------------------------------- networks

  async joinNetwork(networkId: string, opts?: AbortOptions): Promise<void> {
    throwIfAborted(opts?.signal)
    this.#assertOpen()
    const ltime = this.#networkClock.increment()
    const mine = this.#nodeNetworks(this.nodeId, true)
    const record: NetworkRecord = {
      id: networkId,
      ltime,
      leaving: false,
      reapTimeMs: 0,
      inSync: false,
      queue: new TableEventQueue({
        numNodes: () => this.#networkNodes.get(networkId)?.size ?? 0,
        retransmitMult: RETRANSMIT_MULT,
      }),
    }
    mine.set(networkId, record)
    this.#addNetworkNode(networkId, this.nodeId)
    this.#sendNetworkEvent(networkId, NetworkEventType.JOIN, ltime)
    this.#log('joined network %s', networkId)
    const nodes = [...(this.#networkNodes.get(networkId) ?? [])]
    try {
      await this.#bulkSync(nodes, true, opts?.signal)
    } catch (err) {
      if (opts?.signal?.aborted !== true)
        this.#log.error('bulk sync while joining network %s failed: %s', networkId, err)
    }
    // Marked in sync even when the sync failed or was cut short (Go does the same); the network is joined.
    record.inSync = true
    throwIfAborted(opts?.signal)
  }

  leaveNetwork(networkId: string): void {
    this.#assertOpen()
    const n = this.#networks.get(this.nodeId)?.get(networkId)
    if (n === undefined || n.leaving) throw new NetworkNotJoinedError(networkId)
    const ltime = this.#networkClock.increment()
    this.#sendNetworkEvent(networkId, NetworkEventType.LEAVE, ltime)
    this.#deleteNetworkNode(networkId, this.nodeId)
    this.#deleteNodeNetworkEntries(networkId, this.nodeId)
    n.ltime = ltime
    n.reapTimeMs = this.#cfg.reapNetworkIntervalMs
    n.leaving = true
    this.#log('left network %s', networkId)
  }

  networks(): string[] {
    const out: string[] = []
    for (const [nid, n] of this.#networks.get(this.nodeId) ?? []) if (!n.leaving) out.push(nid)
    return out
  }

  #nodeNetworks(node: string, create: boolean): Map<string, NetworkRecord> {
    let m = this.#networks.get(node)
    if (m === undefined) {
      m = new Map()
      if (create) this.#networks.set(node, m)
    }
    return m
  }

  #addNetworkNode(nid: string, node: string): void {
    let s = this.#networkNodes.get(nid)
    if (s === undefined) this.#networkNodes.set(nid, (s = new Set()))
    s.add(node)
  }

  #deleteNetworkNode(nid: string, node: string): void {
    this.#networkNodes.get(nid)?.delete(node)
  }

  #sendNetworkEvent(nid: string, type: number, ltime: bigint): void {
    const raw = encodeGossip(
      MessageType.NETWORK_EVENT,
      encodeNetworkEvent({ type, ltime, nodeName: this.nodeId, networkId: nid }),
    )
    this.#queueNetworkBroadcast(raw, nid, this.nodeId)
  }

  #queueNetworkBroadcast(message: Uint8Array, nid: string, node: string): void {
    const b: Broadcast & { nid: string; node: string } = {
      message,
      nid,
      node,
      invalidates: (other) => {
        const o = other as Partial<{ nid: string; node: string }>
        return o.nid === nid && o.node === node
      },
    }
    this.#networkQueue.queue(b)
  }

  /** Queues a NodeEvent of ours; resolves when it has left the queue (sent or replaced). */
  #sendNodeEvent(type: number): Promise<void> {
    const raw = encodeGossip(
      MessageType.NODE_EVENT,
      encodeNodeEvent({ type, ltime: this.#networkClock.increment(), nodeName: this.nodeId }),
    )
    return new Promise<void>((resolve) => {
      this.#nodeQueue.queue({ message: raw, invalidates: () => false, finished: resolve })
    })
  }

  // ---------------------------------------------------------------- entries

  createEntry(table: string, networkId: string, key: string, value: Uint8Array): void {
    this.#assertOpen()
    const old = this.#getEntry(table, networkId, key)
    if (old !== undefined && !old.deleting) throw new EntryExistsError(table, networkId, key)
    const e: Entry = { ltime: this.#tableClock.increment(), owner: this.nodeId, value, deleting: false, reapTimeMs: 0 }
    this.#sendTableEvent(TableEventType.CREATE, networkId, table, key, e)
    this.#store.put(networkId, table, key, e)
  }

  updateEntry(table: string, networkId: string, key: string, value: Uint8Array): void {
    this.#assertOpen()
    if (this.#getEntry(table, networkId, key) === undefined) throw new EntryNotFoundError(table, networkId, key)
    const e: Entry = { ltime: this.#tableClock.increment(), owner: this.nodeId, value, deleting: false, reapTimeMs: 0 }
    this.#sendTableEvent(TableEventType.UPDATE, networkId, table, key, e)
    this.#store.put(networkId, table, key, e)
  }

  deleteEntry(table: string, networkId: string, key: string): void {
    this.#assertOpen()
    const old = this.#getEntry(table, networkId, key)
    if (old === undefined || old.deleting) throw new EntryNotFoundError(table, networkId, key)
    const e: Entry = {
      ltime: this.#tableClock.increment(),
      owner: this.nodeId,
      value: old.value,
      deleting: true,
      reapTimeMs: this.#cfg.reapEntryIntervalMs,
    }
    this.#sendTableEvent(TableEventType.DELETE, networkId, table, key, e)
    this.#store.put(networkId, table, key, e)
  }

  getEntry(table: string, networkId: string, key: string): Uint8Array {
    const e = this.#getEntry(table, networkId, key)
    if (e === undefined || e.deleting) throw new EntryNotFoundError(table, networkId, key)
    return e.value
  }

  getEntryInfo(table: string, networkId: string, key: string): EntryInfo | undefined {
    const e = this.#getEntry(table, networkId, key)
    if (e === undefined) return undefined
    return { value: e.value, owner: e.owner, ltime: e.ltime, deleting: e.deleting, reapTimeMs: e.reapTimeMs }
  }

  getTableByNetwork(table: string, networkId: string): Map<string, { value: Uint8Array; owner: string }> {
    const out = new Map<string, { value: Uint8Array; owner: string }>()
    for (const [key, e] of this.#store.table(networkId, table) ?? []) {
      if (!e.deleting) out.set(key, { value: e.value, owner: e.owner })
    }
    return out
  }

  walkTable(
    table: string,
    fn: (networkId: string, key: string, value: Uint8Array, deleting: boolean) => boolean | void,
  ): void {
    this.#store.walkTable(table, (nid, key, e) => fn(nid, key, e.value, e.deleting))
  }

  watch(filter: WatchFilter, opts?: AbortOptions): TableWatch {
    return this.#watch.watch(filter, opts)
  }

  #getEntry(table: string, nid: string, key: string): Entry | undefined {
    return this.#store.get(nid, table, key)
  }

  #emit(type: WatchEventType, table: string, networkId: string, key: string, value: Uint8Array, owner: string): void {
    const ev: TableEvent = { type, table, networkId, key, value, owner }
    this.#watch.emit(ev)
  }

  #sendTableEvent(type: number, nid: string, table: string, key: string, e: Entry): void {
    const n = this.#networks.get(this.nodeId)?.get(nid)
    if (n?.queue === undefined) return
    const raw = encodeGossip(
      MessageType.TABLE_EVENT,
      encodeTableEvent({
        type,
        ltime: e.ltime,
        nodeName: this.nodeId,
        networkId: nid,
        tableName: table,
        key,
        value: e.value,
        residualReapTime: Math.trunc(e.reapTimeMs / 1000),
      }),
    )
    n.queue.queue(`${table}\u0000${nid}\u0000${key}`, raw)
    this.#gossipSoon(nid)
  }

  /**
   * A node left the network (or we did): its entries become tombstones (ours get ltime + 1), other nodes'
   * entries are dropped when we are the one leaving. Watchers get Delete for every live entry.
   */
  #deleteNodeNetworkEntries(nid: string, node: string): void {
    const isLocal = node === this.nodeId
    for (const [table, key, old] of this.#store.networkEntries(nid)) {
      if (old.owner !== node && !isLocal) continue
      if (old.deleting && !isLocal) continue
      if (old.owner === node) {
        if (!old.deleting) {
          this.#store.put(nid, table, key, {
            ltime: isLocal ? old.ltime + 1n : old.ltime,
            owner: old.owner,
            value: old.value,
            deleting: true,
            reapTimeMs: this.#cfg.reapEntryIntervalMs,
          })
        }
      } else {
        this.#store.remove(nid, table, key)
      }
      if (!old.deleting) this.#emit('delete', table, nid, key, old.value, old.owner)
    }
  }

  /** A node left or failed: forget all its entries at once (Delete to watchers for live ones). */
  #deleteNodeTableEntries(node: string): void {
    for (const [nid, table, key, e] of this.#store.removeOwnedBy(node)) {
      if (!e.deleting) this.#emit('delete', table, nid, key, e.value, e.owner)
    }
  }

  // ---------------------------------------------------------------- nodes

  peers(networkId: string): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const name of this.#networkNodes.get(networkId) ?? []) {
      const n = this.#nodes.get(name)
      if (n !== undefined && n.status === 'active') out.push({ name, ip: n.addr, port: n.port })
      else out.push({ name, ip: 'unknown', port: 0 })
    }
    return out
  }

  clusterPeers(): PeerInfo[] {
    const out: PeerInfo[] = []
    for (const n of this.#nodes.values())
      if (n.status === 'active') out.push({ name: n.name, ip: n.addr, port: n.port })
    return out
  }

  nodes(): NodeInfo[] {
    return [...this.#nodes.values()].map((n) => ({
      name: n.name,
      ip: n.addr,
      port: n.port,
      status: n.status,
      ltime: n.ltime,
      reapTimeMs: n.reapTimeMs,
    }))
  }

  #changeNodeState(name: string, status: NodeStatus): boolean {
    const n = this.#nodes.get(name)
    if (n === undefined || n.status === status) return false
    n.status = status
    if (status !== 'active') {
      this.#deleteNodeFromNetworks(name)
      this.#deleteNodeTableEntries(name)
      if (n.reapTimeMs === 0) n.reapTimeMs = this.#cfg.nodeReapTimeMs
    } else {
      n.reapTimeMs = 0
    }
    this.#log('node %s is now %s', name, status)
    if (nodeStateChannel.hasSubscribers) nodeStateChannel.publish({ nodeId: this.nodeId, name, status })
    return true
  }

  #deleteNodeFromNetworks(name: string): void {
    for (const s of this.#networkNodes.values()) s.delete(name)
    this.#networks.delete(name)
  }

  #purgeReincarnation(node: Node): void {
    const old = findReincarnated(this.#nodes.values(), node.name, node)
    if (old === undefined) return
    this.#log('node %s is a new incarnation of %s node %s', node.name, old.status, old.name)
    this.#changeNodeState(old.name, 'left')
  }

  #notifyJoin(node: Node): void {
    this.#emit('create', NODE_TABLE, '', '', new TextEncoder().encode(JSON.stringify({ Addr: node.addr })), node.name)
    const known = this.#nodes.get(node.name)
    if (known !== undefined) {
      known.addr = node.addr
      known.port = node.port
      if (this.#changeNodeState(node.name, 'active')) return
      if (known.status === 'active') {
        this.#purgeReincarnation(node)
        return
      }
    }
    this.#purgeReincarnation(node)
    this.#nodes.set(node.name, {
      name: node.name,
      addr: node.addr,
      port: node.port,
      ltime: known?.ltime ?? 0n,
      reapTimeMs: 0,
      status: 'active',
    })
    this.#log('node %s (%s:%d) joined', node.name, node.addr, node.port)
  }

  #notifyLeave(node: Node): void {
    this.#emit('delete', NODE_TABLE, '', '', new TextEncoder().encode(JSON.stringify({ Addr: node.addr })), node.name)
    const n = this.#nodes.get(node.name)
    if (n === undefined) {
      this.#log.error('node %s (%s) left but is not in the node lists', node.name, node.addr)
      return
    }
    if (n.status === 'active') this.#changeNodeState(node.name, 'failed')
  }

  #reapDeadNodes(): void {
    for (const name of reapDeadNodes(this.#nodes, this.#cfg.reapDeadNodeIntervalMs)) this.#log('forgot node %s', name)
  }

  async #reconnectNode(): Promise<void> {
    const failed = [...this.#nodes.values()].filter((n) => n.status === 'failed')
    const node = sample(failed, 1)[0]
    if (node === undefined) return
    const addr = joinAddress(node.addr, node.port)
    try {
      await this.#ml.join([addr], { signal: this.#ac.signal })
    } catch (err) {
      this.#log.trace('reconnect to failed node %s at %s: %s', node.name, addr, err)
      return
    }
    if (this.#closed) return
    void this.#sendNodeEvent(NodeEventType.JOIN)
    this.#log('reconnected to node %s, bulk syncing', node.name)
    await this.#bulkSync([node.name], true, this.#ac.signal)
  }

  async #rejoinClusterBootstrap(): Promise<void> {
    if (this.#bootstrap.length === 0) return
    const me = this.#ml.address
    const pending: string[] = []
    for (const b of this.#bootstrap) {
      const { host, port } = splitHostPort(b)
      if (host === '') continue
      const selfAddr = host === me.addr && (port === undefined || port === me.port)
      for (const n of this.#nodes.values()) {
        if (n.status !== 'active' || n.name === this.nodeId) continue
        if (n.addr === host && (port === undefined || port === n.port) && !selfAddr) return
      }
      if (!selfAddr) pending.push(b)
    }
    if (pending.length === 0) return
    this.#log('no bootstrap node is a member, rejoining %s', pending.join(','))
    const deadline = Date.now() + this.#cfg.rejoinBootstrapDurationMs
    for (;;) {
      if (this.#closed) return
      try {
        await this.#ml.join(pending, { signal: this.#ac.signal })
        void this.#sendNodeEvent(NodeEventType.JOIN)
        return
      } catch (err) {
        this.#log.trace('bootstrap rejoin failed: %s', err)
      }
      if (Date.now() + 1000 > deadline) return
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, 1000)
        t.unref()
      })
    }
  }

  // ---------------------------------------------------------------- gossip

  #gossip(): void {
    const mine = this.#networks.get(this.nodeId)
    if (mine === undefined) return
    for (const nid of mine.keys()) this.#gossipNetwork(nid)
  }

  /** One gossip round for one network: queued table events to up to 3 random nodes of it. */
  #gossipNetwork(nid: string): void {
    const n = this.#networks.get(this.nodeId)?.get(nid)
    if (n?.queue === undefined || n.queue.length === 0) return
    const members = [...(this.#networkNodes.get(nid) ?? [])].filter((x) => x !== this.nodeId)
    const targets = sample(members, 3)
    if (targets.length === 0) return
    const msgs = n.queue.getBroadcasts(COMPOUND_OVERHEAD, this.#cfg.packetBufferSize - COMPOUND_HEADER_OVERHEAD)
    if (msgs.length === 0) return
    const compound = makeCompound(msgs)
    for (const name of targets) {
      const node = this.#nodes.get(name)
      if (node === undefined || node.status !== 'active') continue
      try {
        this.#ml.sendBestEffort({ addr: node.addr, port: node.port }, compound)
      } catch (err) {
        this.#log.error('gossip to %s for network %s failed: %s', name, nid, err)
      }
    }
  }

  #peersIn(nid: string): number {
    const nodes = this.#networkNodes.get(nid)
    if (nodes === undefined) return 0
    return nodes.has(this.nodeId) ? nodes.size - 1 : nodes.size
  }

  /** Eager gossip: sends a network's new table events now, or as soon as its rate limit allows. */
  #gossipSoon(nid: string): void {
    const gap = this.#cfg.eagerGossipIntervalMs
    if (gap === 0 || this.#closed) return
    let e = this.#eager.get(nid)
    if (e === undefined) {
      e = { timer: undefined, last: -Infinity }
      this.#eager.set(nid, e)
    }
    if (e.timer !== undefined) return
    const state = e
    const delay = Math.max(0, state.last + gap - performance.now())
    state.timer = setTimeout(() => {
      state.timer = undefined
      state.last = performance.now()
      if (this.#closed) return
      this.#guard('eager gossip', () => this.#gossipNetwork(nid))
      // a burst larger than one datagram: keep going while some events were never sent
      const queue = this.#networks.get(this.nodeId)?.get(nid)?.queue
      if (queue !== undefined && queue.unsent > 0 && this.#peersIn(nid) > 0) this.#gossipSoon(nid)
    }, delay)
    state.timer.unref()
  }

  #getBroadcasts(overhead: number, limit: number): Uint8Array[] {
    const msgs = this.#networkQueue.getBroadcasts(overhead, limit)
    let used = 0
    for (const m of msgs) used += overhead + m.length
    return msgs.concat(this.#nodeQueue.getBroadcasts(overhead, limit - used))
  }

  #localState(join: boolean): Uint8Array {
    if (join) {
      const ltime = this.#networkClock.increment()
      for (const n of this.#networks.get(this.nodeId)?.values() ?? []) n.ltime = ltime
    }
    const networks: NetworkEntryMsg[] = []
    for (const [name, nn] of this.#networks) {
      for (const n of nn.values())
        networks.push({ networkId: n.id, ltime: n.ltime, nodeName: name, leaving: n.leaving })
    }
    return encodeGossip(
      MessageType.PUSH_PULL,
      encodeNetworkPushPull({ ltime: this.#networkClock.time(), networks, nodeName: this.nodeId }),
    )
  }

  #mergeRemoteState(buf: Uint8Array): void {
    if (buf.length === 0) {
      this.#log.error('empty remote network state received')
      return
    }
    let pp
    try {
      const g = decodeGossip(buf)
      if (g.type !== MessageType.PUSH_PULL) this.#log.error('push-pull state of unexpected type %d', g.type)
      pp = decodeNetworkPushPull(g.data)
    } catch (err) {
      this.#log.error('dropped undecodable remote network state: %s', err)
      return
    }
    this.#handleNodeEvent({ type: NodeEventType.JOIN, ltime: pp.ltime, nodeName: pp.nodeName })
    for (const n of pp.networks) {
      this.#handleNetworkEvent({
        type: n.leaving ? NetworkEventType.LEAVE : NetworkEventType.JOIN,
        ltime: n.ltime,
        nodeName: n.nodeName,
        networkId: n.networkId,
      })
    }
  }

  // ---------------------------------------------------------------- receive

  #notifyMsg(buf: Uint8Array): void {
    if (buf.length === 0) return
    this.#handleMessage(buf, false)
  }

  #handleMessage(buf: Uint8Array, isBulkSync: boolean): void {
    let g
    try {
      g = decodeGossip(buf)
    } catch (err) {
      this.#log.error('dropped malformed gossip message (%d bytes): %s', buf.length, err)
      return
    }
    try {
      switch (g.type) {
        case MessageType.NETWORK_EVENT:
          return this.#handleNetworkMessage(g.data)
        case MessageType.TABLE_EVENT:
          return this.#handleTableMessage(g.data, isBulkSync)
        case MessageType.BULK_SYNC:
          return this.#handleBulkSync(g.data)
        case MessageType.COMPOUND:
          return this.#handleCompound(g.data, isBulkSync)
        case MessageType.NODE_EVENT:
          return this.#handleNodeMessage(g.data)
        default:
          this.#log.error('ignored message of unknown type %d', g.type)
      }
    } catch (err) {
      this.#log.error('dropped malformed message of type %d: %s', g.type, err)
    }
  }

  #handleCompound(data: Uint8Array, isBulkSync: boolean): void {
    const c = decodeCompound(data)
    for (const part of c.messages) this.#handleMessage(part, isBulkSync)
  }

  #handleNodeMessage(data: Uint8Array): void {
    const ev = decodeNodeEvent(data)
    if (this.#handleNodeEvent(ev)) {
      this.#nodeQueue.queue({ message: encodeGossip(MessageType.NODE_EVENT, data), invalidates: () => false })
    }
  }

  #handleNodeEvent(ev: NodeEventMsg): boolean {
    this.#networkClock.witness(ev.ltime)
    const n = this.#nodes.get(ev.nodeName)
    if (n === undefined) return false
    if (n.ltime >= ev.ltime) return false
    n.ltime = ev.ltime
    if (n.status !== 'active') return false
    switch (ev.type) {
      case NodeEventType.JOIN:
        return this.#changeNodeState(ev.nodeName, 'active')
      case NodeEventType.LEAVE:
        return this.#changeNodeState(ev.nodeName, 'left')
      default:
        return false
    }
  }

  #handleNetworkMessage(data: Uint8Array): void {
    const ev = decodeNetworkEvent(data)
    if (this.#handleNetworkEvent(ev)) {
      this.#queueNetworkBroadcast(encodeGossip(MessageType.NETWORK_EVENT, data), ev.networkId, ev.nodeName)
    }
  }

  #handleNetworkEvent(ev: NetworkEventMsg): boolean {
    this.#networkClock.witness(ev.ltime)
    if (ev.nodeName === this.nodeId) return false
    const leave = ev.type === NetworkEventType.LEAVE
    let nodeNetworks = this.#networks.get(ev.nodeName)
    if (nodeNetworks === undefined) {
      if (leave) return false
      nodeNetworks = new Map()
    }
    const n = nodeNetworks.get(ev.networkId)
    if (n !== undefined) {
      if (n.ltime >= ev.ltime) return false
      n.ltime = ev.ltime
      n.leaving = leave
      if (leave) {
        n.reapTimeMs = this.#cfg.reapNetworkIntervalMs
        this.#deleteNodeNetworkEntries(ev.networkId, ev.nodeName)
        this.#deleteNetworkNode(ev.networkId, ev.nodeName)
      } else {
        n.reapTimeMs = 0
        this.#addNetworkNode(ev.networkId, ev.nodeName)
      }
      return true
    }
    if (leave) return false
    if (this.#nodes.get(ev.nodeName)?.status !== 'active') return false
    this.#networks.set(ev.nodeName, nodeNetworks)
    nodeNetworks.set(ev.networkId, {
      id: ev.networkId,
      ltime: ev.ltime,
      leaving: false,
      reapTimeMs: 0,
      inSync: false,
      queue: undefined,
    })
    this.#addNetworkNode(ev.networkId, ev.nodeName)
    return true
  }

  #handleTableMessage(data: Uint8Array, isBulkSync: boolean): void {
    const ev = decodeTableEvent(data)
    if (ev.nodeName === this.nodeId) return
    if (!this.#handleTableEvent(ev, isBulkSync)) return
    const n = this.#networks.get(this.nodeId)?.get(ev.networkId)
    if (n?.queue === undefined) return
    if (isBulkSync && n.queue.length > MAX_QUEUE_LEN_BROADCAST_ON_SYNC) return
    n.queue.queue(`${ev.tableName}\u0000${ev.networkId}\u0000${ev.key}`, encodeGossip(MessageType.TABLE_EVENT, data))
    this.#gossipSoon(ev.networkId)
  }

  /** Applies a remote table event; true when it should be rebroadcast. */
  #handleTableEvent(ev: TableEventMsg, isBulkSync: boolean): boolean {
    this.#tableClock.witness(ev.ltime)
    const network = this.#networks.get(this.nodeId)?.get(ev.networkId)
    if (network === undefined || network.leaving) return false
    if (this.#networkNodes.get(ev.networkId)?.has(ev.nodeName) !== true) return false
    const existing = this.#getEntry(ev.tableName, ev.networkId, ev.key)
    const deleting = ev.type === TableEventType.DELETE
    if (existing !== undefined) {
      if (existing.ltime >= ev.ltime) return false
    } else if (deleting && !isBulkSync) {
      return false
    }
    let reapTimeMs = ev.residualReapTime * 1000
    if (deleting && reapTimeMs <= 0) {
      this.#log.trace('table event %s/%s/%s DELETE without reap time (old peer)', ev.tableName, ev.networkId, ev.key)
      reapTimeMs = this.#cfg.reapEntryIntervalMs
    }
    // A copy: the decoded value is a view into the received message (up to a 1 MiB bulk-sync chunk).
    const value = ev.value.slice()
    this.#store.put(ev.networkId, ev.tableName, ev.key, {
      ltime: ev.ltime,
      owner: ev.nodeName,
      value,
      deleting,
      reapTimeMs: deleting ? reapTimeMs : 0,
    })
    if (existing === undefined && deleting) {
      return network.inSync && reapTimeMs > this.#cfg.reapEntryIntervalMs / 6
    }
    // Watchers see what happened to the local entry: a key becoming live is a create, a live entry
    // getting a newer value is an update (also when a bulk sync carries it as CREATE, or an UPDATE
    // overtook the CREATE), a live entry going away is a delete. A newer DELETE over a tombstone is not
    // reported twice.
    const wasLive = existing !== undefined && !existing.deleting
    const type: WatchEventType | undefined = deleting ? (wasLive ? 'delete' : undefined) : wasLive ? 'update' : 'create'
    if (type !== undefined) this.#emit(type, ev.tableName, ev.networkId, ev.key, value, ev.nodeName)
    return network.inSync
  }

  // ---------------------------------------------------------------- bulk sync

  #handleBulkSync(data: Uint8Array): void {
    const bsm = decodeBulkSync(data)
    if (bsm.ltime > 0n) this.#tableClock.witness(bsm.ltime)
    this.#handleMessage(bsm.payload, true)
    if (!bsm.unsolicited) {
      const waiters = this.#bulkSyncWaiters.get(bsm.nodeName)
      if (waiters !== undefined) {
        this.#bulkSyncWaiters.delete(bsm.nodeName)
        for (const release of waiters) release()
      }
      return
    }
    if (this.#closed) return
    this.#track(this.#replyBulkSync(bsm.networks, bsm.nodeName, this.#ac.signal))
  }

  /**
   * Answers an unsolicited bulk sync. A node that has just joined through another member syncs at once,
   * often before gossip has told us about it: wait (briefly) until it is known instead of leaving it
   * waiting for a reply that never comes (it would give up only after bulkSyncTimeoutMs).
   */
  async #replyBulkSync(networks: readonly string[], node: string, signal: AbortSignal): Promise<void> {
    const deadline = performance.now() + Math.min(5_000, this.#cfg.bulkSyncTimeoutMs)
    while (this.#nodes.get(node)?.status !== 'active' && performance.now() < deadline && !signal.aborted) {
      await new Promise<void>((resolve) => setTimeout(resolve, 20).unref())
    }
    await this.#bulkSyncNode(networks, node, false, signal)
  }

  /** Bulk sync of the networks in common with each of `nodes` (all = every one, else up to 2 random). */
  async #bulkSync(nodes: readonly string[], all: boolean, signal?: AbortSignal): Promise<string[]> {
    const others = nodes.filter((n) => n !== this.nodeId)
    const candidates = all ? others : sample(others, 2)
    if (candidates.length === 0) return []
    if (all) {
      // In parallel: a slow or silent peer does not hold up the others. Peers with the same networks in
      // common share one encoding of the messages.
      const cache = new Map<string, { messages: Uint8Array[]; entries: number }>()
      const results = await Promise.allSettled(
        candidates.map(async (node) => {
          const networks = this.#commonNetworks(node)
          await this.#bulkSyncNode(networks, node, true, signal, cache)
          return networks
        }),
      )
      let last: unknown
      for (const r of results) {
        if (r.status === 'fulfilled') return r.value
        last = r.reason
        this.#log.error('bulk sync failed: %s', r.reason)
      }
      throw last
    }
    let lastErr: unknown
    for (const node of candidates) {
      const networks = this.#commonNetworks(node)
      try {
        await this.#bulkSyncNode(networks, node, true, signal)
        return networks
      } catch (err) {
        lastErr = err
        this.#log.error('bulk sync to node %s failed: %s', node, err)
      }
    }
    throw lastErr
  }

  #commonNetworks(node: string): string[] {
    const theirs = this.#networks.get(node)
    const out: string[] = []
    if (theirs === undefined) return out
    for (const [nid, n] of this.#networks.get(this.nodeId) ?? []) {
      if (n.leaving) continue
      const t = theirs.get(nid)
      if (t !== undefined && !t.leaving) out.push(nid)
    }
    return out
  }

  /** Sends every entry of `networks` to `node`; when unsolicited, waits (bounded) for its reply. */
  /** The bulk sync messages for `networks` (every entry, tombstones as DELETE with their residual time). */
  #buildBulkSync(networks: readonly string[], unsolicited: boolean): { messages: Uint8Array[]; entries: number } {
    const parts: Uint8Array[] = []
    for (const nid of networks) {
      this.#store.forEachInNetwork(nid, (table, key, e) => {
        parts.push(
          encodeGossip(
            MessageType.TABLE_EVENT,
            encodeTableEvent({
              type: e.deleting ? TableEventType.DELETE : TableEventType.CREATE,
              ltime: e.ltime,
              nodeName: e.owner,
              networkId: nid,
              tableName: table,
              key,
              value: e.value,
              residualReapTime: Math.trunc(e.reapTimeMs / 1000),
            }),
          ),
        )
      })
    }
    const messages = buildBulkSyncMessages(
      { ltime: this.#tableClock.time(), nodeName: this.nodeId, networks, unsolicited },
      parts,
      this.#cfg.bulkSyncChunkBytes,
    )
    return { messages, entries: parts.length }
  }

  /**
   * Sends every entry of `networks` to `node`; when unsolicited, waits (bounded) for its reply. `cache`
   * shares the encoded messages between the peers of one round that have the same networks in common.
   */
  async #bulkSyncNode(
    networks: readonly string[],
    node: string,
    unsolicited: boolean,
    signal?: AbortSignal,
    cache?: Map<string, { messages: Uint8Array[]; entries: number }>,
  ): Promise<void> {
    const peer = this.#nodes.get(node)
    if (peer === undefined || peer.status !== 'active') throw new Error(`bulk sync: node ${node} is not active`)
    const cacheKey = `${unsolicited ? 1 : 0}\u0000${networks.join('\u0000')}`
    let built = cache?.get(cacheKey)
    if (built === undefined) {
      built = this.#buildBulkSync(networks, unsolicited)
      cache?.set(cacheKey, built)
    }
    const { messages, entries } = built
    let release: (() => void) | undefined
    const replied = unsolicited
      ? new Promise<void>((resolve) => {
          release = resolve
          let set = this.#bulkSyncWaiters.get(node)
          if (set === undefined) this.#bulkSyncWaiters.set(node, (set = new Set()))
          set.add(resolve)
        })
      : undefined
    const to = { addr: peer.addr, port: peer.port }
    try {
      for (const m of messages) await this.#ml.sendReliable(to, m, signal === undefined ? undefined : { signal })
    } catch (err) {
      if (release !== undefined) this.#bulkSyncWaiters.get(node)?.delete(release)
      throw err
    }
    this.#log.trace('bulk sync of %d entries in %d message(s) sent to %s', entries, messages.length, node)
    if (bulkSyncChannel.hasSubscribers) {
      bulkSyncChannel.publish({
        nodeId: this.nodeId,
        peer: node,
        networks: [...networks],
        entries,
        messages: messages.length,
        unsolicited,
      })
    }
    if (replied === undefined) return
    let timer: NodeJS.Timeout | undefined
    const onAbort = (): void => release?.()
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      await Promise.race([
        replied,
        new Promise<void>((resolve) => {
          timer = setTimeout(() => {
            this.#log.error('bulk sync to node %s timed out', node)
            resolve()
          }, this.#cfg.bulkSyncTimeoutMs)
          timer.unref()
        }),
      ])
    } finally {
      clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      if (release !== undefined) this.#bulkSyncWaiters.get(node)?.delete(release)
    }
  }

  async #bulkSyncTables(): Promise<void> {
    let pending: string[] = []
    for (const [nid, n] of this.#networks.get(this.nodeId) ?? []) if (!n.leaving) pending.push(nid)
    while (pending.length > 0 && !this.#closed) {
      const nid = pending.shift() as string
      const nodes = [...(this.#networkNodes.get(nid) ?? [])]
      if (nodes.length === 0) continue
      let completed: string[]
      try {
        completed = await this.#bulkSync(nodes, false, this.#ac.signal)
      } catch (err) {
        if (!this.#closed) this.#log.error('periodic bulk sync of network %s failed: %s', nid, err)
        continue
      }
      const done = new Set(completed)
      pending = pending.filter((x) => !done.has(x))
    }
  }

  // ---------------------------------------------------------------- reaping

  #reapState(): void {
    // Entries first: they rely on the network records that reapLeavingNetworks may drop.
    const mine = [...(this.#networks.get(this.nodeId)?.keys() ?? [])]
    reapTombstones(this.#store, mine, this.#cfg.reapIntervalMs, Date.now)
    reapLeavingNetworks(this.#networks.values(), this.#cfg.reapIntervalMs)
  }

  // ---------------------------------------------------------------- keys and stats

  setKey(key: Uint8Array): void {
    this.#ml.keyring.addKey(key)
  }

  setPrimaryKey(key: Uint8Array): void {
    this.#ml.keyring.useKey(key)
  }

  removeKey(key: Uint8Array): void {
    this.#ml.keyring.removeKey(key)
  }

  stats(): NetworkDBStats & { memberlist: MemberlistStats } {
    const counts = { active: 0, left: 0, failed: 0 }
    for (const n of this.#nodes.values()) counts[n.status]++
    const networks: NetworkStats[] = []
    const entriesPerTable: Record<string, number> = {}
    for (const [nid, n] of this.#networks.get(this.nodeId) ?? []) {
      const entries = this.#store.count(nid)
      this.#store.forEachInNetwork(nid, (table, _key, e) => {
        if (!e.deleting) entriesPerTable[table] = (entriesPerTable[table] ?? 0) + 1
      })
      networks.push({
        networkId: nid,
        peers: this.#networkNodes.get(nid)?.size ?? 0,
        entries,
        queueLength: n.queue?.length ?? 0,
        leaving: n.leaving,
      })
    }
    return {
      nodeId: this.nodeId,
      address: this.address,
      nodes: counts,
      networks,
      entriesPerTable,
      networkEventQueue: this.#networkQueue.length,
      nodeEventQueue: this.#nodeQueue.length,
      healthScore: this.#ml.healthScore(),
      networkClock: this.#networkClock.time(),
      tableClock: this.#tableClock.time(),
      memberlist: this.#ml.stats(),
    }
  }
}

/**
 * Starts a networkdb node: binds memberlist (UDP and TCP on `bindAddr:bindPort`) and starts the periodic
 * tasks. Call `join()` to meet a cluster and `close()` to leave it.
 */
export async function createNetworkDB(
  config: Partial<NetworkDBConfig> = {},
  deps: NetworkDBDeps = {},
): Promise<NetworkDBNode> {
  const cfg = resolveConfig(config)
  const db = new NetworkDBNode(cfg)
  await db.start(deps.createMemberlist ?? ((c) => realCreateMemberlist(c)))
  return db
}
