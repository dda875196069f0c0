import dgram from 'node:dgram'
import net from 'node:net'
import { UnavailableError } from '@cnm/types'
import type { Logger } from '@cnm/types'
import type { Address, TrafficFilter } from './types.js'

/** Largest datagram a listener reads (memberlist's udpPacketBufSize). */
export const MAX_DATAGRAM_BYTES = 65536

export interface TransportInit {
  bindAddr: string
  bindPort: number
  filter?: TrafficFilter | undefined
  log: Logger
  onPacket(buf: Buffer, from: Address): void
  onStream(socket: net.Socket, from: Address): void
  /** Counts a dropped (filtered) packet or stream. */
  onDrop(): void
}

function isIpv6(addr: string): boolean {
  return net.isIPv6(addr)
}

/** An IPv4-mapped IPv6 address (from a peer that sent 16-byte addresses) as plain IPv4. */
function hostOf(addr: string): string {
  const lower = addr.toLowerCase()
  if (lower.startsWith('::ffff:') && net.isIPv4(addr.slice(7))) return addr.slice(7)
  return addr
}

/**
 * UDP and TCP on one port (memberlist's net transport). The TCP listener is bound first; with port 0
 * the UDP socket takes the port the kernel gave TCP, retrying with a new port when UDP's is taken.
 */
export class Transport {
  readonly #init: TransportInit
  #udp: dgram.Socket | undefined
  #tcp: net.Server | undefined
  readonly #streams = new Set<net.Socket>()
  #closed = false
  #port = 0

  private constructor(init: TransportInit) {
    this.#init = init
  }

  static async listen(init: TransportInit): Promise<Transport> {
    const t = new Transport(init)
    const attempts = init.bindPort === 0 ? 20 : 1
    let lastErr: unknown
    for (let i = 0; i < attempts; i++) {
      try {
        await t.#bind(init.bindPort)
        return t
      } catch (err) {
        lastErr = err
        await t.#closeSockets()
      }
    }
    throw new UnavailableError(`cannot bind UDP and TCP on ${init.bindAddr}:${init.bindPort}: ${String(lastErr)}`, {
      code: 'ERR_MEMBERLIST_BIND',
      cause: lastErr,
    })
  }

  async #bind(port: number): Promise<void> {
    const tcp = net.createServer({ noDelay: true }, (socket) => this.#accept(socket))
    this.#tcp = tcp
    await new Promise<void>((resolve, reject) => {
      tcp.once('error', reject)
      tcp.listen({ host: this.#init.bindAddr, port, exclusive: true }, () => {
        tcp.off('error', reject)
        resolve()
      })
    })
    tcp.on('error', (err) => this.#init.log.error('TCP listener error: %s', err.message))
    const addr = tcp.address()
    if (addr === null || typeof addr === 'string') throw new Error('TCP listener has no address')
    const udp = dgram.createSocket({ type: isIpv6(this.#init.bindAddr) ? 'udp6' : 'udp4', reuseAddr: false })
    this.#udp = udp
    await new Promise<void>((resolve, reject) => {
      udp.once('error', reject)
      udp.bind({ address: this.#init.bindAddr, port: addr.port, exclusive: true }, () => {
        udp.off('error', reject)
        resolve()
      })
    })
    udp.on('error', (err) => this.#init.log.error('UDP socket error: %s', err.message))
    try {
      udp.setRecvBufferSize(2 * 1024 * 1024)
      udp.setSendBufferSize(2 * 1024 * 1024)
    } catch (err) {
      this.#init.log.trace('cannot raise UDP buffer sizes: %s', String(err))
    }
    udp.on('message', (msg, rinfo) => {
      const from = { addr: rinfo.address, port: rinfo.port }
      if (this.#init.filter !== undefined && !this.#init.filter(from, 'packet', 'in')) {
        this.#init.onDrop()
        return
      }
      this.#init.onPacket(msg, from)
    })
    this.#port = addr.port
  }

  #accept(socket: net.Socket): void {
    if (this.#closed) {
      socket.destroy()
      return
    }
    const from = { addr: socket.remoteAddress ?? '', port: socket.remotePort ?? 0 }
    if (this.#init.filter !== undefined && !this.#init.filter(from, 'stream', 'in')) {
      this.#init.onDrop()
      socket.destroy()
      return
    }
    this.#track(socket)
    this.#init.onStream(socket, from)
  }

  #track(socket: net.Socket): void {
    // Readers and writers report failures through their own promises; this keeps a late 'error' (EPIPE,
    // ECONNRESET after the exchange) from becoming an uncaught exception.
    socket.on('error', (err) => this.#init.log.trace('stream error: %s', err.message))
    this.#streams.add(socket)
    socket.once('close', () => this.#streams.delete(socket))
  }

  /** The bound port (UDP and TCP). */
  get port(): number {
    return this.#port
  }

  /** Sends one datagram; false when filtered or closed. Errors are logged, never thrown. */
  sendPacket(to: Address, buf: Uint8Array): boolean {
    const udp = this.#udp
    if (this.#closed || udp === undefined) return false
    if (this.#init.filter !== undefined && !this.#init.filter(to, 'packet', 'out')) {
      this.#init.onDrop()
      return false
    }
    udp.send(buf, to.port, hostOf(to.addr), (err) => {
      if (err !== null && err !== undefined)
        this.#init.log.trace('send to %s:%d failed: %s', to.addr, to.port, err.message)
    })
    return true
  }

  /** Opens a TCP connection; rejects on filter, timeout or connection errors. */
  async dial(to: Address, timeoutMs: number, signal?: AbortSignal): Promise<net.Socket> {
    if (this.#closed) throw new UnavailableError('transport is closed', { code: 'ERR_MEMBERLIST_SHUTDOWN' })
    if (this.#init.filter !== undefined && !this.#init.filter(to, 'stream', 'out')) {
      this.#init.onDrop()
      throw new UnavailableError(`stream to ${to.addr}:${to.port} blocked by filter`, {
        code: 'ERR_MEMBERLIST_FILTERED',
      })
    }
    const socket = net.connect({ host: hostOf(to.addr), port: to.port, noDelay: true })
    this.#track(socket)
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => finish(new Error(`dial ${to.addr}:${to.port} timed out`)), timeoutMs)
        timer.unref()
        const onAbort = (): void => finish(new Error('dial aborted', { cause: signal?.reason }))
        const finish = (err?: Error): void => {
          clearTimeout(timer)
          socket.off('connect', onConnect)
          socket.off('error', finish)
          signal?.removeEventListener('abort', onAbort)
          if (err === undefined) resolve()
          else reject(err)
        }
        const onConnect = (): void => finish()
        socket.once('connect', onConnect)
        socket.once('error', finish)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    } catch (err) {
      socket.destroy()
      throw new UnavailableError(`cannot connect to ${to.addr}:${to.port}: ${(err as Error).message}`, {
        code: 'ERR_MEMBERLIST_DIAL',
        cause: err,
      })
    }
    return socket
  }

  async #closeSockets(): Promise<void> {
    const udp = this.#udp
    const tcp = this.#tcp
    this.#udp = undefined
    this.#tcp = undefined
    if (udp !== undefined) {
      await new Promise<void>((resolve) => {
        try {
          udp.close(() => resolve())
        } catch {
          resolve() // not bound yet or already closed
        }
      })
    }
    if (tcp !== undefined) {
      await new Promise<void>((resolve) => {
        if (!tcp.listening) {
          resolve()
          return
        }
        tcp.close(() => resolve())
      })
    }
  }

  /** Closes both sockets and destroys every open stream. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    for (const s of this.#streams) s.destroy()
    this.#streams.clear()
    await this.#closeSockets()
  }
}
