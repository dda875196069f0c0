import { isIP } from 'node:net'
import {
  AddressInUseError,
  ConnectFailedError,
  ConnectTimeoutError,
  InvalidAddressError,
  InvalidOptionError,
  KernelError,
  NamespaceNotFoundError,
} from './errors.js'
import { loadNative, type NativeOps } from './native.js'

/** Directory `ip netns` uses; a namespace given by bare name is looked up here. */
export const IP_NETNS_DIR = '/run/netns'

export type SocketType = 'udp4' | 'udp6' | 'tcp4' | 'tcp6'

export interface OpenSocketOptions {
  type: SocketType
  /** Local address to bind (`0.0.0.0`, `127.0.0.11`, `::`…); must match the family of `type`. */
  address: string
  /** Local port; 0 picks a free one (returned as `port`). */
  port: number
  /** Set SO_REUSEADDR before bind. @default false */
  reuseAddr?: boolean
  /**
   * Set SO_REUSEPORT before bind: several sockets (each opened with this flag, by the same user) can
   * bind the same address and port, and the kernel spreads datagrams and connections over them
   * (one socket per worker thread). @default false
   */
  reusePort?: boolean
  /** listen() backlog for tcp sockets. @default 511 */
  backlog?: number
}

export interface NetnsSocket {
  /** The descriptor, owned by the caller: adopt it with `dgram.createSocket(type).bind({ fd })` or `net.createServer().listen({ fd })`, or close it. */
  fd: number
  /** The bound port (the kernel's pick when 0 was asked). */
  port: number
}

/** A bare name means `/run/netns/<name>`; anything with a `/` is a path (`/proc/<pid>/ns/net`, a bind-mounted file). */
export function netnsPath(netns: string): string {
  if (typeof netns !== 'string' || netns.length === 0) {
    throw new InvalidOptionError(`netns: must be a namespace name or path, got ${JSON.stringify(netns)}`)
  }
  if (netns.includes('/')) return netns
  if (netns === '.' || netns === '..') throw new InvalidOptionError(`netns: invalid name ${JSON.stringify(netns)}`)
  return `${IP_NETNS_DIR}/${netns}`
}

/** Maps a native-addon rejection for an operation inside `path` to this package's errors. */
export function mapNativeError(err: unknown, path: string, what: string): Error {
  const e = err as { code?: string; message?: string }
  const msg = e.message ?? String(err)
  // `netns(PATH)`: opening the namespace file failed; `setns(PATH)`: it is not a network namespace
  if (msg.startsWith('netns(') || msg.startsWith('setns(')) {
    if (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'ENOTDIR') {
      return new NamespaceNotFoundError(`network namespace ${path} not found (${msg})`, { cause: err })
    }
  }
  if (e.code === 'EADDRINUSE') return new AddressInUseError(`${what}: ${msg}`, { cause: err })
  if (e.code === 'ETIMEDOUT') return new ConnectTimeoutError(`${what}: ${msg}`, { cause: err })
  if (e.code === 'ECONNREFUSED' || e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH') {
    return new ConnectFailedError(`${what}: ${msg}`, { cause: err })
  }
  if (e.code === 'EADDRNOTAVAIL') return new InvalidAddressError(`${what}: ${msg}`, { cause: err })
  return new KernelError(`${what} failed: ${msg}`, { stderr: msg, command: what }, { cause: err })
}

/** Validates options and calls the addon. Shared by `openSocketInNetns` and `Osl`/`Sandbox.openSocket`. */
export async function openSocketWith(
  native: NativeOps,
  nsPath: string | null,
  opts: OpenSocketOptions,
): Promise<NetnsSocket> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('options: required')
  const { type, address, port } = opts
  if (type !== 'udp4' && type !== 'udp6' && type !== 'tcp4' && type !== 'tcp6') {
    throw new InvalidOptionError(`type: must be udp4, udp6, tcp4 or tcp6, got ${JSON.stringify(type)}`)
  }
  const family = type.endsWith('6') ? 6 : 4
  if (typeof address !== 'string' || isIP(address) !== family) {
    throw new InvalidAddressError(`address: ${JSON.stringify(address)} is not an IPv${family} address (type ${type})`)
  }
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidOptionError(`port: must be an integer in 0..65535, got ${String(port)}`)
  }
  const backlog = opts.backlog ?? 511
  if (!Number.isInteger(backlog) || backlog < 0 || backlog > 65535) {
    throw new InvalidOptionError(`backlog: must be an integer in 0..65535, got ${String(backlog)}`)
  }
  try {
    return await native.openSocket(
      nsPath,
      family,
      type.startsWith('tcp') ? 1 : 0,
      address,
      port,
      ((opts.reuseAddr === true ? 1 : 0) | (opts.reusePort === true ? 2 : 0)) as 0 | 1 | 2 | 3,
      backlog,
    )
  } catch (err) {
    throw mapNativeError(err, nsPath ?? 'self', `open ${type} socket on ${address}:${port} in ${nsPath ?? 'self'}`)
  }
}

/**
 * Opens a socket inside a network namespace and returns its descriptor: bound, and for tcp listening.
 * The namespace switch happens on a throw-away native thread (setns), never on Node's main thread.
 *
 * ```ts
 * const { fd, port } = await openSocketInNetns('sb1', { type: 'udp4', address: '127.0.0.11', port: 0 })
 * dgram.createSocket('udp4').bind({ fd })
 * ```
 * Throws NamespaceNotFoundError, AddressInUseError, InvalidAddressError, InvalidOptionError,
 * NativeAddonMissingError (addon not built) or KernelError. IPv6 sockets are IPV6_V6ONLY.
 */
export async function openSocketInNetns(
  netns: string /* name or path */,
  opts: {
    type: 'udp4' | 'udp6' | 'tcp4' | 'tcp6'
    address: string
    port: number
    reuseAddr?: boolean
    reusePort?: boolean
    backlog?: number
  },
): Promise<{ fd: number; port: number }> {
  const path = netnsPath(netns)
  return await openSocketWith(loadNative(), path, opts)
}

export interface ConnectSocketOptions {
  type: 'tcp4' | 'tcp6'
  /** Peer address, of the family of `type`. */
  address: string
  port: number
  /** @default 4000 */
  timeoutMs?: number
}

/** Validates options and calls the addon. Shared by `connectSocketInNetns` and `Netns.connect`. */
export async function connectSocketWith(
  native: NativeOps,
  nsPath: string | null,
  opts: ConnectSocketOptions,
): Promise<NetnsSocket> {
  if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('options: required')
  if (opts.type !== 'tcp4' && opts.type !== 'tcp6') {
    throw new InvalidOptionError(`type: must be tcp4 or tcp6, got ${JSON.stringify(opts.type)}`)
  }
  const family = opts.type === 'tcp6' ? 6 : 4
  if (typeof opts.address !== 'string' || isIP(opts.address) !== family) {
    throw new InvalidAddressError(`address: ${JSON.stringify(opts.address)} is not an IPv${family} address`)
  }
  if (!Number.isInteger(opts.port) || opts.port < 1 || opts.port > 65535) {
    throw new InvalidOptionError(`port: must be an integer in 1..65535, got ${String(opts.port)}`)
  }
  const timeoutMs = opts.timeoutMs ?? 4000
  if (!Number.isInteger(timeoutMs) || timeoutMs < 1 || timeoutMs > 600_000) {
    throw new InvalidOptionError(`timeoutMs: must be an integer in 1..600000, got ${String(timeoutMs)}`)
  }
  try {
    return await native.connectSocket(nsPath, family, opts.address, opts.port, timeoutMs)
  } catch (err) {
    throw mapNativeError(err, nsPath ?? 'self', `connect to ${opts.address}:${opts.port} from ${nsPath ?? 'self'}`)
  }
}

/**
 * Opens a TCP connection from inside a network namespace (the namespace's routes and firewall apply) and
 * returns the connected descriptor; adopt it with `new net.Socket({ fd, readable: true, writable: true })`.
 * The connect runs on its own native thread, so a slow peer holds no libuv worker. Throws
 * ConnectFailedError, ConnectTimeoutError, NamespaceNotFoundError, InvalidAddressError, InvalidOptionError.
 */
export async function connectSocketInNetns(netns: string, opts: ConnectSocketOptions): Promise<NetnsSocket> {
  return await connectSocketWith(loadNative(), netnsPath(netns), opts)
}
