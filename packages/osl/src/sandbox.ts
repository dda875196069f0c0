import { formatCidr, formatPrefix, parseIp, prefixContains, type AbortOptions, type IpPrefix } from '@cnm/types'
import type { NsTarget } from './batch.js'
import {
  GatewayUnreachableError,
  InterfaceNotFoundError,
  InvalidOptionError,
  LinkExistsError,
  NeighborExistsError,
  NeighborNotFoundError,
  RouteConflictError,
} from './errors.js'
import { Netns, type OslContext } from './netns.js'
import { NetnsPlan, type NsResolver } from './plan.js'
import type { Transaction } from './transaction.js'
import type { AddressInfo, MutateOptions, RouteInfo } from './types.js'
import {
  validateCidr,
  validateDestination,
  validateIfName,
  validateIfPrefix,
  validateIp,
  validateMac,
  validateMtu,
} from './validate.js'

/** Create a veth pair for the interface instead of moving an existing link (the fast path). */
export interface InterfaceVeth {
  /** Name of the end that stays in the host namespace. */
  hostName: string
  /** Enslave the host end to this bridge (host namespace). */
  master?: string
  /** MAC of the host end. */
  hostMac?: string
}

export interface AddInterfaceOptions {
  /**
   * The link's name in the host namespace (a veth end); it is moved in and renamed. With `veth`, the name
   * the in-sandbox end takes if it is ever moved back (optional: without it, removal deletes the pair).
   */
  srcName?: string
  /**
   * Create a veth pair whose sandbox end is born inside the sandbox (already renamed, MAC and MTU set) and
   * whose other end stays in the host, enslaved and up — one netlink request. Moving an existing link
   * between namespaces costs the kernel an RCU grace period (about 25 ms here); this does not.
   */
  veth?: InterfaceVeth
  /** In-sandbox name = prefix + per-prefix counter (`eth0`, `eth1`…). @default 'eth' */
  dstPrefix?: string
  /** Explicit in-sandbox name (instead of prefix + counter). */
  dstName?: string
  mac?: string
  mtu?: number
  /** IPv4 and/or IPv6 addresses with prefix length; IPv6 enables IPv6 on the interface and is added nodad. */
  addresses?: string[]
  /** Extra link-local addresses (`fe80::…/64`, `169.254.…/16`). */
  linkLocalAddresses?: string[]
  /** Destinations (`network/len`) routed through this interface as link-scope routes. */
  routes?: string[]
  /** Create a bridge named `dstName`/prefix+n inside the sandbox instead of moving a link. */
  bridge?: boolean
  /** Source name of a bridge previously added to this sandbox to enslave this interface to. */
  master?: string
  /** @default true */
  up?: boolean
}

/** One interface of a sandbox, as recorded by the sandbox. */
export interface SandboxInterface {
  /** Name in the host namespace (undefined for bridges created inside, or for restored links without one). */
  readonly srcName: string | undefined
  /** Host end of a veth pair created with the `veth` option. */
  readonly hostPeer: string | undefined
  /** Name inside the sandbox. */
  readonly dstName: string
  readonly bridge: boolean
  readonly master: string | undefined
  readonly mac: string | undefined
  readonly mtu: number | undefined
  /** Addresses with prefix length, canonical text. */
  readonly addresses: readonly string[]
  readonly routes: readonly string[]
}

export interface StaticRoute {
  destination: string
  nextHop: string
}

export interface SandboxNeighbor {
  ip: string
  mac: string
  /** srcName of an interface of this sandbox. */
  linkName?: string
  /** `bridge`: an FDB entry (NTF_SELF) on the link instead of an ARP/ND entry. */
  family?: 'inet' | 'bridge'
}

/** @internal Sandbox state that only changes on successful commits. */
interface State {
  interfaces: Map<string, SandboxInterface> // by dstName
  counters: Map<string, number>
  pendingNames: Set<string>
  pendingPrefixes: Array<{ prefix: IpPrefix; owner: string }>
  gateway: string | undefined
  gateway6: string | undefined
  staticRoutes: StaticRoute[]
  neighbors: Array<
    Required<Pick<SandboxNeighbor, 'ip' | 'mac'>> & { dev: string | undefined; family: 'inet' | 'bridge' }
  >
  loIpv6: boolean
  /** Routes found in the kernel when the sandbox was opened (conflict checks). */
  foreignRoutes: IpPrefix[]
}

/**
 * Queues sandbox changes on a transaction: everything NetnsPlan does plus interfaces, gateways, static
 * routes and neighbours with the sandbox's bookkeeping (updated only when the transaction commits).
 */
export class SandboxPlan extends NetnsPlan {
  /** @internal */
  constructor(
    tx: Transaction,
    private readonly sandbox: Sandbox,
    resolver: NsResolver,
    private readonly host: NsTarget,
  ) {
    super(tx, sandbox.target, resolver)
  }

  /**
   * Moves host link `srcName` into the sandbox (renamed, MAC, MTU in the same netlink request), then adds
   * addresses, enslaves to `master`, sets it up and adds its routes. Returns the record it will have once
   * the transaction commits. Rollback moves the link back under its old name.
   */
  addInterface(opts: AddInterfaceOptions): SandboxInterface {
    const st = this.sandbox.state
    if (typeof opts !== 'object' || opts === null) throw new InvalidOptionError('interface options: required')
    const bridge = opts.bridge === true
    const veth = opts.veth
    if (veth !== undefined && bridge) throw new InvalidOptionError('veth and bridge: pick one')
    const srcName =
      (bridge || veth !== undefined) && opts.srcName === undefined ? undefined : validateIfName(opts.srcName, 'srcName')
    const hostPeer = veth === undefined ? undefined : validateIfName(veth.hostName, 'veth.hostName')
    const hostMaster = veth?.master === undefined ? undefined : validateIfName(veth.master, 'veth.master')
    const hostMac = veth?.hostMac === undefined ? undefined : validateMac(veth.hostMac, 'veth.hostMac')
    const mac = opts.mac === undefined ? undefined : validateMac(opts.mac)
    const mtu = opts.mtu === undefined ? undefined : validateMtu(opts.mtu)
    const addrs = (opts.addresses ?? []).map((a, i) => validateCidr(a, `addresses[${i}]`))
    const ll = (opts.linkLocalAddresses ?? []).map((a, i) => validateCidr(a, `linkLocalAddresses[${i}]`))
    const routes = (opts.routes ?? []).map((r, i) => validateDestination(r, `routes[${i}]`))
    let master: SandboxInterface | undefined
    if (opts.master !== undefined) {
      master = [...st.interfaces.values()].find(
        (i) => i.bridge && (i.srcName === opts.master || i.dstName === opts.master),
      )
      if (master === undefined) {
        throw new InterfaceNotFoundError(
          `could not find an appropriate master "${opts.master}" for "${String(srcName)}"`,
        )
      }
    }
    if (srcName !== undefined && [...st.interfaces.values()].some((i) => i.srcName === srcName)) {
      throw new LinkExistsError(`interface ${srcName} is already in sandbox ${this.sandbox.key}`)
    }
    // route conflicts (libnetwork: an existing route containing the address, or inside its subnet)
    const known = this.sandbox.knownPrefixes()
    for (const a of addrs) {
      for (const k of known) {
        if (k.bits === 0 || k.version !== a.ip.version) continue
        if (prefixContains(k, a.ip) || prefixContains(a.prefix, { version: k.version, value: k.network })) {
          throw new RouteConflictError(
            `cannot program address ${formatCidr(a)} in sandbox interface because it conflicts with existing route ${formatPrefix(k)}`,
          )
        }
      }
    }
    // name
    let dstName: string
    let counterPrefix: string | undefined
    let index = 0
    if (opts.dstName !== undefined) {
      dstName = validateIfName(opts.dstName, 'dstName')
    } else {
      counterPrefix = validateIfPrefix(opts.dstPrefix ?? 'eth')
      index = st.counters.get(counterPrefix) ?? 0
      while (st.interfaces.has(`${counterPrefix}${index}`) || st.pendingNames.has(`${counterPrefix}${index}`)) index++
      dstName = validateIfName(`${counterPrefix}${index}`, 'dstName')
      st.counters.set(counterPrefix, index + 1)
    }
    if (st.interfaces.has(dstName) || st.pendingNames.has(dstName)) {
      throw new LinkExistsError(`sandbox ${this.sandbox.key} already has an interface ${dstName}`)
    }
    st.pendingNames.add(dstName)
    const pendingPrefixes = addrs.map((a) => ({ prefix: a.prefix, owner: dstName }))
    st.pendingPrefixes.push(...pendingPrefixes)
    const release = (): void => {
      st.pendingNames.delete(dstName)
      st.pendingPrefixes = st.pendingPrefixes.filter((p) => !pendingPrefixes.includes(p))
    }
    this.tx.onRollback(() => {
      release()
      if (counterPrefix !== undefined && st.counters.get(counterPrefix) === index + 1)
        st.counters.set(counterPrefix, index)
    })

    const sb = this.ns
    const hostRef = this.resolver.refArg(this.host)
    if (hostPeer !== undefined) {
      const parts = [`link add name ${hostPeer}`]
      if (hostMac !== undefined) parts.push(`address ${hostMac}`)
      if (mtu !== undefined) parts.push(`mtu ${mtu}`)
      if (hostMaster !== undefined) parts.push(`master ${hostMaster}`)
      parts.push(`up type veth peer name ${dstName}`)
      if (mac !== undefined) parts.push(`address ${mac}`)
      if (mtu !== undefined) parts.push(`mtu ${mtu}`)
      parts.push(`netns ${this.resolver.refArg(sb)}`)
      this.tx.cmd(
        'ip',
        this.host,
        parts.join(' '),
        [{ tool: 'ip', ns: this.host, line: `link del dev ${hostPeer}` }],
        'link',
      )
    } else if (bridge) {
      this.tx.cmd(
        'ip',
        sb,
        `link add name ${dstName}${mtu === undefined ? '' : ` mtu ${mtu}`}${mac === undefined ? '' : ` address ${mac}`} type bridge`,
        [{ tool: 'ip', ns: sb, line: `link del dev ${dstName}` }],
        'link',
      )
    } else {
      const parts = [`link set dev ${srcName as string} down netns ${this.resolver.refArg(sb)} name ${dstName}`]
      if (mac !== undefined) parts.push(`address ${mac}`)
      if (mtu !== undefined) parts.push(`mtu ${mtu}`)
      this.tx.cmd(
        'ip',
        this.host,
        parts.join(' '),
        [{ tool: 'ip', ns: sb, line: `link set dev ${dstName} down netns ${hostRef} name ${srcName as string}` }],
        'link',
      )
    }
    const v6 = addrs.some((a) => a.ip.version === 6) || ll.some((a) => a.ip.version === 6)
    if (v6 && this.sandbox.ipv6DisabledByDefault) {
      const keys = [`net/ipv6/conf/${dstName}/disable_ipv6`]
      if (!st.loIpv6) keys.push('net/ipv6/conf/lo/disable_ipv6')
      this.tx.sysctl(
        sb,
        keys,
        keys.map(() => '0'),
        false,
      )
    }
    for (const a of addrs)
      this.tx.cmd(
        'ip',
        sb,
        `addr add ${formatCidr(a)} dev ${dstName}${a.ip.version === 6 ? ' nodad' : ''}`,
        [],
        'entry',
      )
    if (master !== undefined) this.tx.cmd('ip', sb, `link set dev ${dstName} master ${master.dstName}`)
    for (const a of ll)
      this.tx.cmd(
        'ip',
        sb,
        `addr add ${formatCidr(a)} dev ${dstName}${a.ip.version === 6 ? ' nodad' : ''}`,
        [],
        'entry',
      )
    if (opts.up !== false) this.tx.cmd('ip', sb, `link set dev ${dstName} up`)
    for (const r of routes) this.tx.cmd('ip', sb, `route add ${r.text} dev ${dstName} scope link`, [], 'entry')

    const record: SandboxInterface = Object.freeze({
      srcName,
      hostPeer,
      dstName,
      bridge,
      master: master?.srcName ?? master?.dstName,
      mac,
      mtu,
      addresses: Object.freeze(addrs.map((a) => formatCidr(a))),
      routes: Object.freeze(routes.map((r) => r.text)),
    })
    this.tx.onCommit(() => {
      release()
      st.interfaces.set(dstName, record)
      if (v6) st.loIpv6 = true
    })
    return record
  }

  /**
   * Moves an interface (by in-sandbox or source name) back to the host namespace under its source name,
   * or deletes it (`destroy`, bridges, and links without a source name).
   */
  removeInterface(name: string, opts: { destroy?: boolean } = {}): this {
    const st = this.sandbox.state
    const iface = this.sandbox.findInterface(name)
    if (iface === undefined) throw new InterfaceNotFoundError(`sandbox ${this.sandbox.key} has no interface ${name}`)
    if (iface.bridge || iface.srcName === undefined || opts.destroy === true) {
      this.tx.cmd('ip', this.ns, `link del dev ${iface.dstName}`)
    } else {
      this.tx.cmd(
        'ip',
        this.ns,
        `link set dev ${iface.dstName} down netns ${this.resolver.refArg(this.host)} name ${iface.srcName}`,
        [
          {
            tool: 'ip',
            ns: this.host,
            line: `link set dev ${iface.srcName} netns ${this.resolver.refArg(this.ns)} name ${iface.dstName}`,
          },
        ],
      )
    }
    const stillV6 = [...st.interfaces.values()].some((i) => i !== iface && i.addresses.some((a) => a.includes(':')))
    if (st.loIpv6 && !stillV6 && this.sandbox.ipv6DisabledByDefault) {
      this.tx.sysctl(this.ns, ['net/ipv6/conf/lo/disable_ipv6'], ['1'], true)
    }
    this.tx.onCommit(() => {
      st.interfaces.delete(iface.dstName)
      if (!stillV6) st.loIpv6 = false
    })
    return this
  }

  /** Default route via `ip` (IPv4 or IPv6 by the address). Empty string: no-op. */
  setGateway(ip: string): this {
    if (ip === '') return this
    const gw = validateIp(ip, 'gateway')
    const addr = parseIp(gw)
    const st = this.sandbox.state
    const connected = [...this.sandbox.knownPrefixes(true)].some((p) => p.bits > 0 && prefixContains(p, addr))
    if (!connected) {
      throw new GatewayUnreachableError(
        `Direct route for the gateway ${gw} could not be found in sandbox ${this.sandbox.key}`,
      )
    }
    const dst = addr.version === 4 ? 'default' : '::/0'
    this.tx.cmd(
      'ip',
      this.ns,
      `route add ${dst} via ${gw}`,
      [{ tool: 'ip', ns: this.ns, line: `route del ${dst} via ${gw}` }],
      'entry',
    )
    this.tx.onCommit(() => {
      if (addr.version === 4) st.gateway = gw
      else st.gateway6 = gw
    })
    return this
  }

  /** Deletes the recorded default route of that family; no gateway recorded: no-op. */
  unsetGateway(family: 4 | 6 = 4): this {
    const st = this.sandbox.state
    const gw = family === 4 ? st.gateway : st.gateway6
    if (gw === undefined) return this
    const dst = family === 4 ? 'default' : '::/0'
    this.tx.cmd('ip', this.ns, `route del ${dst} via ${gw}`)
    this.tx.onCommit(() => {
      if (family === 4) st.gateway = undefined
      else st.gateway6 = undefined
    })
    return this
  }

  /** `destination via nextHop`, recorded for removal. */
  addStaticRoute(route: StaticRoute): this {
    const d = validateDestination(route?.destination)
    const nh = validateIp(route.nextHop, 'nextHop')
    const st = this.sandbox.state
    this.tx.cmd(
      'ip',
      this.ns,
      `route add ${d.text} via ${nh}`,
      [{ tool: 'ip', ns: this.ns, line: `route del ${d.text} via ${nh}` }],
      'entry',
    )
    this.tx.onCommit(() => st.staticRoutes.push({ destination: d.text, nextHop: nh }))
    return this
  }

  removeStaticRoute(route: StaticRoute): this {
    const d = validateDestination(route?.destination)
    const nh = validateIp(route.nextHop, 'nextHop')
    const st = this.sandbox.state
    const idx = st.staticRoutes.findIndex((r) => r.destination === d.text && r.nextHop === nh)
    if (idx < 0) throw new InterfaceNotFoundError(`sandbox ${this.sandbox.key} has no static route ${d.text} via ${nh}`)
    this.tx.cmd('ip', this.ns, `route del ${d.text} via ${nh}`)
    this.tx.onCommit(() => {
      const i = st.staticRoutes.findIndex((r) => r.destination === d.text && r.nextHop === nh)
      if (i >= 0) st.staticRoutes.splice(i, 1)
    })
    return this
  }

  /**
   * A PERMANENT neighbour (or, with family `bridge`, an FDB entry with NTF_SELF) on an interface of this
   * sandbox. An identical (ip, mac) already added fails with NeighborExistsError unless `force`.
   */
  addSandboxNeighbor(n: SandboxNeighbor, opts: { force?: boolean } = {}): this {
    const ip = validateIp(n?.ip, 'neighbor.ip')
    const mac = validateMac(n.mac, 'neighbor.mac')
    const family = n.family ?? 'inet'
    if (family !== 'inet' && family !== 'bridge') throw new InvalidOptionError("neighbor.family: 'inet' or 'bridge'")
    const st = this.sandbox.state
    const existing = st.neighbors.find((x) => x.ip === ip && x.mac === mac)
    if (existing !== undefined && opts.force !== true) {
      throw new NeighborExistsError(`neighbor entry already present for IP ${ip}, mac ${mac}`)
    }
    let dev: string | undefined
    if (n.linkName !== undefined) {
      const iface = this.sandbox.findInterface(n.linkName)
      if (iface === undefined) throw new InterfaceNotFoundError(`could not find the interface with name ${n.linkName}`)
      dev = iface.dstName
    }
    if (dev === undefined) throw new InvalidOptionError('neighbor.linkName: required')
    if (family === 'bridge') this.addFdb({ mac, dev, dst: ip, on: 'self' })
    else this.addNeighbor({ ip, mac, dev })
    if (existing === undefined) this.tx.onCommit(() => st.neighbors.push({ ip, mac, dev, family }))
    return this
  }

  /** Forgets a neighbour added with addSandboxNeighbor; `osDelete` also removes the kernel entry. */
  deleteSandboxNeighbor(ipText: string, macText: string, opts: { osDelete?: boolean } = {}): this {
    const ip = validateIp(ipText, 'neighbor.ip')
    const mac = validateMac(macText, 'neighbor.mac')
    const st = this.sandbox.state
    const n = st.neighbors.find((x) => x.ip === ip && x.mac === mac)
    if (n === undefined)
      throw new NeighborNotFoundError(`could not find the neighbor entry to delete: IP ${ip}, mac ${mac}`)
    if (opts.osDelete === true && n.dev !== undefined) {
      if (n.family === 'bridge') {
        this.deleteFdb({ mac, dev: n.dev, dst: ip, on: 'self' })
      } else {
        this.deleteNeighbor({ ip, dev: n.dev })
      }
    }
    this.tx.onCommit(() => {
      const i = st.neighbors.indexOf(n)
      if (i >= 0) st.neighbors.splice(i, 1)
    })
    return this
  }
}

export interface SandboxInit {
  key: string
  ipv6DisabledByDefault: boolean
  host: NsTarget
}

/**
 * A network namespace owned by the OS layer (one per container), with interface bookkeeping.
 * `destroy()` (or `await using`) removes the namespace and everything in it.
 */
export class Sandbox extends Netns {
  readonly key: string
  /** @internal */
  readonly ipv6DisabledByDefault: boolean
  /** @internal */
  readonly state: State
  private readonly host: NsTarget
  private readonly onDestroy: (options?: AbortOptions) => Promise<void>
  private destroyed = false

  /** @internal */
  constructor(
    ctx: OslContext,
    target: NsTarget,
    init: SandboxInit,
    onDestroy: (options?: AbortOptions) => Promise<void>,
  ) {
    super(ctx, target)
    this.key = init.key
    this.ipv6DisabledByDefault = init.ipv6DisabledByDefault
    this.host = init.host
    this.onDestroy = onDestroy
    this.state = {
      interfaces: new Map(),
      counters: new Map(),
      pendingNames: new Set(),
      pendingPrefixes: [],
      gateway: undefined,
      gateway6: undefined,
      staticRoutes: [],
      neighbors: [],
      loIpv6: !init.ipv6DisabledByDefault,
      foreignRoutes: [],
    }
  }

  override plan(tx: Transaction): SandboxPlan {
    return new SandboxPlan(tx, this, this.ctx.resolver, this.host)
  }

  /** Interfaces recorded for this sandbox, in the order they were added. */
  get interfaces(): readonly SandboxInterface[] {
    return [...this.state.interfaces.values()]
  }

  get gateway(): string | undefined {
    return this.state.gateway
  }

  get gateway6(): string | undefined {
    return this.state.gateway6
  }

  get staticRoutes(): readonly StaticRoute[] {
    return [...this.state.staticRoutes]
  }

  /** An interface by in-sandbox or source name. */
  findInterface(name: string): SandboxInterface | undefined {
    return this.state.interfaces.get(name) ?? [...this.state.interfaces.values()].find((i) => i.srcName === name)
  }

  /** @internal Prefixes routed in this sandbox: connected subnets, interface and static routes. */
  knownPrefixes(includePending = false): IpPrefix[] {
    const out: IpPrefix[] = [...this.state.foreignRoutes]
    for (const i of this.state.interfaces.values()) {
      for (const a of i.addresses) out.push(validateCidr(a).prefix)
      for (const r of i.routes) out.push(validateDestination(r).prefix)
    }
    for (const r of this.state.staticRoutes) out.push(validateDestination(r.destination).prefix)
    if (includePending) for (const p of this.state.pendingPrefixes) out.push(p.prefix)
    return out
  }

  addInterface(opts: AddInterfaceOptions, options?: MutateOptions): Promise<SandboxInterface> {
    let rec: SandboxInterface | undefined
    return this.apply((tx) => {
      rec = this.plan(tx).addInterface(opts)
    }, options).then(() => rec as SandboxInterface)
  }
  removeInterface(name: string, opts?: { destroy?: boolean } & MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).removeInterface(name, opts), opts)
  }
  setGateway(ip: string, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).setGateway(ip), options)
  }
  setGateway6(ip: string, options?: MutateOptions): Promise<void> {
    return this.setGateway(ip, options)
  }
  unsetGateway(options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).unsetGateway(4), options)
  }
  unsetGateway6(options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).unsetGateway(6), options)
  }
  addStaticRoute(route: StaticRoute, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addStaticRoute(route), options)
  }
  removeStaticRoute(route: StaticRoute, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).removeStaticRoute(route), options)
  }
  addNeighbor(n: SandboxNeighbor, opts?: { force?: boolean } & MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addSandboxNeighbor(n, opts), opts)
  }
  deleteNeighbor(ip: string, mac: string, opts?: { osDelete?: boolean } & MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteSandboxNeighbor(ip, mac, opts), opts)
  }

  /** `arp_ignore=1`, `arp_announce=2` on an interface of this sandbox (libnetwork's disableARPForVIP). */
  disableArpForVip(name: string, options?: MutateOptions): Promise<void> {
    const iface = this.findInterface(name)
    if (iface === undefined)
      return Promise.reject(new InterfaceNotFoundError(`sandbox ${this.key} has no interface ${name}`))
    return this.setSysctls(
      { [`net/ipv4/conf/${iface.dstName}/arp_ignore`]: 1, [`net/ipv4/conf/${iface.dstName}/arp_announce`]: 2 },
      options,
    )
  }

  /**
   * IPVS knobs for ingress and load-balancer sandboxes (`conn_reuse_mode=0`, `expire_nodest_conn=1`,
   * `expire_quiescent_template=1`), written inside this namespace; knobs the kernel lacks (no ip_vs module)
   * are skipped and returned.
   */
  async applyLoadBalancerTweaks(options?: MutateOptions): Promise<string[]> {
    const wanted = {
      'net/ipv4/vs/conn_reuse_mode': 0,
      'net/ipv4/vs/expire_nodest_conn': 1,
      'net/ipv4/vs/expire_quiescent_template': 1,
    }
    const skipped: string[] = []
    for (const [k, v] of Object.entries(wanted)) {
      try {
        await this.setSysctls({ [k]: v }, options)
      } catch (err) {
        // libnetwork: each only if readable; failures are logged, not fatal
        this.ctx.log('sandbox %s: skipping %s: %s', this.key, k, (err as Error).message)
        skipped.push(k)
      }
    }
    return skipped
  }

  /** rx/tx counters of an interface (`ip -json -s link`'s `stats64`: bytes, packets, errors, dropped…). */
  async statistics(
    name: string,
    options?: AbortOptions,
  ): Promise<{ rx: Record<string, number>; tx: Record<string, number> }> {
    const dev = this.findInterface(name)?.dstName ?? validateIfName(name)
    const [links] = await this.query([`link show dev ${dev}`], options, { stats: true })
    const l = ((links ?? []) as Array<{ stats64?: { rx: Record<string, number>; tx: Record<string, number> } }>)[0]
    if (l?.stats64 === undefined) throw new InterfaceNotFoundError(`sandbox ${this.key} has no interface ${name}`)
    return { rx: l.stats64.rx, tx: l.stats64.tx }
  }

  /**
   * Rebuilds bookkeeping from the kernel (after a restart): interfaces other than `lo` with their
   * addresses, the default gateways, and routes for conflict checks. `srcNames` maps in-sandbox names to
   * host names so removeInterface can move them back; others are deleted on removal.
   */
  async restore(srcNames: Record<string, string> = {}, options?: AbortOptions): Promise<void> {
    // -d adds linkinfo (the kind: bridge, veth, vxlan…)
    const [links, routes] = await this.query(['addr show', 'route show table all'], options, { details: true })
    const info = {
      links: (links ?? []) as AddressInfo[],
      routes: ((routes ?? []) as RouteInfo[]).filter((r) => r.table !== 'local'),
    }
    const st = this.state
    st.interfaces.clear()
    st.counters.clear()
    st.foreignRoutes = []
    let v6 = false
    for (const l of info.links) {
      if (l.ifname === 'lo') continue
      const addrs = (l.addr_info ?? [])
        .filter((a) => a.scope !== 'link')
        .map((a) => formatCidr(validateCidr(`${a.local}/${a.prefixlen}`)))
      if (addrs.some((a) => a.includes(':'))) v6 = true
      const src = srcNames[l.ifname]
      st.interfaces.set(l.ifname, {
        srcName: src === undefined ? undefined : validateIfName(src, 'srcNames'),
        hostPeer: undefined,
        dstName: l.ifname,
        bridge: (l as { linkinfo?: { info_kind?: string } }).linkinfo?.info_kind === 'bridge',
        master: l.master,
        mac: l.address,
        mtu: l.mtu,
        addresses: addrs,
        routes: [],
      })
      const m = /^(.*?)(\d+)$/.exec(l.ifname)
      if (m !== null) {
        const prefix = m[1] as string
        const next = Number(m[2]) + 1
        if ((st.counters.get(prefix) ?? 0) < next) st.counters.set(prefix, next)
      }
    }
    st.loIpv6 = v6 || !this.ipv6DisabledByDefault
    for (const r of info.routes) {
      if (r.dst === 'default') {
        if (r.gateway !== undefined) {
          if (r.gateway.includes(':')) st.gateway6 = r.gateway
          else st.gateway = r.gateway
        }
        continue
      }
      if (r.protocol === 'kernel') continue
      const dst = r.dst.includes('/') ? r.dst : `${r.dst}/${r.dst.includes(':') ? 128 : 32}`
      try {
        st.foreignRoutes.push(validateDestination(dst).prefix)
      } catch {
        // multicast/anycast/unreachable entries the table can hold are not destinations we program
        this.ctx.log.trace('restore %s: skipping route %s', this.key, r.dst)
      }
    }
  }

  /** Deletes the namespace (and with it every interface still inside; veth peers vanish too). Idempotent. */
  async destroy(options?: AbortOptions): Promise<void> {
    if (this.destroyed) return
    await this.onDestroy(options)
    this.destroyed = true
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.destroy()
  }
}
