import type net from 'node:net'
import { InvalidArgumentError, noopLogger, throwIfAborted } from '@cnm/types'
import type { AbortOptions, Logger } from '@cnm/types'
import { Awareness } from './awareness.js'
import { TransmitLimitedQueue } from './broadcast-queue.js'
import type { Broadcast } from './broadcast-queue.js'
import { resolveConfig } from './config.js'
import { ConfigError, IncompatibleVersionError, JoinError, RemoteError, ShutdownError } from './errors.js'
import { NodeTable, snapshot, verifyProtocol } from './state.js'
import type { AliveMessage, DeadMessage, NodeRecord, SuspectMessage } from './state.js'
import { StreamEofError, readOneMessage, writeAll } from './stream.js'
import { Transport } from './transport.js'
import type { Address, Keyring, Memberlist, MemberlistConfig, MemberlistStats, Node } from './types.js'
import {
  ENCRYPT_OVERHEAD,
  KeyringImpl,
  bytesToIp,
  encodeMessage,
  encodeUserStream,
  ipToBytes,
  packPacket,
  packStream,
  unpackPacket,
} from './wire/index.js'
import type { Message, PushNodeState } from './wire/index.js'

/** Protocol min/max/current 1/5/2, delegate 0/0/0: what networkdb's Go peers advertise. */
export const PROTOCOL_VSN: readonly number[] = Object.freeze([1, 5, 2, 0, 0, 0])
/** Largest `Meta` memberlist accepts. */
export const META_MAX_BYTES = 512
/** Largest encrypted stream frame a Go peer (and we) will read. */
export const MAX_ENCRYPTED_FRAME_BYTES = 10 * 1024 * 1024
/** A compound message: type byte and count. */
const COMPOUND_HEADER_OVERHEAD = 2
/** A compound part: its uint16 length. */
const COMPOUND_OVERHEAD = 2
/** hasCrc: type byte and CRC-32. */
const CRC_OVERHEAD = 5
/** A Go receiver multiplies the part count by 2 in 8-bit arithmetic. */
const MAX_COMPOUND_PARTS = 127
/** Largest UDP payload over IPv4. */
const MAX_UDP_PAYLOAD = 65507

type AckFn = (payload: Uint8Array | null) => void

interface AckHandler {
  ack: AckFn
  nack: () => void
  timeout: () => void
  timer: NodeJS.Timeout
}

class MemberlistBroadcast implements Broadcast {
  readonly node: string
  readonly message: Uint8Array
  readonly #finished: (() => void) | undefined
  constructor(node: string, message: Uint8Array, finished?: () => void) {
    this.node = node
    this.message = message
    this.#finished = finished
  }
  invalidates(other: Broadcast): boolean {
    return other instanceof MemberlistBroadcast && other.node === this.node
  }
  finished(): void {
    this.#finished?.()
  }
}

function concatUser(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(payload.length + 1)
  out[0] = 8
  out.set(payload, 1)
  return out
}

function isUnspecified(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::' || addr === '0:0:0:0:0:0:0:0'
}

/** Parses `ip`, `ip:port`, `[ipv6]:port` or a bare IPv6 address. */
export function parseJoinAddress(text: string, defaultPort: number): Address {
  const s = text.trim()
  let addr = s
  let port = defaultPort
  const bracket = /^\[([^\]]+)\](?::(\d+))?$/.exec(s)
  if (bracket !== null) {
    addr = bracket[1]!
    if (bracket[2] !== undefined) port = Number(bracket[2])
  } else if ((s.match(/:/g) ?? []).length === 1) {
    const i = s.lastIndexOf(':')
    addr = s.slice(0, i)
    port = Number(s.slice(i + 1))
  }
  if (addr.length === 0 || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new InvalidArgumentError(`invalid join address '${text}'`, { code: 'ERR_MEMBERLIST_ADDRESS' })
  }
  return { addr, port }
}

/** Push-pull interval scaled for large clusters: above 32 nodes × (ceil(log2(n) − 5) + 1). */
export function pushPullScaleMs(intervalMs: number, n: number): number {
  if (n <= 32) return intervalMs
  const multiplier = Math.ceil(Math.log2(n) - Math.log2(32)) + 1
  return multiplier * intervalMs
}

/** The running node. Created by {@link createMemberlist}. */
export class MemberlistImpl implements Memberlist {
  readonly name: string
  readonly address: Address
  readonly keyring: Keyring
  readonly #cfg: MemberlistConfig
  readonly #log: Logger
  readonly #transport: Transport
  readonly #table: NodeTable
  readonly #queue: TransmitLimitedQueue
  readonly #awareness: Awareness
  readonly #vsn = new Uint8Array(PROTOCOL_VSN)
  readonly #ackHandlers = new Map<number, AckHandler>()
  readonly #timers = new Set<NodeJS.Timeout>()
  readonly #delays = new Set<() => void>()
  readonly #tasks = new Set<Promise<unknown>>()
  #seqNo = 0
  #leaving = false
  #shutdown = false
  #probeBusy = false
  #stats = {
    packetsSent: 0,
    packetsReceived: 0,
    bytesSent: 0,
    bytesReceived: 0,
    streamsOpened: 0,
    streamsAccepted: 0,
    dropped: 0,
  }

  /** Use {@link createMemberlist}. */
  constructor(cfg: MemberlistConfig, log: Logger, transport: Transport, keyring: Keyring, address: Address) {
    this.#cfg = cfg
    this.name = cfg.name
    this.#log = log
    this.#transport = transport
    this.keyring = keyring
    this.address = Object.freeze({ ...address })
    this.#awareness = new Awareness(cfg.awarenessMaxMultiplier)
    this.#queue = new TransmitLimitedQueue({ numNodes: () => this.#table.size, retransmitMult: cfg.retransmitMult })
    this.#table = new NodeTable({
      name: cfg.name,
      config: cfg,
      awareness: this.#awareness,
      log,
      events: cfg.events,
      localVsn: () => this.#vsn,
      hasLeft: () => this.#leaving,
      broadcast: (node, msg, onFinished) => this.#broadcast(node, msg, onFinished),
      formatAddr: (b) => bytesToIp(b),
      now: () => Date.now(),
      random: () => Math.random(),
    })
  }

  // ---------------------------------------------------------------- lifecycle

  /** Announces ourselves (incarnation 1) and starts the probe, gossip and push-pull loops. */
  start(): void {
    let meta: Uint8Array = new Uint8Array(0)
    if (this.#cfg.delegate !== undefined) {
      meta = this.#cfg.delegate.nodeMeta(META_MAX_BYTES)
      if (meta.length > META_MAX_BYTES)
        throw new ConfigError(`node meta is ${meta.length} bytes, limit ${META_MAX_BYTES}`)
    }
    this.#table.aliveNode(
      {
        type: 'alive',
        incarnation: this.#table.nextIncarnation(),
        node: this.name,
        addr: ipToBytes(this.address.addr),
        port: this.address.port,
        meta,
        vsn: this.#vsn,
      },
      true,
    )
    this.#startLoop(this.#cfg.probeIntervalMs, () => this.#probe())
    if (this.#cfg.gossipIntervalMs > 0) this.#startLoop(this.#cfg.gossipIntervalMs, () => this.#gossip())
    if (this.#cfg.pushPullIntervalMs > 0) this.#schedulePushPull(true)
  }

  /** Runs `fn` every `intervalMs` after a random first delay; errors are logged. */
  #startLoop(intervalMs: number, fn: () => void): void {
    const stagger = setTimeout(
      () => {
        this.#timers.delete(stagger)
        if (this.#shutdown) return
        const tick = setInterval(() => {
          try {
            fn()
          } catch (err) {
            this.#log.error('periodic task failed: %s', String(err))
          }
        }, intervalMs)
        tick.unref()
        this.#timers.add(tick)
      },
      Math.floor(Math.random() * intervalMs),
    )
    stagger.unref()
    this.#timers.add(stagger)
  }

  #schedulePushPull(first: boolean): void {
    if (this.#shutdown) return
    const interval = pushPullScaleMs(this.#cfg.pushPullIntervalMs, this.#table.size)
    const t = setTimeout(
      () => {
        this.#timers.delete(t)
        this.#track(
          this.#pushPullTrigger()
            .catch((err: unknown) => this.#log('periodic push-pull failed: %s', (err as Error).message))
            .finally(() => this.#schedulePushPull(false)),
        )
      },
      first ? Math.floor(Math.random() * interval) : interval,
    )
    t.unref()
    this.#timers.add(t)
  }

  #track(p: Promise<unknown>): void {
    const q = p.catch((err: unknown) => this.#log.error('background task failed: %s', String(err)))
    this.#tasks.add(q)
    void q.finally(() => this.#tasks.delete(q))
  }

  /** Resolves after `ms` (or at shutdown); the timer is unref'd and cleared on shutdown. */
  #delay(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      if (this.#shutdown) {
        resolve()
        return
      }
      const done = (): void => {
        clearTimeout(t)
        this.#timers.delete(t)
        this.#delays.delete(done)
        resolve()
      }
      const t = setTimeout(done, Math.max(0, ms))
      t.unref()
      this.#timers.add(t)
      this.#delays.add(done)
    })
  }

  async shutdown(): Promise<void> {
    if (this.#shutdown) return
    this.#shutdown = true
    for (const t of this.#timers) {
      clearTimeout(t)
      clearInterval(t)
    }
    this.#timers.clear()
    for (const done of [...this.#delays]) done()
    for (const [seq, h] of [...this.#ackHandlers]) {
      clearTimeout(h.timer)
      this.#ackHandlers.delete(seq)
      h.timeout()
    }
    this.#table.stopAll()
    this.#queue.reset()
    await this.#transport.close()
    while (this.#tasks.size > 0) await Promise.allSettled([...this.#tasks])
    this.#log('memberlist %s shut down', this.name)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.shutdown()
  }

  async leave(timeoutMs: number): Promise<void> {
    if (this.#shutdown) throw new ShutdownError()
    if (this.#leaving) return
    this.#leaving = true
    const me = this.#table.map.get(this.name)
    if (me === undefined) return
    let sent!: () => void
    const broadcastDone = new Promise<void>((resolve) => {
      sent = resolve
    })
    this.#table.deadNode({ type: 'dead', incarnation: me.incarnation, node: this.name, from: '' }, () => sent())
    const anyAlive = this.#table.list.some((r) => r.state !== 'dead' && r.name !== this.name)
    if (!anyAlive) return
    let timedOut = false
    await Promise.race([
      broadcastDone,
      this.#delay(timeoutMs).then(() => {
        timedOut = true
      }),
    ])
    if (timedOut) this.#log('leave: timed out after %d ms waiting for the leave broadcast', timeoutMs)
  }

  // ---------------------------------------------------------------- queries

  localNode(): Node {
    return snapshot(this.#table.map.get(this.name)!)
  }

  members(): Node[] {
    return this.#table.list.filter((r) => r.state !== 'dead').map(snapshot)
  }

  nodes(): Node[] {
    return this.#table.list.map(snapshot)
  }

  numMembers(): number {
    let n = 0
    for (const r of this.#table.list) if (r.state !== 'dead') n++
    return n
  }

  healthScore(): number {
    return this.#awareness.score
  }

  stats(): MemberlistStats {
    let alive = 0
    let suspect = 0
    let dead = 0
    for (const r of this.#table.list) {
      if (r.state === 'alive') alive++
      else if (r.state === 'suspect') suspect++
      else dead++
    }
    return {
      members: alive + suspect,
      alive,
      suspect,
      dead,
      healthScore: this.#awareness.score,
      broadcastQueue: this.#queue.length,
      ...this.#stats,
    }
  }

  // ---------------------------------------------------------------- sending

  #encrypting(): boolean {
    return this.keyring.primaryKey() !== undefined
  }

  #broadcast(node: string, msg: AliveMessage | SuspectMessage | DeadMessage, onFinished?: () => void): void {
    this.#queue.queue(new MemberlistBroadcast(node, encodeMessage(msg), onFinished))
  }

  /** Our queue first, then the delegate's messages (each framed as a user message). */
  #getBroadcasts(overhead: number, limit: number, maxParts: number): Uint8Array[] {
    const out = this.#queue.getBroadcasts(overhead, limit, maxParts)
    const d = this.#cfg.delegate
    if (d === undefined || out.length >= maxParts) return out
    let used = 0
    for (const m of out) used += m.length + overhead
    const avail = limit - used
    if (avail <= overhead + 1) return out
    let user: Uint8Array[]
    try {
      user = d.getBroadcasts(overhead + 1, avail)
    } catch (err) {
      this.#log.error('delegate getBroadcasts failed: %s', String(err))
      return out
    }
    for (const m of user) {
      if (m.length === 0) continue
      if (out.length >= maxParts || used + m.length + 1 + overhead > limit) {
        this.#log.trace('dropping a %d-byte delegate broadcast that does not fit the packet', m.length)
        continue
      }
      used += m.length + 1 + overhead
      out.push(concatUser(m))
    }
    return out
  }

  /** Packs (compress, CRC, encrypt) and sends; errors are logged. */
  #rawSend(to: Address, messages: Uint8Array[], crc: boolean): void {
    let buf: Uint8Array
    try {
      buf = packPacket(messages, { compress: this.#cfg.enableCompression, crc, keyring: this.keyring })
    } catch (err) {
      this.#log.error('cannot pack a packet for %s:%d: %s', to.addr, to.port, String(err))
      return
    }
    if (this.#transport.sendPacket(to, buf)) {
      this.#stats.packetsSent++
      this.#stats.bytesSent += buf.length
    }
  }

  /** Sends one message with as many queued broadcasts piggybacked as fit (ping, ack, nack, indirect). */
  #sendMsg(to: Address, msg: Uint8Array): void {
    let avail = this.#cfg.udpBufferSize - msg.length - COMPOUND_HEADER_OVERHEAD - COMPOUND_OVERHEAD
    if (this.#encrypting()) avail -= ENCRYPT_OVERHEAD
    const extra = avail > 0 ? this.#getBroadcasts(COMPOUND_OVERHEAD, avail, MAX_COMPOUND_PARTS - 1) : []
    this.#rawSend(to, extra.length === 0 ? [msg] : [msg, ...extra], false)
  }

  #nodeByAddress(to: Address): NodeRecord | undefined {
    for (const r of this.#table.list) if (r.port === to.port && r.addr === to.addr) return r
    return undefined
  }

  #crcFor(r: NodeRecord | undefined): boolean {
    return r !== undefined && (r.vsn[1] ?? 0) >= 5
  }

  sendBestEffort(to: Address, payload: Uint8Array): void {
    if (this.#shutdown) throw new ShutdownError()
    const buf = packPacket([concatUser(payload)], {
      compress: this.#cfg.enableCompression,
      crc: this.#crcFor(this.#nodeByAddress(to)),
      keyring: this.keyring,
    })
    if (buf.length > MAX_UDP_PAYLOAD) {
      throw new InvalidArgumentError(`user message too large for a datagram (${buf.length} bytes)`, {
        code: 'ERR_MEMBERLIST_TOO_LARGE',
      })
    }
    if (this.#transport.sendPacket(to, buf)) {
      this.#stats.packetsSent++
      this.#stats.bytesSent += buf.length
    }
  }

  #packStream(msg: Uint8Array): Uint8Array {
    const buf = packStream(msg, { compress: this.#cfg.enableCompression, keyring: this.keyring })
    if (this.#encrypting() && buf.length - 5 > MAX_ENCRYPTED_FRAME_BYTES) {
      throw new InvalidArgumentError(
        `stream message of ${buf.length} bytes exceeds the ${MAX_ENCRYPTED_FRAME_BYTES}-byte encrypted frame limit`,
        { code: 'ERR_MEMBERLIST_TOO_LARGE' },
      )
    }
    return buf
  }

  async #dial(to: Address, deadline: number, signal?: AbortSignal): Promise<net.Socket> {
    const socket = await this.#transport.dial(to, Math.max(1, deadline - Date.now()), signal)
    this.#stats.streamsOpened++
    return socket
  }

  async sendReliable(to: Address, payload: Uint8Array, opts?: AbortOptions): Promise<void> {
    throwIfAborted(opts?.signal)
    if (this.#shutdown) throw new ShutdownError()
    const buf = this.#packStream(encodeUserStream(payload))
    const deadline = Date.now() + this.#cfg.tcpTimeoutMs
    const socket = await this.#dial(to, deadline, opts?.signal)
    try {
      await writeAll(socket, buf, deadline)
    } finally {
      // Half-close after the data; the transport destroys the socket at shutdown if the peer lingers.
      socket.end()
    }
  }

  // ---------------------------------------------------------------- receiving

  /** Entry point of the transport for every datagram. */
  onPacket(buf: Buffer, from: Address): void {
    this.#stats.packetsReceived++
    this.#stats.bytesReceived += buf.length
    if (this.#shutdown) return
    let res: ReturnType<typeof unpackPacket>
    try {
      res = unpackPacket(buf, { keyring: this.keyring })
    } catch (err) {
      this.#stats.dropped++
      this.#log.trace('dropping a packet from %s:%d: %s', from.addr, from.port, String(err))
      return
    }
    if (res.errors.length > 0) {
      this.#stats.dropped += res.errors.length
      this.#log.trace('packet from %s:%d had malformed parts: %s', from.addr, from.port, res.errors.join('; '))
    }
    for (const msg of res.messages) {
      try {
        this.#handlePacketMessage(msg, from)
      } catch (err) {
        this.#log.error('handling %s from %s:%d failed: %s', msg.type, from.addr, from.port, String(err))
      }
    }
  }

  #handlePacketMessage(msg: Message, from: Address): void {
    switch (msg.type) {
      case 'ping':
        if (msg.node !== '' && msg.node !== this.name) {
          this.#log.trace('got a ping for %s, not us', msg.node)
          return
        }
        this.#sendMsg(from, encodeMessage({ type: 'ack', seqNo: msg.seqNo, payload: null }))
        return
      case 'indirectPing':
        this.#handleIndirectPing(msg, from)
        return
      case 'ack': {
        const h = this.#ackHandlers.get(msg.seqNo)
        if (h === undefined) return
        this.#ackHandlers.delete(msg.seqNo)
        clearTimeout(h.timer)
        this.#timers.delete(h.timer)
        h.ack(msg.payload)
        return
      }
      case 'nack':
        this.#ackHandlers.get(msg.seqNo)?.nack()
        return
      case 'alive':
        this.#table.aliveNode(msg.port === 0 ? { ...msg, port: this.address.port } : msg)
        return
      case 'suspect':
        this.#table.suspectNode(msg)
        return
      case 'dead':
        this.#table.deadNode(msg)
        return
      case 'user':
        this.#deliver(msg.payload)
        return
      default:
        this.#log.trace('ignoring a %s message over UDP from %s:%d', msg.type, from.addr, from.port)
    }
  }

  #deliver(payload: Uint8Array): void {
    const d = this.#cfg.delegate
    if (d === undefined || payload.length === 0) return
    try {
      d.notifyMsg(payload)
    } catch (err) {
      this.#log.error('delegate notifyMsg failed: %s', String(err))
    }
  }

  #nextSeqNo(): number {
    this.#seqNo = (this.#seqNo + 1) >>> 0
    if (this.#seqNo === 0) this.#seqNo = 1
    return this.#seqNo
  }

  /** Registers ack/nack callbacks for `seqNo`; `timeout` runs after `timeoutMs` without an ack. */
  #setAckHandler(seqNo: number, timeoutMs: number, ack: AckFn, nack: () => void, timeout: () => void): void {
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      if (this.#ackHandlers.get(seqNo)?.timer !== timer) return
      this.#ackHandlers.delete(seqNo)
      timeout()
    }, timeoutMs)
    timer.unref()
    this.#timers.add(timer)
    this.#ackHandlers.set(seqNo, { ack, nack, timeout, timer })
  }

  #handleIndirectPing(ind: Extract<Message, { type: 'indirectPing' }>, from: Address): void {
    const localSeq = this.#nextSeqNo()
    let answered = false
    let nackTimer: NodeJS.Timeout | undefined
    this.#setAckHandler(
      localSeq,
      this.#cfg.probeTimeoutMs,
      () => {
        answered = true
        if (nackTimer !== undefined) {
          clearTimeout(nackTimer)
          this.#timers.delete(nackTimer)
        }
        this.#sendMsg(from, encodeMessage({ type: 'ack', seqNo: ind.seqNo, payload: null }))
      },
      () => undefined,
      () => undefined,
    )
    const target = { addr: bytesToIp(ind.target), port: ind.port === 0 ? this.address.port : ind.port }
    this.#sendMsg(target, encodeMessage({ type: 'ping', seqNo: localSeq, node: ind.node }))
    if (ind.nack) {
      nackTimer = setTimeout(() => {
        if (nackTimer !== undefined) this.#timers.delete(nackTimer)
        if (answered || this.#shutdown) return
        this.#sendMsg(from, encodeMessage({ type: 'nack', seqNo: ind.seqNo }))
      }, this.#cfg.probeTimeoutMs)
      nackTimer.unref()
      this.#timers.add(nackTimer)
    }
  }

  /** Entry point of the transport for every accepted connection. */
  onStream(socket: net.Socket, from: Address): void {
    this.#stats.streamsAccepted++
    this.#track(
      this.#handleConn(socket, from)
        .catch((err: unknown) =>
          this.#log('stream from %s:%d failed: %s', from.addr, from.port, (err as Error).message),
        )
        .finally(() => socket.destroySoon()),
    )
  }

  async #handleConn(socket: net.Socket, from: Address): Promise<void> {
    const deadline = Date.now() + this.#cfg.tcpTimeoutMs
    let msg: Message
    try {
      msg = await readOneMessage(socket, this.keyring, deadline, this.#cfg.maxStreamBytes)
    } catch (err) {
      if (err instanceof StreamEofError || this.#shutdown) return
      this.#stats.dropped++
      const text = err instanceof Error ? err.message : String(err)
      this.#log('failed to receive a stream from %s:%d: %s', from.addr, from.port, text)
      try {
        await writeAll(socket, this.#packStream(encodeMessage({ type: 'err', error: text })), deadline)
      } catch (writeErr) {
        this.#log.trace('cannot send the error reply: %s', String(writeErr))
      }
      socket.end()
      return
    }
    switch (msg.type) {
      case 'user':
        this.#deliver(msg.payload)
        socket.end()
        return
      case 'pushPull': {
        const reply = this.#packStream(encodeMessage(this.#localPushPull(msg.join)))
        await writeAll(socket, reply, deadline)
        socket.end()
        this.#mergeRemoteState(msg)
        return
      }
      case 'ping':
        if (msg.node !== '' && msg.node !== this.name) {
          this.#log('got a stream ping for %s, not us', msg.node)
          socket.end()
          return
        }
        await writeAll(
          socket,
          this.#packStream(encodeMessage({ type: 'ack', seqNo: msg.seqNo, payload: null })),
          deadline,
        )
        socket.end()
        return
      default:
        this.#log('ignoring a %s stream from %s:%d', msg.type, from.addr, from.port)
        socket.destroy()
    }
  }

  // ---------------------------------------------------------------- push-pull and join

  #localPushPull(join: boolean): Extract<Message, { type: 'pushPull' }> {
    let userState: Uint8Array = new Uint8Array(0)
    const d = this.#cfg.delegate
    if (d !== undefined) {
      try {
        userState = d.localState(join)
      } catch (err) {
        this.#log.error('delegate localState failed: %s', String(err))
      }
    }
    return { type: 'pushPull', join, nodes: this.#table.localStates(), userState }
  }

  /** Version check, node merge, then the delegate's user state. Throws IncompatibleVersionError. */
  #mergeRemoteState(msg: Extract<Message, { type: 'pushPull' }>): void {
    const problem = verifyProtocol(this.#table.localStates(), msg.nodes)
    if (problem !== undefined) throw new IncompatibleVersionError(problem)
    this.#table.mergeState(msg.nodes)
    const d = this.#cfg.delegate
    if (msg.userState.length > 0 && d !== undefined) {
      try {
        d.mergeRemoteState(msg.userState, msg.join)
      } catch (err) {
        this.#log.error('delegate mergeRemoteState failed: %s', String(err))
      }
    }
  }

  /** One push-pull exchange with `to`: send our state, read theirs, merge it. */
  async pushPullNode(to: Address, join: boolean, signal?: AbortSignal): Promise<void> {
    if (this.#shutdown) throw new ShutdownError()
    const deadline = Date.now() + this.#cfg.tcpTimeoutMs
    const out = this.#packStream(encodeMessage(this.#localPushPull(join)))
    const socket = await this.#dial(to, deadline, signal)
    let reply: Message
    try {
      await writeAll(socket, out, deadline)
      reply = await readOneMessage(socket, this.keyring, deadline, this.#cfg.maxStreamBytes)
    } finally {
      socket.destroy()
    }
    if (reply.type === 'err') throw new RemoteError(`remote error from ${to.addr}:${to.port}: ${reply.error}`)
    if (reply.type !== 'pushPull')
      throw new RemoteError(`${to.addr}:${to.port} answered a push-pull with ${reply.type}`)
    this.#mergeRemoteState(reply)
  }

  async #pushPullTrigger(): Promise<void> {
    const [node] = this.#table.randomNodes(1, (r) => r.name === this.name || r.state !== 'alive')
    if (node === undefined) return
    await this.pushPullNode({ addr: node.addr, port: node.port }, false)
  }

  async join(addresses: readonly string[], opts?: AbortOptions): Promise<number> {
    throwIfAborted(opts?.signal)
    if (this.#shutdown) throw new ShutdownError()
    let ok = 0
    const errors = new Map<string, Error>()
    for (const text of addresses) {
      throwIfAborted(opts?.signal)
      try {
        const to = parseJoinAddress(text, this.address.port)
        await this.pushPullNode(to, true, opts?.signal)
        ok++
      } catch (err) {
        const e = err instanceof Error ? err : new Error(String(err))
        errors.set(text, e)
        this.#log('failed to join %s: %s', text, e.message)
      }
    }
    throwIfAborted(opts?.signal)
    if (ok === 0) {
      const detail = [...errors].map(([a, e]) => `${a}: ${e.message}`).join('; ')
      throw new JoinError(
        `failed to join any of ${addresses.length} address(es)${detail === '' ? '' : `: ${detail}`}`,
        errors,
      )
    }
    return ok
  }

  // ---------------------------------------------------------------- failure detection

  #probe(): void {
    if (this.#probeBusy || this.#shutdown) return
    const list = this.#table.list
    let index = this.#probeIndex
    let checked = 0
    while (checked <= list.length) {
      if (index >= this.#table.list.length) {
        const removed = this.#table.resetNodes(this.#cfg.gossipToTheDeadMs)
        if (removed.length > 0) this.#log('removed dead nodes from the probe list: %s', removed.join(', '))
        index = 0
        checked++
        continue
      }
      const r = this.#table.list[index]!
      index++
      if (r.name === this.name || r.state === 'dead') {
        checked++
        continue
      }
      this.#probeIndex = index
      this.#probeBusy = true
      this.#track(
        this.#probeNode(r).finally(() => {
          this.#probeBusy = false
        }),
      )
      return
    }
    this.#probeIndex = index
  }

  #probeIndex = 0

  async #probeNode(target: NodeRecord): Promise<void> {
    const probeIntervalMs = this.#awareness.scaleTimeout(this.#cfg.probeIntervalMs)
    const seqNo = this.#nextSeqNo()
    const name = target.name
    const incarnation = target.incarnation
    const to = { addr: target.addr, port: target.port }
    const deadline = Date.now() + probeIntervalMs
    let nacks = 0
    let resolveAck!: (ok: boolean) => void
    const acked = new Promise<boolean>((resolve) => {
      resolveAck = resolve
    })
    this.#setAckHandler(
      seqNo,
      probeIntervalMs,
      () => resolveAck(true),
      () => {
        nacks++
      },
      () => resolveAck(false),
    )
    const ping = encodeMessage({ type: 'ping', seqNo, node: name })
    if (target.state === 'alive') {
      this.#sendMsg(to, ping)
    } else {
      const suspect = encodeMessage({ type: 'suspect', incarnation, node: name, from: this.name })
      this.#rawSend(to, [ping, suspect], this.#crcFor(target))
    }
    let awarenessDelta = 0
    try {
      const first = await Promise.race([acked, this.#delay(this.#cfg.probeTimeoutMs).then(() => undefined)])
      if (first === true) {
        awarenessDelta = -1
        return
      }
      if (this.#shutdown) return
      const helpers = this.#table.randomNodes(
        this.#cfg.indirectChecks,
        (r) => r.name === this.name || r.name === name || r.state !== 'alive',
      )
      let expectedNacks = 0
      for (const peer of helpers) {
        const nack = (peer.vsn[1] ?? 0) >= 4
        if (nack) expectedNacks++
        this.#sendMsg(
          { addr: peer.addr, port: peer.port },
          encodeMessage({ type: 'indirectPing', seqNo, target: target.addrBytes, port: target.port, node: name, nack }),
        )
      }
      let fallback: Promise<boolean> = Promise.resolve(false)
      if (!this.#cfg.disableTcpPings && (target.vsn[1] ?? 0) >= 3) {
        fallback = this.#tcpPing(to, seqNo, name, deadline).catch((err: unknown) => {
          this.#log.trace('TCP fallback ping to %s failed: %s', name, (err as Error).message)
          return false
        })
      }
      if (await acked) {
        awarenessDelta = -1
        return
      }
      if (await fallback) {
        // Go returns with its awarenessDelta still at −1: reaching the node over TCP is a successful probe.
        awarenessDelta = -1
        this.#log('was able to connect to %s over TCP but UDP probes failed, network may be misconfigured', name)
        return
      }
      if (this.#shutdown) return
      awarenessDelta = expectedNacks > 0 ? Math.max(0, expectedNacks - nacks) : 1
      this.#log('suspect %s has failed, no acks received', name)
      this.#table.suspectNode({ type: 'suspect', incarnation, node: name, from: this.name })
    } finally {
      if (!this.#shutdown) this.#awareness.applyDelta(awarenessDelta)
    }
  }

  async #tcpPing(to: Address, seqNo: number, node: string, deadline: number): Promise<boolean> {
    const socket = await this.#dial(to, deadline)
    try {
      await writeAll(socket, this.#packStream(encodeMessage({ type: 'ping', seqNo, node })), deadline)
      const reply = await readOneMessage(socket, this.keyring, deadline, this.#cfg.maxStreamBytes)
      if (reply.type !== 'ack') throw new RemoteError(`unexpected ${reply.type} in reply to a TCP ping`)
      if (reply.seqNo !== seqNo) throw new RemoteError(`TCP ping ack has SeqNo ${reply.seqNo}, expected ${seqNo}`)
      return true
    } finally {
      socket.destroy()
    }
  }

  // ---------------------------------------------------------------- gossip

  #gossip(): void {
    if (this.#shutdown) return
    const now = Date.now()
    const targets = this.#table.randomNodes(this.#cfg.gossipNodes, (r) => {
      if (r.name === this.name) return true
      if (r.state === 'dead') return now - r.stateChange > this.#cfg.gossipToTheDeadMs
      return false
    })
    let avail = this.#cfg.udpBufferSize - COMPOUND_HEADER_OVERHEAD - CRC_OVERHEAD
    if (this.#encrypting()) avail -= ENCRYPT_OVERHEAD
    for (const r of targets) {
      const msgs = this.#getBroadcasts(COMPOUND_OVERHEAD, avail, MAX_COMPOUND_PARTS)
      if (msgs.length === 0) return
      this.#rawSend({ addr: r.addr, port: r.port }, msgs, this.#crcFor(r))
    }
  }

  /** Counts a packet or stream the filter dropped. */
  _countDrop(): void {
    this.#stats.dropped++
  }

  /** Test access to the state machine (not part of the public API). */
  get _table(): NodeTable {
    return this.#table
  }

  /** Used by the push-pull tests: our node states as they would be sent. */
  _localStates(): PushNodeState[] {
    return this.#table.localStates()
  }
}

/**
 * Binds UDP and TCP on one port, announces this node (incarnation 1) and starts the probe, gossip and
 * push-pull loops. Call `join()` to contact a cluster and `shutdown()` to stop.
 */
export async function createMemberlist(init: Partial<MemberlistConfig> & { name: string }): Promise<Memberlist> {
  const cfg = resolveConfig(init)
  const log = cfg.logger ?? noopLogger().forComponent('cnm:memberlist')
  const keyring = new KeyringImpl(cfg.keys)
  const advertiseAddr = cfg.advertiseAddr ?? cfg.bindAddr
  if (isUnspecified(advertiseAddr)) {
    throw new ConfigError('config.advertiseAddr is required when binding to an unspecified address')
  }
  try {
    ipToBytes(advertiseAddr)
  } catch (err) {
    throw new ConfigError(`config.advertiseAddr '${advertiseAddr}' is not an IP address`, { cause: err })
  }
  let ml: MemberlistImpl | undefined
  const transport = await Transport.listen({
    bindAddr: cfg.bindAddr,
    bindPort: cfg.bindPort,
    filter: cfg.filter,
    log,
    onPacket: (buf, from) => ml?.onPacket(buf, from),
    onStream: (socket, from) => {
      if (ml === undefined) socket.destroy()
      else ml.onStream(socket, from)
    },
    onDrop: () => ml?._countDrop(),
  })
  const m = new MemberlistImpl(cfg, log, transport, keyring, {
    addr: advertiseAddr,
    port: cfg.advertisePort ?? transport.port,
  })
  try {
    m.start()
  } catch (err) {
    await m.shutdown()
    throw err
  }
  ml = m
  log('memberlist %s listening on %s:%d', cfg.name, cfg.bindAddr, transport.port)
  return m
}
