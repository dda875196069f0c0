import { randomFillSync } from 'node:crypto'
import type dgram from 'node:dgram'
import type net from 'node:net'
import type { Logger } from '@cnm/types'
import type { ForwardSocketFactory, UpstreamServer } from '../sockets.js'
import { HEADER_BYTES, MAX_TCP_MESSAGE, RCODE_NOERROR, RCODE_NXDOMAIN, sameQuestion } from './wire.js'

export interface ForwarderConfig {
  readonly hedgeDelayMs: number
  readonly forwardTimeoutMs: number
  readonly maxConcurrentForwards: number
  readonly failThreshold: number
  readonly probeIntervalMs: number
  readonly idleSocketMs: number
  readonly socketMaxQueries: number
  /** Opening a forwarding socket that takes longer fails the queries waiting for it. */
  readonly openTimeoutMs: number
}

/** Called once per forwarded query: the reply to relay (client id already restored), or undefined for none. */
export type ForwardCallback = (reply: Buffer | undefined, from: UpstreamServer | undefined) => void

export interface UpstreamHealth {
  readonly server: UpstreamServer
  readonly healthy: boolean
  readonly consecutiveFailures: number
}

export interface ForwarderCounters {
  forwarded: number
  upstreamQueries: number
  hedged: number
  probes: number
  overloaded: number
  unanswered: number
  spoofed: number
  /** Forwarding sockets opened (first use, after idle close, source-port rotation). */
  socketOpens: number
  socketOpenFailures: number
  maxSocketOpenMs: number
}

/** One UDP socket connected to one upstream, with its in-flight queries. */
class Channel {
  readonly pending = new Map<number, Attempt>()
  sent = 0
  draining = false
  closed = false
  /** A replacement socket is being opened. */
  replacing = false
  idleSince = Date.now()
  constructor(readonly sock: dgram.Socket) {}

  close(): void {
    if (this.closed) return
    this.closed = true
    this.draining = true
    this.sock.close()
  }
}

class Upstream {
  failures = 0
  lastProbeAt = 0
  channel: Channel | undefined
  opening: Promise<Channel> | undefined
  readonly draining = new Set<Channel>()
  readonly port: number
  readonly key: string
  constructor(readonly server: UpstreamServer) {
    this.port = server.port ?? 53
    this.key = `${server.address}|${this.port}|${server.hostLoopback === true ? 1 : 0}`
  }
}

class Attempt {
  id = 0
  done = false
  /** Counted as a health failure already (lost a race or expired). */
  counted = false
  channel: Channel | undefined
  tcp: net.Socket | undefined
  readonly sentAt = Date.now()
  constructor(
    readonly fwd: Forward,
    readonly up: Upstream,
  ) {}
}

class Forward {
  finished = false
  next = 0
  outstanding = 0
  last: Buffer | undefined
  lastFrom: UpstreamServer | undefined
  timer: NodeJS.Timeout | undefined
  readonly attempts: Attempt[] = []
  readonly deadline: number
  constructor(
    readonly query: Buffer,
    readonly questionEnd: number,
    readonly clientId: number,
    readonly tcp: boolean,
    readonly candidates: Upstream[],
    readonly done: ForwardCallback,
    timeoutMs: number,
  ) {
    this.deadline = Date.now() + timeoutMs
  }
}

/**
 * Forwards queries to upstream servers: ask the first healthy server; if it has not answered after
 * the hedge delay, also ask the next one; first acceptable reply wins (sandbox-dns.md §2.3 rules
 * for what is acceptable). Upstreams that stop answering are skipped until a probe gets a reply.
 */
export class Forwarder {
  private upstreams: Upstream[] = []
  private active = 0
  private closed = false
  private maintenance: NodeJS.Timeout | undefined
  /** Random bytes for query ids, allocated on the first forward (idle sandboxes never pay for it). */
  private ids: Buffer | undefined
  private idPos = 0
  private lastOverloadLog = 0
  readonly counters: ForwarderCounters = {
    forwarded: 0,
    upstreamQueries: 0,
    hedged: 0,
    probes: 0,
    overloaded: 0,
    unanswered: 0,
    spoofed: 0,
    socketOpens: 0,
    socketOpenFailures: 0,
    maxSocketOpenMs: 0,
  }

  constructor(
    private readonly config: ForwarderConfig,
    private readonly factory: ForwardSocketFactory,
    private readonly log: Logger,
  ) {}

  get size(): number {
    return this.upstreams.length
  }

  get inFlight(): number {
    return this.active
  }

  /** Replaces the server list, keeping state (health, sockets) of servers that stay. */
  setUpstreams(servers: readonly UpstreamServer[]): void {
    const old = new Map(this.upstreams.map((u) => [u.key, u]))
    const next: Upstream[] = []
    for (const s of servers) {
      const u = new Upstream({ ...s })
      const kept = old.get(u.key)
      if (kept !== undefined && !next.includes(kept)) {
        next.push(kept)
        old.delete(u.key)
      } else if (!next.some((x) => x.key === u.key)) {
        next.push(u)
      }
    }
    for (const gone of old.values()) this.retire(gone)
    this.upstreams = next
  }

  health(): UpstreamHealth[] {
    return this.upstreams.map((u) => ({
      server: u.server,
      healthy: u.failures < this.config.failThreshold,
      consecutiveFailures: u.failures,
    }))
  }

  /**
   * Starts forwarding `query` (the client's message; it is copied). Returns false, without calling
   * `done`, when the concurrency cap is reached or there is no upstream.
   */
  forward(query: Uint8Array, questionEnd: number, tcp: boolean, done: ForwardCallback): boolean {
    if (this.closed || this.upstreams.length === 0) return false
    if (this.active >= this.config.maxConcurrentForwards) {
      this.counters.overloaded++
      const now = Date.now()
      if (now - this.lastOverloadLog > 2000) {
        this.lastOverloadLog = now
        this.log('forwarding cap of %d concurrent queries reached, shedding load', this.config.maxConcurrentForwards)
      }
      return false
    }
    this.active++
    this.counters.forwarded++
    const copy = Buffer.from(query)
    const clientId = ((copy[0] as number) << 8) | (copy[1] as number)
    const now = Date.now()
    const healthy: Upstream[] = []
    const dead: Upstream[] = []
    for (const u of this.upstreams) (u.failures < this.config.failThreshold ? healthy : dead).push(u)
    const f = new Forward(copy, questionEnd, clientId, tcp, [...healthy, ...dead], done, this.config.forwardTimeoutMs)
    // a dead server gets a copy of a real query now and then, in parallel: any reply revives it
    if (healthy.length > 0) {
      for (const u of dead) {
        if (now - u.lastProbeAt >= this.config.probeIntervalMs) {
          u.lastProbeAt = now
          this.counters.probes++
          this.launch(f, u)
        }
      }
    }
    this.launchNext(f)
    this.arm(f, this.config.hedgeDelayMs)
    return true
  }

  /** Stops everything: pending forwards finish without a reply, sockets close. */
  close(): void {
    this.closed = true
    for (const u of this.upstreams) this.retire(u)
    this.upstreams = []
    if (this.maintenance !== undefined) clearInterval(this.maintenance)
    this.maintenance = undefined
  }

  private arm(f: Forward, ms: number): void {
    if (f.timer !== undefined) clearTimeout(f.timer)
    f.timer = setTimeout(() => this.onTimer(f), Math.max(1, ms))
    f.timer.unref()
  }

  private onTimer(f: Forward): void {
    f.timer = undefined
    if (f.finished) return
    const now = Date.now()
    if (now >= f.deadline) {
      this.finish(f, f.last, f.lastFrom)
      return
    }
    if (f.next < f.candidates.length) {
      this.counters.hedged++
      this.launchNext(f)
    }
    this.arm(f, f.next < f.candidates.length ? this.config.hedgeDelayMs : f.deadline - now)
  }

  /** Launches the next candidate; true when one was launched. */
  private launchNext(f: Forward): boolean {
    while (f.next < f.candidates.length) {
      const u = f.candidates[f.next++] as Upstream
      if (f.attempts.some((a) => a.up === u && !a.done)) continue // already asked (probe)
      this.launch(f, u)
      return true
    }
    return false
  }

  private launch(f: Forward, u: Upstream): void {
    const a = new Attempt(f, u)
    f.attempts.push(a)
    f.outstanding++
    this.counters.upstreamQueries++
    if (f.tcp) {
      const signal = AbortSignal.timeout(Math.max(1, f.deadline - Date.now()))
      const conn = this.factory.tcpConnect(u.server, signal)
      if (conn !== undefined) {
        this.launchTcp(a, conn)
        return
      }
    }
    this.launchUdp(a)
  }

  private launchUdp(a: Attempt): void {
    const u = a.up
    const ch = u.channel
    if (ch !== undefined && !ch.draining) {
      this.sendUdp(a, ch)
      return
    }
    const opening = u.opening ?? this.startOpening(u)
    opening.then(
      (c) => this.sendUdp(a, c),
      () => this.attemptFailed(a),
    )
  }

  /** Opens (and adopts) a new channel for `u`; the current one, if any, keeps serving until it is ready. */
  private startOpening(u: Upstream): Promise<Channel> {
    const t0 = performance.now()
    this.counters.socketOpens++
    const opening = this.openSocket(u).then((sock) => this.adopt(u, sock))
    u.opening = opening
    opening.then(
      () => {
        if (u.opening === opening) u.opening = undefined
        const ms = performance.now() - t0
        if (ms > this.counters.maxSocketOpenMs) this.counters.maxSocketOpenMs = Math.round(ms * 10) / 10
      },
      (err: unknown) => {
        if (u.opening === opening) u.opening = undefined
        this.counters.socketOpenFailures++
        this.log.error('opening a forwarding socket to %s failed: %s', u.server.address, errMessage(err))
      },
    )
    return opening
  }

  /** The factory's socket, or a rejection after `openTimeoutMs` (a late socket is closed). */
  private openSocket(u: Upstream): Promise<dgram.Socket> {
    return new Promise<dgram.Socket>((resolve, reject) => {
      let timedOut = false
      const timer = setTimeout(() => {
        timedOut = true
        reject(new Error(`no socket after ${this.config.openTimeoutMs} ms`))
      }, this.config.openTimeoutMs)
      timer.unref()
      this.factory.udpSocket(u.server).then(
        (sock) => {
          clearTimeout(timer)
          if (timedOut) sock.close()
          else resolve(sock)
        },
        (err: unknown) => {
          clearTimeout(timer)
          reject(err instanceof Error ? err : new Error(String(err)))
        },
      )
    })
  }

  private adopt(u: Upstream, sock: dgram.Socket): Promise<Channel> {
    return new Promise<Channel>((resolve, reject) => {
      const ch = new Channel(sock)
      const onError = (err: Error): void => {
        sock.off('connect', onConnect)
        sock.close()
        reject(err)
      }
      const onConnect = (): void => {
        sock.off('error', onError)
        if (this.closed || !this.upstreams.includes(u)) {
          sock.close()
          reject(new Error('forwarder closed'))
          return
        }
        sock.on('message', (msg: Buffer) => this.onUdpReply(u, ch, msg))
        sock.on('error', (err: Error) => this.onChannelError(u, ch, err))
        sock.unref()
        const old = u.channel
        if (old !== undefined) this.drain(u, old)
        u.channel = ch
        this.ensureMaintenance()
        resolve(ch)
      }
      sock.once('error', onError)
      sock.once('connect', onConnect)
      sock.connect(u.port, u.server.address)
    })
  }

  private sendUdp(a: Attempt, ch: Channel): void {
    if (a.done) return
    const f = a.fwd
    if (f.finished) {
      a.done = true
      return
    }
    if (ch.closed) {
      this.launchUdp(a) // the socket was recycled meanwhile: use (or open) the current one
      return
    }
    let id: number
    do id = this.nextId()
    while (ch.pending.has(id))
    a.id = id
    a.channel = ch
    ch.pending.set(id, a)
    ch.sent++
    const out = Buffer.from(f.query)
    out[0] = id >> 8
    out[1] = id & 0xff
    ch.sock.send(out, (err) => {
      if (err !== null && err !== undefined) {
        this.log.trace('send to %s failed: %s', a.up.server.address, err.message)
        if (ch.pending.get(id) === a) ch.pending.delete(id)
        this.attemptFailed(a)
      }
    })
    if (ch.sent >= this.config.socketMaxQueries && a.up.opening === undefined && a.up.channel === ch && !ch.replacing) {
      // fresh source port for later queries: open the replacement in the background; this socket
      // serves until it is ready (adopt() drains it), so opening never sits on the query path
      ch.replacing = true
      this.startOpening(a.up).catch(() => {
        ch.replacing = false
        ch.sent = Math.max(0, this.config.socketMaxQueries - 1000) // try again a bit later
      })
    }
  }

  private onUdpReply(u: Upstream, ch: Channel, msg: Buffer): void {
    if (msg.length < HEADER_BYTES || ((msg[2] as number) & 0x80) === 0) {
      this.counters.spoofed++
      return
    }
    const id = ((msg[0] as number) << 8) | (msg[1] as number)
    const a = ch.pending.get(id)
    if (a === undefined || !sameQuestion(msg, a.fwd.query, a.fwd.questionEnd)) {
      this.counters.spoofed++
      return
    }
    ch.pending.delete(id)
    if (ch.pending.size === 0) ch.idleSince = Date.now()
    this.onReply(u, a, msg)
  }

  private onChannelError(u: Upstream, ch: Channel, err: Error): void {
    // ICMP errors (ECONNREFUSED…) on a connected socket: the server does not serve; fail its queries now
    this.log.trace('forwarding socket to %s: %s', u.server.address, err.message)
    const attempts = [...ch.pending.values()]
    ch.pending.clear()
    ch.idleSince = Date.now()
    for (const a of attempts) this.attemptFailed(a)
    if (attempts.length === 0) this.noteFailure(u)
  }

  private launchTcp(a: Attempt, conn: Promise<net.Socket>): void {
    conn.then(
      (sock) => {
        if (a.done || a.fwd.finished) {
          sock.destroy()
          a.done = true
          return
        }
        a.tcp = sock
        const q = a.fwd.query
        const frame = Buffer.allocUnsafe(q.length + 2)
        frame.writeUInt16BE(q.length, 0)
        q.copy(frame, 2)
        let buf: Buffer = Buffer.alloc(0)
        sock.on('data', (chunk: Buffer) => {
          buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk])
          if (buf.length < 2) return
          const len = buf.readUInt16BE(0)
          if (buf.length < 2 + len) return
          const msg = Buffer.from(buf.subarray(2, 2 + len))
          sock.destroy()
          a.tcp = undefined
          if (
            msg.length < HEADER_BYTES ||
            ((msg[2] as number) & 0x80) === 0 ||
            !sameQuestion(msg, a.fwd.query, a.fwd.questionEnd)
          ) {
            this.counters.spoofed++
            this.attemptFailed(a)
            return
          }
          this.onReply(a.up, a, msg)
        })
        sock.on('error', (err: Error) => {
          this.log.trace('tcp forward to %s: %s', a.up.server.address, err.message)
        })
        sock.on('close', () => {
          a.tcp = undefined
          if (!a.done) this.attemptFailed(a)
        })
        sock.write(frame)
      },
      (err: unknown) => {
        this.log.trace('tcp connect to %s failed: %s', a.up.server.address, errMessage(err))
        this.attemptFailed(a)
      },
    )
  }

  private onReply(u: Upstream, a: Attempt, msg: Buffer): void {
    u.failures = 0
    if (a.done) return
    a.done = true
    const f = a.fwd
    f.outstanding--
    if (f.finished) return
    const rcode = (msg[3] as number) & 0x0f
    const aa = ((msg[2] as number) & 0x04) !== 0
    const accepted = rcode === RCODE_NOERROR || (rcode === RCODE_NXDOMAIN && aa)
    if (accepted) {
      this.finish(f, msg, u.server, a)
      return
    }
    f.last = msg
    f.lastFrom = u.server
    if (!this.launchNext(f) && f.outstanding === 0) this.finish(f, f.last, f.lastFrom)
  }

  private attemptFailed(a: Attempt): void {
    if (a.done) return
    a.done = true
    if (!a.counted) {
      a.counted = true
      this.noteFailure(a.up)
    }
    const f = a.fwd
    f.outstanding--
    if (f.finished) return
    if (!this.launchNext(f) && f.outstanding === 0) this.finish(f, f.last, f.lastFrom)
  }

  private noteFailure(u: Upstream): void {
    u.failures++
    if (u.failures === this.config.failThreshold) {
      u.lastProbeAt = Date.now()
      this.log('upstream %s:%d stopped answering, skipping it until a probe succeeds', u.server.address, u.port)
    }
  }

  private finish(f: Forward, reply: Buffer | undefined, from: UpstreamServer | undefined, winner?: Attempt): void {
    if (f.finished) return
    f.finished = true
    this.active--
    if (f.timer !== undefined) clearTimeout(f.timer)
    f.timer = undefined
    for (const a of f.attempts) {
      if (a.done) continue
      if (a.tcp !== undefined) {
        a.done = true
        a.tcp.destroy()
        a.tcp = undefined
      }
      // an earlier query still unanswered when a later one won: count it against its server now
      // (a late reply still revives the server; the attempt stays registered until it expires)
      if (winner !== undefined && a.sentAt <= winner.sentAt && !a.counted && a.up !== winner.up) {
        a.counted = true
        this.noteFailure(a.up)
      }
    }
    if (reply === undefined) {
      this.counters.unanswered++
      f.done(undefined, undefined)
      return
    }
    reply[0] = f.clientId >> 8
    reply[1] = f.clientId & 0xff
    f.done(reply, from)
  }

  private drain(u: Upstream, ch: Channel): void {
    ch.draining = true
    if (u.channel === ch) u.channel = undefined
    if (ch.pending.size === 0) ch.close()
    else u.draining.add(ch)
  }

  private retire(u: Upstream): void {
    const channels = [...u.draining]
    if (u.channel !== undefined) channels.push(u.channel)
    u.channel = undefined
    u.draining.clear()
    for (const ch of channels) {
      const pending = [...ch.pending.values()]
      ch.pending.clear()
      ch.close()
      for (const a of pending) {
        a.counted = true
        this.attemptFailed(a)
      }
    }
  }

  private ensureMaintenance(): void {
    if (this.maintenance !== undefined || this.closed) return
    const period = Math.max(50, Math.min(1000, Math.floor(this.config.forwardTimeoutMs / 4)))
    this.maintenance = setInterval(() => this.maintain(), period)
    this.maintenance.unref()
  }

  /** Expires unanswered upstream queries (health), closes idle and drained sockets. */
  private maintain(): void {
    const now = Date.now()
    let open = 0
    for (const u of this.upstreams) {
      for (const ch of [...u.draining, ...(u.channel !== undefined ? [u.channel] : [])]) {
        for (const [id, a] of ch.pending) {
          if (now - a.sentAt < this.config.forwardTimeoutMs) continue
          ch.pending.delete(id)
          if (!a.counted) {
            a.counted = true
            this.noteFailure(u)
          }
          this.attemptFailed(a)
        }
        if (ch.pending.size === 0) {
          if (ch.draining) {
            u.draining.delete(ch)
            ch.close()
            continue
          }
          if (now - ch.idleSince >= this.config.idleSocketMs) {
            u.channel = undefined
            ch.close()
            continue
          }
        }
        open++
      }
    }
    if (open === 0 && this.maintenance !== undefined) {
      clearInterval(this.maintenance)
      this.maintenance = undefined
    }
  }

  /** Unpredictable 16-bit query ids (crypto-random, drawn in batches). */
  private nextId(): number {
    let ids = this.ids
    if (ids === undefined || this.idPos >= ids.length) {
      ids ??= this.ids = Buffer.allocUnsafeSlow(256)
      randomFillSync(ids)
      this.idPos = 0
    }
    const id = ((ids[this.idPos] as number) << 8) | (ids[this.idPos + 1] as number)
    this.idPos += 2
    return id
  }
}

function errMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export const MAX_FORWARD_MESSAGE = MAX_TCP_MESSAGE
