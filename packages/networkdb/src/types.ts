import type { AbortOptions, Logger } from '@cnm/types'
import type { Address, MemberlistConfig } from '@cnm/memberlist'

/** Settings; defaults are Docker's (spec/cluster.md §1). Durations in milliseconds. */
export interface NetworkDBConfig {
  /** memberlist node name; default a random 12-hex id, new per start. */
  nodeId: string
  /** Shown in logs and diagnostics; default os.hostname(). */
  hostname: string
  bindAddr: string
  /** 0 picks a free port. */
  bindPort: number
  advertiseAddr?: string
  advertisePort?: number
  /** Gossip keys, primary first. */
  keys: Uint8Array[]
  /** Largest UDP payload; default 1400. */
  packetBufferSize: number
  reapEntryIntervalMs: number
  /** Default reapEntryIntervalMs + 25 s. */
  reapNetworkIntervalMs: number
  reapIntervalMs: number
  gossipIntervalMs: number
  /**
   * Eager table gossip: a table event queued (made here, or learned and rebroadcast) is sent to up to 3
   * nodes of its network at once instead of waiting for the next gossip tick; at most one such send per
   * network every this many ms. The periodic tick still sends every event its full number of times, so
   * the bytes on the wire are the same, only earlier. 0 turns it off (Docker's behaviour). Default 5.
   */
  eagerGossipIntervalMs: number
  bulkSyncIntervalMs: number
  reconnectIntervalMs: number
  rejoinBootstrapIntervalMs: number
  reapDeadNodeIntervalMs: number
  /** How long a left or failed node is remembered; default 24 h. */
  nodeReapTimeMs: number
  /** How long an unsolicited bulk sync waits for the peer's reply; default 30 s. */
  bulkSyncTimeoutMs: number
  /** Largest compound payload of one BulkSyncMessage; bigger syncs are split (see README); default 1 MiB. */
  bulkSyncChunkBytes: number
  /** How long the bootstrap rejoin keeps retrying (once a second); default 10 s. */
  rejoinBootstrapDurationMs: number
  /** close(): how long to wait for the NodeEvent LEAVE to be gossiped; default 5 s. */
  nodeLeaveBroadcastTimeoutMs: number
  /** close(): memberlist leave timeout; default 1 s. */
  leaveTimeoutMs: number
  /** Overrides for the membership layer (timers, test filter). */
  memberlist?: Partial<MemberlistConfig>
  logger?: Logger
}

export type TableEventType = 'create' | 'update' | 'delete'

/** A change seen by a watcher. A delete carries the last value. */
export interface TableEvent {
  readonly type: TableEventType
  readonly table: string
  readonly networkId: string
  readonly key: string
  readonly value: Uint8Array
  /** Node that owns the entry. */
  readonly owner: string
}

/** Empty or missing fields match anything. */
export interface WatchFilter {
  table?: string
  networkId?: string
  key?: string
}

/** A stream of table events; iterate it, or call close() (also ends on the signal). */
export interface TableWatch extends AsyncIterable<TableEvent> {
  close(): void
}

export interface EntryInfo {
  readonly value: Uint8Array
  readonly owner: string
  readonly ltime: bigint
  readonly deleting: boolean
  /** Milliseconds left before a tombstone is reaped (0 for live entries). */
  readonly reapTimeMs: number
}

export interface PeerInfo {
  readonly name: string
  readonly ip: string
  readonly port: number
}

export type NodeStatus = 'active' | 'left' | 'failed'

export interface NodeInfo extends PeerInfo {
  readonly status: NodeStatus
  readonly ltime: bigint
  /** Milliseconds before a left or failed node is forgotten. */
  readonly reapTimeMs: number
}

export interface NetworkStats {
  readonly networkId: string
  readonly peers: number
  readonly entries: number
  /** Table events waiting to be gossiped for this network. */
  readonly queueLength: number
  readonly leaving: boolean
}

export interface NetworkDBStats {
  readonly nodeId: string
  readonly address: Address
  readonly nodes: { readonly active: number; readonly left: number; readonly failed: number }
  readonly networks: readonly NetworkStats[]
  /** Live entries per table name (local networks only). */
  readonly entriesPerTable: Readonly<Record<string, number>>
  readonly networkEventQueue: number
  readonly nodeEventQueue: number
  /** memberlist awareness: 0 is healthy. */
  readonly healthScore: number
  readonly networkClock: bigint
  readonly tableClock: bigint
}

/** One running networkdb node. */
export interface NetworkDB {
  readonly nodeId: string
  readonly address: Address
  /** Remembers `members` as bootstrap nodes and joins them; background tasks keep retrying on failure. */
  join(members: readonly string[], opts?: AbortOptions): Promise<void>
  /** Graceful: NodeEvent LEAVE, memberlist leave, timers stopped, sockets closed. Idempotent. */
  close(): Promise<void>
  joinNetwork(networkId: string, opts?: AbortOptions): Promise<void>
  leaveNetwork(networkId: string): void
  createEntry(table: string, networkId: string, key: string, value: Uint8Array): void
  updateEntry(table: string, networkId: string, key: string, value: Uint8Array): void
  deleteEntry(table: string, networkId: string, key: string): void
  /** Live value; NotFoundError when missing or deleted. */
  getEntry(table: string, networkId: string, key: string): Uint8Array
  /** Entry with its bookkeeping, tombstones included; undefined when missing. */
  getEntryInfo(table: string, networkId: string, key: string): EntryInfo | undefined
  /** Live entries of a table in one network. */
  getTableByNetwork(table: string, networkId: string): Map<string, { value: Uint8Array; owner: string }>
  /** Every entry of a table (tombstones included); stop by returning true. */
  walkTable(
    table: string,
    fn: (networkId: string, key: string, value: Uint8Array, deleting: boolean) => boolean | void,
  ): void
  watch(filter: WatchFilter, opts?: AbortOptions): TableWatch
  /** Nodes in a network (self included when joined). */
  peers(networkId: string): PeerInfo[]
  /** Active nodes of the cluster, self included. */
  clusterPeers(): PeerInfo[]
  /** Every node known, with its status. */
  nodes(): NodeInfo[]
  /** Networks this node has joined (not leaving). */
  networks(): string[]
  setKey(key: Uint8Array): void
  setPrimaryKey(key: Uint8Array): void
  removeKey(key: Uint8Array): void
  stats(): NetworkDBStats
}
