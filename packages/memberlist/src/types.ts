import type { AbortOptions, Logger } from '@cnm/types'

/** An IP address (dotted IPv4 or IPv6 text) and a port. */
export interface Address {
  readonly addr: string
  readonly port: number
}

/** Membership state of a node as this node sees it. `left` is a dead node that announced its own death. */
export type NodeState = 'alive' | 'suspect' | 'dead' | 'left'

/** A member of the cluster. Snapshots: a new object is handed out on every change. */
export interface Node extends Address {
  readonly name: string
  readonly meta: Uint8Array
  readonly state: NodeState
  readonly incarnation: number
  /** Six bytes: protocol min, max, current; delegate min, max, current. */
  readonly vsn: Uint8Array
}

/**
 * Hooks of the layer above (networkdb). Called synchronously from the receive path or the gossip tick;
 * they must not throw (a throw is logged and the message dropped).
 */
export interface Delegate {
  /** Metadata gossiped with our alive messages (at most `limit` bytes). networkdb returns an empty array. */
  nodeMeta(limit: number): Uint8Array
  /** Payload of every user message received (UDP type 8, or a TCP user stream). Never empty. */
  notifyMsg(payload: Uint8Array): void
  /** Messages to piggyback on gossip; each costs `overhead` bytes besides its length; total ≤ `limit`. */
  getBroadcasts(overhead: number, limit: number): Uint8Array[]
  /** User state sent in a push-pull (after the node states). */
  localState(join: boolean): Uint8Array
  /** User state received in a push-pull; only called when it is non-empty. */
  mergeRemoteState(payload: Uint8Array, join: boolean): void
}

/** Membership events. `notifyLeave` fires for both a failure and a graceful leave (see `node.state`). */
export interface EventDelegate {
  notifyJoin(node: Node): void
  notifyLeave(node: Node): void
  notifyUpdate(node: Node): void
}

/** Decides whether traffic to or from `peer` passes. Tests use it to cut a cluster in two. */
export type TrafficFilter = (peer: Address, kind: 'packet' | 'stream', direction: 'in' | 'out') => boolean

/** Settings; defaults are memberlist's LAN defaults as networkdb uses them (spec/memberlist.md §1). */
export interface MemberlistConfig {
  /** Unique node name. */
  name: string
  /** Address to bind UDP and TCP to. Default `127.0.0.1`. */
  bindAddr: string
  /** Port for both UDP and TCP; 0 picks a free one that is free for both. Default 7946. */
  bindPort: number
  /** Address and port announced to peers; default the bound ones (an unspecified bind address is an error). */
  advertiseAddr?: string
  advertisePort?: number
  /** AES keys (16, 24 or 32 bytes), primary first. Empty: no encryption. */
  keys: Uint8Array[]
  /** Byte budget of one datagram. Default 1400. */
  udpBufferSize: number
  enableCompression: boolean
  probeIntervalMs: number
  probeTimeoutMs: number
  indirectChecks: number
  suspicionMult: number
  suspicionMaxTimeoutMult: number
  retransmitMult: number
  gossipIntervalMs: number
  gossipNodes: number
  gossipToTheDeadMs: number
  pushPullIntervalMs: number
  tcpTimeoutMs: number
  disableTcpPings: boolean
  awarenessMaxMultiplier: number
  handoffQueueDepth: number
  /**
   * Largest plaintext stream message (and largest decompressed stream) accepted, in bytes. Go has no
   * such bound; encrypted frames are limited to 10 MiB whatever this says. Default 256 MiB.
   */
  maxStreamBytes: number
  delegate?: Delegate
  events?: EventDelegate
  logger?: Logger
  /** Test hook: drop traffic for which it returns false. */
  filter?: TrafficFilter
}

export interface MemberlistStats {
  readonly members: number
  readonly alive: number
  readonly suspect: number
  readonly dead: number
  readonly healthScore: number
  readonly broadcastQueue: number
  readonly packetsSent: number
  readonly packetsReceived: number
  readonly bytesSent: number
  readonly bytesReceived: number
  readonly streamsOpened: number
  readonly streamsAccepted: number
  /** Messages dropped: bad CRC, undecryptable, malformed, filtered. */
  readonly dropped: number
}

/** Gossip encryption keys. The primary encrypts; every key is tried to decrypt. */
export interface Keyring {
  /** Keys, primary first (copies). */
  keys(): Uint8Array[]
  primaryKey(): Uint8Array | undefined
  /** Adds a key (no-op if present). Throws InvalidArgumentError on a bad length. */
  addKey(key: Uint8Array): void
  /** Makes a known key the primary. Throws NotFoundError for an unknown key. */
  useKey(key: Uint8Array): void
  /** Removes a key. Throws ForbiddenError for the primary; unknown keys are a no-op. */
  removeKey(key: Uint8Array): void
}

/** One running memberlist node. */
export interface Memberlist {
  readonly name: string
  /** Where peers reach us (advertised address and port). */
  readonly address: Address
  localNode(): Node
  /**
   * Push-pull (Join = true) with each address (`ip` or `ip:port`, default port = ours). Resolves to the
   * number of successful exchanges; rejects with JoinError when none succeeded.
   */
  join(addresses: readonly string[], opts?: AbortOptions): Promise<number>
  /** Graceful leave: broadcast our death with an empty From, wait until sent or `timeoutMs`. */
  leave(timeoutMs: number): Promise<void>
  /** Stops timers and closes sockets. Idempotent. */
  shutdown(): Promise<void>
  /** Alive and suspect nodes, self included. */
  members(): Node[]
  /** Every known node, dead ones included. */
  nodes(): Node[]
  numMembers(): number
  /** A UDP user message (type 8): compressed if smaller, CRC, encrypted as configured. */
  sendBestEffort(to: Address, payload: Uint8Array): void
  /** A TCP user message on a new connection; resolves when written. */
  sendReliable(to: Address, payload: Uint8Array, opts?: AbortOptions): Promise<void>
  /** Awareness score 0 (healthy) … awarenessMaxMultiplier − 1. */
  healthScore(): number
  readonly keyring: Keyring
  stats(): MemberlistStats
}
