import { closeSync } from 'node:fs'
import { isIP } from 'node:net'
import { noopLogger, type ComponentLogger, type Logger } from '@cnm/types'
import { InvalidAddressError, InvalidOptionError, OslClosedError } from './errors.js'
import { loadNative, type NativeOps } from './native.js'
import { mapNativeError } from './socket.js'

/** The addon's responder calls (native/dns_responder.c). */
export interface ResponderNativeOps {
  responderEngine(threads: number, realtimePriority: number): unknown
  responderEngineClose(engine: unknown): void
  responderAttach(
    engine: unknown,
    fds: number[],
    family: 4 | 6,
    ednsUdpSize: number,
    maxUdpReplyBytes: number,
    maxEntries: number,
    recvBufferBytes: number,
    onMiss: (message: Buffer, address: string, port: number) => void,
  ): [id: number, port: number, family: 4 | 6, address: string]
  responderDetach(engine: unknown, id: number): void
  responderSet(
    engine: unknown,
    id: number,
    key: Buffer,
    rcode: number,
    ancount: number,
    arcount: number,
    body: Uint8Array,
    offsets: Uint16Array | null,
  ): boolean
  responderClear(engine: unknown, id: number): void
  responderSend(engine: unknown, id: number, data: Uint8Array, address: string, port: number): number
  responderStats(engine: unknown, id: number): number[] | undefined
}

export interface DnsResponderEngineInit {
  /**
   * Worker threads. Each socket of a responder is served by one thread (socket k by thread k % threads),
   * so more than one thread helps only with several sockets per port (`reusePort`). @default 1
   */
  threads?: number
  /**
   * 0: the worker threads run under the normal scheduler. 1..99: they run SCHED_FIFO at this priority,
   * so a query is answered as soon as it arrives even when the CPUs are busy with other work (lower
   * tail latency on a loaded host). Needs root or CAP_SYS_NICE. The kernel's RT throttling
   * (`kernel.sched_rt_runtime_us`, 95% by default) bounds what a flood of queries can take. @default 0
   */
  realtimePriority?: number
  /** Where the addon is loaded from. @default native/build/Release/cnm_osl.node of this package */
  nativeAddonPath?: string
}

export interface DnsResponderEngineComponents {
  logger?: ComponentLogger
  /** The addon (tests inject a fake). @default loaded from `nativeAddonPath` */
  native?: NativeOps & ResponderNativeOps
}

export const DEFAULT_DNS_RESPONDER_ENGINE_INIT = Object.freeze({ threads: 1, realtimePriority: 0 })

export interface DnsResponderOptions {
  /**
   * Bound UDP sockets to serve (from `openSocketInNetns`; several sharing a port need `reusePort`).
   * They belong to the responder from then on: `close()` closes them, and so does a failing attach.
   */
  fds?: readonly number[]
  /** Instead of `fds`: bind one socket here, in this process's namespace (port 0 = any). */
  bind?: { address: string; port: number }
  /**
   * Every datagram the table cannot answer, in arrival order, on the JS thread. Reply with `send()`.
   * Exceptions are logged, never thrown into the engine.
   */
  onMiss: (message: Buffer, address: string, port: number) => void
  /** UDP size advertised in the OPT record of EDNS replies. @default 1232 */
  ednsUdpSize?: number
  /** Largest UDP reply whatever the client's EDNS size; larger answers go to `onMiss`. @default 4096 */
  maxUdpReplyBytes?: number
  /** Table capacity; `setAnswer` returns false when it is full. @default 1024 */
  maxEntries?: number
  /** SO_RCVBUF of the sockets (0 = kernel default). @default 0 */
  recvBufferBytes?: number
}

/** A pre-encoded answer for one (name, type). Records use the compression pointer 0xc00c for the question name. */
export interface DnsTableAnswer {
  /** 4-bit rcode (NOERROR 0, NXDOMAIN 3, ...). */
  rcode: number
  ancount: number
  arcount: number
  /** Answer records followed by additional records, as they go after the question. */
  body: Uint8Array
  /**
   * Rotate the answers per reply (round robin from a random start): `ancount + 1` offsets into `body`
   * where each answer record starts (and the last ends). Needs `arcount` 0.
   */
  rotateOffsets?: Uint16Array
}

export interface DnsResponderStats {
  /** Datagrams received on the responder's sockets. */
  received: number
  /** Answered from the table by the worker thread. */
  answered: number
  /** Handed to `onMiss`. */
  missed: number
  /** Dropped: larger than 4 KiB, or the JS thread was too far behind. */
  dropped: number
  /** Replies the kernel refused (full socket buffer, unreachable client). */
  sendErrors: number
  /** Table entries now, and entries refused because the table was full. */
  entries: number
  rejectedEntries: number
}

/**
 * Native DNS fast path: worker threads that own UDP sockets (typically opened inside a sandbox with
 * `openSocketInNetns`) and answer queries whose question is in a per-responder table of pre-encoded
 * answers, with recvmmsg/sendmmsg batches and no JavaScript per datagram. Everything else (other
 * names, other opcodes, EDNS versions, malformed packets, answers that need truncation) goes to the
 * responder's `onMiss` on the JS thread. The caller (the resolver) fills the table and stays the
 * source of truth: it must clear the table whenever an answer could change.
 *
 * The reply to a query matched in the table is: the query's id, flags QR|RA plus RD and CD copied, the
 * entry's rcode, the question as the client spelled it, the entry's records, and an OPT record (our
 * `ednsUdpSize`) when the query had one. Only plain QUERYs with one IN question, no answer/authority
 * records, and at most one additional record (an EDNS version 0 OPT) are answered natively.
 */
export class DnsResponderEngine {
  private readonly native: NativeOps & ResponderNativeOps
  private readonly handle: unknown
  private readonly log: Logger
  private readonly responders = new Set<DnsResponder>()
  private closed = false
  readonly threads: number

  constructor(init: DnsResponderEngineInit = {}, components: DnsResponderEngineComponents = {}) {
    const cfg = { ...DEFAULT_DNS_RESPONDER_ENGINE_INIT, ...stripUndefined(init) }
    if (!Number.isInteger(cfg.threads) || cfg.threads < 1 || cfg.threads > 8) {
      throw new InvalidOptionError(`threads: must be an integer in 1..8, got ${String(cfg.threads)}`)
    }
    if (!Number.isInteger(cfg.realtimePriority) || cfg.realtimePriority < 0 || cfg.realtimePriority > 99) {
      throw new InvalidOptionError(`realtimePriority: must be an integer in 0..99, got ${String(cfg.realtimePriority)}`)
    }
    this.threads = cfg.threads
    this.native = components.native ?? (loadNative(init.nativeAddonPath) as NativeOps & ResponderNativeOps)
    this.log = (components.logger ?? noopLogger()).forComponent('cnm:osl:dns-responder')
    if (typeof this.native.responderEngine !== 'function') {
      throw new InvalidOptionError('native: the addon has no DNS responder (rebuild @cnm/osl)')
    }
    try {
      this.handle = this.native.responderEngine(cfg.threads, cfg.realtimePriority)
    } catch (err) {
      throw mapNativeError(err, 'self', 'start DNS responder threads')
    }
  }

  /** Starts serving sockets. Throws InvalidOptionError, InvalidAddressError, OslClosedError, KernelError. */
  async attach(options: DnsResponderOptions): Promise<DnsResponder> {
    // descriptors are ours to close until the addon takes them (it closes them itself when attach fails)
    let owned: readonly number[] = Array.isArray(options?.fds) ? options.fds : []
    try {
      if (this.closed) throw new OslClosedError('the DNS responder engine is closed')
      if (options === null || typeof options !== 'object') throw new InvalidOptionError('options: required')
      if (typeof options.onMiss !== 'function') throw new InvalidOptionError('onMiss: must be a function')
      const int = (name: string, v: number | undefined, d: number, min: number, max: number): number => {
        const x = v ?? d
        if (!Number.isInteger(x) || x < min || x > max) {
          throw new InvalidOptionError(`${name}: must be an integer in ${min}..${max}, got ${String(x)}`)
        }
        return x
      }
      const edns = int('ednsUdpSize', options.ednsUdpSize, 1232, 512, 65535)
      const maxUdp = int('maxUdpReplyBytes', options.maxUdpReplyBytes, 4096, 512, 65535)
      const maxEntries = int('maxEntries', options.maxEntries, 1024, 0, 1_000_000)
      const rcvbuf = int('recvBufferBytes', options.recvBufferBytes, 0, 0, 2 ** 30)
      let fds: number[]
      if (options.fds !== undefined) {
        if (options.bind !== undefined) throw new InvalidOptionError('give fds or bind, not both')
        if (!Array.isArray(options.fds as unknown) || options.fds.length < 1 || options.fds.length > 16) {
          throw new InvalidOptionError('fds: 1..16 descriptors')
        }
        for (const fd of options.fds) {
          if (!Number.isInteger(fd) || fd < 0) throw new InvalidOptionError(`fds: not a descriptor: ${String(fd)}`)
        }
        fds = [...options.fds]
      } else if (options.bind !== undefined) {
        const { address, port } = options.bind
        const family = isIP(address)
        if (family === 0) throw new InvalidAddressError(`bind.address: not an IP address: ${JSON.stringify(address)}`)
        int('bind.port', port, 0, 0, 65535)
        try {
          const s = await this.native.openSocket(null, family as 4 | 6, 0, address, port, 0, 0)
          fds = [s.fd]
          owned = fds
        } catch (err) {
          throw mapNativeError(err, 'self', `bind udp ${address}:${port}`)
        }
        if (this.closed) throw new OslClosedError('the DNS responder engine is closed')
      } else {
        throw new InvalidOptionError('give fds or bind')
      }
      const onMiss = options.onMiss
      const log = this.log
      const guarded = (message: Buffer, address: string, port: number): void => {
        try {
          onMiss(message, address, port)
        } catch (err) {
          log.error('onMiss failed: %s', err instanceof Error ? (err.stack ?? err.message) : String(err))
        }
      }
      let res: ReturnType<ResponderNativeOps['responderAttach']>
      owned = []
      try {
        res = this.native.responderAttach(this.handle, fds, 4, edns, maxUdp, maxEntries, rcvbuf, guarded)
      } catch (err) {
        // the addon closed the descriptors
        throw mapNativeError(err, 'self', 'attach DNS responder')
      }
      const r = new DnsResponder(this.native, this.handle, res[0], res[3], res[1], res[2], () =>
        this.responders.delete(r),
      )
      this.responders.add(r)
      return r
    } catch (err) {
      for (const fd of owned) closeQuietly(fd)
      throw err
    }
  }

  /** Stops the threads and closes every responder's sockets. Idempotent. */
  close(): void {
    if (this.closed) return
    this.closed = true
    for (const r of this.responders) r.markClosed()
    this.responders.clear()
    this.native.responderEngineClose(this.handle)
  }

  [Symbol.dispose](): void {
    this.close()
  }
}

/** Two-stage factory: `dnsResponderEngine(init)(components)`. */
export function dnsResponderEngine(
  init: DnsResponderEngineInit = {},
): (components?: DnsResponderEngineComponents) => DnsResponderEngine {
  return (components = {}) => new DnsResponderEngine(init, components)
}

/** One set of sockets served by an engine, with its answer table. */
export class DnsResponder {
  private closed = false
  /** Counters when it was closed (the native side forgets them). */
  private final: DnsResponderStats | undefined

  /** @internal */
  constructor(
    private readonly native: ResponderNativeOps,
    private readonly engine: unknown,
    private readonly id: number,
    /** Bound address of the first socket. */
    readonly address: string,
    readonly port: number,
    readonly family: 4 | 6,
    private readonly onClose: () => void,
  ) {}

  /**
   * Stores the answer for `name` (wire form, lower-cased, with its terminating zero) and `qtype`.
   * Returns false when the table is full or the responder is closed.
   */
  setAnswer(name: Uint8Array, qtype: number, answer: DnsTableAnswer): boolean {
    if (this.closed) return false
    const key = Buffer.allocUnsafe(name.length + 2)
    key.set(name, 0)
    key.writeUInt16BE(qtype & 0xffff, name.length)
    const offs = answer.rotateOffsets
    if (offs !== undefined && answer.arcount !== 0) throw new InvalidOptionError('rotateOffsets: needs arcount 0')
    return this.native.responderSet(
      this.engine,
      this.id,
      key,
      answer.rcode,
      answer.ancount,
      answer.arcount,
      answer.body,
      offs ?? null,
    )
  }

  /** Empties the table (records changed). */
  clearAnswers(): void {
    if (!this.closed) this.native.responderClear(this.engine, this.id)
  }

  /** Sends a datagram from the responder's socket (non-blocking); false when the kernel refused it. */
  send(message: Uint8Array, address: string, port: number): boolean {
    if (this.closed) return false
    return this.native.responderSend(this.engine, this.id, message, address, port) >= 0
  }

  /** Counters (kept after close, with `entries` 0). */
  stats(): DnsResponderStats {
    if (this.closed) return { ...(this.final ?? this.read()), entries: 0 }
    return this.read()
  }

  private read(): DnsResponderStats {
    const v = this.native.responderStats(this.engine, this.id)
    const n = (i: number): number => v?.[i] ?? 0
    return {
      received: n(0),
      answered: n(1),
      missed: n(2),
      dropped: n(3),
      sendErrors: n(4),
      entries: n(5),
      rejectedEntries: n(6),
    }
  }

  /** Stops serving and closes the sockets. Idempotent. */
  close(): void {
    if (this.closed) return
    this.final = this.read()
    this.closed = true
    this.native.responderDetach(this.engine, this.id)
    this.onClose()
  }

  [Symbol.dispose](): void {
    this.close()
  }

  /** @internal the engine is closing (called before the native side lets go) */
  markClosed(): void {
    if (this.closed) return
    this.final = this.read()
    this.closed = true
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed by the addon
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>
}
