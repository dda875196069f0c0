/**
 * An in-memory membership layer for unit tests: every member of a hub sees the others directly (no SWIM),
 * user messages are delivered on the microtask queue, broadcasts are drained on a gossip timer, and a
 * member that stops without leaving is reported dead to the others after `failureDetectionMs`.
 */
import type {
  Address,
  Delegate,
  EventDelegate,
  Keyring,
  Memberlist,
  MemberlistConfig,
  MemberlistStats,
  Node,
  NodeState,
} from '@cnm/memberlist'

const key = (a: Address): string => `${a.addr}:${a.port}`

export class FakeHub {
  readonly members = new Map<string, FakeMember>()
  #nextPort = 20_000
  /** Drops traffic between two members when it returns false. */
  filter: ((from: string, to: string) => boolean) | undefined
  readonly failureDetectionMs: number
  readonly gossipIntervalMs: number

  constructor(opts: { failureDetectionMs?: number; gossipIntervalMs?: number } = {}) {
    this.failureDetectionMs = opts.failureDetectionMs ?? 2_000
    this.gossipIntervalMs = opts.gossipIntervalMs ?? 100
  }

  readonly create = (config: Partial<MemberlistConfig>): Memberlist => {
    const port = config.bindPort !== undefined && config.bindPort !== 0 ? config.bindPort : this.#nextPort++
    const address = { addr: config.advertiseAddr ?? config.bindAddr ?? '127.0.0.1', port }
    const existing = this.members.get(key(address))
    if (existing !== undefined && existing.running) throw new Error(`address ${key(address)} in use`)
    const m = new FakeMember(this, config, address)
    this.members.set(key(address), m)
    m.start()
    return m
  }

  find(address: string): FakeMember | undefined {
    const m = this.members.get(address)
    return m?.running === true ? m : undefined
  }

  passes(from: FakeMember, to: FakeMember): boolean {
    return this.filter?.(from.name, to.name) ?? true
  }
}

class FakeKeyring implements Keyring {
  #keys: Uint8Array[] = []
  keys(): Uint8Array[] {
    return this.#keys.map((k) => k.slice())
  }
  primaryKey(): Uint8Array | undefined {
    return this.#keys[0]
  }
  addKey(k: Uint8Array): void {
    if (!this.#keys.some((x) => Buffer.compare(x, k) === 0)) this.#keys.push(k)
  }
  useKey(k: Uint8Array): void {
    const i = this.#keys.findIndex((x) => Buffer.compare(x, k) === 0)
    if (i < 0) throw new Error('unknown key')
    const [found] = this.#keys.splice(i, 1)
    this.#keys.unshift(found as Uint8Array)
  }
  removeKey(k: Uint8Array): void {
    this.#keys = this.#keys.filter((x) => Buffer.compare(x, k) !== 0)
  }
}

export class FakeMember implements Memberlist {
  readonly name: string
  readonly address: Address
  readonly keyring = new FakeKeyring()
  running = false
  /** Peers this member currently sees alive, by name. */
  readonly view = new Map<string, FakeMember>()
  readonly #hub: FakeHub
  readonly #delegate: Delegate | undefined
  readonly #events: EventDelegate | undefined
  #timer: NodeJS.Timeout | undefined
  #state: NodeState = 'alive'
  sent = { packets: 0, streams: 0, bytes: 0 }

  constructor(hub: FakeHub, config: Partial<MemberlistConfig>, address: Address) {
    this.#hub = hub
    this.name = config.name ?? `node-${address.port}`
    this.address = address
    this.#delegate = config.delegate
    this.#events = config.events
  }

  start(): void {
    this.running = true
    this.#events?.notifyJoin(this.localNode())
    this.#timer = setInterval(() => this.#gossip(), this.#hub.gossipIntervalMs)
    this.#timer.unref()
  }

  localNode(): Node {
    return {
      name: this.name,
      addr: this.address.addr,
      port: this.address.port,
      meta: new Uint8Array(0),
      state: this.#state,
      incarnation: 1,
      vsn: new Uint8Array([1, 5, 2, 0, 0, 0]),
    }
  }

  async join(addresses: readonly string[]): Promise<number> {
    let ok = 0
    for (const a of addresses) {
      const target = this.#hub.find(a.includes(':') ? a : `${a}:${this.address.port}`)
      if (target === undefined || target === this || !this.#hub.passes(this, target) || !this.#hub.passes(target, this))
        continue
      // Push-pull with join = true, as memberlist does: node states are merged (join notifications)
      // before the delegate's user state.
      const mine = this.#delegate?.localState(true)
      const theirs = target.#delegate?.localState(true)
      for (const peer of [target, ...target.view.values()]) {
        if (peer === this || !peer.running) continue
        this.learn(peer)
        peer.learn(this)
      }
      if (mine !== undefined && mine.length > 0) target.#delegate?.mergeRemoteState(mine, true)
      if (theirs !== undefined && theirs.length > 0) this.#delegate?.mergeRemoteState(theirs, true)
      ok++
    }
    if (ok === 0) throw new Error(`join: no address reachable of ${addresses.join(',')}`)
    await Promise.resolve()
    return ok
  }

  /** Hands `payload` to this member's delegate as if it had arrived from the network. */
  inject(payload: Uint8Array): void {
    this.#delegate?.notifyMsg(payload)
  }

  learn(peer: FakeMember): void {
    if (this.view.has(peer.name)) return
    this.view.set(peer.name, peer)
    this.#events?.notifyJoin(peer.localNode())
  }

  forget(peer: FakeMember, state: NodeState): void {
    if (!this.view.delete(peer.name)) return
    this.#events?.notifyLeave({ ...peer.localNode(), state })
  }

  async leave(): Promise<void> {
    this.#state = 'left'
    for (const peer of this.view.values()) peer.forget(this, 'left')
  }

  async shutdown(): Promise<void> {
    if (!this.running) return
    this.running = false
    clearInterval(this.#timer)
    if (this.#state !== 'left') {
      this.#state = 'dead'
      const peers = [...this.view.values()]
      const t = setTimeout(() => {
        for (const peer of peers) if (peer.running) peer.forget(this, 'dead')
      }, this.#hub.failureDetectionMs)
      t.unref()
    }
  }

  members(): Node[] {
    return [this.localNode(), ...[...this.view.values()].map((p) => p.localNode())]
  }
  nodes(): Node[] {
    return this.members()
  }
  numMembers(): number {
    return this.view.size + 1
  }

  #deliver(to: Address, payload: Uint8Array): boolean {
    const target = this.#hub.find(key(to))
    if (target === undefined || !this.running || !this.#hub.passes(this, target)) return false
    this.sent.bytes += payload.length
    const copy = payload.slice()
    queueMicrotask(() => {
      if (target.running) target.#delegate?.notifyMsg(copy)
    })
    return true
  }

  /** Every best-effort payload sent, for byte-level assertions. */
  readonly packets: { to: Address; payload: Uint8Array }[] = []

  /** The delegate's push-pull state, as memberlist would send it. */
  localState(join: boolean): Uint8Array | undefined {
    return this.#delegate?.localState(join)
  }

  sendBestEffort(to: Address, payload: Uint8Array): void {
    this.packets.push({ to, payload: payload.slice() })
    this.sent.packets++
    this.#deliver(to, payload)
  }

  async sendReliable(to: Address, payload: Uint8Array): Promise<void> {
    this.sent.streams++
    if (!this.#deliver(to, payload)) throw new Error(`connection refused: ${key(to)}`)
    await Promise.resolve()
  }

  #gossip(): void {
    if (!this.running || this.#delegate === undefined) return
    const peers = [...this.view.values()].filter((p) => p.running)
    if (peers.length === 0) return
    for (const peer of peers) {
      const msgs = this.#delegate.getBroadcasts(2, 1400)
      for (const m of msgs) this.#deliver(peer.address, m)
    }
  }

  healthScore(): number {
    return 0
  }

  stats(): MemberlistStats {
    return {
      members: this.view.size + 1,
      alive: this.view.size + 1,
      suspect: 0,
      dead: 0,
      healthScore: 0,
      broadcastQueue: 0,
      packetsSent: this.sent.packets,
      packetsReceived: 0,
      bytesSent: this.sent.bytes,
      bytesReceived: 0,
      streamsOpened: this.sent.streams,
      streamsAccepted: 0,
      dropped: 0,
    }
  }
}
