import { randomBytes } from 'node:crypto'
import { mkdir } from 'node:fs/promises'
import {
  formatCidr,
  formatIp,
  formatPrefix,
  parsePrefix,
  type AbortOptions,
  type ComponentLogger,
  type Logger,
} from '@cnm/types'
import type {
  Controller,
  CreateEndpointRequest,
  CreateSandboxRequest,
  EndpointInfo,
  IpamConfig,
  NetworkInfo,
  SandboxInfo,
} from '@cnm/controller'
import { parsePortBindings, type PortBinding, type PortMapping } from '@cnm/driverapi'
import {
  AmbiguousNameError,
  DefaultNetworkError,
  LinkError,
  NameInUseError,
  NoSuchSandboxError,
  NotConnectedError,
  SandboxStoppedError,
} from './errors.js'
import type { ConnectBody, CreateNetworkBody, CreateSandboxBody, DisconnectBody, EndpointSpec } from './schemas.js'
import { recordFromSandbox, type ContainerRecord, type ContainerRecords, type LinkSpec } from './containers.js'
import { isDefaultBridge, isDnsNetwork, type SandboxDns } from './sandbox-dns.js'

/** Network reference meaning the default bridge (Docker's `default` network mode), or none without one. */
export const DEFAULT_NETWORK = 'default'

/** One published port as the API shows it. */
export interface PortView {
  proto: string
  containerPort: number
  hostIp: string
  hostPort: number
}

export interface EndpointView {
  id: string
  name: string
  network: string
  networkId: string
  sandbox?: string
  sandboxId?: string
  interface?: string
  ipv4Address?: string
  ipv6Address?: string
  macAddress?: string
  gateway?: string
  gatewayIPv6?: string
  aliases: string[]
  ports: PortView[]
}

export interface NetworkView {
  id: string
  name: string
  driver: string
  scope: string
  created: string
  internal: boolean
  enableIPv6: boolean
  attachable: boolean
  options: Record<string, string>
  labels: Record<string, string>
  ipam: {
    driver: string
    options: Record<string, string>
    config: Array<{ subnet: string; gateway?: string; ipRange?: string }>
  }
  endpointCount: number
  /** Present on inspect. */
  endpoints?: EndpointView[]
}

export interface SandboxView {
  /** Sandbox id; empty while the sandbox is stopped (a start makes a new sandbox). */
  id: string
  name: string
  /** `running`: the namespace exists and its endpoints are joined; `stopped`: endpoints kept, not joined. */
  state: 'running' | 'stopped'
  /** Namespace path; empty while stopped. */
  key: string
  hostname?: string
  domainname?: string
  labels: Record<string, string>
  hostsPath: string
  resolvConfPath: string
  /** Nameservers written to the sandbox's resolv.conf. */
  dns: string[]
  /** Legacy links, `name:alias`. */
  links: string[]
  endpoints: EndpointView[]
}

const nameOf = (sb: SandboxInfo): string => sb.containerId

/** A valid host name derived from a sandbox name. */
function hostnameFor(name: string): string {
  const h = name
    .slice(0, 63)
    .replace(/[^a-zA-Z0-9-]/g, '-')
    .replace(/^-+|-+$/g, '')
  return h === '' ? 'sandbox' : h
}

/** Parses `name[:alias]` link specs. */
export function parseLinks(specs: readonly string[]): LinkSpec[] {
  return specs.map((s) => {
    const i = s.indexOf(':')
    const name = (i < 0 ? s : s.slice(0, i)).replace(/^\//, '')
    const alias = i < 0 ? name : s.slice(i + 1)
    return { name, alias }
  })
}

/** A sandbox as the API addresses it: its record, and its controller sandbox while it runs. */
interface SandboxRef {
  readonly rec: ContainerRecord
  readonly sb: SandboxInfo | undefined
}

/**
 * The daemon's operations in API terms: what each route does, on top of the controller. Names, ids
 * and unique id prefixes are accepted for networks and sandboxes. A sandbox has a record (its
 * configuration, links and state) that outlives stop/start; while it runs it is also a controller
 * sandbox, whose id changes at every start.
 */
export class CnmService {
  readonly #ctl: Controller
  readonly #dns: SandboxDns
  readonly #records: ContainerRecords
  readonly #log: Logger
  /** Sandboxes with an operation in progress (stop/start/remove/create): one at a time per name. */
  readonly #busy = new Map<string, Promise<unknown>>()

  readonly #removing: (key: string) => () => void

  /** `removing(key)`: tells the OS layer a sandbox goes for good (see OslSandboxLayer.removing). */
  constructor(
    ctl: Controller,
    dns: SandboxDns,
    records: ContainerRecords,
    logger: ComponentLogger,
    removing: (key: string) => () => void = () => () => undefined,
  ) {
    this.#ctl = ctl
    this.#dns = dns
    this.#records = records
    this.#removing = removing
    this.#log = logger.forComponent('cnm:cli:service')
  }

  /** Runs `fn` after any other operation on sandbox `name` has finished. */
  async #serial<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.#busy.get(name) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.#busy.set(name, tail)
    void tail.then(() => {
      if (this.#busy.get(name) === tail) this.#busy.delete(name)
    })
    return await next
  }

  // ------------------------------------------------------------ lookups

  /** A sandbox by id, name (container id) or unique id prefix; stopped sandboxes by name. */
  sandboxRef(ref: string): SandboxRef {
    const all = this.#ctl.sandboxes()
    const byId = all.find((s) => s.id === ref)
    const name = byId !== undefined ? nameOf(byId) : ref
    const rec = this.#records.get(name)
    if (rec !== undefined) return { rec, sb: this.#ctl.sandboxByContainer(name) }
    const byName = all.find((s) => nameOf(s) === ref) ?? byId
    if (byName !== undefined) return this.#adopt(byName)
    const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((s) => s.id.startsWith(ref)) : []
    if (byPrefix.length === 1) return this.#adopt(byPrefix[0] as SandboxInfo)
    if (byPrefix.length > 1) throw new AmbiguousNameError('sandbox', ref, byPrefix.length)
    throw new NoSuchSandboxError(ref)
  }

  /** A controller sandbox without a record (cannot happen after recovery; kept safe anyway). */
  #adopt(sb: SandboxInfo): SandboxRef {
    const rec = this.#records.get(nameOf(sb)) ?? recordFromSandbox(sb, this.#networksOf(sb))
    return { rec, sb }
  }

  #networksOf(sb: SandboxInfo): string[] {
    const eps = new Map(this.#ctl.endpoints({ sandboxId: sb.id }).map((e) => [e.id as string, e.networkId as string]))
    return sb.endpoints.map((eid) => eps.get(eid)).filter((n): n is string => n !== undefined)
  }

  /** The network of a request: `default` is the default bridge (or nothing when the daemon has none). */
  #network(ref: string): NetworkInfo | undefined {
    if (ref === DEFAULT_NETWORK) return this.#ctl.networks().find((n) => isDefaultBridge(n))
    return this.#ctl.network(ref)
  }

  // ------------------------------------------------------------ views

  async #ports(e: EndpointInfo, options?: AbortOptions): Promise<PortView[]> {
    if (e.portBindings.length === 0) return []
    let mappings: readonly PortMapping[] = []
    try {
      mappings = (await this.#ctl.endpointOperInfo(e.id, options)).portMappings ?? []
    } catch (err) {
      this.#log.trace('port mappings of %s unavailable: %s', e.id, (err as Error).message)
    }
    return mappings.map((m) => ({
      proto: m.proto,
      containerPort: m.containerPort,
      hostIp: m.hostIp === undefined ? '0.0.0.0' : formatIp(m.hostIp),
      hostPort: m.hostPort,
    }))
  }

  async endpointView(e: EndpointInfo, options?: AbortOptions): Promise<EndpointView> {
    let sandbox: string | undefined
    if (e.sandboxId !== undefined) {
      try {
        sandbox = nameOf(this.#ctl.sandbox(e.sandboxId))
      } catch {
        sandbox = undefined
      }
    } else if (e.containerId !== undefined && this.#records.get(e.containerId) !== undefined) sandbox = e.containerId
    return {
      id: e.id,
      name: e.name,
      network: e.networkName,
      networkId: e.networkId,
      ...(e.sandboxId !== undefined && { sandboxId: e.sandboxId }),
      ...(sandbox !== undefined && { sandbox }),
      ...(e.interfaceName !== undefined && { interface: e.interfaceName }),
      ...(e.address !== undefined && { ipv4Address: formatCidr(e.address) }),
      ...(e.addressIPv6 !== undefined && { ipv6Address: formatCidr(e.addressIPv6) }),
      ...(e.macAddress !== undefined && { macAddress: String(e.macAddress) }),
      ...(e.gateway !== undefined && { gateway: formatIp(e.gateway) }),
      ...(e.gatewayIPv6 !== undefined && { gatewayIPv6: formatIp(e.gatewayIPv6) }),
      aliases: [...e.aliases],
      ports: await this.#ports(e, options),
    }
  }

  /** Endpoints of a sandbox: joined ones in the sandbox's order, or (stopped) the kept ones in connect order. */
  #endpointsOf(rec: ContainerRecord, sb: SandboxInfo | undefined): EndpointInfo[] {
    if (sb !== undefined) {
      const eps = this.#ctl.endpoints({ sandboxId: sb.id })
      const order = new Map(sb.endpoints.map((id, i) => [id as string, i]))
      return eps.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0))
    }
    const eps = this.#ctl.endpoints({ containerId: rec.name }).filter((e) => e.sandboxId === undefined)
    const order = new Map(rec.networks.map((n, i) => [n, i]))
    return eps.sort((a, b) => (order.get(a.networkId) ?? 1e9) - (order.get(b.networkId) ?? 1e9))
  }

  async #view(ref: SandboxRef, options?: AbortOptions): Promise<SandboxView> {
    const { rec, sb } = ref
    const files = this.#dns.filesOf(rec.name)
    const hostname = sb?.hostname ?? rec.hostname
    const domainname = sb?.domainname ?? rec.domainname
    return {
      id: sb?.id ?? '',
      name: rec.name,
      state: sb === undefined ? 'stopped' : 'running',
      key: sb?.key ?? '',
      ...(hostname !== undefined && { hostname }),
      ...(domainname !== undefined && domainname !== '' && { domainname }),
      labels: { ...(sb?.labels ?? rec.labels) },
      hostsPath: files.hostsPath,
      resolvConfPath: files.resolvConfPath,
      dns: this.#dns.nameserversOf(rec, sb),
      links: rec.links.map((l) => `${l.name}:${l.alias}`),
      endpoints: await Promise.all(this.#endpointsOf(rec, sb).map((e) => this.endpointView(e, options))),
    }
  }

  async sandboxView(sb: SandboxInfo, options?: AbortOptions): Promise<SandboxView> {
    return await this.#view(this.#adopt(sb), options)
  }

  networkView(n: NetworkInfo): NetworkView {
    const config = [...n.ipam.v4, ...n.ipam.v6].map((p, i) => {
      const req = [...n.ipam.config.v4, ...n.ipam.config.v6][i]
      return {
        subnet: formatPrefix(p.pool),
        ...(p.gateway !== undefined && { gateway: formatIp(p.gateway.ip) }),
        ...(req?.subPool !== undefined && req.subPool !== '' && { ipRange: req.subPool }),
      }
    })
    return {
      id: n.id,
      name: n.name,
      driver: n.type,
      scope: n.scope,
      created: n.created,
      internal: n.internal,
      enableIPv6: n.enableIPv6,
      attachable: n.attachable,
      options: { ...n.driverOptions },
      labels: { ...n.labels },
      ipam: { driver: n.ipam.driver, options: { ...n.ipam.options }, config },
      endpointCount: n.endpointCount,
    }
  }

  // ------------------------------------------------------------ networks

  listNetworks(): NetworkView[] {
    return this.#ctl.networks().map((n) => this.networkView(n))
  }

  async inspectNetwork(ref: string, options?: AbortOptions): Promise<NetworkView> {
    const n = this.#ctl.network(ref)
    const eps = this.#ctl.endpoints({ networkId: n.id })
    return { ...this.networkView(n), endpoints: await Promise.all(eps.map((e) => this.endpointView(e, options))) }
  }

  async createNetwork(body: CreateNetworkBody, options?: AbortOptions): Promise<NetworkView> {
    const v4: IpamConfig[] = []
    const v6: IpamConfig[] = []
    for (const c of body.ipam?.config ?? []) {
      const cfg: IpamConfig = {
        ...(c.subnet !== undefined && { pool: c.subnet }),
        ...(c.ipRange !== undefined && { subPool: c.ipRange }),
        ...(c.gateway !== undefined && { gateway: c.gateway }),
        ...(c.auxAddresses !== undefined && { auxAddresses: c.auxAddresses }),
      }
      if (c.subnet !== undefined && parsePrefix(c.subnet).version === 6) v6.push(cfg)
      else v4.push(cfg)
    }
    const info = await this.#ctl.createNetwork(
      {
        name: body.name,
        type: body.driver ?? 'bridge',
        checkDuplicate: true,
        ...(body.options !== undefined && { driverOptions: body.options }),
        ...(body.labels !== undefined && { labels: body.labels }),
        ...(body.enableIPv6 !== undefined && { enableIPv6: body.enableIPv6 }),
        ...(body.internal !== undefined && { internal: body.internal }),
        ...(body.attachable !== undefined && { attachable: body.attachable }),
        ...(body.ipam !== undefined || v4.length + v6.length > 0
          ? {
              ipam: {
                ...(body.ipam?.driver !== undefined && { driver: body.ipam.driver }),
                ...(body.ipam?.options !== undefined && { options: body.ipam.options }),
                ...(v4.length > 0 && { v4 }),
                ...(v6.length > 0 && { v6 }),
              },
            }
          : {}),
      },
      options,
    )
    return this.networkView(info)
  }

  async deleteNetwork(ref: string, options?: AbortOptions): Promise<void> {
    const n = this.#ctl.network(ref)
    if (isDefaultBridge(n))
      throw new DefaultNetworkError(`${n.name} is the default bridge network: it cannot be removed`)
    await this.#ctl.deleteNetwork(n.id, options)
  }

  #endpointRequest(name: string, n: NetworkInfo, spec: EndpointSpec): CreateEndpointRequest {
    const bindings: PortBinding[] = parsePortBindings(spec.portBindings ?? [])
    const exposed = new Map<string, { proto: PortBinding['proto']; port: number }>()
    for (const b of bindings) exposed.set(`${b.proto}/${b.containerPort}`, { proto: b.proto, port: b.containerPort })
    if (isDefaultBridge(n) && (spec.aliases?.length ?? 0) > 0) {
      throw new DefaultNetworkError(
        'network-scoped aliases are supported only on user-defined networks, not on the default bridge',
      )
    }
    return {
      name: spec.name ?? name,
      ...(spec.ipv4Address !== undefined && { ipv4Address: spec.ipv4Address }),
      ...(spec.ipv6Address !== undefined && { ipv6Address: spec.ipv6Address }),
      ...(spec.aliases !== undefined && { aliases: spec.aliases }),
      ...(spec.macAddress !== undefined && { macAddress: spec.macAddress }),
      // names on the default bridge are not in DNS; its sandboxes use the host's nameservers
      ...(!isDnsNetwork(n) && { disableResolution: true }),
      ...(bindings.length > 0 && { portBindings: bindings, exposedPorts: [...exposed.values()] }),
    }
  }

  /** Creates an endpoint for the sandbox on the network and joins it (undone as a whole on failure). */
  async connect(networkRef: string, body: ConnectBody, options?: AbortOptions): Promise<EndpointView> {
    const n = this.#ctl.network(networkRef)
    const { rec } = this.sandboxRef(body.sandbox)
    return await this.#serial(rec.name, async () => {
      const sb = this.#ctl.sandboxByContainer(rec.name)
      if (sb === undefined) throw new SandboxStoppedError(rec.name)
      const { sandbox: _s, ...spec } = body
      const ep = await this.#ctl.connect(sb.id, n.id, this.#endpointRequest(rec.name, n, spec), options)
      const cur = this.#records.get(rec.name) ?? rec
      if (!cur.networks.includes(n.id)) await this.#records.put({ ...cur, networks: [...cur.networks, n.id] })
      await this.#dns.refreshWithLinkers(rec.name)
      return await this.endpointView(ep, options)
    })
  }

  /** Leaves and deletes the sandbox's endpoint on the network (a stopped sandbox's kept endpoint is deleted). */
  async disconnect(networkRef: string, body: DisconnectBody, options?: AbortOptions): Promise<void> {
    const n = this.#ctl.network(networkRef)
    const { rec } = this.sandboxRef(body.sandbox)
    await this.#serial(rec.name, async () => {
      const sb = this.#ctl.sandboxByContainer(rec.name)
      const ep =
        sb !== undefined
          ? this.#ctl.endpoints({ networkId: n.id, sandboxId: sb.id })[0]
          : this.#ctl.endpoints({ networkId: n.id, containerId: rec.name }).find((e) => e.sandboxId === undefined)
      if (ep === undefined) throw new NotConnectedError(rec.name, n.name)
      const signal = options?.signal !== undefined ? { signal: options.signal } : {}
      if (sb === undefined || body.force === true) await this.#ctl.deleteEndpoint(ep.id, { force: true, ...signal })
      else await this.#ctl.disconnect(sb.id, ep.id, options)
      const cur = this.#records.get(rec.name) ?? rec
      await this.#records.put({ ...cur, networks: cur.networks.filter((x) => x !== n.id) })
      await this.#dns.refreshWithLinkers(rec.name)
    })
  }

  // ------------------------------------------------------------ sandboxes

  async listSandboxes(options?: AbortOptions): Promise<SandboxView[]> {
    const refs: SandboxRef[] = this.#records.all().map((rec) => ({ rec, sb: this.#ctl.sandboxByContainer(rec.name) }))
    for (const sb of this.#ctl.sandboxes()) if (this.#records.get(nameOf(sb)) === undefined) refs.push(this.#adopt(sb))
    return await Promise.all(refs.map((r) => this.#view(r, options)))
  }

  async inspectSandbox(ref: string, options?: AbortOptions): Promise<SandboxView> {
    return await this.#view(this.sandboxRef(ref), options)
  }

  /** Checks links (`--link`): the sandbox must be on the default bridge, and so must each target. */
  #checkLinks(links: readonly LinkSpec[], nets: ReadonlyArray<{ net: NetworkInfo | undefined }>): void {
    if (links.length === 0) return
    if (!nets.some((x) => x.net !== undefined && isDefaultBridge(x.net))) {
      throw new LinkError(
        'links (--link) are supported only on the default bridge network; on user networks use --alias',
      )
    }
    for (const l of links) {
      if (this.#records.get(l.name) === undefined)
        throw new LinkError(`could not get container for ${l.name}`, 'not-found')
      const onBridge = this.#ctl.endpoints({ containerId: l.name }).some((e) => {
        const n = this.#ctl.networks().find((x) => x.id === e.networkId)
        return n !== undefined && isDefaultBridge(n)
      })
      if (!onBridge) throw new LinkError(`cannot link to ${l.name}: it is not on the default bridge network`)
    }
  }

  /**
   * Creates a sandbox (a network namespace) and connects it to the listed networks. Any failure
   * deletes what was made, so a rejected request leaves no state behind.
   */
  async createSandbox(body: CreateSandboxBody, options?: AbortOptions): Promise<SandboxView> {
    const name = body.name ?? `sb-${randomBytes(6).toString('hex')}`
    // resolve the networks first: an unknown network must not create anything
    const nets = (body.networks ?? []).map((spec) => ({ spec, net: this.#network(spec.network) }))
    const links = parseLinks(body.links ?? [])
    this.#checkLinks(links, nets)
    const existing = this.#records.get(name)
    if (existing !== undefined && existing.state === 'stopped') throw new NameInUseError(name)
    const rec: ContainerRecord = {
      name,
      state: 'running',
      hostname: body.hostname ?? hostnameFor(name),
      ...(body.domainname !== undefined && { domainname: body.domainname }),
      labels: { ...body.labels },
      dns: [...(body.dns ?? [])],
      dnsSearch: [...(body.dnsSearch ?? [])],
      dnsOptions: [...(body.dnsOptions ?? [])],
      extraHosts: (body.extraHosts ?? []).map((h) => ({ name: h.name, ip: h.ip })),
      links,
      networks: [],
      created: new Date().toISOString(),
    }
    this.#dns.validate(rec)
    for (const { spec, net } of nets) if (net !== undefined) this.#endpointRequest(name, net, spec)
    return await this.#serial(name, async () => {
      const sb = await this.#ctl.createSandbox(this.#sandboxRequest(rec), options)
      try {
        await this.#records.put(rec)
        const attach = nets.filter(
          (x): x is { spec: (typeof nets)[number]['spec']; net: NetworkInfo } => x.net !== undefined,
        )
        // the resolver and files need only the namespace: set them up while the endpoints attach
        const ready = this.#dns.ready(rec, sb, {
          ...options,
          fresh: true,
          expectResolver: attach.some((x) => isDnsNetwork(x.net)),
        })
        const joined: string[] = []
        try {
          for (const { spec, net } of attach) {
            const { network: _n, ...ep } = spec
            await this.#ctl.connect(sb.id, net.id, this.#endpointRequest(name, net, ep), options)
            joined.push(net.id)
          }
        } finally {
          await ready
        }
        if (joined.length > 0) await this.#records.put({ ...rec, networks: joined })
        await this.#dns.refreshWithLinkers(name)
        return await this.#view({ rec: this.#records.get(name) ?? rec, sb: this.#ctl.sandbox(sb.id) }, options)
      } catch (err) {
        await this.#remove(name).catch((e: unknown) => this.#log.error('undo sandbox %s failed: %o', sb.id, e))
        throw err
      }
    })
  }

  #sandboxRequest(rec: ContainerRecord): CreateSandboxRequest {
    return {
      containerId: rec.name,
      ...(rec.hostname !== undefined && { hostname: rec.hostname }),
      ...(rec.domainname !== undefined && { domainname: rec.domainname }),
      labels: rec.labels,
      ...(rec.dns.length > 0 && { dnsServers: rec.dns }),
      ...(rec.dnsSearch.length > 0 && { dnsSearch: rec.dnsSearch }),
      ...(rec.dnsOptions.length > 0 && { dnsOptions: rec.dnsOptions }),
      ...(rec.extraHosts.length > 0 && { extraHosts: rec.extraHosts }),
    }
  }

  /** Removes a sandbox, running or stopped, with its endpoints (addresses and host ports released). */
  async #remove(name: string, options?: AbortOptions): Promise<void> {
    const sb = this.#ctl.sandboxByContainer(name)
    await this.#dns.going(name)
    const signal = options?.signal !== undefined ? { signal: options.signal } : {}
    if (sb !== undefined) {
      const unmark = this.#removing(sb.key)
      try {
        await this.#ctl.deleteSandbox(sb.id, { endpoints: 'delete', ...signal })
      } finally {
        unmark()
      }
    }
    for (const e of this.#ctl.endpoints({ containerId: name })) {
      if (e.sandboxId === undefined) await this.#ctl.deleteEndpoint(e.id, { force: true, ...signal })
    }
    if (this.#records.get(name) !== undefined) await this.#records.delete(name)
    await this.#dns.gone(name)
    for (const r of this.#records.linkersOf(name)) await this.#dns.refresh(r.name)
  }

  /** Deletes a sandbox with its endpoints (addresses and host ports are released). */
  async deleteSandbox(ref: string, options?: AbortOptions): Promise<void> {
    const { rec } = this.sandboxRef(ref)
    await this.#serial(rec.name, () => this.#remove(rec.name, options))
  }

  /**
   * Stops a sandbox ([S3], Docker's container stop): its endpoints leave (interfaces, routes and
   * forwarding rules go) but keep their addresses and host-port reservations; the namespace and
   * the resolver go. Stopping a stopped sandbox does nothing.
   */
  async stopSandbox(ref: string, options?: AbortOptions): Promise<SandboxView> {
    const { rec } = this.sandboxRef(ref)
    await this.#serial(rec.name, async () => {
      const sb = this.#ctl.sandboxByContainer(rec.name)
      if (sb === undefined) return
      const networks = this.#networksOf(sb)
      await this.#records.put({ ...rec, state: 'stopped', networks: networks.length > 0 ? networks : rec.networks })
      try {
        await this.#dns.going(rec.name)
        await this.#ctl.deleteSandbox(sb.id, {
          endpoints: 'leave',
          ...(options?.signal !== undefined && { signal: options.signal }),
        })
      } catch (err) {
        if (this.#ctl.sandboxByContainer(rec.name) !== undefined) {
          await this.#records.put({ ...rec, state: 'running' })
          await this.#dns
            .refresh(rec.name)
            .catch((e: unknown) => this.#log.error('restarting DNS of %s: %o', rec.name, e))
        }
        throw err
      }
      for (const r of this.#records.linkersOf(rec.name)) await this.#dns.refresh(r.name)
    })
    return await this.inspectSandbox(rec.name, options)
  }

  /**
   * Starts a stopped sandbox: a new namespace, its kept endpoints joined again with the same
   * addresses and host ports (a host port taken meanwhile fails the start). Starting a running
   * sandbox does nothing.
   */
  async startSandbox(ref: string, options?: AbortOptions): Promise<SandboxView> {
    const { rec } = this.sandboxRef(ref)
    await this.#serial(rec.name, async () => {
      if (this.#ctl.sandboxByContainer(rec.name) !== undefined) return
      const eps = this.#endpointsOf(rec, undefined)
      const nets = new Map(this.#ctl.networks().map((n) => [n.id as string, n]))
      await this.#records.put({ ...rec, state: 'running' })
      let sb: SandboxInfo | undefined
      try {
        sb = await this.#ctl.createSandbox(this.#sandboxRequest(rec), options)
        const created = sb
        const expectResolver = eps.some((e) => {
          const n = nets.get(e.networkId)
          return n !== undefined && !e.disableResolution && isDnsNetwork(n)
        })
        const ready = this.#dns.ready(rec, created, { ...options, fresh: true, expectResolver })
        try {
          for (const e of eps) await this.#ctl.join(created.id, e.id, options)
        } finally {
          await ready
        }
      } catch (err) {
        await this.#dns.going(rec.name).catch(() => undefined)
        if (sb !== undefined) {
          await this.#ctl
            .deleteSandbox(sb.id, { endpoints: 'leave' })
            .catch((e: unknown) => this.#log.error('undo start of %s failed: %o', rec.name, e))
        }
        await this.#records.put({ ...rec, state: 'stopped' })
        throw err
      }
      await this.#dns.refreshWithLinkers(rec.name)
    })
    return await this.inspectSandbox(rec.name, options)
  }

  /**
   * After the controller's recovery (daemon start): records for sandboxes made without one, stops and
   * starts a crash interrupted finished, then files and resolvers of every running sandbox.
   */
  async recover(options?: AbortOptions): Promise<void> {
    await this.#records.load(options)
    for (const sb of this.#ctl.sandboxes()) {
      if (this.#records.get(nameOf(sb)) === undefined)
        await this.#records.put(recordFromSandbox(sb, this.#networksOf(sb)), options)
    }
    for (const rec of this.#records.all()) {
      const sb = this.#ctl.sandboxByContainer(rec.name)
      if (rec.state === 'stopped' && sb !== undefined) {
        this.#log('finishing the stop of %s', rec.name)
        await this.#ctl
          .deleteSandbox(sb.id, { endpoints: 'leave' })
          .catch((e: unknown) => this.#log.error('stopping %s: %o', rec.name, e))
      } else if (rec.state === 'running' && sb === undefined) {
        // its namespace is gone (a reboot, or a start the crash interrupted): it is stopped now
        await this.#records.put({ ...rec, state: 'stopped' }, options)
      } else if (rec.state === 'running' && sb !== undefined) {
        // an endpoint of a running sandbox that is not joined: a start or disconnect was interrupted
        for (const e of this.#ctl.endpoints({ containerId: rec.name })) {
          if (e.sandboxId !== undefined) continue
          this.#log('joining endpoint %s of %s again', e.name, rec.name)
          await this.#ctl
            .join(sb.id, e.id, options)
            .catch((err: unknown) => this.#log.error('joining %s: %o', e.id, err))
        }
      }
    }
  }

  /** Writes files and starts resolvers of the running sandboxes (daemon start). */
  async restoreDns(): Promise<void> {
    for (const rec of this.#records.all()) {
      const sb = this.#ctl.sandboxByContainer(rec.name)
      if (sb !== undefined) await this.#dns.ready(rec, sb)
    }
    await this.#dns.prune(new Set(this.#records.all().map((r) => r.name)))
  }

  /** Running and stopped sandboxes. */
  counts(): { running: number; stopped: number } {
    const running = this.#ctl.sandboxes().length
    const stopped = this.#records.all().filter((r) => this.#ctl.sandboxByContainer(r.name) === undefined).length
    return { running, stopped }
  }

  /** Names of the sandboxes the daemon knows, running or stopped (their unjoined endpoints are kept, not reaped). */
  knownContainers(): Set<string> {
    return new Set(this.#records.all().map((r) => r.name))
  }
}

export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { recursive: true, mode })
}
