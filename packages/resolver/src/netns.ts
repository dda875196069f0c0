import { closeSync } from 'node:fs'
import net from 'node:net'
import type { AbortOptions, ComponentLogger, Logger } from '@cnm/types'
import { AbortError } from '@cnm/types'
import { ResolverNetnsError } from './errors.js'
import type { DnsFastPath } from './fast-path.js'
import type { DnsRecordSource } from './record-source.js'
import { Resolver } from './resolver.js'
import type { ResolverInit } from './resolver.js'
import { createUdpSocket, hostSocketFactory, stripZone } from './sockets.js'
import type { ForwardSocketFactory, UpstreamServer } from './sockets.js'

/**
 * Opens a bound socket (tcp: listening) inside a network namespace and returns its descriptor:
 * `openSocketInNetns` of `@cnm/osl` has this shape.
 */
export type NetnsSocketOpener = (
  netns: string,
  options: { type: 'udp4' | 'udp6' | 'tcp4' | 'tcp6'; address: string; port: number },
) => Promise<{ fd: number; port: number }>

/**
 * Opens a TCP connection from inside a network namespace and returns the connected descriptor:
 * `connectSocketInNetns` of `@cnm/osl` has this shape.
 */
export type NetnsSocketConnector = (
  netns: string,
  options: { type: 'tcp4' | 'tcp6'; address: string; port: number; timeoutMs?: number },
) => Promise<{ fd: number; port: number }>

/** One NAT-table change, as `@cnm/iptables` `Iptables.apply()` takes it. */
export type NatChange =
  | { op: 'ensureChain' | 'flushChain' | 'deleteChain'; table: 'nat'; chain: string }
  | { op: 'ensure' | 'delete'; table: 'nat'; chain: string; rule: readonly string[] }

/**
 * iptables of the sandbox namespace (IPv4): an `Iptables` instance from `@cnm/iptables`
 * (`iptables({ netns, family: 4 }, { logger })`) fits. `apply` must be atomic.
 */
export interface NatRules {
  apply(changes: readonly NatChange[], options?: AbortOptions): Promise<unknown>
}

/** Address of the embedded resolver inside every sandbox. */
export const EMBEDDED_DNS_ADDRESS = '127.0.0.11'
export const DNS_OUTPUT_CHAIN = 'DOCKER_OUTPUT'
export const DNS_POSTROUTING_CHAIN = 'DOCKER_POSTROUTING'

export interface SandboxResolverInit extends ResolverInit {
  /** Address the resolver serves inside the namespace. @default '127.0.0.11' */
  address?: string
  /** Delete the DNAT/SNAT rules on stop (the chains stay). @default true */
  removeRulesOnStop?: boolean
}

export interface SandboxResolverComponents {
  logger: ComponentLogger
  records: DnsRecordSource
  /** Namespace name (under /run/netns) or path. */
  netns: string
  openSocket: NetnsSocketOpener
  /** iptables (family 4) of the same namespace. */
  nat: NatRules
  /**
   * TCP connections from inside the namespace (osl's `connectSocketInNetns`), for TCP queries to
   * in-namespace upstreams. @default none: those queries are forwarded over UDP
   */
  connectSocket?: NetnsSocketConnector
  /**
   * Forwarding sockets. @default `netnsSocketFactory({ netns, openSocket, connectSocket })`: sockets
   * inside the sandbox namespace, host-loopback upstreams from the daemon's namespace.
   */
  sockets?: ForwardSocketFactory
  /** Native fast path for the UDP listener (osl's `DnsResponderEngine`, one per daemon). @default none */
  fastPath?: DnsFastPath
}

/**
 * Forwarding sockets opened inside a namespace through `openSocket` (osl), except for upstreams
 * flagged `hostLoopback`, which are reached from this process's namespace (sandbox-dns.md §2.3).
 * TCP queries to in-namespace upstreams go over TCP connections made inside the namespace by
 * `connectSocket` (osl's `connectSocketInNetns`); without it they are forwarded over UDP.
 */
export function netnsSocketFactory(components: {
  netns: string
  openSocket: NetnsSocketOpener
  connectSocket?: NetnsSocketConnector
  host?: ForwardSocketFactory
}): ForwardSocketFactory {
  const host = components.host ?? hostSocketFactory()
  return {
    async udpSocket(server: UpstreamServer) {
      if (server.hostLoopback === true) return await host.udpSocket(server)
      const v6 = net.isIPv6(stripZone(server.address))
      const type = v6 ? 'udp6' : 'udp4'
      const { fd } = await components.openSocket(components.netns, { type, address: v6 ? '::' : '0.0.0.0', port: 0 })
      const sock = createUdpSocket(type)
      try {
        await new Promise<void>((resolve, reject) => {
          sock.once('error', reject)
          sock.bind({ fd }, () => {
            sock.off('error', reject)
            resolve()
          })
        })
      } catch (err) {
        closeQuietly(fd)
        throw err
      }
      return sock
    },
    tcpConnect(server: UpstreamServer, signal: AbortSignal) {
      if (server.hostLoopback === true) return host.tcpConnect(server, signal)
      const connect = components.connectSocket
      if (connect === undefined) return undefined
      return connectInNetns(connect, components.netns, server, signal)
    },
  }
}

/** A TCP connection made inside `netns`, adopted by a net.Socket; an abort closes a late descriptor. */
async function connectInNetns(
  connect: NetnsSocketConnector,
  netns: string,
  server: UpstreamServer,
  signal: AbortSignal,
): Promise<net.Socket> {
  signal.throwIfAborted()
  const address = stripZone(server.address)
  const type = net.isIPv6(address) ? 'tcp6' : 'tcp4'
  const pending = connect(netns, { type, address, port: server.port ?? 53 })
  const fd = await new Promise<number>((resolve, reject) => {
    const onAbort = (): void => reject(new AbortError(undefined, { cause: signal.reason }))
    signal.addEventListener('abort', onAbort, { once: true })
    pending.then(
      (s) => {
        signal.removeEventListener('abort', onAbort)
        if (signal.aborted)
          closeQuietly(s.fd) // too late: nobody adopts it
        else resolve(s.fd)
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort)
        reject(err instanceof Error ? err : new Error(String(err)))
      },
    )
  })
  const sock = new net.Socket({ fd, readable: true, writable: true })
  sock.setNoDelay(true)
  return sock
}

/** The NAT changes that redirect `address:53` to the resolver's ports (sandbox-dns.md §2.1). */
export function dnsNatChanges(address: string, udpPort: number, tcpPort: number): NatChange[] {
  return [
    { op: 'ensureChain', table: 'nat', chain: DNS_OUTPUT_CHAIN },
    { op: 'ensureChain', table: 'nat', chain: DNS_POSTROUTING_CHAIN },
    { op: 'flushChain', table: 'nat', chain: DNS_OUTPUT_CHAIN },
    { op: 'flushChain', table: 'nat', chain: DNS_POSTROUTING_CHAIN },
    { op: 'ensure', table: 'nat', chain: 'OUTPUT', rule: ['-d', address, '-j', DNS_OUTPUT_CHAIN] },
    { op: 'ensure', table: 'nat', chain: 'POSTROUTING', rule: ['-d', address, '-j', DNS_POSTROUTING_CHAIN] },
    ...ruleSet(address, udpPort, tcpPort).map((r) => ({ op: 'ensure' as const, ...r })),
  ]
}

function ruleSet(
  address: string,
  udpPort: number,
  tcpPort: number,
): Array<{ table: 'nat'; chain: string; rule: string[] }> {
  return [
    {
      table: 'nat',
      chain: DNS_OUTPUT_CHAIN,
      rule: ['-d', address, '-p', 'udp', '--dport', '53', '-j', 'DNAT', '--to-destination', `${address}:${udpPort}`],
    },
    {
      table: 'nat',
      chain: DNS_OUTPUT_CHAIN,
      rule: ['-d', address, '-p', 'tcp', '--dport', '53', '-j', 'DNAT', '--to-destination', `${address}:${tcpPort}`],
    },
    {
      table: 'nat',
      chain: DNS_POSTROUTING_CHAIN,
      rule: ['-s', address, '-p', 'udp', '--sport', String(udpPort), '-j', 'SNAT', '--to-source', ':53'],
    },
    {
      table: 'nat',
      chain: DNS_POSTROUTING_CHAIN,
      rule: ['-s', address, '-p', 'tcp', '--sport', String(tcpPort), '-j', 'SNAT', '--to-source', ':53'],
    },
  ]
}

/**
 * A resolver placed in a sandbox namespace: it listens on `127.0.0.11:<udpPort>` and
 * `127.0.0.11:<tcpPort>` inside the namespace, and NAT rules there redirect `127.0.0.11:53` to them,
 * so the sandbox's own port 53 stays free.
 */
export class SandboxResolver {
  private stopped = false
  private readonly log: Logger

  constructor(
    readonly resolver: Resolver,
    readonly netns: string,
    readonly address: string,
    readonly udpPort: number,
    readonly tcpPort: number,
    private readonly nat: NatRules,
    private readonly removeRules: boolean,
    logger: ComponentLogger,
  ) {
    this.log = logger.forComponent('cnm:resolver:netns').child(netns)
  }

  /** Stops the resolver and (by default) deletes its NAT rules. Idempotent. */
  async stop(options: AbortOptions = {}): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.resolver.stop(options)
    if (!this.removeRules) return
    try {
      await this.nat.apply(
        ruleSet(this.address, this.udpPort, this.tcpPort).map((r) => ({ op: 'delete' as const, ...r })),
        options,
      )
    } catch (err) {
      // the namespace may be gone already (sandbox deleted): nothing left to clean
      this.log.trace('removing DNS NAT rules failed: %s', err instanceof Error ? err.message : String(err))
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/**
 * Opens the listening sockets inside the namespace, starts a resolver on them and installs the NAT
 * rules. On failure every step done so far is undone and `ResolverNetnsError` is thrown.
 */
export async function startSandboxResolver(
  init: SandboxResolverInit,
  components: SandboxResolverComponents,
  options: AbortOptions = {},
): Promise<SandboxResolver> {
  options.signal?.throwIfAborted()
  const { address = EMBEDDED_DNS_ADDRESS, removeRulesOnStop = true, ...resolverInit } = init
  const undo: Array<() => Promise<void> | void> = []
  const rollback = async (): Promise<void> => {
    for (const u of undo.reverse()) {
      try {
        await u()
      } catch {
        // best effort: the original failure is what the caller needs
      }
    }
  }
  const { netns, openSocket } = components
  let step = 'open udp socket'
  try {
    const udp = await openSocket(netns, { type: 'udp4', address, port: 0 })
    let owned: number[] = [udp.fd] // descriptors nobody else will close
    undo.push(() => owned.forEach(closeQuietly))
    step = 'open tcp socket'
    const tcp = await openSocket(netns, { type: 'tcp4', address, port: 0 })
    owned.push(tcp.fd)
    options.signal?.throwIfAborted()
    step = 'start resolver'
    const r = new Resolver(resolverInit, {
      logger: components.logger,
      records: components.records,
      listen: { udp: { fd: udp.fd, type: 'udp4' }, tcp: { fd: tcp.fd, type: 'tcp' } },
      sockets:
        components.sockets ??
        netnsSocketFactory({
          netns,
          openSocket,
          ...(components.connectSocket !== undefined ? { connectSocket: components.connectSocket } : {}),
        }),
      ...(components.fastPath !== undefined ? { fastPath: components.fastPath } : {}),
    })
    owned = [] // the resolver owns them now: closed by stop() or by a failing start()
    undo.push(() => r.stop())
    await r.start(options)
    step = 'install NAT rules'
    await components.nat.apply(dnsNatChanges(address, udp.port, tcp.port), options)
    const sr = new SandboxResolver(
      r,
      netns,
      address,
      udp.port,
      tcp.port,
      components.nat,
      removeRulesOnStop,
      components.logger,
    )
    components.logger.forComponent('cnm:resolver:netns').child(netns)(
      'serving %s:53 (udp port %d, tcp port %d)',
      address,
      udp.port,
      tcp.port,
    )
    return sr
  } catch (err) {
    await rollback()
    throw new ResolverNetnsError(
      `placing the resolver in namespace ${netns} failed (${step}): ${err instanceof Error ? err.message : String(err)}`,
      { cause: err },
    )
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd)
  } catch {
    // already closed (adopted by a socket that closed it)
  }
}
