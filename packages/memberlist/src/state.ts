import type { Logger } from '@cnm/types'
import type { Awareness } from './awareness.js'
import { Suspicion, suspicionParams } from './suspicion.js'
import type { EventDelegate, Node, NodeState } from './types.js'
import type { Message, PushNodeState } from './wire/index.js'

export type AliveMessage = Extract<Message, { type: 'alive' }>
export type SuspectMessage = Extract<Message, { type: 'suspect' }>
export type DeadMessage = Extract<Message, { type: 'dead' }>

/** Internal, mutable record of one node. */
export interface NodeRecord {
  readonly name: string
  addr: string
  addrBytes: Uint8Array
  port: number
  meta: Uint8Array
  /** Six bytes: pmin pmax pcur dmin dmax dcur (all zero until an alive carried them). */
  vsn: Uint8Array
  incarnation: number
  state: 'alive' | 'suspect' | 'dead'
  /** Dead because it announced its own death (dead with an empty From, or From = itself). */
  left: boolean
  /** Time of the last state change (ms, from `now()`). */
  stateChange: number
}

/** What the state machine needs from its owner. */
export interface StateHost {
  readonly name: string
  readonly config: {
    readonly suspicionMult: number
    readonly suspicionMaxTimeoutMult: number
    readonly probeIntervalMs: number
  }
  readonly awareness: Awareness
  readonly log: Logger
  readonly events?: EventDelegate | undefined
  /** Our own protocol/delegate versions (6 bytes). */
  localVsn(): Uint8Array
  /** True once leave() started: an alive about ourselves is then ignored and a dead one accepted. */
  hasLeft(): boolean
  /** Encodes `msg` and queues it for gossip, replacing queued messages about the same node. */
  broadcast(node: string, msg: AliveMessage | SuspectMessage | DeadMessage, onFinished?: () => void): void
  /** IPv4/IPv6 bytes → text. */
  formatAddr(bytes: Uint8Array): string
  now(): number
  random(): number
}

export const STATE_CODES = { alive: 0, suspect: 1, dead: 2 } as const

function bytesEqual(a: Uint8Array | null, b: Uint8Array | null): boolean {
  const x = a ?? new Uint8Array(0)
  const y = b ?? new Uint8Array(0)
  if (x.length !== y.length) return false
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false
  return true
}

function publicState(r: NodeRecord): NodeState {
  if (r.state === 'dead') return r.left ? 'left' : 'dead'
  return r.state
}

/** A public snapshot of a record. */
export function snapshot(r: NodeRecord): Node {
  return Object.freeze({
    name: r.name,
    addr: r.addr,
    port: r.port,
    meta: new Uint8Array(r.meta),
    state: publicState(r),
    incarnation: r.incarnation,
    vsn: new Uint8Array(r.vsn),
  })
}

/**
 * The node map and the alive/suspect/dead/refute rules of spec/memberlist.md §10, as hashicorp
 * memberlist 3d8438da applies them. Single-threaded: every method runs to completion.
 */
export class NodeTable {
  readonly #host: StateHost
  readonly map = new Map<string, NodeRecord>()
  /** Probe order (random insert positions, reshuffled on every wrap). */
  list: NodeRecord[] = []
  readonly #timers = new Map<string, Suspicion>()
  #incarnation = 0

  constructor(host: StateHost) {
    this.#host = host
  }

  /** Our current incarnation. */
  get incarnation(): number {
    return this.#incarnation
  }

  /** Raises our incarnation by one and returns it. */
  nextIncarnation(): number {
    this.#incarnation = (this.#incarnation + 1) >>> 0
    return this.#incarnation
  }

  /** Number of nodes known (self and dead ones not yet removed included): memberlist's estNumNodes. */
  get size(): number {
    return this.list.length
  }

  /** True when a suspicion timer runs for `name` (tests and stats). */
  hasSuspicion(name: string): boolean {
    return this.#timers.has(name)
  }

  suspicion(name: string): Suspicion | undefined {
    return this.#timers.get(name)
  }

  #stopTimer(name: string): void {
    const t = this.#timers.get(name)
    if (t !== undefined) {
      t.stop()
      this.#timers.delete(name)
    }
  }

  /** Cancels every suspicion timer (shutdown). */
  stopAll(): void {
    for (const t of this.#timers.values()) t.stop()
    this.#timers.clear()
  }

  #notify(kind: 'notifyJoin' | 'notifyLeave' | 'notifyUpdate', r: NodeRecord): void {
    const ev = this.#host.events
    if (ev === undefined) return
    try {
      ev[kind](snapshot(r))
    } catch (err) {
      this.#host.log.error('%s handler failed for %s: %s', kind, r.name, String(err))
    }
  }

  /** Handles an alive message (or our own announcement when `bootstrap`). */
  aliveNode(a: AliveMessage, bootstrap = false, onFinished?: () => void): void {
    const host = this.#host
    const isLocal = a.node === host.name
    if (isLocal && host.hasLeft()) return
    let r = this.map.get(a.node)
    if (r === undefined) {
      r = {
        name: a.node,
        addr: host.formatAddr(a.addr),
        addrBytes: new Uint8Array(a.addr),
        port: a.port,
        meta: new Uint8Array(a.meta ?? new Uint8Array(0)),
        vsn: new Uint8Array(6),
        incarnation: 0,
        state: 'dead',
        left: false,
        stateChange: host.now(),
      }
      this.map.set(a.node, r)
      // Insert at a random position: appending everywhere would make the failure detection bound worse.
      const n = this.list.length
      const offset = n === 0 ? 0 : Math.floor(host.random() * n)
      this.list.push(r)
      const moved = this.list[offset]!
      this.list[offset] = r
      this.list[n] = moved
    }
    if (!bytesEqual(r.addrBytes, a.addr) || r.port !== a.port) {
      host.log.error(
        'conflicting address for %s: mine %s:%d, theirs %s:%d',
        a.node,
        r.addr,
        r.port,
        host.formatAddr(a.addr),
        a.port,
      )
      return
    }
    if (!isLocal && a.incarnation <= r.incarnation) return
    if (isLocal && a.incarnation < r.incarnation) return

    this.#stopTimer(a.node)
    const oldState = r.state
    const oldMeta = r.meta
    if (!bootstrap && isLocal) {
      const versions = host.localVsn()
      if (a.incarnation === r.incarnation && bytesEqual(a.meta, r.meta) && bytesEqual(a.vsn, versions)) return
      // Go calls refute() here too: max(own + 1, accused + 1) in uint32, and awareness + 1.
      this.refute(r, a.incarnation)
      host.log('refuting an alive message about us (incarnation %d → %d)', a.incarnation, r.incarnation)
    } else {
      host.broadcast(a.node, a, onFinished)
      if (a.vsn.length >= 6) r.vsn = new Uint8Array(a.vsn.subarray(0, 6))
      r.incarnation = a.incarnation
      r.meta = new Uint8Array(a.meta ?? new Uint8Array(0))
      if (isLocal) this.#incarnation = Math.max(this.#incarnation, a.incarnation)
      if (r.state !== 'alive') {
        r.state = 'alive'
        r.left = false
        r.stateChange = host.now()
      }
    }
    if (oldState === 'dead') {
      host.log('node %s joined (%s:%d, incarnation %d)', r.name, r.addr, r.port, r.incarnation)
      this.#notify('notifyJoin', r)
    } else if (!bytesEqual(oldMeta, r.meta)) {
      this.#notify('notifyUpdate', r)
    }
  }

  /** Handles a suspect message. */
  suspectNode(s: SuspectMessage): void {
    const host = this.#host
    const r = this.map.get(s.node)
    if (r === undefined) return
    if (s.incarnation < r.incarnation) return
    const timer = this.#timers.get(s.node)
    if (timer !== undefined) {
      if (timer.confirm(s.from)) host.broadcast(s.node, s)
      return
    }
    if (r.state !== 'alive') return
    if (r.name === host.name) {
      this.refute(r, s.incarnation)
      host.log('refuting a suspect message from %s', s.from)
      return
    }
    host.broadcast(s.node, s)
    r.incarnation = s.incarnation
    r.state = 'suspect'
    const changeTime = host.now()
    r.stateChange = changeTime
    const { k, minMs, maxMs } = suspicionParams(host.config, this.size)
    host.log('suspect %s (incarnation %d, from %s; timeout %d…%d ms)', s.node, s.incarnation, s.from, minMs, maxMs)
    const name = s.node
    const suspicion = new Suspicion(
      s.from,
      k,
      minMs,
      maxMs,
      (confirmations) => {
        if (this.#timers.get(name) === suspicion) this.#timers.delete(name)
        const cur = this.map.get(name)
        if (cur === undefined || cur.state !== 'suspect' || cur.stateChange !== changeTime) return
        host.log('marking %s dead: suspicion expired with %d confirmations', name, confirmations)
        this.deadNode({ type: 'dead', incarnation: cur.incarnation, node: name, from: host.name })
      },
      () => host.now(),
    )
    this.#timers.set(name, suspicion)
  }

  /** Handles a dead message (`from` "" = a graceful leave). */
  deadNode(d: DeadMessage, onFinished?: () => void): void {
    const host = this.#host
    const r = this.map.get(d.node)
    if (r === undefined) return
    if (d.incarnation < r.incarnation) return
    this.#stopTimer(d.node)
    if (r.state === 'dead') return
    if (r.name === host.name) {
      if (!host.hasLeft()) {
        this.refute(r, d.incarnation)
        host.log('refuting a dead message from %s', d.from)
        return
      }
      host.broadcast(d.node, d, onFinished)
    } else {
      host.broadcast(d.node, d)
    }
    r.incarnation = d.incarnation
    r.state = 'dead'
    r.left = d.from === '' || d.from === d.node
    r.stateChange = host.now()
    host.log('node %s %s (incarnation %d, from %s)', r.name, r.left ? 'left' : 'failed', d.incarnation, d.from)
    this.#notify('notifyLeave', r)
  }

  /** Refutes an accusation against ourselves: new incarnation, alive broadcast, awareness + 1. */
  refute(me: NodeRecord, accusedInc: number): void {
    const host = this.#host
    let inc = this.nextIncarnation()
    if (accusedInc >= inc) {
      this.#incarnation = (accusedInc + 1) >>> 0
      inc = this.#incarnation
    }
    me.incarnation = inc
    host.awareness.applyDelta(1)
    host.broadcast(me.name, {
      type: 'alive',
      incarnation: inc,
      node: me.name,
      addr: me.addrBytes,
      port: me.port,
      meta: me.meta,
      vsn: host.localVsn(),
    })
  }

  /** Push-pull merge: alive entries as alive messages, suspect and dead ones as suspicions from us. */
  mergeState(remote: readonly PushNodeState[]): void {
    for (const n of remote) {
      if (n.state === STATE_CODES.alive) {
        this.aliveNode({
          type: 'alive',
          incarnation: n.incarnation,
          node: n.name,
          addr: n.addr,
          port: n.port,
          meta: n.meta,
          vsn: n.vsn,
        })
      } else if (n.state === STATE_CODES.suspect || n.state === STATE_CODES.dead) {
        this.suspectNode({ type: 'suspect', incarnation: n.incarnation, node: n.name, from: this.#host.name })
      }
    }
  }

  /**
   * Our node states for a push-pull: every node, self and dead ones included, except placeholders that
   * never got an accepted alive (incarnation 0, no version vector). Go checks the versions of every
   * listed node, so one such entry would make a Go peer reject the whole merge.
   */
  localStates(): PushNodeState[] {
    return this.list
      .filter((r) => r.incarnation > 0)
      .map((r) => ({
        name: r.name,
        addr: r.addrBytes,
        port: r.port,
        meta: r.meta,
        incarnation: r.incarnation,
        state: STATE_CODES[r.state],
        vsn: r.name === this.#host.name ? this.#host.localVsn() : r.vsn,
      }))
  }

  /** Removes dead nodes whose state changed more than `gossipToTheDeadMs` ago, then shuffles the list. */
  resetNodes(gossipToTheDeadMs: number): string[] {
    const now = this.#host.now()
    const removed: string[] = []
    this.list = this.list.filter((r) => {
      if (r.state === 'dead' && now - r.stateChange > gossipToTheDeadMs && r.name !== this.#host.name) {
        this.map.delete(r.name)
        this.#stopTimer(r.name)
        removed.push(r.name)
        return false
      }
      return true
    })
    this.shuffle()
    return removed
  }

  shuffle(): void {
    const l = this.list
    for (let i = l.length - 1; i > 0; i--) {
      const j = Math.floor(this.#host.random() * (i + 1))
      const t = l[i]!
      l[i] = l[j]!
      l[j] = t
    }
  }

  /** Up to `k` distinct random nodes for which `exclude` is false (memberlist's kRandomNodes). */
  randomNodes(k: number, exclude: (r: NodeRecord) => boolean): NodeRecord[] {
    const candidates = this.list.filter((r) => !exclude(r))
    for (let i = candidates.length - 1; i > 0; i--) {
      const j = Math.floor(this.#host.random() * (i + 1))
      const t = candidates[i]!
      candidates[i] = candidates[j]!
      candidates[j] = t
    }
    return candidates.slice(0, k)
  }
}

/**
 * Version check of a push-pull merge (§8), as Go does it: the ranges [max pmin, min pmax] and
 * [max dmin, min dmax] come from the *alive* nodes with a version vector, local and remote; then every
 * node of both lists (whatever its state; no vector counts as version 0) must have its current versions
 * inside them. Returns an error text or undefined.
 */
export function verifyProtocol(
  local: readonly { name: string; state: number; vsn: Uint8Array }[],
  remote: readonly PushNodeState[],
): string | undefined {
  let maxPMin = 0
  let minPMax = 255
  let maxDMin = 0
  let minDMax = 255
  const all = [...remote, ...local]
  for (const n of all) {
    if (n.state !== STATE_CODES.alive || n.vsn.length < 6) continue
    maxPMin = Math.max(maxPMin, n.vsn[0]!)
    minPMax = Math.min(minPMax, n.vsn[1]!)
    maxDMin = Math.max(maxDMin, n.vsn[3]!)
    minDMax = Math.min(minDMax, n.vsn[4]!)
  }
  for (const n of all) {
    const pcur = n.vsn.length >= 6 ? n.vsn[2]! : 0
    const dcur = n.vsn.length >= 6 ? n.vsn[5]! : 0
    if (pcur < maxPMin || pcur > minPMax) {
      return `node '${n.name}' protocol version (${pcur}) is incompatible: [${maxPMin}, ${minPMax}]`
    }
    if (dcur < maxDMin || dcur > minDMax) {
      return `node '${n.name}' delegate protocol version (${dcur}) is incompatible: [${maxDMin}, ${minDMax}]`
    }
  }
  return undefined
}
