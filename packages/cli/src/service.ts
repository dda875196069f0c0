import { randomBytes } from 'node:crypto'
import { renameSync, writeFileSync } from 'node:fs'
import { mkdir, rm } from 'node:fs/promises'
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
  EndpointInfo,
  IpamConfig,
  NetworkInfo,
  SandboxInfo,
} from '@cnm/controller'
import { parsePortBindings, type PortBinding, type PortMapping } from '@cnm/driverapi'
import { AmbiguousNameError, NoSuchSandboxError, NotConnectedError } from './errors.js'
import type { ConnectBody, CreateNetworkBody, CreateSandboxBody, DisconnectBody, EndpointSpec } from './schemas.js'

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
  ipam: { driver: string; options: Record<string, string>; config: Array<{ subnet: string; gateway?: string; ipRange?: string }> }
  endpointCount: number
  /** Present on inspect. */
  endpoints?: EndpointView[]
}

export interface SandboxView {
  id: string
  name: string
  key: string
  hostname?: string
  labels: Record<string, string>
  hostsPath: string
  resolvConfPath: string
  /** Nameservers written to the sandbox's resolv.conf. */
  dns: string[]
  endpoints: EndpointView[]
}

/** Hooks the daemon runs around sandboxes (per-sandbox files and the embedded DNS resolver). */
export interface SandboxExtras {
  /** A sandbox was created (or found at start): write its files, start its resolver. */
  sandboxReady(sb: SandboxInfo, options?: AbortOptions & { fresh?: boolean }): Promise<void>
  /** Endpoints changed: rewrite its hosts file. */
  sandboxChanged(sb: SandboxInfo, options?: AbortOptions): Promise<void>
  /** Before the namespace goes: stop the resolver. */
  sandboxGoing(sid: string): Promise<void>
  /** After: remove the files. */
  sandboxGone(sid: string): Promise<void>
  filesOf(sid: string): { hostsPath: string; resolvConfPath: string; dns: string[] }
}

const nameOf = (sb: SandboxInfo): string => sb.containerId

/** A valid host name derived from a sandbox name. */
function hostnameFor(name: string): string {
  const h = name.slice(0, 63).replace(/[^a-zA-Z0-9-]/g, '-').replace(/^-+|-+$/g, '')
  return h === '' ? 'sandbox' : h
}

/**
 * The daemon's operations in API terms: what each route does, on top of the controller. Names, ids
 * and unique id prefixes are accepted for networks and sandboxes.
 */
export class CnmService {
  readonly #ctl: Controller
  readonly #extras: SandboxExtras
  readonly #log: Logger

  constructor(ctl: Controller, extras: SandboxExtras, logger: ComponentLogger) {
    this.#ctl = ctl
    this.#extras = extras
    this.#log = logger.forComponent('cnm:cli:service')
  }

  // ------------------------------------------------------------ lookups

  /** A sandbox by id, name (container id) or unique id prefix. */
  sandboxRef(ref: string): SandboxInfo {
    const all = this.#ctl.sandboxes()
    const exact = all.find((s) => s.id === ref) ?? all.find((s) => nameOf(s) === ref)
    if (exact !== undefined) return exact
    const byPrefix = /^[0-9a-f]+$/.test(ref) ? all.filter((s) => s.id.startsWith(ref)) : []
    if (byPrefix.length === 1) return byPrefix[0] as SandboxInfo
    if (byPrefix.length > 1) throw new AmbiguousNameError('sandbox', ref, byPrefix.length)
    throw new NoSuchSandboxError(ref)
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
    }
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

  async sandboxView(sb: SandboxInfo, options?: AbortOptions): Promise<SandboxView> {
    const eps = this.#ctl.endpoints({ sandboxId: sb.id })
    const order = new Map(sb.endpoints.map((id, i) => [id, i]))
    eps.sort((a, b) => (order.get(a.id) ?? 0) - (order.get(b.id) ?? 0))
    const files = this.#extras.filesOf(sb.id)
    return {
      id: sb.id,
      name: nameOf(sb),
      key: sb.key,
      ...(sb.hostname !== undefined && { hostname: sb.hostname }),
      labels: { ...sb.labels },
      hostsPath: files.hostsPath,
      resolvConfPath: files.resolvConfPath,
      dns: files.dns,
      endpoints: await Promise.all(eps.map((e) => this.endpointView(e, options))),
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
    await this.#ctl.deleteNetwork(n.id, options)
  }

  #endpointRequest(sb: SandboxInfo, spec: EndpointSpec): CreateEndpointRequest {
    const bindings: PortBinding[] = parsePortBindings(spec.portBindings ?? [])
    const exposed = new Map<string, { proto: PortBinding['proto']; port: number }>()
    for (const b of bindings) exposed.set(`${b.proto}/${b.containerPort}`, { proto: b.proto, port: b.containerPort })
    return {
      name: spec.name ?? nameOf(sb),
      ...(spec.ipv4Address !== undefined && { ipv4Address: spec.ipv4Address }),
      ...(spec.ipv6Address !== undefined && { ipv6Address: spec.ipv6Address }),
      ...(spec.aliases !== undefined && { aliases: spec.aliases }),
      ...(spec.macAddress !== undefined && { macAddress: spec.macAddress }),
      ...(bindings.length > 0 && { portBindings: bindings, exposedPorts: [...exposed.values()] }),
    }
  }

  /** Creates an endpoint for the sandbox on the network and joins it (undone as a whole on failure). */
  async connect(networkRef: string, body: ConnectBody, options?: AbortOptions): Promise<EndpointView> {
    const n = this.#ctl.network(networkRef)
    const sb = this.sandboxRef(body.sandbox)
    const { sandbox: _s, ...spec } = body
    const ep = await this.#ctl.connect(sb.id, n.id, this.#endpointRequest(sb, spec), options)
    await this.#extras.sandboxChanged(this.#ctl.sandbox(sb.id), options)
    return await this.endpointView(ep, options)
  }

  /** Leaves and deletes the sandbox's endpoint on the network. */
  async disconnect(networkRef: string, body: DisconnectBody, options?: AbortOptions): Promise<void> {
    const n = this.#ctl.network(networkRef)
    const sb = this.sandboxRef(body.sandbox)
    const ep = this.#ctl.endpoints({ networkId: n.id, sandboxId: sb.id })[0]
    if (ep === undefined) throw new NotConnectedError(nameOf(sb), n.name)
    if (body.force === true) await this.#ctl.deleteEndpoint(ep.id, { force: true, ...(options?.signal !== undefined && { signal: options.signal }) })
    else await this.#ctl.disconnect(sb.id, ep.id, options)
    await this.#extras.sandboxChanged(this.#ctl.sandbox(sb.id), options)
  }

  // ------------------------------------------------------------ sandboxes

  async listSandboxes(options?: AbortOptions): Promise<SandboxView[]> {
    return await Promise.all(this.#ctl.sandboxes().map((s) => this.sandboxView(s, options)))
  }

  async inspectSandbox(ref: string, options?: AbortOptions): Promise<SandboxView> {
    return await this.sandboxView(this.sandboxRef(ref), options)
  }

  /**
   * Creates a sandbox (a network namespace) and connects it to the listed networks. Any failure
   * deletes what was made, so a rejected request leaves no state behind.
   */
  async createSandbox(body: CreateSandboxBody, options?: AbortOptions): Promise<SandboxView> {
    // resolve the networks first: an unknown network must not create anything
    const nets = (body.networks ?? []).map((spec) => ({ spec, net: this.#ctl.network(spec.network) }))
    const name = body.name ?? `sb-${randomBytes(6).toString('hex')}`
    const sb = await this.#ctl.createSandbox(
      {
        containerId: name,
        hostname: body.hostname ?? hostnameFor(name),
        ...(body.domainname !== undefined && { domainname: body.domainname }),
        ...(body.labels !== undefined && { labels: body.labels }),
        ...(body.dns !== undefined && { dnsServers: body.dns }),
        ...(body.dnsSearch !== undefined && { dnsSearch: body.dnsSearch }),
        ...(body.dnsOptions !== undefined && { dnsOptions: body.dnsOptions }),
        ...(body.extraHosts !== undefined && { extraHosts: body.extraHosts }),
      },
      options,
    )
    try {
      // the resolver and files need only the namespace: set them up while the endpoints attach
      const ready = this.#extras.sandboxReady(sb, { ...options, fresh: true })
      try {
        for (const { spec, net } of nets) {
          const { network: _n, ...ep } = spec
          await this.#ctl.connect(sb.id, net.id, this.#endpointRequest(sb, ep), options)
        }
      } finally {
        await ready
      }
      const now = this.#ctl.sandbox(sb.id)
      this.#log.trace('sandbox %s attached', sb.id)
      if (nets.length > 0) await this.#extras.sandboxChanged(now)
      this.#log.trace('sandbox %s files written', sb.id)
      const view = await this.sandboxView(now, options)
      this.#log.trace('sandbox %s view built', sb.id)
      return view
    } catch (err) {
      await this.#removeSandbox(sb.id).catch((e: unknown) => this.#log.error('undo sandbox %s failed: %o', sb.id, e))
      throw err
    }
  }

  async #removeSandbox(sid: string, options?: AbortOptions): Promise<void> {
    await this.#extras.sandboxGoing(sid)
    await this.#ctl.deleteSandbox(sid, { endpoints: 'delete', ...(options?.signal !== undefined && { signal: options.signal }) })
    await this.#extras.sandboxGone(sid)
  }

  /** Deletes a sandbox with its endpoints (addresses and host ports are released). */
  async deleteSandbox(ref: string, options?: AbortOptions): Promise<void> {
    const sb = this.sandboxRef(ref)
    await this.#removeSandbox(sb.id, options)
  }
}

/** Writes a per-sandbox file atomically (write to a temp name, rename). */
export function writeFileAtomicSync(path: string, content: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`
  writeFileSync(tmp, content, { mode: 0o644 })
  renameSync(tmp, path)
}

export async function ensureDir(path: string, mode = 0o700): Promise<void> {
  await mkdir(path, { recursive: true, mode })
}

export async function removeDir(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true })
}

