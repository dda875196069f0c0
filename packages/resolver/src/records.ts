import { isIPv4, isIPv6 } from 'node:net'
import { InvalidResolverOptionError } from './errors.js'
import { formatIpv6, ipv6Bytes } from './internal/wire.js'
import type { DnsRecordSource, NameRecords, ServiceProtocol, ServiceRecord } from './record-source.js'

/** Options of `NetworkRecords.addName` / `removeName`. */
export interface NameRecordOptions {
  /** Owner of the record (endpoint or service id); the same address under two ids is returned once. @default '' */
  id?: string
  /** Also register the reverse (PTR) entry `address → <name>.<network>`. @default true */
  reverse?: boolean
}

/** A service target registered with `NetworkRecords.addService`. */
export interface ServiceTargetInit extends ServiceRecord {
  /** Owner id, so that targets can be removed individually. @default '' */
  readonly id?: string
}

interface ReverseEntry {
  name: string
  id: string
  external: boolean
}

/**
 * The DNS records of one network (sandbox-dns.md §3.1), shared by every sandbox attached to it:
 * name → addresses (by owner id), address → names (PTR), and SRV targets. Names are case-insensitive.
 * Every change bumps `generation`.
 */
export class NetworkRecords {
  readonly name: string
  private gen = 0
  private readonly listeners = new Set<() => void>()
  /** name → address → owner ids */
  private readonly forward = new Map<string, Map<string, Set<string>>>()
  private readonly reverse = new Map<string, ReverseEntry[]>()
  /** `name|service|proto` → targets */
  private readonly services = new Map<string, ServiceTargetInit[]>()

  constructor(name: string) {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidResolverOptionError('network name: required')
    this.name = name.toLowerCase()
  }

  get generation(): number {
    return this.gen
  }

  /** Calls `listener` after every change (synchronously); returns the function that removes it. */
  onChange(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new InvalidResolverOptionError('listener: must be a function')
    const own = (): void => listener()
    this.listeners.add(own)
    return () => {
      this.listeners.delete(own)
    }
  }

  private bump(): void {
    this.gen++
    notify(this.listeners)
  }

  /** Registers `name → address` (IPv4 or IPv6). */
  addName(name: string, address: string, options: NameRecordOptions = {}): void {
    const n = normName(name)
    const ip = normAddress(address)
    const id = options.id ?? ''
    let byIp = this.forward.get(n)
    if (byIp === undefined) this.forward.set(n, (byIp = new Map<string, Set<string>>()))
    let ids = byIp.get(ip)
    if (ids === undefined) byIp.set(ip, (ids = new Set()))
    ids.add(id)
    if (options.reverse !== false) {
      let list = this.reverse.get(ip)
      if (list === undefined) this.reverse.set(ip, (list = []))
      if (!list.some((e) => e.name === n && e.id === id)) list.push({ name: n, id, external: false })
    }
    this.bump()
  }

  /** Removes `name → address` for the owner id (and its reverse entry). */
  removeName(name: string, address: string, options: Pick<NameRecordOptions, 'id'> = {}): void {
    const n = normName(name)
    const ip = normAddress(address)
    const id = options.id ?? ''
    const byIp = this.forward.get(n)
    const ids = byIp?.get(ip)
    if (ids !== undefined && byIp !== undefined) {
      ids.delete(id)
      if (ids.size === 0) byIp.delete(ip)
      if (byIp.size === 0) this.forward.delete(n)
    }
    const list = this.reverse.get(ip)
    if (list !== undefined) {
      const kept = list.filter((e) => !(e.name === n && e.id === id))
      if (kept.length === 0) this.reverse.delete(ip)
      else this.reverse.set(ip, kept)
    }
    this.bump()
  }

  /** Registers an SRV target for `_<service>._<protocol>.<name>`. */
  addService(name: string, service: string, protocol: ServiceProtocol, target: ServiceTargetInit): void {
    const key = serviceKey(name, service, protocol)
    if (!Number.isInteger(target.port) || target.port < 0 || target.port > 65535) {
      throw new InvalidResolverOptionError(`service port: must be an integer in 0..65535, got ${String(target.port)}`)
    }
    const entry: ServiceTargetInit = { ...target, addresses: target.addresses.map(normAddress) }
    const list = this.services.get(key) ?? []
    const i = list.findIndex(
      (t) => (t.id ?? '') === (target.id ?? '') && t.target === target.target && t.port === target.port,
    )
    if (i >= 0) list[i] = entry
    else list.push(entry)
    this.services.set(key, list)
    this.bump()
  }

  /** Removes SRV targets of `_<service>._<protocol>.<name>` owned by `id` (all targets when id is undefined). */
  removeService(name: string, service: string, protocol: ServiceProtocol, id?: string): void {
    const key = serviceKey(name, service, protocol)
    const list = this.services.get(key)
    if (list === undefined) return
    const kept = id === undefined ? [] : list.filter((t) => (t.id ?? '') !== id)
    if (kept.length === 0) this.services.delete(key)
    else this.services.set(key, kept)
    this.bump()
  }

  /** Addresses of a name on this network, or undefined. */
  lookupName(name: string): NameRecords | undefined {
    const byIp = this.forward.get(name)
    if (byIp === undefined) return undefined
    const ipv4: string[] = []
    const ipv6: string[] = []
    for (const ip of byIp.keys()) (ip.includes(':') ? ipv6 : ipv4).push(ip)
    return { ipv4, ipv6 }
  }

  /** `<name>.<network>` for an address, unless it is unknown or marked externally resolved. */
  lookupAddress(address: string): string | undefined {
    const list = this.reverse.get(address)
    const e = list?.[0]
    if (e === undefined || e.external) return undefined
    return `${e.name}.${this.name}`
  }

  lookupService(name: string, service: string, protocol: ServiceProtocol): readonly ServiceRecord[] | undefined {
    return this.services.get(serviceKey(name, service, protocol))
  }

  /** Marks reverse entries of these addresses as externally resolved (their PTR queries are forwarded). */
  markExternal(addresses: readonly string[]): void {
    let changed = false
    for (const a of addresses) {
      for (const e of this.reverse.get(a) ?? []) {
        if (!e.external) {
          e.external = true
          changed = true
        }
      }
    }
    if (changed) this.bump()
  }
}

/** One network a sandbox is attached to, in the sandbox's endpoint order. */
export interface SandboxAttachment {
  readonly network: NetworkRecords
  /** Legacy link aliases of the sandbox's endpoint on this network: alias → real name. */
  readonly linkAliases?: Readonly<Record<string, string>>
}

/**
 * A sandbox's view of its networks' records, implementing the sandbox lookup of sandbox-dns.md
 * §3.2: candidates `(whole name, any network)`, then `(prefix, network = suffix)` splitting at
 * each dot from the right; per candidate link aliases first, then the plain name on each network
 * in endpoint order. Per-sandbox state is the attachment list only.
 */
export class SandboxRecords implements DnsRecordSource {
  private attachments: readonly SandboxAttachment[] = []
  private own = 0
  private readonly listeners = new Set<() => void>()
  /** Subscriptions to the attached networks while anyone listens here. */
  private unsubscribe: Array<() => void> = []
  private readonly relay = (): void => notify(this.listeners)

  constructor(attachments: readonly SandboxAttachment[] = []) {
    this.setAttachments(attachments)
  }

  /** Replaces the ordered attachment list (join, leave, order change). */
  setAttachments(attachments: readonly SandboxAttachment[]): void {
    this.attachments = attachments.map((a) => ({
      network: a.network,
      linkAliases: Object.fromEntries(
        Object.entries(a.linkAliases ?? {}).map(([k, v]) => [k.toLowerCase(), v.toLowerCase()]),
      ),
    }))
    this.own++
    if (this.listeners.size > 0) {
      this.resubscribe()
      notify(this.listeners)
    }
  }

  /**
   * Calls `listener` synchronously whenever `generation` changes (this view or any attached network);
   * returns the function that removes it. Networks are listened to only while this view has listeners,
   * so a dropped view leaves nothing behind on shared networks once its listeners are removed.
   */
  onChange(listener: () => void): () => void {
    if (typeof listener !== 'function') throw new InvalidResolverOptionError('listener: must be a function')
    const own = (): void => listener()
    this.listeners.add(own)
    if (this.listeners.size === 1) this.resubscribe()
    return () => {
      if (!this.listeners.delete(own)) return
      if (this.listeners.size === 0) this.resubscribe()
    }
  }

  private resubscribe(): void {
    for (const u of this.unsubscribe.splice(0)) u()
    if (this.listeners.size === 0) return
    const seen = new Set<NetworkRecords>()
    for (const a of this.attachments) {
      if (seen.has(a.network)) continue
      seen.add(a.network)
      this.unsubscribe.push(a.network.onChange(this.relay))
    }
  }

  get generation(): number {
    let g = this.own
    for (const a of this.attachments) g += a.network.generation
    return g
  }

  lookupName(name: string): NameRecords | undefined {
    let ipv4: readonly string[] | undefined
    let ipv6: readonly string[] | undefined
    let known = false
    const visit = (r: NameRecords | undefined): boolean => {
      if (r === undefined) return false
      known = true
      if (ipv4 === undefined && r.ipv4.length > 0) ipv4 = r.ipv4
      if (ipv6 === undefined && r.ipv6.length > 0) ipv6 = r.ipv6
      return ipv4 !== undefined && ipv6 !== undefined
    }
    for (const [prefix, net] of candidates(name)) {
      for (const a of this.attachments) {
        if (net !== undefined && a.network.name !== net) continue
        const real = a.linkAliases?.[prefix]
        if (real !== undefined && visit(a.network.lookupName(real))) break
      }
      for (const a of this.attachments) {
        if (net !== undefined && a.network.name !== net) continue
        if (a.linkAliases?.[prefix] !== undefined) continue
        if (visit(a.network.lookupName(prefix))) break
      }
      if (known) break
    }
    if (!known) return undefined
    return { ipv4: ipv4 ?? [], ipv6: ipv6 ?? [] }
  }

  lookupAddress(address: string, _version?: 4 | 6): string | undefined {
    for (const a of this.attachments) {
      const hit = a.network.lookupAddress(address)
      if (hit !== undefined) return hit
    }
    return undefined
  }

  lookupService(name: string, service: string, protocol: ServiceProtocol): readonly ServiceRecord[] | undefined {
    for (const a of this.attachments) {
      const hit = a.network.lookupService(name, service, protocol)
      if (hit !== undefined && hit.length > 0) return hit
    }
    return undefined
  }

  reportExternal(_name: string, addresses: readonly string[]): void {
    for (const a of this.attachments) a.network.markExternal(addresses)
  }
}

/** Calls every listener; the first exception is rethrown after all of them ran. */
function notify(listeners: ReadonlySet<() => void>): void {
  let first: { err: unknown } | undefined
  for (const l of [...listeners]) {
    try {
      l()
    } catch (err) {
      first ??= { err }
    }
  }
  if (first !== undefined) throw first.err
}

/** `a.b.c` → [a.b.c, any], [a.b, c], [a, b.c]. */
function* candidates(name: string): Generator<[string, string | undefined]> {
  yield [name, undefined]
  for (let i = name.lastIndexOf('.'); i > 0; i = name.lastIndexOf('.', i - 1)) {
    yield [name.slice(0, i), name.slice(i + 1)]
  }
}

function normName(name: string): string {
  if (typeof name !== 'string') throw new InvalidResolverOptionError('name: must be a string')
  const n = name.toLowerCase().replace(/\.$/, '')
  if (n.length === 0) throw new InvalidResolverOptionError('name: must not be empty')
  return n
}

function normAddress(address: string): string {
  if (typeof address === 'string' && isIPv4(address)) return address
  if (typeof address === 'string' && isIPv6(address)) {
    const b = ipv6Bytes(address.split('%')[0] as string)
    if (b !== undefined) return formatIpv6(b)
  }
  throw new InvalidResolverOptionError(`address: not an IP address: ${String(address)}`)
}

function serviceKey(name: string, service: string, protocol: string): string {
  return `${normName(name)}|${service.toLowerCase().replace(/^_/, '')}|${protocol.toLowerCase().replace(/^_/, '')}`
}
