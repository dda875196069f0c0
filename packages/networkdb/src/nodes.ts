import type { Address } from '@cnm/memberlist'
import type { NodeStatus } from './types.js'

/** What networkdb remembers of a cluster node (libnetwork keeps three maps; one map with a status here). */
export interface NodeRecord {
  name: string
  addr: string
  port: number
  /** Lamport time of the last NodeEvent applied. */
  ltime: bigint
  /** Left or failed nodes: milliseconds before they are forgotten. */
  reapTimeMs: number
  status: NodeStatus
}

/**
 * The record a node called `name` at `addr:port` replaces: a node with another name on the same address
 * (active ones first, then failed, then left, as libnetwork's purgeReincarnation looks).
 */
export function findReincarnated(nodes: Iterable<NodeRecord>, name: string, at: Address): NodeRecord | undefined {
  const list = [...nodes]
  for (const status of ['active', 'failed', 'left'] as const) {
    const old = list.find((n) => n.status === status && n.name !== name && n.addr === at.addr && n.port === at.port)
    if (old !== undefined) return old
  }
  return undefined
}

/** Up to `m` distinct items picked at random. */
export function sample<T>(items: readonly T[], m: number): T[] {
  const copy = [...items]
  const out: T[] = []
  while (out.length < m && copy.length > 0) {
    const i = Math.floor(Math.random() * copy.length)
    out.push(copy[i] as T)
    copy[i] = copy[copy.length - 1] as T
    copy.pop()
  }
  return out
}

/** `ip`, `ip:port`, `[v6]` or `[v6]:port`. */
export function splitHostPort(s: string): { host: string; port: number | undefined } {
  const v6 = /^\[(.*)\](?::(\d+))?$/.exec(s)
  if (v6 !== null) return { host: v6[1] ?? '', port: v6[2] === undefined ? undefined : Number(v6[2]) }
  const i = s.lastIndexOf(':')
  if (i > 0 && s.indexOf(':') === i) return { host: s.slice(0, i), port: Number(s.slice(i + 1)) }
  return { host: s, port: undefined }
}

/** `ip:port` as memberlist's join takes it (brackets for IPv6). */
export function joinAddress(addr: string, port: number): string {
  return addr.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`
}
