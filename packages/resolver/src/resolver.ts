import type dgram from 'node:dgram'
import { closeSync } from 'node:fs'
import net from 'node:net'
import type { AddressInfo } from 'node:net'
import type { AbortOptions, ComponentLogger, Logger } from '@cnm/types'
import { InvalidResolverOptionError, ResolverListenError, ResolverStoppedError } from './errors.js'
import { FORWARD, SERVFAIL_ENTRY, encodeLocal, resolveLocal } from './internal/answers.js'
import type { Entry, LocalEntry, ResolveConfig } from './internal/answers.js'
import { Forwarder } from './internal/forwarder.js'
import type { ForwarderCounters, UpstreamHealth } from './internal/forwarder.js'
import {
  CLASS_IN,
  MAX_TCP_MESSAGE,
  PARSE_FORMERR,
  PARSE_NOTIMP,
  PARSE_OK,
  ParsedQuery,
  RCODE_BADVERS,
  RCODE_FORMERR,
  RCODE_NOTIMP,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_AAAA,
  TYPE_ANY,
  answerAddresses,
  emptyReply,
  formerrReply,
  keyToName,
  parseQuery,
} from './internal/wire.js'
import type { DnsFastPath, DnsFastPathResponder, DnsFastPathStats } from './fast-path.js'
import type { DnsRecordSource } from './record-source.js'
import { createUdpSocket, hostSocketFactory } from './sockets.js'
import type { ForwardSocketFactory, UpstreamServer } from './sockets.js'

export type { UpstreamHealth } from './internal/forwarder.js'

/** Where a listener comes from: an adopted descriptor (bound; tcp: listening) or an address to bind. */
export type ListenSpec =
  { readonly fd: number; readonly type?: 'udp4' | 'udp6' | 'tcp' } | { readonly address: string; readonly port: number }

export interface ResolverListen {
  /** UDP listener. */
  readonly udp?: ListenSpec
  /** TCP listener (clients retry here after a truncated UDP reply). */
  readonly tcp?: ListenSpec
}

export interface ResolverInit {
  /**
   * Upstream servers for names that are not local, in order (sandbox-dns.md §2.3: at most 3 used by
   * libnetwork; any number works). Empty = no forwarding: misses get SERVFAIL.
   * @default []
   */
  upstreams?: readonly UpstreamServer[]
  /**
   * Search domains of the sandbox: `<local name>.<search domain>` answers like `<local name>`.
   * @default []
   */
  searchDomains?: readonly string[]
  /**
   * The user set `ndots` in the container: A/AAAA misses for single-label names get NOERROR with no
   * answers instead of being forwarded (sandbox-dns.md §2.2).
   * @default false
   */
  ndotsSet?: boolean
  /** TTL of local answers, seconds. @default 600 */
  ttl?: number
  /** Ask the next upstream when the current one has not answered after this long. @default 75 */
  hedgeDelayMs?: number
  /** Give up on a forwarded query after this long (no reply is sent, as libnetwork). @default 4000 */
  forwardTimeoutMs?: number
  /** Forwarded queries in flight at once; beyond it `overloadAction` applies. @default 1024 */
  maxConcurrentForwards?: number
  /** What a query that would exceed `maxConcurrentForwards` gets. @default 'servfail' */
  overloadAction?: 'servfail' | 'drop'
  /** Consecutive unanswered queries after which an upstream is skipped until a probe succeeds. @default 3 */
  upstreamFailThreshold?: number
  /** How often a skipped upstream gets a copy of a real query as a probe. @default 1000 */
  probeIntervalMs?: number
  /** UDP payload size advertised in our EDNS OPT records. @default 1232 */
  ednsUdpSize?: number
  /** Largest UDP reply sent, whatever the client's EDNS size says. @default 4096 */
  maxUdpReplyBytes?: number
  /** Encoded answers cached per query type class (A, AAAA, other). @default 256 */
  cacheEntries?: number
  /** Idle TCP connections are closed after this long. @default 10000 */
  tcpIdleTimeoutMs?: number
  /** Concurrent TCP connections; more are closed at once. @default 64 */
  maxTcpConnections?: number
  /** A forwarding socket unused this long is closed. @default 10000 */
  idleSocketMs?: number
  /** A forwarding socket is replaced (new source port) after this many queries. @default 10000 */
  socketMaxQueries?: number
  /** SO_RCVBUF of the UDP listener (the kernel caps it at net.core.rmem_max). @default kernel default */
  udpRecvBufferBytes?: number
}

export interface ResolverComponents {
  logger: ComponentLogger
  /** Local names of the sandbox. */
  records: DnsRecordSource
  /** Listening sockets. */
  listen: ResolverListen
  /** Forwarding sockets. @default sockets in this process's namespace (`hostSocketFactory()`) */
  sockets?: ForwardSocketFactory
  /**
   * Native fast path for the UDP listener (`DnsResponderEngine` of `@cnm/osl`): cached local answers
   * are sent by native worker threads in batches, everything else still comes here. Used when the
   * record source implements `onChange` (NetworkRecords/SandboxRecords do). @default none: node:dgram
   */
  fastPath?: DnsFastPath
}

export const DEFAULT_RESOLVER_INIT = Object.freeze({
  upstreams: Object.freeze([]) as readonly UpstreamServer[],
  searchDomains: Object.freeze([]) as readonly string[],
  ndotsSet: false,
  ttl: 600,
  hedgeDelayMs: 75,
  forwardTimeoutMs: 4000,
  maxConcurrentForwards: 1024,
  overloadAction: 'servfail' as 'servfail' | 'drop',
  upstreamFailThreshold: 3,
  probeIntervalMs: 1000,
  ednsUdpSize: 1232,
  maxUdpReplyBytes: 4096,
  cacheEntries: 256,
  tcpIdleTimeoutMs: 10_000,
  maxTcpConnections: 64,
  idleSocketMs: 10_000,
  socketMaxQueries: 10_000,
  udpRecvBufferBytes: 0,
})

type Config = Omit<typeof DEFAULT_RESOLVER_INIT, 'upstreams' | 'searchDomains'>

export interface ResolverStats {
  /** Messages received (UDP datagrams + TCP frames). */
  queries: number
  /** Answered from local records (including NODATA/NXDOMAIN decided locally). */
  local: number
  /** Answered from the cache of encoded answers (subset of `local` + forward decisions). */
  cacheHits: number
  /** Replies truncated (TC) to fit the UDP size. */
  truncated: number
  /** Messages dropped without reply (too short, responses, no question). */
  dropped: number
  /** FORMERR / NOTIMP / BADVERS replies. */
  rejected: number
  /** Local SERVFAIL (no upstream, overload, record source failure). */
  servfail: number
  /** Unexpected internal errors (logged). */
  errors: number
  forwarded: number
  upstreamQueries: number
  hedged: number
  probes: number
  overloaded: number
  unanswered: number
  /** Upstream replies ignored (wrong id/question/source). */
  spoofed: number
  /** Forwarding sockets opened, failed opens, slowest open (ms). */
  socketOpens: number
  socketOpenFailures: number
  maxSocketOpenMs: number
  tcpConnections: number
  /** Queries answered by the native fast path (included in `queries`, `local` and `cacheHits`). */
  fastPathAnswered: number
}

const UDP = 0
const TCP = 1
const CALL = 2
const NATIVE = 3

interface NativeClient {
  address: string
  port: number
}

interface Collector {
  resolve(reply: Buffer | undefined): void
}

type Ctx = dgram.RemoteInfo | net.Socket | Collector | NativeClient

/**
 * The embedded DNS server of one sandbox: answers local names from a `DnsRecordSource` over UDP and
 * TCP, forwards everything else to upstream servers. Start it with listeners (adopted descriptors or
 * addresses); one daemon process can run many.
 */
export class Resolver {
  private readonly log: Logger
  private readonly config: Config
  private readonly records: DnsRecordSource
  private readonly listen: ResolverListen
  private readonly forwarder: Forwarder
  private resolveConfig: ResolveConfig
  private state: 'new' | 'starting' | 'started' | 'stopped' = 'new'
  private udp: dgram.Socket | undefined
  private tcp: net.Server | undefined
  private readonly fastPath: DnsFastPath | undefined
  private native: DnsFastPathResponder | undefined
  private nativeFinal: DnsFastPathStats | undefined
  private unsubscribe: (() => void) | undefined
  private readonly tcpConns = new Set<net.Socket>()
  private readonly q = new ParsedQuery()
  private readonly scratch = Buffer.allocUnsafeSlow(256)
  private gen = Number.NaN
  private readonly cacheA = new Map<string, Entry>()
  private readonly cacheAAAA = new Map<string, Entry>()
  private readonly cacheOther = new Map<string, Entry>()
  private readonly counters = {
    queries: 0,
    local: 0,
    cacheHits: 0,
    truncated: 0,
    dropped: 0,
    rejected: 0,
    servfail: 0,
    errors: 0,
    tcpConnections: 0,
  }
  private readonly onUdpMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    this.process(msg, UDP, rinfo)
  }
  private readonly onTcpConnection = (sock: net.Socket): void => {
    this.acceptTcp(sock)
  }
  private readonly onNativeMiss = (msg: Buffer, address: string, port: number): void => {
    this.process(msg, NATIVE, { address, port })
  }

  constructor(init: ResolverInit, components: ResolverComponents) {
    const cfg = validateInit(init)
    if (components === null || typeof components !== 'object') {
      throw new InvalidResolverOptionError('components: required')
    }
    const rec = components.records as Partial<DnsRecordSource> | undefined
    if (
      rec === undefined ||
      typeof rec.lookupName !== 'function' ||
      typeof rec.lookupAddress !== 'function' ||
      typeof rec.lookupService !== 'function'
    ) {
      throw new InvalidResolverOptionError('components.records: must implement DnsRecordSource')
    }
    const listen = components.listen as ResolverListen | undefined
    if (listen === undefined || (listen.udp === undefined && listen.tcp === undefined)) {
      throw new InvalidResolverOptionError('components.listen: give a udp and/or tcp listener')
    }
    for (const [k, spec] of Object.entries(listen)) {
      if (spec !== undefined) validateListen(`components.listen.${k}`, spec as ListenSpec)
    }
    this.log = components.logger.forComponent('cnm:resolver')
    this.records = components.records
    const fp = components.fastPath as Partial<DnsFastPath> | undefined
    if (fp !== undefined && (fp === null || typeof fp.attach !== 'function')) {
      throw new InvalidResolverOptionError('components.fastPath: must have attach()')
    }
    this.fastPath = components.fastPath
    this.listen = listen
    const { upstreams, searchDomains, ...rest } = cfg
    this.config = rest
    this.forwarder = new Forwarder(
      {
        hedgeDelayMs: cfg.hedgeDelayMs,
        forwardTimeoutMs: cfg.forwardTimeoutMs,
        maxConcurrentForwards: cfg.maxConcurrentForwards,
        failThreshold: cfg.upstreamFailThreshold,
        probeIntervalMs: cfg.probeIntervalMs,
        idleSocketMs: cfg.idleSocketMs,
        socketMaxQueries: cfg.socketMaxQueries,
        openTimeoutMs: Math.max(1, Math.min(2000, cfg.forwardTimeoutMs - 1)),
      },
      components.sockets ?? hostSocketFactory(),
      this.log,
    )
    this.forwarder.setUpstreams(upstreams)
    this.resolveConfig = {
      ttl: cfg.ttl,
      searchDomains: normalizeDomains(searchDomains),
      ndotsSet: cfg.ndotsSet,
      proxy: upstreams.length > 0,
    }
  }

  /**
   * Binds or adopts the listeners. Idempotent; a stopped resolver cannot start again. Descriptors
   * given in `listen` belong to the resolver: they are closed on stop, and when start fails.
   */
  async start(options: AbortOptions = {}): Promise<void> {
    if (this.state === 'started' || this.state === 'starting') return
    if (this.state === 'stopped') throw new ResolverStoppedError()
    this.state = 'starting'
    const undo: Array<() => void> = []
    const pending = new Set<ListenSpec>([this.listen.udp, this.listen.tcp].filter((x) => x !== undefined))
    try {
      options.signal?.throwIfAborted()
      const useNative =
        this.listen.udp !== undefined && this.fastPath !== undefined && typeof this.records.onChange === 'function'
      if (this.fastPath !== undefined && !useNative) {
        this.log('record source has no onChange(): native fast path not used')
      }
      if (this.listen.udp !== undefined && useNative && this.fastPath !== undefined) {
        const spec = this.listen.udp
        pending.delete(spec)
        options.signal?.throwIfAborted()
        const unsubscribe = (this.records.onChange as (l: () => void) => () => void).call(this.records, () =>
          this.native?.clearAnswers(),
        )
        undo.push(unsubscribe)
        this.unsubscribe = unsubscribe
        const responder = await this.fastPath.attach({
          ...('fd' in spec ? { fds: [spec.fd] } : { bind: { address: spec.address, port: spec.port } }),
          onMiss: this.onNativeMiss,
          ednsUdpSize: this.config.ednsUdpSize,
          maxUdpReplyBytes: this.config.maxUdpReplyBytes,
          maxEntries: Math.max(16, this.config.cacheEntries * 3),
          recvBufferBytes: this.config.udpRecvBufferBytes,
        })
        undo.push(() => responder.close())
        this.native = responder
      } else if (this.listen.udp !== undefined) {
        pending.delete(this.listen.udp)
        const sock = await openUdp(this.listen.udp, options.signal)
        undo.push(() => sock.close())
        if (this.config.udpRecvBufferBytes > 0) sock.setRecvBufferSize(this.config.udpRecvBufferBytes)
        sock.on('message', this.onUdpMessage)
        sock.on('error', (err: Error) => this.log.error('udp listener error: %s', err.message))
        this.udp = sock
      }
      if (this.listen.tcp !== undefined) {
        pending.delete(this.listen.tcp)
        const server = await openTcp(this.listen.tcp, this.onTcpConnection, options.signal)
        undo.push(() => server.close())
        server.on('error', (err: Error) => this.log.error('tcp listener error: %s', err.message))
        this.tcp = server
      }
    } catch (err) {
      for (const u of undo.reverse()) u()
      for (const spec of pending) closeSpecFd(spec)
      this.udp = undefined
      this.tcp = undefined
      this.native = undefined
      this.unsubscribe = undefined
      this.state = 'stopped'
      if (err instanceof ResolverListenError) throw err
      throw new ResolverListenError(`cannot start the resolver: ${(err as Error).message}`, { cause: err })
    }
    if (this.state !== 'starting') {
      // stopped while starting
      for (const u of undo.reverse()) u()
      this.udp = undefined
      this.tcp = undefined
      this.native = undefined
      this.unsubscribe = undefined
      throw new ResolverStoppedError('the resolver was stopped while starting')
    }
    this.state = 'started'
    const a = this.addresses()
    this.log('started udp=%s%s tcp=%s', fmt(a.udp), this.native !== undefined ? ' (native fast path)' : '', fmt(a.tcp))
  }

  /** Closes listeners, client connections and forwarding sockets. Idempotent. */
  async stop(options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    if (this.state === 'stopped') return
    const wasRunning = this.state !== 'new'
    if (!wasRunning) {
      // never started: the descriptors we were given are still ours to close
      if (this.listen.udp !== undefined) closeSpecFd(this.listen.udp)
      if (this.listen.tcp !== undefined) closeSpecFd(this.listen.tcp)
    }
    this.state = 'stopped'
    this.forwarder.close()
    const waits: Array<Promise<void>> = []
    const udp = this.udp
    if (udp !== undefined) waits.push(new Promise<void>((resolve) => udp.close(() => resolve())))
    const tcp = this.tcp
    if (tcp !== undefined) waits.push(new Promise<void>((resolve) => tcp.close(() => resolve())))
    for (const c of this.tcpConns) c.destroy()
    this.tcpConns.clear()
    this.udp = undefined
    this.tcp = undefined
    this.unsubscribe?.()
    this.unsubscribe = undefined
    const native = this.native
    if (native !== undefined) {
      this.nativeFinal = native.stats()
      native.close()
      this.native = undefined
    }
    this.clearCache()
    await Promise.all(waits)
    if (wasRunning) this.log('stopped')
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }

  /** Bound addresses of the listeners (after start). */
  addresses(): { udp?: AddressInfo; tcp?: AddressInfo } {
    const out: { udp?: AddressInfo; tcp?: AddressInfo } = {}
    if (this.udp !== undefined) out.udp = this.udp.address()
    const n = this.native
    if (n !== undefined) out.udp = { address: n.address, family: n.family === 6 ? 'IPv6' : 'IPv4', port: n.port }
    const t = this.tcp?.address()
    if (t !== undefined && t !== null && typeof t === 'object') out.tcp = t
    return out
  }

  /** Changes upstreams, search domains or ndots; cached answers are dropped. */
  reconfigure(changes: Pick<ResolverInit, 'upstreams' | 'searchDomains' | 'ndotsSet'>): void {
    const cfg = validateInit({ ...changes })
    if (changes.upstreams !== undefined) this.forwarder.setUpstreams(cfg.upstreams)
    this.resolveConfig = {
      ttl: this.config.ttl,
      searchDomains:
        changes.searchDomains !== undefined ? normalizeDomains(cfg.searchDomains) : this.resolveConfig.searchDomains,
      ndotsSet: changes.ndotsSet ?? this.resolveConfig.ndotsSet,
      proxy: this.forwarder.size > 0,
    }
    this.clearCache()
  }

  /** Drops cached answers (not needed when the record source bumps `generation`). */
  invalidate(): void {
    this.clearCache()
  }

  /** Health of each upstream as the forwarder sees it. */
  upstreamHealth(): UpstreamHealth[] {
    return this.forwarder.health()
  }

  stats(): ResolverStats {
    const f: ForwarderCounters = this.forwarder.counters
    const n = this.native?.stats() ?? this.nativeFinal
    const c = this.counters
    if (n === undefined) return { ...c, ...f, fastPathAnswered: 0 }
    return {
      ...c,
      ...f,
      queries: c.queries + n.answered + n.dropped,
      local: c.local + n.answered,
      cacheHits: c.cacheHits + n.answered,
      dropped: c.dropped + n.dropped,
      fastPathAnswered: n.answered,
    }
  }

  /**
   * Answers one DNS message as if it came over `transport` (no socket involved): resolves the reply
   * (`undefined` when the message gets none). For embedding the resolver in other transports.
   */
  async handle(
    message: Uint8Array,
    options: AbortOptions & { transport?: 'udp' | 'tcp' } = {},
  ): Promise<Buffer | undefined> {
    options.signal?.throwIfAborted()
    if (this.state === 'stopped') throw new ResolverStoppedError()
    return await new Promise<Buffer | undefined>((resolve) => {
      const msg = Buffer.from(message)
      this.process(msg, CALL, { resolve }, options.transport === 'tcp')
    })
  }

  private clearCache(): void {
    this.cacheA.clear()
    this.cacheAAAA.clear()
    this.cacheOther.clear()
    this.native?.clearAnswers()
  }

  /** Hands a computed local answer to the native fast path (it answers the same query natively from now on). */
  private toNative(native: DnsFastPathResponder, key: string, qtype: number, e: LocalEntry): void {
    if (e.rcode === RCODE_SERVFAIL) return
    let offsets: Uint16Array | undefined
    if (e.rotate) {
      offsets = new Uint16Array(e.answers.length + 1)
      let o = 0
      e.answers.forEach((a, i) => {
        offsets![i] = o
        o += a.length
      })
      offsets[e.answers.length] = o
      if (o !== e.body.length || o > 0xffff) return
    }
    const answer = { rcode: e.rcode, ancount: e.ancount, arcount: e.arcount, body: e.body }
    native.setAnswer(
      Buffer.from(key, 'latin1'),
      qtype,
      offsets === undefined ? answer : { ...answer, rotateOffsets: offsets },
    )
  }

  /** The hot path: parse, decide (cached), reply or forward. Never throws. */
  private process(msg: Buffer, transport: number, ctx: Ctx, callOverTcp = false): void {
    const c = this.counters
    c.queries++
    try {
      const q = this.q
      const st = parseQuery(msg, q, this.scratch)
      if (st !== PARSE_OK) {
        this.reject(st, msg, q, transport, ctx)
        return
      }
      if (q.ednsVersion !== 0) {
        c.rejected++
        this.send(emptyReply(msg, q, RCODE_BADVERS, this.config.ednsUdpSize), transport, ctx)
        return
      }
      const overTcp = transport === TCP || callOverTcp
      const limit = overTcp ? MAX_TCP_MESSAGE : q.edns ? Math.min(q.udpSize, this.config.maxUdpReplyBytes) : 512
      const e = this.decide(q)
      if (e.kind === 'local') {
        c.local++
        if (e.rcode === RCODE_SERVFAIL) c.servfail++
        const out = encodeLocal(msg, q, e, limit, !overTcp, this.config.ednsUdpSize)
        if ((out[2] as number) & 0x02) c.truncated++
        this.send(out, transport, ctx)
        return
      }
      this.forward(msg, q, transport, ctx, overTcp, limit)
    } catch (err) {
      c.errors++
      this.log.error(
        'unexpected error handling a query: %s',
        err instanceof Error ? (err.stack ?? err.message) : String(err),
      )
      if (transport === CALL) (ctx as Collector).resolve(undefined)
    }
  }

  private decide(q: ParsedQuery): Entry {
    const src = this.records
    const g = src.generation
    if (g !== this.gen) {
      this.clearCache()
      this.gen = g
    }
    if (q.qclass !== CLASS_IN && q.qclass !== TYPE_ANY) {
      return this.resolveConfig.proxy ? FORWARD : SERVFAIL_ENTRY
    }
    const t = q.qtype
    let map: Map<string, Entry>
    let key: string
    if (t === TYPE_A) {
      map = this.cacheA
      key = q.key
    } else if (t === TYPE_AAAA) {
      map = this.cacheAAAA
      key = q.key
    } else {
      map = this.cacheOther
      key = `${q.key}/${t}`
    }
    const hit = map.get(key)
    if (hit !== undefined) {
      this.counters.cacheHits++
      return hit
    }
    const name = keyToName(q.key)
    let e: Entry
    if (name === undefined) {
      e = this.resolveConfig.proxy ? FORWARD : SERVFAIL_ENTRY
    } else {
      try {
        e = resolveLocal(src, name, t, this.resolveConfig)
      } catch (err) {
        this.log.error('record source failed for %s: %s', name, err instanceof Error ? err.message : String(err))
        return SERVFAIL_ENTRY // not cached
      }
    }
    if (map.size >= this.config.cacheEntries) {
      const oldest = map.keys().next()
      if (oldest.done !== true) map.delete(oldest.value)
    }
    map.set(key, e)
    const native = this.native
    if (native !== undefined && e.kind === 'local' && this.config.cacheEntries > 0) this.toNative(native, q.key, t, e)
    return e
  }

  private forward(msg: Buffer, q: ParsedQuery, transport: number, ctx: Ctx, overTcp: boolean, limit: number): void {
    const questionEnd = q.questionEnd
    const qtype = q.qtype
    const report = this.records.reportExternal !== undefined && (qtype === TYPE_A || qtype === TYPE_AAAA)
    const name = report ? keyToName(q.key) : undefined
    const ok = this.forwarder.forward(msg, questionEnd, overTcp, (reply) => {
      if (reply === undefined) {
        if (transport === CALL) (ctx as Collector).resolve(undefined)
        return
      }
      let out = reply
      if (!overTcp && reply.length > limit) out = truncateReply(reply, questionEnd)
      if (out !== reply) this.counters.truncated++
      this.send(out, transport, ctx)
      if (name !== undefined && ((reply[3] as number) & 0x0f) === 0) {
        const addrs = answerAddresses(reply)
        if (addrs.length > 0) {
          try {
            this.records.reportExternal?.(name, addrs)
          } catch (err) {
            this.log.error('reportExternal failed for %s: %s', name, err instanceof Error ? err.message : String(err))
          }
        }
      }
    })
    if (ok) return
    if (this.forwarder.size === 0) {
      this.counters.servfail++
      this.send(emptyReply(msg, q, RCODE_SERVFAIL, this.config.ednsUdpSize), transport, ctx)
      return
    }
    if (this.config.overloadAction === 'servfail') {
      this.counters.servfail++
      this.send(emptyReply(msg, q, RCODE_SERVFAIL, this.config.ednsUdpSize), transport, ctx)
    } else {
      this.counters.dropped++
      if (transport === CALL) (ctx as Collector).resolve(undefined)
    }
  }

  private reject(st: number, msg: Buffer, q: ParsedQuery, transport: number, ctx: Ctx): void {
    if (st === PARSE_NOTIMP) {
      this.counters.rejected++
      this.send(emptyReply(msg, q, RCODE_NOTIMP, this.config.ednsUdpSize), transport, ctx)
      return
    }
    if (st === PARSE_FORMERR) {
      this.counters.rejected++
      q.edns = false
      this.send(
        q.questionEnd > 0 ? emptyReply(msg, q, RCODE_FORMERR, this.config.ednsUdpSize) : formerrReply(msg),
        transport,
        ctx,
      )
      return
    }
    this.counters.dropped++
    if (transport === CALL) (ctx as Collector).resolve(undefined)
  }

  private send(out: Buffer, transport: number, ctx: Ctx): void {
    if (transport === NATIVE) {
      const r = ctx as NativeClient
      if (this.state === 'started') this.native?.send(out, r.address, r.port)
      return
    }
    if (transport === UDP) {
      const r = ctx as dgram.RemoteInfo
      const sock = this.udp
      if (sock !== undefined && this.state === 'started') sock.send(out, r.port, r.address)
      return
    }
    if (transport === TCP) {
      const s = ctx as net.Socket
      if (s.destroyed || !s.writable) return
      const frame = Buffer.allocUnsafe(out.length + 2)
      frame.writeUInt16BE(out.length, 0)
      out.copy(frame, 2)
      s.write(frame)
      return
    }
    ;(ctx as Collector).resolve(out)
  }

  private acceptTcp(sock: net.Socket): void {
    if (this.state !== 'started' || this.tcpConns.size >= this.config.maxTcpConnections) {
      sock.destroy()
      return
    }
    this.counters.tcpConnections++
    this.tcpConns.add(sock)
    sock.setNoDelay(true)
    sock.setTimeout(this.config.tcpIdleTimeoutMs, () => sock.destroy())
    let buf: Buffer | undefined
    sock.on('data', (chunk: Buffer) => {
      buf = buf === undefined ? chunk : Buffer.concat([buf, chunk])
      while (buf !== undefined && buf.length >= 2) {
        const len = buf.readUInt16BE(0)
        if (buf.length < 2 + len) break
        const msg = buf.subarray(2, 2 + len)
        buf = buf.length === 2 + len ? undefined : buf.subarray(2 + len)
        this.process(msg, TCP, sock)
      }
    })
    sock.on('error', (err: Error) => this.log.trace('tcp client error: %s', err.message))
    sock.on('close', () => this.tcpConns.delete(sock))
  }
}

/** Two-stage factory: `resolver(init)(components)`. */
export function resolver(init: ResolverInit = {}): (components: ResolverComponents) => Resolver {
  validateInit(init)
  return (components) => new Resolver(init, components)
}

/** A reply cut to header + question with TC set (a forwarded reply too large for the client's UDP size). */
function truncateReply(reply: Buffer, questionEnd: number): Buffer {
  const out = Buffer.from(reply.subarray(0, Math.min(questionEnd, reply.length)))
  out[2] = (out[2] as number) | 0x02
  out.fill(0, 6, 12)
  return out
}

function closeSpecFd(spec: ListenSpec): void {
  if (!('fd' in spec)) return
  try {
    closeSync(spec.fd)
  } catch {
    // not open (any more): nothing to release
  }
}

function fmt(a: AddressInfo | undefined): string {
  return a === undefined ? '-' : `${a.address}:${a.port}`
}

function normalizeDomains(list: readonly string[]): string[] {
  const out: string[] = []
  for (const d of list) {
    const n = d.toLowerCase().replace(/\.+$/, '')
    if (n.length > 0 && !out.includes(n)) out.push(n)
  }
  return out
}

function validateListen(field: string, spec: ListenSpec): void {
  if (spec === null || typeof spec !== 'object') throw new InvalidResolverOptionError(`${field}: must be an object`)
  if ('fd' in spec) {
    if (!Number.isInteger(spec.fd) || spec.fd < 0)
      throw new InvalidResolverOptionError(`${field}.fd: must be a descriptor number`)
    return
  }
  if (typeof spec.address !== 'string' || net.isIP(spec.address) === 0) {
    throw new InvalidResolverOptionError(`${field}.address: must be an IP address`)
  }
  if (!Number.isInteger(spec.port) || spec.port < 0 || spec.port > 65535) {
    throw new InvalidResolverOptionError(`${field}.port: must be an integer in 0..65535`)
  }
}

function validateInit(init: ResolverInit): typeof DEFAULT_RESOLVER_INIT {
  if (init === null || typeof init !== 'object') throw new InvalidResolverOptionError('init: must be an object')
  const defined = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined))
  const cfg = { ...DEFAULT_RESOLVER_INIT, ...defined } as typeof DEFAULT_RESOLVER_INIT
  const int = (k: keyof typeof DEFAULT_RESOLVER_INIT, min: number, max: number): void => {
    const v = cfg[k] as unknown
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
      throw new InvalidResolverOptionError(`${k}: must be an integer in ${min}..${max}, got ${String(v)}`)
    }
  }
  int('ttl', 0, 2 ** 31 - 1)
  int('hedgeDelayMs', 1, 60_000)
  int('forwardTimeoutMs', 1, 600_000)
  int('maxConcurrentForwards', 1, 60_000)
  int('upstreamFailThreshold', 1, 1000)
  int('probeIntervalMs', 1, 3_600_000)
  int('ednsUdpSize', 512, 65535)
  int('maxUdpReplyBytes', 512, 65535)
  int('cacheEntries', 0, 1_000_000)
  int('tcpIdleTimeoutMs', 1, 3_600_000)
  int('maxTcpConnections', 0, 100_000)
  int('idleSocketMs', 1, 3_600_000)
  int('socketMaxQueries', 1, 1_000_000_000)
  int('udpRecvBufferBytes', 0, 2 ** 30)
  if (typeof cfg.ndotsSet !== 'boolean') throw new InvalidResolverOptionError('ndotsSet: must be a boolean')
  if (cfg.overloadAction !== 'servfail' && cfg.overloadAction !== 'drop') {
    throw new InvalidResolverOptionError(`overloadAction: must be 'servfail' or 'drop'`)
  }
  if (!Array.isArray(cfg.searchDomains) || cfg.searchDomains.some((d) => typeof d !== 'string')) {
    throw new InvalidResolverOptionError('searchDomains: must be an array of strings')
  }
  if (!Array.isArray(cfg.upstreams as unknown)) throw new InvalidResolverOptionError('upstreams: must be an array')
  cfg.upstreams.forEach((u, i) => {
    if (u === null || typeof u !== 'object' || typeof u.address !== 'string') {
      throw new InvalidResolverOptionError(`upstreams[${i}].address: required`)
    }
    const bare = u.address.split('%')[0] as string
    if (net.isIP(bare) === 0)
      throw new InvalidResolverOptionError(`upstreams[${i}].address: not an IP address: ${u.address}`)
    if (u.port !== undefined && (!Number.isInteger(u.port) || u.port < 1 || u.port > 65535)) {
      throw new InvalidResolverOptionError(`upstreams[${i}].port: must be an integer in 1..65535`)
    }
  })
  return cfg
}

async function openUdp(spec: ListenSpec, signal: AbortSignal | undefined): Promise<dgram.Socket> {
  signal?.throwIfAborted()
  let type: 'udp4' | 'udp6' = 'udp4'
  if ('fd' in spec) type = spec.type === 'udp6' ? 'udp6' : 'udp4'
  else type = net.isIPv6(spec.address) ? 'udp6' : 'udp4'
  const sock = createUdpSocket(type)
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      sock.close()
      reject(new ResolverListenError(`udp listener: ${err.message}`, { cause: err }))
    }
    sock.once('error', onError)
    const done = (): void => {
      sock.off('error', onError)
      resolve()
    }
    if ('fd' in spec) {
      try {
        sock.bind({ fd: spec.fd }, done)
      } catch (err) {
        // the handle did not take the descriptor: it is still ours
        closeSpecFd(spec)
        sock.off('error', onError)
        reject(new ResolverListenError(`udp listener: ${(err as Error).message}`, { cause: err }))
      }
    } else sock.bind({ address: spec.address, port: spec.port, exclusive: true }, done)
  })
  return sock
}

async function openTcp(
  spec: ListenSpec,
  onConnection: (s: net.Socket) => void,
  signal: AbortSignal | undefined,
): Promise<net.Server> {
  signal?.throwIfAborted()
  const server = net.createServer({ noDelay: true }, onConnection)
  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.close()
      reject(new ResolverListenError(`tcp listener: ${err.message}`, { cause: err }))
    }
    server.once('error', onError)
    const done = (): void => {
      server.off('error', onError)
      resolve()
    }
    if ('fd' in spec) {
      try {
        server.listen({ fd: spec.fd }, done)
      } catch (err) {
        // rejected before a handle took the descriptor (wrong type): it is still ours
        closeSpecFd(spec)
        server.off('error', onError)
        reject(new ResolverListenError(`tcp listener: ${(err as Error).message}`, { cause: err }))
      }
    } else server.listen({ host: spec.address, port: spec.port, exclusive: true }, done)
  })
  return server
}
