import dgram from 'node:dgram'
import net from 'node:net'
import { AbortError } from '@cnm/types'

/** An upstream DNS server queries are forwarded to. */
export interface UpstreamServer {
  /** IPv4 or IPv6 address (an IPv6 zone, `%eth0`, is allowed). */
  readonly address: string
  /** @default 53 */
  readonly port?: number
  /**
   * The server is a loopback address taken from the host's resolv.conf: it must be contacted from
   * the host namespace, not from inside the sandbox (sandbox-dns.md §2.3).
   * @default false
   */
  readonly hostLoopback?: boolean
}

/**
 * Where forwarding sockets come from. The resolver connects the UDP sockets it gets to the server
 * and reuses them for many queries; it closes them when idle. Inject a factory that opens sockets
 * inside the sandbox namespace (`netnsSocketFactory`) so the container's routes and firewall apply.
 */
export interface ForwardSocketFactory {
  /** A bound, unconnected UDP socket from which `server` can be reached. */
  udpSocket(server: UpstreamServer): Promise<dgram.Socket>
  /**
   * A TCP connection to `server`, or `undefined` when this factory cannot open one for it (the query
   * is then forwarded over UDP instead).
   */
  tcpConnect(server: UpstreamServer, signal: AbortSignal): Promise<net.Socket> | undefined
}

/**
 * `dgram` lookups that accept IP literals synchronously (no dns.lookup and no extra tick per send).
 * Family-fixed: the socket's family decides, so nothing is parsed per packet.
 */
function literalLookup4(
  address: string,
  _f: unknown,
  callback: (err: Error | null, address: string, family: number) => void,
): void {
  callback(null, address, 4)
}
function literalLookup6(
  address: string,
  _f: unknown,
  callback: (err: Error | null, address: string, family: number) => void,
): void {
  callback(null, address, 6)
}

/** A UDP socket of the right family with the synchronous literal lookup. */
export function createUdpSocket(type: 'udp4' | 'udp6'): dgram.Socket {
  const lookup = type === 'udp6' ? literalLookup6 : literalLookup4
  return dgram.createSocket({ type, lookup: lookup as unknown as dgram.SocketOptions['lookup'] })
}

/** Sockets in this process's own network namespace. */
export function hostSocketFactory(): ForwardSocketFactory {
  return {
    async udpSocket(server: UpstreamServer): Promise<dgram.Socket> {
      const sock = createUdpSocket(net.isIPv6(stripZone(server.address)) ? 'udp6' : 'udp4')
      await new Promise<void>((resolve, reject) => {
        sock.once('error', reject)
        sock.bind({ port: 0, exclusive: true }, () => {
          sock.off('error', reject)
          resolve()
        })
      })
      return sock
    },
    tcpConnect(server: UpstreamServer, signal: AbortSignal): Promise<net.Socket> {
      return connectTcp(server, signal)
    },
  }
}

/** Opens a TCP connection, honouring `signal`. */
export async function connectTcp(server: UpstreamServer, signal: AbortSignal): Promise<net.Socket> {
  signal.throwIfAborted()
  const sock = net.connect({ host: server.address, port: server.port ?? 53, noDelay: true })
  return await new Promise<net.Socket>((resolve, reject) => {
    const onAbort = (): void => {
      sock.destroy()
      reject(new AbortError(undefined, { cause: signal.reason }))
    }
    const cleanup = (): void => {
      signal.removeEventListener('abort', onAbort)
      sock.off('error', onError)
      sock.off('connect', onConnect)
    }
    const onError = (err: Error): void => {
      cleanup()
      sock.destroy()
      reject(err)
    }
    const onConnect = (): void => {
      cleanup()
      resolve(sock)
    }
    signal.addEventListener('abort', onAbort, { once: true })
    sock.once('error', onError)
    sock.once('connect', onConnect)
  })
}

export function stripZone(address: string): string {
  const i = address.indexOf('%')
  return i < 0 ? address : address.slice(0, i)
}
