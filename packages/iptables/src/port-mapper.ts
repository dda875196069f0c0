import { close as closeFdCallback } from 'node:fs'
import { promisify } from 'node:util'
import { formatIp, isCnmError, parseIp, throwIfAborted } from '@cnm/types'
import type { AbortOptions, ComponentLogger, IpVersion, Logger } from '@cnm/types'
import type { BridgeFirewall } from './bridge.js'
import {
  InvalidFirewallOptionError,
  InvalidPortRangeError,
  IptablesNotFoundError,
  PortAlreadyAllocatedError,
  PortAlreadyMappedError,
  PortNotMappedError,
} from './errors.js'
import type { Change, RuleChange } from './iptables.js'
import { assertInterfaceName, mappingRuleChanges, sctpChainChanges } from './internal/layout.js'
import { assertProtocol, normalizeHostIp } from './port-allocator.js'
import type { PortAllocator, Protocol } from './port-allocator.js'

const closeFd = promisify(closeFdCallback)

/** One requested port binding (Docker's `-p [hostIp:]hostPort[-hostPortEnd]:containerPort/proto`). */
export interface PortBinding {
  proto: Protocol
  /** The endpoint's address; its family decides iptables vs ip6tables. */
  containerIp: string
  containerPort: number
  /** Host address to publish on. @default the unspecified address of containerIp's family */
  hostIp?: string
  /** 0 or undefined: an ephemeral port. */
  hostPort?: number
  /** Last port of a host port range; 0 or undefined: same as hostPort. */
  hostPortEnd?: number
}

/** A binding as it is in effect, with the actual host port. */
export interface PortMapping {
  readonly proto: Protocol
  readonly containerIp: string
  readonly containerPort: number
  /** Canonical host address; `0.0.0.0` / `::` mean every address. */
  readonly hostIp: string
  readonly hostPort: number
  /** `<hostIp>:<port>/<proto>` (`[<v6>]:<port>/<proto>` for IPv6). */
  readonly key: string
}

/** What a port holder returns: a bound socket that keeps the host port taken. */
export interface HeldPort {
  /** Closed with fs.close when `close` is not given. */
  readonly fd?: number
  readonly port?: number
  close?(): void | Promise<void>
}

/**
 * Binds (and for TCP listens on) the host port so nothing else can take it while it is mapped;
 * `openSocketInNetns` of @cnm/osl fits. Must reject when the port cannot be bound.
 */
export type PortHolder = (
  netns: string | undefined,
  spec: { type: Protocol; address: string; port: number },
) => Promise<HeldPort>

export interface PortMapperInit {
  /** The bridge network's device (used in the ACCEPT rule, and the DNAT rule without hairpin). */
  bridge: string
  /**
   * How many ephemeral ports to try when the port holder cannot bind one.
   * @default 10
   */
  ephemeralRetries?: number
  /**
   * Which unpublished mappings get their connection-tracking entries deleted
   * (`BridgeFirewall.flushConntrack`), so existing flows stop reaching the old container: `udp`
   * (UDP has no connection end, a stale entry lives on as long as packets keep coming), `all`, or
   * `none`. A failure is logged, not thrown. About one conntrack run (a kernel table walk) per mapping.
   * @default 'udp'
   */
  flushConntrack?: 'udp' | 'all' | 'none'
}

/** Options of `release`. */
export interface ReleaseOptions extends AbortOptions {
  /**
   * Release only these reservations of the owner (mapping keys such as `0.0.0.0:8080/tcp`); keys the
   * owner does not hold are ignored. The owner stays known while it holds other reservations.
   * @default every reservation of the owner
   */
  keys?: readonly string[]
}

export interface PortMapperComponents {
  logger: ComponentLogger
  /** Chains, namespace and hairpin mode come from here. */
  firewall: BridgeFirewall
  /** Shared by every mapper of the host namespace. */
  allocator: PortAllocator
  /** Optional listener that holds each mapped host port (libnetwork's dummy proxy). */
  holdPort?: PortHolder
}

export const DEFAULT_PORT_MAPPER_INIT = Object.freeze({ ephemeralRetries: 10, flushConntrack: 'udp' as const })

interface Request {
  proto: Protocol
  family: IpVersion
  containerIp: string
  containerPort: number
  hostIp: string
  hostPort: number
  hostPortEnd: number
}

interface Entry {
  readonly request: Request
  mapping: PortMapping
  active: boolean
  held: HeldPort | undefined
}

/**
 * Publishes container ports of one bridge network: host port allocation, DNAT/ACCEPT/MASQUERADE
 * rules in the firewall's chains, and an optional port holder. Mappings belong to an owner (an
 * endpoint): `map` publishes, `unmap` takes the rules and holders away but keeps the host ports
 * reserved for the owner (leave), `release` frees them (endpoint delete). The next `map` of the
 * same owner with the same bindings gets the same host ports back.
 */
export class PortMapper {
  readonly bridge: string
  private readonly log: Logger
  private readonly firewall: BridgeFirewall
  private readonly allocator: PortAllocator
  private readonly holdPort: PortHolder | undefined
  private readonly retries: number
  private readonly conntrack: 'udp' | 'all' | 'none'
  private readonly owners = new Map<string, Entry[]>()
  /** Owners whose last call was a successful map (unmap is valid for them). */
  private readonly mapped = new Set<string>()
  private queue: Promise<unknown> = Promise.resolve()

  constructor(init: PortMapperInit, components: PortMapperComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidFirewallOptionError('init must be an object')
    assertInterfaceName(init.bridge, 'bridge')
    const retries = init.ephemeralRetries ?? DEFAULT_PORT_MAPPER_INIT.ephemeralRetries
    if (!Number.isInteger(retries) || retries < 1 || retries > 1000) {
      throw new InvalidFirewallOptionError(`ephemeralRetries must be an integer in 1..1000, got ${String(retries)}`)
    }
    const conntrack = init.flushConntrack ?? DEFAULT_PORT_MAPPER_INIT.flushConntrack
    if (!['udp', 'all', 'none'].includes(conntrack)) {
      throw new InvalidFirewallOptionError(`flushConntrack must be udp, all or none, got ${JSON.stringify(conntrack)}`)
    }
    this.bridge = init.bridge
    this.retries = retries
    this.conntrack = conntrack
    this.firewall = components.firewall
    this.allocator = components.allocator
    this.holdPort = components.holdPort
    this.log = components.logger.forComponent('cnm:iptables:portmapper').child(init.bridge)
  }

  /**
   * Publishes the owner's bindings: all or nothing. A host port the owner has reserved (from an
   * earlier `map`, `reserve` or `adopt`, not published now) is reused for a binding with the same
   * protocol, host address and container port when it fits the binding (same binding first, then any
   * reserved port inside the requested host port or range; an ephemeral binding takes any). A
   * reserved port that can no longer be held fails with PortAlreadyAllocatedError rather than moving.
   */
  async map(owner: string, bindings: readonly PortBinding[], options: AbortOptions = {}): Promise<PortMapping[]> {
    throwIfAborted(options.signal)
    assertOwner(owner)
    if (!Array.isArray(bindings as unknown)) throw new InvalidFirewallOptionError('bindings must be an array')
    const requests = bindings.map((b, i) => normalizeBinding(b, i))
    return await this.serialize(async () => {
      throwIfAborted(options.signal)
      const reserved = this.owners.get(owner) ?? []
      const fresh: Entry[] = []
      const reused: Entry[] = []
      const claimed = new Set<Entry>()
      const ordered: Entry[] = []
      try {
        for (const req of requests) {
          const free = reserved.filter((e) => !claimed.has(e) && !e.active)
          const prior = free.find((e) => sameRequest(e.request, req)) ?? free.find((e) => fits(e, req))
          if (prior === undefined) {
            const busy = reserved.find((e) => e.active && sameRequest(e.request, req))
            if (busy !== undefined) throw new PortAlreadyMappedError(busy.mapping.key)
          }
          if (prior !== undefined) {
            claimed.add(prior)
            prior.mapping = mappingOf(req, prior.mapping.hostPort)
            this.assertNotMapped(prior.mapping.key)
            prior.held = await this.hold(req, prior.mapping.hostPort, options)
            reused.push(prior)
            ordered.push(prior)
            continue
          }
          const e = await this.allocate(req, options)
          fresh.push(e)
          ordered.push(e)
        }
        const entries = [...reused, ...fresh]
        const keys = new Set<string>()
        for (const e of entries) {
          if (keys.has(e.mapping.key)) throw new PortAlreadyMappedError(e.mapping.key)
          keys.add(e.mapping.key)
        }
        await this.applyRules(entries, 'add', options)
        for (const e of entries) e.active = true
        this.owners.set(owner, [...reserved, ...fresh])
        this.mapped.add(owner)
        const out = ordered.map((e) => e.mapping)
        this.log('mapped %s: %s', owner, out.map((m) => `${m.key}->${m.containerIp}:${m.containerPort}`).join(', '))
        return out
      } catch (err) {
        for (const e of [...reused, ...fresh]) await this.unhold(e)
        for (const e of fresh) this.allocator.releasePort(e.request.hostIp, e.request.proto, e.mapping.hostPort)
        throw err
      }
    })
  }

  /**
   * Reserves host ports for the owner without publishing them (no rules, no holder): a new
   * allocation per binding (exact port, range or ephemeral), all or nothing. A later `map` of the
   * owner reuses them. Returns the reservations.
   */
  async reserve(owner: string, bindings: readonly PortBinding[], options: AbortOptions = {}): Promise<PortMapping[]> {
    throwIfAborted(options.signal)
    assertOwner(owner)
    if (!Array.isArray(bindings as unknown)) throw new InvalidFirewallOptionError('bindings must be an array')
    const requests = bindings.map((b, i) => normalizeBinding(b, i))
    return await this.serialize(async () => {
      throwIfAborted(options.signal)
      const fresh: Entry[] = []
      try {
        for (const req of requests) {
          const port = this.allocator.requestPortInRange(req.hostIp, req.proto, req.hostPort, req.hostPortEnd)
          const e: Entry = { request: req, mapping: mappingOf(req, port), active: false, held: undefined }
          fresh.push(e)
          this.assertNotMapped(e.mapping.key)
        }
      } catch (err) {
        for (const e of fresh) this.allocator.releasePort(e.request.hostIp, e.request.proto, e.mapping.hostPort)
        throw err
      }
      this.owners.set(owner, [...(this.owners.get(owner) ?? []), ...fresh])
      this.log.trace('reserved for %s: %s', owner, fresh.map((e) => e.mapping.key).join(', '))
      return fresh.map((e) => e.mapping)
    })
  }

  /**
   * Takes back mappings the owner had before a restart (kept in the caller's store): each mapping's
   * exact host port becomes the owner's reservation again, unpublished; a following `map` of the
   * owner publishes them on the same ports. Ports the owner already holds are kept as they are. All or
   * nothing: a port someone else holds fails with PortAlreadyAllocatedError. Every mapping needs an
   * exact `hostPort` (a `PortMapping` fits).
   */
  async adopt(owner: string, mappings: readonly PortBinding[], options: AbortOptions = {}): Promise<PortMapping[]> {
    throwIfAborted(options.signal)
    assertOwner(owner)
    if (!Array.isArray(mappings as unknown)) throw new InvalidFirewallOptionError('mappings must be an array')
    const requests = mappings.map((b, i) => {
      const req = normalizeBinding(b, i)
      if (req.hostPort === 0 || req.hostPortEnd !== req.hostPort) {
        throw new InvalidPortRangeError(
          `mappings[${i}] needs an exact hostPort to adopt, got ${req.hostPort}-${req.hostPortEnd}`,
        )
      }
      return req
    })
    return await this.serialize(async () => {
      throwIfAborted(options.signal)
      const held = this.owners.get(owner) ?? []
      const fresh: Entry[] = []
      const out: PortMapping[] = []
      try {
        for (const req of requests) {
          const mapping = mappingOf(req, req.hostPort)
          const mine = [...held, ...fresh].find((e) => e.mapping.key === mapping.key)
          if (mine !== undefined) {
            out.push(mine.mapping)
            continue
          }
          this.allocator.requestPort(req.hostIp, req.proto, req.hostPort)
          fresh.push({ request: req, mapping, active: false, held: undefined })
          out.push(mapping)
        }
      } catch (err) {
        for (const e of fresh) this.allocator.releasePort(e.request.hostIp, e.request.proto, e.mapping.hostPort)
        throw err
      }
      if (fresh.length > 0 || held.length > 0) this.owners.set(owner, [...held, ...fresh])
      this.log.trace('adopted for %s: %s', owner, out.map((m) => m.key).join(', '))
      return out
    })
  }

  /**
   * Takes the owner's active mappings down (rules, holders) and keeps the host ports reserved for
   * the owner (container stop / leave). Throws PortNotMappedError unless the owner's last call was
   * a successful `map` (an owner mapped with no bindings unmaps fine).
   */
  async unmap(owner: string, options: AbortOptions = {}): Promise<PortMapping[]> {
    throwIfAborted(options.signal)
    assertOwner(owner)
    return await this.serialize(async () => {
      if (!this.mapped.has(owner)) throw new PortNotMappedError(owner)
      const active = (this.owners.get(owner) ?? []).filter((e) => e.active)
      await this.takeDown(active, options)
      this.mapped.delete(owner)
      this.log('unmapped %s (ports stay reserved)', owner)
      return active.map((e) => e.mapping)
    })
  }

  /**
   * Frees everything the owner holds: takes active mappings down, then releases the reserved host
   * ports (endpoint delete). Exactly once per owner that was mapped (or reserved, or adopted): a
   * second call, or a call for an unknown owner, throws PortNotMappedError. With `keys`, only those
   * reservations go.
   */
  async release(owner: string, options: ReleaseOptions = {}): Promise<PortMapping[]> {
    throwIfAborted(options.signal)
    assertOwner(owner)
    const keys = options.keys === undefined ? undefined : new Set(options.keys)
    return await this.serialize(async () => {
      const all = this.owners.get(owner)
      if (all === undefined) throw new PortNotMappedError(owner)
      const entries = keys === undefined ? all : all.filter((e) => keys.has(e.mapping.key))
      const active = entries.filter((e) => e.active)
      if (active.length > 0) await this.takeDown(active, options)
      for (const e of entries) this.allocator.releasePort(e.request.hostIp, e.request.proto, e.mapping.hostPort)
      const rest = all.filter((e) => !entries.includes(e))
      if (rest.length === 0) {
        this.owners.delete(owner)
        this.mapped.delete(owner)
        this.log('released %s', owner)
      } else {
        this.owners.set(owner, rest)
        this.log.trace('released %s of %s', entries.map((e) => e.mapping.key).join(', '), owner)
      }
      return entries.map((e) => e.mapping)
    })
  }

  /**
   * Closes every port holder and keeps everything else: rules, reservations and mapping state
   * (daemon shutdown with containers left running; the next process adopts the mappings). A later
   * `unmap`/`release` still removes the rules.
   */
  async closeHolders(): Promise<void> {
    await this.serialize(async () => {
      for (const list of this.owners.values()) for (const e of list) await this.unhold(e)
    })
  }

  /** Unmaps a single active mapping by key (`0.0.0.0:8080/tcp`) and releases its host port. */
  async unmapKey(key: string, options: AbortOptions = {}): Promise<PortMapping> {
    throwIfAborted(options.signal)
    return await this.serialize(async () => {
      for (const [owner, entries] of this.owners) {
        const e = entries.find((x) => x.active && x.mapping.key === key)
        if (e === undefined) continue
        await this.takeDown([e], options)
        this.allocator.releasePort(e.request.hostIp, e.request.proto, e.mapping.hostPort)
        const rest = entries.filter((x) => x !== e)
        this.owners.set(owner, rest)
        return e.mapping
      }
      throw new PortNotMappedError(key)
    })
  }

  /** Active mappings (of one owner, or all). */
  mappings(owner?: string): PortMapping[] {
    const lists = owner === undefined ? [...this.owners.values()] : [this.owners.get(owner) ?? []]
    return lists
      .flat()
      .filter((e) => e.active)
      .map((e) => e.mapping)
  }

  /** Host ports reserved by an owner, mapped or not. */
  reservations(owner: string): PortMapping[] {
    return (this.owners.get(owner) ?? []).map((e) => e.mapping)
  }

  /** Re-adds the rules of every active mapping (after a firewall reload); idempotent. */
  async remapAll(options: AbortOptions = {}): Promise<void> {
    await this.serialize(async () => {
      await this.applyRules(
        [...this.owners.values()].flat().filter((e) => e.active),
        'add',
        options,
      )
    })
  }

  /** Releases every owner (for shutdown). */
  async releaseAll(options: AbortOptions = {}): Promise<void> {
    for (const owner of [...this.owners.keys()]) await this.release(owner, options)
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.releaseAll()
  }

  /** Deletes the conntrack entries of mappings just taken down (best effort; see `flushConntrack`). */
  private async flushConntrackOf(entries: readonly Entry[], options: AbortOptions): Promise<void> {
    if (this.conntrack === 'none') return
    const flows = entries
      .filter((e) => this.conntrack === 'all' || e.request.proto === 'udp')
      .map((e) => ({
        family: e.request.family,
        proto: e.request.proto,
        hostIp: e.mapping.hostIp,
        hostPort: e.mapping.hostPort,
      }))
    if (flows.length === 0) return
    try {
      await this.firewall.flushConntrack(flows, options)
    } catch (err) {
      if (isCnmError(err, 'ERR_ABORTED')) throw err
      this.log.error(
        'deleting conntrack entries of %s failed: %s',
        entries.map((e) => e.mapping.key).join(', '),
        (err as Error).message,
      )
    }
  }

  private async allocate(req: Request, options: AbortOptions): Promise<Entry> {
    const ephemeral = req.hostPort === 0 || req.hostPort !== req.hostPortEnd
    const attempts = ephemeral && this.holdPort !== undefined ? this.retries : 1
    let lastErr: unknown
    for (let i = 0; i < attempts; i++) {
      throwIfAborted(options.signal)
      const port = this.allocator.requestPortInRange(req.hostIp, req.proto, req.hostPort, req.hostPortEnd)
      const mapping = mappingOf(req, port)
      try {
        this.assertNotMapped(mapping.key)
        const held = await this.hold(req, port, options)
        return { request: req, mapping, active: false, held }
      } catch (err) {
        this.allocator.releasePort(req.hostIp, req.proto, port)
        lastErr = err
        if (!ephemeral || !isCnmError(err, 'ERR_PORT_ALREADY_ALLOCATED')) throw err
        this.log.trace('host port %d busy, trying another', port)
      }
    }
    throw lastErr
  }

  private assertNotMapped(key: string): void {
    for (const entries of this.owners.values()) {
      if (entries.some((e) => e.active && e.mapping.key === key)) throw new PortAlreadyMappedError(key)
    }
  }

  private async hold(req: Request, port: number, options: AbortOptions): Promise<HeldPort | undefined> {
    if (this.holdPort === undefined) return undefined
    throwIfAborted(options.signal)
    try {
      return await this.holdPort(this.firewall.netns, { type: req.proto, address: req.hostIp, port })
    } catch (err) {
      throw new PortAlreadyAllocatedError(req.hostIp, port, { cause: err })
    }
  }

  private async unhold(e: Entry): Promise<void> {
    const held = e.held
    e.held = undefined
    if (held === undefined) return
    try {
      if (held.close !== undefined) await held.close()
      else if (held.fd !== undefined) await closeFd(held.fd)
    } catch (err) {
      this.log.error('closing the holder of %s failed: %s', e.mapping.key, (err as Error).message)
    }
  }

  private async takeDown(entries: Entry[], options: AbortOptions): Promise<void> {
    await this.applyRules(entries, 'remove', options)
    for (const e of entries) {
      e.active = false
      await this.unhold(e)
    }
    await this.flushConntrackOf(entries, options)
  }

  /** Adds the rules of `entries`, or removes those no other active mapping still needs. */
  private async applyRules(entries: Entry[], action: 'add' | 'remove', options: AbortOptions): Promise<void> {
    const hairpin = this.firewall.hairpin
    const rulesOf = (e: Entry): RuleChange[] =>
      mappingRuleChanges(this.firewall.chains, {
        proto: e.request.proto,
        hostIp: isUnspecified(e.mapping.hostIp) ? undefined : e.mapping.hostIp,
        hostPort: e.mapping.hostPort,
        containerIp: e.mapping.containerIp,
        containerPort: e.mapping.containerPort,
        bridge: this.bridge,
        hairpin,
        family: e.request.family,
      })
    const id = (c: RuleChange): string => `${c.table} ${c.chain} ${c.rule.join(' ')}`
    const target = new Set(entries)
    const stillNeeded = new Set<string>()
    if (action === 'remove') {
      for (const list of this.owners.values()) {
        for (const e of list) if (e.active && !target.has(e)) for (const c of rulesOf(e)) stillNeeded.add(id(c))
      }
    }
    const applied: Array<{ family: IpVersion; undo: readonly Change[] }> = []
    try {
      for (const family of [4, 6] as const) {
        const mine = entries.filter((e) => e.request.family === family)
        if (mine.length === 0) continue
        const ipt = await this.firewall.iptables(family, options)
        if (ipt === undefined) throw new IptablesNotFoundError('ip6tables is missing')
        const changes: Change[] = []
        if (action === 'add' && mine.some((e) => e.request.proto === 'sctp'))
          changes.push(...sctpChainChanges(this.firewall.chains))
        const seen = new Set<string>()
        for (const e of mine) {
          for (const c of rulesOf(e)) {
            if (seen.has(id(c)) || stillNeeded.has(id(c))) continue
            seen.add(id(c))
            changes.push(action === 'add' ? c : { op: 'delete', table: c.table, chain: c.chain, rule: c.rule })
          }
        }
        const r = await ipt.apply(changes, options)
        applied.push({ family, undo: r.undo })
      }
    } catch (err) {
      for (const a of applied) {
        const ipt = await this.firewall.iptables(a.family)
        await ipt
          ?.apply(a.undo)
          .catch((e: unknown) => this.log.error('undo after a failed mapping change failed: %s', (e as Error).message))
      }
      throw err
    }
  }

  private async serialize<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn, fn)
    // the queue only orders calls; each caller sees its own result or error
    this.queue = run.catch(() => undefined)
    return await run
  }
}

/** Creates the port mapper of one bridge network. */
export function portMapper(init: PortMapperInit, components: PortMapperComponents): PortMapper {
  return new PortMapper(init, components)
}

function assertOwner(owner: unknown): asserts owner is string {
  if (typeof owner !== 'string' || owner.length === 0)
    throw new InvalidFirewallOptionError('owner must be a non-empty string')
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::'
}

function normalizeBinding(b: PortBinding, i: number): Request {
  if (b === null || typeof b !== 'object') throw new InvalidFirewallOptionError(`bindings[${i}] must be an object`)
  assertProtocol(b.proto)
  let container
  try {
    container = parseIp(b.containerIp)
  } catch (err) {
    throw new InvalidFirewallOptionError(
      `bindings[${i}].containerIp must be an IP address, got ${JSON.stringify(b.containerIp)}`,
      { cause: err },
    )
  }
  const family = container.version
  const hostIp = normalizeHostIp(
    b.hostIp === undefined || b.hostIp === '' ? (family === 4 ? '0.0.0.0' : '::') : b.hostIp,
  )
  if (parseIp(hostIp).version !== family) {
    throw new InvalidFirewallOptionError(
      `bindings[${i}]: hostIp ${hostIp} and containerIp ${b.containerIp} are of different families`,
    )
  }
  const port = (v: unknown, field: string, min: number): number => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > 65535) {
      throw new InvalidPortRangeError(`bindings[${i}].${field} must be an integer in ${min}..65535, got ${String(v)}`)
    }
    return v
  }
  const containerPort = port(b.containerPort, 'containerPort', 1)
  const hostPort = port(b.hostPort ?? 0, 'hostPort', 0)
  const hostPortEnd =
    b.hostPortEnd === undefined || b.hostPortEnd === 0 ? hostPort : port(b.hostPortEnd, 'hostPortEnd', 1)
  if (hostPort === 0 && hostPortEnd !== 0)
    throw new InvalidPortRangeError(`bindings[${i}]: hostPortEnd without hostPort`)
  if (hostPortEnd < hostPort)
    throw new InvalidPortRangeError(`bindings[${i}]: invalid host port range ${hostPort}-${hostPortEnd}`)
  return { proto: b.proto, family, containerIp: formatIp(container), containerPort, hostIp, hostPort, hostPortEnd }
}

function sameRequest(a: Request, b: Request): boolean {
  return (
    a.proto === b.proto &&
    a.hostIp === b.hostIp &&
    a.hostPort === b.hostPort &&
    a.hostPortEnd === b.hostPortEnd &&
    a.containerPort === b.containerPort &&
    a.family === b.family
  )
}

/** A reserved entry whose port satisfies the request (same protocol, host address and container port). */
function fits(e: Entry, req: Request): boolean {
  const r = e.request
  if (
    r.proto !== req.proto ||
    r.family !== req.family ||
    r.hostIp !== req.hostIp ||
    r.containerPort !== req.containerPort
  )
    return false
  if (req.hostPort === 0) return true
  return e.mapping.hostPort >= req.hostPort && e.mapping.hostPort <= req.hostPortEnd
}

function mappingOf(req: Request, hostPort: number): PortMapping {
  const host = req.family === 6 ? `[${req.hostIp}]` : req.hostIp
  return Object.freeze({
    proto: req.proto,
    containerIp: req.containerIp,
    containerPort: req.containerPort,
    hostIp: req.hostIp,
    hostPort,
    key: `${host}:${hostPort}/${req.proto}`,
  })
}
