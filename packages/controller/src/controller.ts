import {
  formatIp,
  formatPrefix,
  ipEquals,
  isCnmError,
  isLinkLocalUnicast,
  parseCidr,
  parseIp,
  throwIfAborted,
  type AbortOptions,
  type EndpointId,
  type IpAddr,
  type IpCidr,
  type IpVersion,
  type Logger,
  type NetworkId,
  type SandboxId,
} from '@cnm/types'
import {
  EndpointInterface,
  JoinInfoRecorder,
  generateId,
  ipamDataToJSON,
  parseMac,
  randomMac,
  type EndpointDriverConfig,
  type EndpointOperInfo,
  type IpamData,
  type MacAddress,
  type NetworkDriver,
  type NetworkDriverConfig,
  type RestoredNetwork,
  type SandboxDriverConfig,
} from '@cnm/driverapi'
import { DEFAULT_IPAM, OPTION_MAC_ADDRESS, type Ipam } from '@cnm/ipamapi'
import type { Store } from '@cnm/storeapi'
import {
  ActiveContainerError,
  ActiveEndpointsError,
  AlreadyRegisteredError,
  ControllerInternalError,
  ControllerNotImplementedError,
  ControllerStoppedError,
  DriverNotFoundError,
  EndpointAttachedError,
  EndpointExistsError,
  EndpointNotFoundError,
  InvalidNameError,
  InvalidRequestError,
  IpamNotFoundError,
  NetworkExistsError,
  NetworkNotFoundError,
  NetworkRuleError,
  NotJoinedError,
  SandboxExistsError,
  SandboxInDeleteError,
  SandboxNotFoundError,
} from './errors.js'
import { EventHub } from './internal/events.js'
import { allocatePools, assignAddress, releasePools, validateIpamConfigs } from './internal/ipam.js'
import { KeyedMutex } from './internal/mutex.js'
import {
  GW_BRIDGE_NETWORK,
  compareEndpoints,
  gatewayEndpoint,
  isSpecialType,
  type OrderedEndpoint,
} from './internal/order.js'
import {
  endpointFromRecord,
  endpointToRecord,
  networkFromRecord,
  networkToRecord,
  sandboxFromRecord,
  sandboxToRecord,
  type CountRecord,
  type EndpointRecord,
  type EndpointState,
  type JoinState,
  type NetworkRecord,
  type NetworkState,
  type SandboxRecord,
  type SandboxState,
} from './internal/records.js'
import { StateStore, keys } from './internal/state-store.js'
import { UndoStack } from './internal/undo.js'
import type {
  ConnectOptions,
  ControllerComponents,
  ControllerEvent,
  ControllerEventListener,
  ControllerInit,
  CreateEndpointRequest,
  DnsRecordSource,
  DnsServiceProtocol,
  DnsServiceRecord,
  CreateNetworkRequest,
  CreateSandboxRequest,
  DeleteEndpointOptions,
  DeleteNetworkOptions,
  DeleteSandboxOptions,
  EndpointInfo,
  IpamConfig,
  JoinOptions,
  NetworkInfo,
  NetworkIpamInfo,
  ResolvedName,
  SandboxInfo,
  SandboxOsLayer,
  ServiceRecord,
} from './types.js'

/** Defaults of {@link ControllerInit}. */
export const DEFAULT_CONTROLLER_INIT = Object.freeze({
  netnsRoot: '/var/run/docker/netns',
  defaultIpam: DEFAULT_IPAM,
  casRetries: 8,
  hostAddress: '',
  gatewayBridge: true,
  gatewayBridgeDriver: 'bridge',
})

type ResolvedInit = Required<Omit<ControllerInit, 'builtinDrivers'>>

const sig = (options?: AbortOptions): AbortOptions => (options?.signal === undefined ? {} : { signal: options.signal })

/** Keeps a driver's typed error; wraps anything else as an internal error naming the call. */
function driverError(err: unknown, what: string): Error {
  if (isCnmError(err)) return err
  return new ControllerInternalError(`${what} failed`, { cause: err })
}

function checkName(what: string, name: unknown): string {
  if (typeof name !== 'string' || name.trim() === '') throw new InvalidNameError(what, name)
  return name
}

function checkId(what: string, id: unknown): string {
  if (typeof id !== 'string' || id.trim() === '')
    throw new InvalidRequestError(`invalid ${what} id: ${JSON.stringify(id)}`)
  return id
}

function ipOf(what: string, s: string | undefined, version: IpVersion): IpAddr | undefined {
  if (s === undefined || s === '') return undefined
  let ip: IpAddr
  try {
    ip = parseIp(s)
  } catch (cause) {
    throw new InvalidRequestError(`invalid ${what} ${JSON.stringify(s)}`, { cause })
  }
  if (ip.version !== version) throw new InvalidRequestError(`${what} ${s} is not an IPv${version} address`)
  return ip
}

/**
 * The CNM controller (README §3): driver and IPAM registries, networks, endpoints and sandboxes with
 * their lifecycles, persistence under `docker/network/v1.0/`, recovery on start, events and
 * service-discovery records. Create with `createController(init)(components)` and `start()` it.
 */
export class Controller {
  readonly #cfg: ResolvedInit
  readonly #log: Logger
  readonly #store: StateStore
  readonly #os: SandboxOsLayer
  readonly #drivers = new Map<string, NetworkDriver>()
  readonly #ipams = new Map<string, Ipam>()
  readonly #networks = new Map<string, NetworkState>()
  readonly #endpoints = new Map<string, EndpointState>()
  readonly #sandboxes = new Map<string, SandboxState>()
  readonly #locks = new KeyedMutex()
  readonly #events: EventHub
  #state: 'new' | 'starting' | 'running' | 'stopped' = 'new'
  /** Changes whenever service-discovery answers could change (see dnsRecordSource). */
  #generation = 0

  constructor(init: ControllerInit, components: ControllerComponents) {
    init ??= {}
    if ((init as { builtinDrivers?: unknown }).builtinDrivers === true) {
      throw new InvalidRequestError(
        'builtinDrivers is gone: the controller ships no drivers; register host and null drivers (e.g. hostDriver()/nullDriver() of @cnm/drivers-bridge) in components.drivers',
      )
    }
    const { builtinDrivers: _ignored, ...rest } = init
    this.#cfg = { ...DEFAULT_CONTROLLER_INIT, ...rest }
    if (typeof this.#cfg.netnsRoot !== 'string' || !this.#cfg.netnsRoot.startsWith('/')) {
      throw new InvalidRequestError(`netnsRoot must be an absolute path, got ${JSON.stringify(this.#cfg.netnsRoot)}`)
    }
    if (!Number.isSafeInteger(this.#cfg.casRetries) || this.#cfg.casRetries < 1) {
      throw new InvalidRequestError(`casRetries must be a positive integer, got ${String(this.#cfg.casRetries)}`)
    }
    if (typeof this.#cfg.defaultIpam !== 'string' || this.#cfg.defaultIpam === '') {
      throw new InvalidRequestError('defaultIpam must be a non-empty string')
    }
    if (components?.store === undefined || components.osLayer === undefined || components.logger === undefined) {
      throw new InvalidRequestError('controller components need logger, store and osLayer')
    }
    this.#log = components.logger.forComponent('cnm:controller')
    this.#store = new StateStore(components.store as Store)
    this.#os = components.osLayer
    this.#events = new EventHub(this.#log.child('events'))
    for (const [type, d] of Object.entries(components.drivers ?? {})) this.registerDriver(type, d)
    for (const [name, i] of Object.entries(components.ipams ?? {})) this.registerIpam(name, i)
  }

  // ---------------------------------------------------------------- registries

  /** Registers a network driver under `type`. Empty type → bad request; a type already registered → forbidden. */
  registerDriver(type: string, driver: NetworkDriver): void {
    if (typeof type !== 'string' || type.trim() === '') throw new InvalidRequestError('driver type must not be empty')
    if (driver === null || typeof driver !== 'object' || typeof driver.createNetwork !== 'function') {
      throw new InvalidRequestError(`driver ${type} does not implement NetworkDriver`)
    }
    const caps = driver.capability
    if (!['local', 'global'].includes(caps?.dataScope) || !['local', 'global'].includes(caps?.connectivityScope)) {
      throw new InvalidRequestError(`driver ${type} declares an invalid capability`)
    }
    if (this.#drivers.has(type)) throw new AlreadyRegisteredError('driver', type)
    this.#drivers.set(type, driver)
    this.#log('registered driver %s (%s/%s)', type, caps.dataScope, caps.connectivityScope)
  }

  /** Registers an IPAM under `name` (`default`, `null`, …). Empty name → bad request; duplicate → forbidden. */
  registerIpam(name: string, ipam: Ipam): void {
    if (typeof name !== 'string' || name.trim() === '') throw new InvalidRequestError('IPAM name must not be empty')
    if (ipam === null || typeof ipam !== 'object' || typeof ipam.requestPool !== 'function') {
      throw new InvalidRequestError(`IPAM ${name} does not implement Ipam`)
    }
    if (this.#ipams.has(name)) throw new AlreadyRegisteredError('IPAM', name)
    this.#ipams.set(name, ipam)
    this.#log('registered IPAM %s', name)
  }

  /** Types of the registered drivers. */
  driverTypes(): string[] {
    return [...this.#drivers.keys()]
  }

  /** Names of the registered IPAMs. */
  ipamNames(): string[] {
    return [...this.#ipams.keys()]
  }

  // ---------------------------------------------------------------- lifecycle

  /**
   * Loads state from the store and reconciles it (idempotent): finishes half-deleted networks, drops
   * orphan endpoints, replays IPAM requests when the IPAM wants it, lets drivers restore, leaves
   * endpoints of sandboxes whose namespace is gone, and deletes namespaces no sandbox owns.
   */
  async start(options?: AbortOptions): Promise<void> {
    if (this.#state === 'running' || this.#state === 'starting') return
    if (this.#state === 'stopped') throw new ControllerStoppedError()
    throwIfAborted(options?.signal)
    this.#state = 'starting'
    try {
      await this.#recover(options)
      this.#state = 'running'
    } catch (err) {
      this.#state = 'new'
      throw err
    }
  }

  /** Waits for running operations, then refuses new ones and ends event iterators. The store is the caller's. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return
    if (this.#state === 'running') await this.#locks.idle()
    this.#state = 'stopped'
    this.#events.close()
  }

  #running(options?: AbortOptions): void {
    if (this.#state !== 'running') throw new ControllerStoppedError()
    throwIfAborted(options?.signal)
  }

  // ---------------------------------------------------------------- events

  #emit(event: ControllerEvent): void {
    this.#generation++
    this.#events.emit(event)
  }

  /** Calls `listener` for every event; returns the unsubscribe function. */
  subscribe(listener: ControllerEventListener): () => void {
    return this.#events.subscribe(listener)
  }

  /** Events from now on, until `signal` aborts or the controller stops. */
  events(options?: AbortOptions): AsyncIterable<ControllerEvent> {
    return this.#events.iterate(options?.signal)
  }

  // ---------------------------------------------------------------- lookups

  /** host/null rules (§1.6) by the registered driver's own type (the network type when it is not registered). */
  #special(networkType: string): boolean {
    return isSpecialType(this.#drivers.get(networkType)?.type ?? networkType)
  }

  #driver(type: string): NetworkDriver {
    const d = this.#drivers.get(type)
    if (d === undefined) throw new DriverNotFoundError(type)
    return d
  }

  #ipam(name: string): Ipam {
    const i = this.#ipams.get(name)
    if (i === undefined) throw new IpamNotFoundError(name)
    return i
  }

  #net(nid: string): NetworkState {
    const n = this.#networks.get(nid)
    if (n === undefined || n.inDelete) throw new NetworkNotFoundError(nid)
    return n
  }

  #endpoint(eid: string): EndpointState {
    const e = this.#endpoints.get(eid)
    if (e === undefined) throw new EndpointNotFoundError(eid)
    return e
  }

  #sandbox(sid: string): SandboxState {
    const s = this.#sandboxes.get(sid)
    if (s === undefined) throw new SandboxNotFoundError(sid)
    return s
  }

  #endpointsOf(nid: string): EndpointState[] {
    return [...this.#endpoints.values()].filter((e) => e.networkId === nid)
  }

  /** Networks, without half-deleted ones. */
  networks(): NetworkInfo[] {
    return [...this.#networks.values()]
      .filter((n) => !n.inDelete)
      .sort(byNameThenId)
      .map((n) => this.#networkInfo(n))
  }

  /** By exact id, then exact name, then unique id prefix. Empty → bad request; miss → not found. */
  network(idOrName: string): NetworkInfo {
    return this.#networkInfo(this.#findNetwork(idOrName))
  }

  #findNetwork(idOrName: string): NetworkState {
    checkId('network', idOrName)
    const byId = this.#networks.get(idOrName)
    if (byId !== undefined && !byId.inDelete) return byId
    const live = [...this.#networks.values()].filter((n) => !n.inDelete)
    const byName = live.filter((n) => n.name === idOrName)
    if (byName.length === 1 && byName[0] !== undefined) return byName[0]
    if (byName.length > 1) throw new InvalidRequestError(`network name ${idOrName} is ambiguous; use the id`)
    const byPrefix = live.filter((n) => n.id.startsWith(idOrName))
    if (byPrefix.length === 1 && byPrefix[0] !== undefined) return byPrefix[0]
    throw new NetworkNotFoundError(idOrName)
  }

  /** Endpoints, optionally filtered. */
  endpoints(filter: { networkId?: string; sandboxId?: string; containerId?: string } = {}): EndpointInfo[] {
    return [...this.#endpoints.values()]
      .filter(
        (e) =>
          (filter.networkId === undefined || e.networkId === filter.networkId) &&
          (filter.sandboxId === undefined || e.sandboxId === filter.sandboxId) &&
          (filter.containerId === undefined || e.containerId === filter.containerId),
      )
      .sort(byNameThenId)
      .map((e) => this.#endpointInfo(e))
  }

  /** One endpoint by id (miss → not found). */
  endpoint(eid: string): EndpointInfo {
    checkId('endpoint', eid)
    return this.#endpointInfo(this.#endpoint(eid))
  }

  /** One endpoint by network and endpoint name, or undefined. */
  endpointByName(networkIdOrName: string, name: string): EndpointInfo | undefined {
    const n = this.#findNetwork(networkIdOrName)
    const e = this.#endpointsOf(n.id).find((x) => x.name === name)
    return e === undefined ? undefined : this.#endpointInfo(e)
  }

  sandboxes(): SandboxInfo[] {
    return [...this.#sandboxes.values()]
      .sort((a, b) => (a.containerId < b.containerId ? -1 : a.containerId > b.containerId ? 1 : a.id < b.id ? -1 : 1))
      .map((s) => this.#sandboxInfo(s))
  }

  /** One sandbox by id (miss → not found). */
  sandbox(sid: string): SandboxInfo {
    checkId('sandbox', sid)
    return this.#sandboxInfo(this.#sandbox(sid))
  }

  /** The sandbox of a container, or undefined. */
  sandboxByContainer(containerId: string): SandboxInfo | undefined {
    for (const s of this.#sandboxes.values()) if (s.containerId === containerId) return this.#sandboxInfo(s)
    return undefined
  }

  /** The driver's inspect data of an endpoint. */
  async endpointOperInfo(eid: string, options?: AbortOptions): Promise<EndpointOperInfo> {
    this.#running(options)
    const e = this.#endpoint(eid)
    const n = this.#networks.get(e.networkId)
    if (n === undefined) throw new NetworkNotFoundError(e.networkId)
    try {
      return await this.#driver(n.type).endpointOperInfo(n.id, e.id, sig(options))
    } catch (err) {
      throw driverError(err, 'driver endpointOperInfo')
    }
  }

  // ---------------------------------------------------------------- info builders

  #networkInfo(n: NetworkState): NetworkInfo {
    return {
      id: n.id,
      name: n.name,
      type: n.type,
      scope: n.scope,
      created: n.created,
      labels: { ...n.labels },
      driverOptions: { ...n.driverOptions },
      enableIPv6: n.enableIPv6,
      internal: n.internal,
      attachable: n.attachable,
      ingress: n.ingress,
      configOnly: n.configOnly,
      ...(n.configFrom !== undefined && { configFrom: n.configFrom }),
      persist: n.persist,
      ipam: {
        driver: n.ipamDriver,
        ...(n.addressSpace !== undefined && { addressSpace: n.addressSpace }),
        options: { ...n.ipamOptions },
        config: { v4: n.ipamConfigV4.map((c) => ({ ...c })), v6: n.ipamConfigV6.map((c) => ({ ...c })) },
        v4: [...n.v4],
        v6: [...n.v6],
      },
      endpointCount: this.#endpointsOf(n.id).length,
    }
  }

  #endpointInfo(e: EndpointState): EndpointInfo {
    const j = e.join
    return {
      id: e.id,
      name: e.name,
      networkId: e.networkId,
      networkName: this.#networks.get(e.networkId)?.name ?? '',
      ...(e.address !== undefined && { address: e.address }),
      ...(e.addressIPv6 !== undefined && { addressIPv6: e.addressIPv6 }),
      linkLocalAddresses: [...e.linkLocal],
      ...(e.mac !== undefined && { macAddress: e.mac }),
      anonymous: e.anonymous,
      disableResolution: e.disableResolution,
      aliases: [...e.aliases],
      exposedPorts: [...e.exposedPorts],
      portBindings: [...e.portBindings],
      dnsServers: [...e.dnsServers],
      ...(e.sandboxId !== undefined && { sandboxId: e.sandboxId }),
      ...(e.containerId !== undefined && { containerId: e.containerId }),
      ...(j?.ifaceName !== undefined && { interfaceName: j.ifaceName }),
      ...(j?.gateway !== undefined && { gateway: j.gateway }),
      ...(j?.gatewayIPv6 !== undefined && { gatewayIPv6: j.gatewayIPv6 }),
      staticRoutes: [...(j?.staticRoutes ?? [])],
    }
  }

  #sandboxInfo(s: SandboxState): SandboxInfo {
    return {
      id: s.id,
      containerId: s.containerId,
      key: s.key,
      ...(s.hostname !== undefined && { hostname: s.hostname }),
      ...(s.domainname !== undefined && { domainname: s.domainname }),
      labels: { ...s.labels },
      portBindings: [...s.portBindings],
      exposedPorts: [...s.exposedPorts],
      dnsServers: [...s.dnsServers],
      dnsSearch: [...s.dnsSearch],
      dnsOptions: [...s.dnsOptions],
      extraHosts: [...s.extraHosts],
      useDefaultSandbox: s.useDefaultSandbox,
      useExternalKey: s.useExternalKey,
      endpoints: [...s.endpoints],
      ...(s.gatewayEndpoint !== undefined && { gatewayEndpoint: s.gatewayEndpoint }),
    }
  }

  // ---------------------------------------------------------------- persistence helpers

  async #saveNetwork(n: NetworkState, options?: AbortOptions): Promise<void> {
    if (n.persist) await this.#store.save(keys.network(n.id), networkToRecord(n), options)
  }

  async #saveEndpoint(e: EndpointState, options?: AbortOptions): Promise<void> {
    const n = this.#networks.get(e.networkId)
    if (n === undefined || n.persist)
      await this.#store.save(keys.endpoint(e.networkId, e.id), endpointToRecord(e), options)
  }

  async #saveSandbox(s: SandboxState, options?: AbortOptions): Promise<void> {
    await this.#store.save(keys.sandbox(s.id), sandboxToRecord(s), options)
  }

  async #bumpCount(n: NetworkState, delta: number, options?: AbortOptions): Promise<void> {
    if (!n.persist) return
    await this.#store.modify<CountRecord>(
      keys.endpointCount(n.id),
      (cur) => ({ count: Math.max(0, (cur?.count ?? 0) + delta) }),
      this.#cfg.casRetries,
      options,
    )
  }

  #driverConfig(n: NetworkState): NetworkDriverConfig {
    return {
      name: n.name,
      driverOptions: { ...n.driverOptions },
      labels: { ...n.labels },
      enableIPv6: n.enableIPv6,
      internal: n.internal,
      attachable: n.attachable,
      ingress: n.ingress,
    }
  }

  #endpointDriverConfig(e: EndpointState): EndpointDriverConfig {
    return {
      name: e.name,
      driverOptions: { ...e.driverOptions },
      exposedPorts: [...e.exposedPorts],
      portBindings: [...e.portBindings],
      dnsServers: [...e.dnsServers],
    }
  }

  #sandboxDriverConfig(s: SandboxState, e: EndpointState): SandboxDriverConfig {
    return {
      labels: { ...s.labels },
      exposedPorts: s.exposedPorts.length > 0 ? [...s.exposedPorts] : [...e.exposedPorts],
      portBindings: s.portBindings.length > 0 ? [...s.portBindings] : [...e.portBindings],
    }
  }

  #ipamData(infos: readonly NetworkIpamInfo[]): IpamData[] {
    return infos.map((i) => ({
      addressSpace: i.addressSpace,
      pool: i.pool,
      ...(i.gateway !== undefined && { gateway: i.gateway }),
      auxAddresses: { ...i.auxAddresses },
    }))
  }

  // ---------------------------------------------------------------- networks (§5)

  /** Creates a network (README §5); every step rolls back the previous ones on failure. */
  async createNetwork(req: CreateNetworkRequest, options?: AbortOptions): Promise<NetworkInfo> {
    this.#running(options)
    if (req === null || typeof req !== 'object') throw new InvalidRequestError('missing network request')
    const name = checkName('network', req.name)
    const id = (req.id === undefined ? generateId() : checkId('network', req.id)) as NetworkId
    const configOnly = req.configOnly === true
    let type = configOnly ? 'null' : req.type
    if (!configOnly && (typeof type !== 'string' || type.trim() === ''))
      throw new InvalidRequestError('network driver type must not be empty')

    return this.#locks.run(
      `net:${id}`,
      async () => {
        const existing = this.#networks.get(id)
        if (existing !== undefined) throw new NetworkExistsError(existing.name, id)
        if (req.checkDuplicate === true) {
          const dup = [...this.#networks.values()].find((n) => !n.inDelete && n.name === name)
          if (dup !== undefined) throw new NetworkExistsError(name, dup.id)
        }

        // Config-only / config-from rules (§5 Validation).
        let ipamReq = req.ipam ?? {}
        let driverOptions = { ...(req.driverOptions ?? {}) }
        let enableIPv6 = req.enableIPv6 === true
        let labels = { ...(req.labels ?? {}) }
        if (configOnly) {
          if (req.ingress === true || req.internal === true || req.attachable === true || req.scope !== undefined) {
            throw new NetworkRuleError(
              'configuration network can only contain network specific fields; ingress, internal, attachable and scope are not allowed',
            )
          }
        }
        if (req.configFrom !== undefined) {
          if (configOnly)
            throw new NetworkRuleError('a configuration network cannot depend on another configuration network')
          if (
            req.ipam !== undefined ||
            req.enableIPv6 !== undefined ||
            req.labels !== undefined ||
            req.driverOptions !== undefined
          ) {
            throw new NetworkRuleError('a network with configFrom may not set IPAM, IPv6, labels or driver options')
          }
          const src = [...this.#networks.values()].find((n) => !n.inDelete && n.name === req.configFrom)
          if (src === undefined) throw new NetworkNotFoundError(`configuration ${req.configFrom}`)
          if (!src.configOnly) throw new NetworkRuleError(`network ${req.configFrom} is not a configuration network`)
          ipamReq = {
            driver: src.ipamDriver,
            options: src.ipamOptions,
            v4: src.ipamConfigV4,
            v6: src.ipamConfigV6,
            ...(src.addressSpace !== undefined && { addressSpace: src.addressSpace }),
          }
          driverOptions = { ...src.driverOptions }
          enableIPv6 = src.enableIPv6
          labels = { ...src.labels }
        }

        const driver = configOnly ? undefined : this.#driver(type)
        if (configOnly) type = 'null'
        const dataScope = driver?.capability.dataScope ?? 'local'
        const scope = configOnly ? 'local' : (req.scope ?? dataScope)
        if (scope !== 'local' && scope !== 'global' && scope !== 'swarm')
          throw new InvalidRequestError(`invalid scope ${JSON.stringify(scope)}`)
        if (scope === 'local' && dataScope === 'global')
          throw new NetworkRuleError('cannot downgrade network scope for global-scope driver')
        if (scope === 'swarm') throw new NetworkRuleError('swarm scope requires an active swarm')
        if (req.ingress === true && dataScope !== 'global')
          throw new NetworkRuleError('ingress networks need a global-scope driver')
        if (!configOnly && this.#special(type)) {
          const other = [...this.#networks.values()].find((n) => n.type === type && !n.configOnly && !n.inDelete)
          if (other !== undefined) throw new NetworkRuleError(`only one instance of ${type} network is allowed`)
        }

        const v4Confs = [...(ipamReq.v4 ?? [])]
        const v6Confs = [...(ipamReq.v6 ?? [])]
        validateIpamConfigs(v4Confs, 4)
        validateIpamConfigs(v6Confs, 6)
        const ipamName =
          ipamReq.driver === undefined || ipamReq.driver === '' || ipamReq.driver === DEFAULT_IPAM
            ? this.#cfg.defaultIpam
            : ipamReq.driver

        const net: NetworkState = {
          id,
          name,
          type,
          scope,
          created: new Date().toISOString(),
          labels,
          driverOptions,
          enableIPv6,
          internal: req.internal === true,
          attachable: req.attachable === true,
          ingress: req.ingress === true,
          configOnly,
          ...(req.configFrom !== undefined && { configFrom: req.configFrom }),
          persist: req.persist !== false,
          inDelete: false,
          ipamDriver: ipamName,
          ipamOptions: { ...(ipamReq.options ?? {}) },
          ...(ipamReq.addressSpace !== undefined && { addressSpace: ipamReq.addressSpace }),
          ipamConfigV4: v4Confs.map((c) => ({ ...c })),
          ipamConfigV6: v6Confs.map((c) => ({ ...c })),
          v4: [],
          v6: [],
          ipamReleased: false,
        }

        const undo = new UndoStack(this.#log)
        try {
          if (!configOnly && driver !== undefined) {
            if (!this.#special(type)) {
              const ipam = this.#ipam(ipamName)
              const spaces = await ipam.getDefaultAddressSpaces(sig(options))
              const space = ipamReq.addressSpace ?? (dataScope === 'global' ? spaces.global : spaces.local)
              net.addressSpace = space
              net.v4 = await allocatePools(
                ipam,
                space,
                v4Confs.length > 0 ? v4Confs : [{}],
                4,
                net.ipamOptions,
                undo,
                options,
              )
              const v6 = v6Confs.length > 0 ? v6Confs : enableIPv6 ? [{}] : []
              net.v6 = await allocatePools(ipam, space, v6, 6, net.ipamOptions, undo, options)
            }
            try {
              await driver.createNetwork(
                id,
                this.#driverConfig(net),
                this.#ipamData(net.v4),
                this.#ipamData(net.v6),
                sig(options),
              )
              undo.push(`driver deleteNetwork ${id}`, () => driver.deleteNetwork(id))
            } catch (err) {
              if (!(isCnmError(err) && err.maskable)) throw driverError(err, `driver ${type} createNetwork`)
              this.#log('driver %s createNetwork %s: maskable error ignored: %o', type, id, err)
            }
          }
          if (net.persist) {
            await this.#store.save(keys.endpointCount(id), { count: 0 } satisfies CountRecord, options)
            undo.push('delete endpoint count', () => this.#store.remove(keys.endpointCount(id)))
            await this.#saveNetwork(net, options)
          }
        } catch (err) {
          await undo.run()
          throw err
        }
        this.#networks.set(id, net)
        this.#log('created network %s (%s) type %s', name, id, type)
        this.#emit({ type: 'network-created', networkId: id, name, driver: type })
        return this.#networkInfo(net)
      },
      options,
    )
  }

  /** Deletes a network (README §5). Half-deleted networks are finished at the next start. */
  async deleteNetwork(idOrName: string, options: DeleteNetworkOptions = {}): Promise<void> {
    this.#running(options)
    const target = this.#findNetwork(idOrName)
    await this.#locks.run(`net:${target.id}`, () => this.#deleteNetworkLocked(target.id, options), options)
  }

  async #deleteNetworkLocked(nid: NetworkId, options: DeleteNetworkOptions): Promise<void> {
    const force = options.force === true
    const n = this.#networks.get(nid)
    if (n === undefined || (n.inDelete && !force)) throw new NetworkNotFoundError(nid)
    if (!force && this.#special(n.type) && !n.configOnly)
      throw new NetworkRuleError(`${n.type} network ${n.name} cannot be deleted`)
    if (n.configOnly) {
      const users = [...this.#networks.values()].filter((x) => x.configFrom === n.name && !x.inDelete)
      if (users.length > 0 && !force) throw new NetworkRuleError(`configuration network ${n.name} is in use`)
    }
    const eps = this.#endpointsOf(nid)
    if (eps.length > 0 && !force) throw new ActiveEndpointsError(n.name, nid, eps.length)

    if (!n.inDelete) {
      n.inDelete = true
      try {
        await this.#saveNetwork(n, sig(options))
      } catch (err) {
        n.inDelete = false
        throw err
      }
    }
    // From here on, failures leave the network half-deleted; the next start finishes it.
    if (force) {
      for (const e of eps) await this.#dropEndpointForced(n, e)
    }
    if (!n.ipamReleased && !this.#special(n.type) && !n.configOnly) {
      const ipam = this.#ipams.get(n.ipamDriver)
      if (ipam === undefined) {
        this.#log.error('IPAM %s of network %s is not registered; its pools stay reserved', n.ipamDriver, nid)
      } else {
        await releasePools(ipam, [...n.v4, ...n.v6], this.#log)
      }
      n.ipamReleased = true
      await this.#saveNetwork(n).catch((err: unknown) =>
        this.#log.error('persist released IPAM of %s failed: %o', nid, err),
      )
    }
    if (!n.configOnly) {
      const driver = this.#drivers.get(n.type)
      if (driver === undefined) {
        this.#log.error('driver %s of network %s is not registered; nothing to delete there', n.type, nid)
      } else {
        try {
          await driver.deleteNetwork(nid, sig(options))
        } catch (err) {
          if (isCnmError(err) && err.kind === 'forbidden' && !force) throw err
          if (isCnmError(err) && (err.maskable || err.kind === 'not-found'))
            this.#log.trace('driver deleteNetwork %s: %o', nid, err)
          else this.#log.error('driver deleteNetwork %s failed: %o', nid, err)
        }
      }
    }
    if (n.persist) {
      await this.#store.remove(keys.endpointCount(nid), sig(options))
      await this.#store.remove(keys.network(nid), sig(options))
    }
    this.#networks.delete(nid)
    this.#log('deleted network %s (%s)', n.name, nid)
    this.#emit({ type: 'network-deleted', networkId: nid, name: n.name, driver: n.type })
  }

  /** Recovery/forced delete: remove an endpoint of a network being force-deleted, ignoring errors. */
  async #dropEndpointForced(n: NetworkState, e: EndpointState): Promise<void> {
    if (e.sandboxId !== undefined) this.#forgetJoin(e)
    const driver = this.#drivers.get(n.type)
    await driver
      ?.deleteEndpoint(n.id, e.id)
      .catch((err: unknown) => this.#log.trace('forced deleteEndpoint %s: %o', e.id, err))
    if (!n.ipamReleased) await this.#releaseEndpointAddresses(n, e)
    await this.#store
      .remove(keys.endpoint(n.id, e.id))
      .catch((err: unknown) => this.#log.error('remove endpoint record %s: %o', e.id, err))
    this.#endpoints.delete(e.id)
    this.#emit({ type: 'endpoint-deleted', networkId: n.id, endpointId: e.id, name: e.name })
  }

  // ---------------------------------------------------------------- endpoints (§6)

  /** Creates an endpoint on a network (README §6): addresses reserved, driver endpoint created, persisted. */
  async createEndpoint(
    networkIdOrName: string,
    req: CreateEndpointRequest,
    options?: AbortOptions,
  ): Promise<EndpointInfo> {
    this.#running(options)
    if (req === null || typeof req !== 'object') throw new InvalidRequestError('missing endpoint request')
    const name = checkName('endpoint', req.name)
    const target = this.#findNetwork(networkIdOrName)
    if (target.configOnly)
      throw new NetworkRuleError(`cannot create endpoints on configuration-only network ${target.name}`)
    // Parse everything before taking the lock or allocating anything.
    const pref4 = ipOf('IPv4 address', req.ipv4Address, 4)
    const pref6 = ipOf('IPv6 address', req.ipv6Address, 6)
    const linkLocal: IpCidr[] = (req.linkLocalAddresses ?? []).map((s) => {
      let ip: IpAddr
      try {
        ip = parseIp(s)
      } catch (cause) {
        throw new InvalidRequestError(`invalid link-local address ${JSON.stringify(s)}`, { cause })
      }
      if (!isLinkLocalUnicast(ip)) throw new InvalidRequestError(`address ${s} is not link-local unicast`)
      return parseCidr(`${formatIp(ip)}/${ip.version === 4 ? 16 : 64}`)
    })
    let mac: MacAddress | undefined
    if (req.macAddress !== undefined && req.macAddress !== '') {
      try {
        mac = parseMac(req.macAddress)
      } catch (cause) {
        throw new InvalidRequestError(`invalid MAC address ${JSON.stringify(req.macAddress)}`, { cause })
      }
    }
    const dnsServers = (req.dnsServers ?? []).map((s) => {
      try {
        return parseIp(s)
      } catch (cause) {
        throw new InvalidRequestError(`invalid DNS server ${JSON.stringify(s)}`, { cause })
      }
    })
    const aliases = [...(req.aliases ?? [])]
    for (const a of aliases)
      if (typeof a !== 'string' || a.trim() === '') throw new InvalidRequestError(`invalid alias ${JSON.stringify(a)}`)
    const eid = (req.id === undefined ? generateId() : checkId('endpoint', req.id)) as EndpointId

    return this.#locks.run(
      `net:${target.id}`,
      async () => {
        const net = this.#net(target.id)
        if (this.#endpointsOf(net.id).some((e) => e.name === name)) throw new EndpointExistsError(name, net.name)
        if (this.#endpoints.has(eid)) throw new EndpointExistsError(eid, net.name)
        const driver = this.#driver(net.type)
        const ep: EndpointState = {
          id: eid,
          name,
          networkId: net.id,
          created: new Date().toISOString(),
          linkLocal,
          anonymous: req.anonymous === true,
          disableResolution: req.disableResolution === true,
          aliases,
          exposedPorts: [...(req.exposedPorts ?? [])],
          portBindings: [...(req.portBindings ?? [])],
          dnsServers,
          driverOptions: { ...(req.driverOptions ?? {}) },
          ipamOptions: { ...(req.ipamOptions ?? {}) },
        }
        const undo = new UndoStack(this.#log)
        try {
          const special = this.#special(net.type)
          const ipam = special ? undefined : this.#ipam(net.ipamDriver)
          if (ipam !== undefined && mac === undefined && ipam.capabilities.requiresMacAddress) mac = randomMac()
          if (mac !== undefined) ep.mac = mac
          const ipamOpts = {
            ...ep.ipamOptions,
            ...(mac !== undefined && ipam?.capabilities.requiresMacAddress === true && { [OPTION_MAC_ADDRESS]: mac }),
          }
          if (ipam !== undefined) {
            const a4 = await assignAddress(ipam, net.v4, 4, pref4, ipamOpts, options)
            if (a4 !== undefined) {
              ep.address = a4.address
              ep.v4PoolId = a4.poolId
              undo.push(`release ${formatIp(a4.address.ip)}`, () => ipam.releaseAddress(a4.poolId, a4.address.ip))
            } else if (pref4 !== undefined) {
              ep.address = { ip: pref4, prefix: parseCidr(`${formatIp(pref4)}/32`).prefix }
            }
            if (net.v6.length > 0 && req.deferIPv6 !== true) {
              const a6 = await assignAddress(ipam, net.v6, 6, pref6, ipamOpts, options)
              if (a6 !== undefined) {
                ep.addressIPv6 = a6.address
                ep.v6PoolId = a6.poolId
                undo.push(`release ${formatIp(a6.address.ip)}`, () => ipam.releaseAddress(a6.poolId, a6.address.ip))
              }
            }
          }
          const iface = new EndpointInterface({
            ...(ep.address !== undefined && { address: ep.address }),
            ...(ep.addressIPv6 !== undefined && { addressIPv6: ep.addressIPv6 }),
            ...(ep.mac !== undefined && { macAddress: ep.mac }),
          })
          try {
            await driver.createEndpoint(net.id, eid, iface, this.#endpointDriverConfig(ep), sig(options))
          } catch (err) {
            throw driverError(err, `driver ${net.type} createEndpoint`)
          }
          undo.push(`driver deleteEndpoint ${eid}`, () => driver.deleteEndpoint(net.id, eid))
          // Fields the driver filled in (it may only set what was empty).
          const got = iface.snapshot()
          if (got.address !== undefined) ep.address = got.address
          if (got.addressIPv6 !== undefined && ep.addressIPv6 === undefined) ep.addressIPv6 = got.addressIPv6
          if (got.macAddress !== undefined) ep.mac = got.macAddress
          // Deferred IPv6 (legacy: e.g. derived from the MAC by the driver), reserved in IPAM now.
          if (ipam !== undefined && net.v6.length > 0 && req.deferIPv6 === true) {
            const a6 = await assignAddress(ipam, net.v6, 6, pref6 ?? got.addressIPv6?.ip, ipamOpts, options)
            if (a6 !== undefined) {
              ep.addressIPv6 = a6.address
              ep.v6PoolId = a6.poolId
              undo.push(`release ${formatIp(a6.address.ip)}`, () => ipam.releaseAddress(a6.poolId, a6.address.ip))
            }
          }
          if (net.persist) {
            await this.#saveEndpoint(ep, options)
            undo.push('remove endpoint record', () => this.#store.remove(keys.endpoint(net.id, eid)))
            await this.#bumpCount(net, 1, options)
          }
        } catch (err) {
          await undo.run()
          throw err
        }
        this.#endpoints.set(eid, ep)
        this.#log('created endpoint %s (%s) on network %s', name, eid, net.id)
        this.#emit({ type: 'endpoint-created', networkId: net.id, endpointId: eid, name })
        return this.#endpointInfo(ep)
      },
      options,
    )
  }

  async #releaseEndpointAddresses(n: NetworkState, e: EndpointState): Promise<void> {
    const ipam = this.#ipams.get(n.ipamDriver)
    if (ipam === undefined || this.#special(n.type)) return
    if (e.address !== undefined && e.v4PoolId !== undefined) {
      await ipam.releaseAddress(e.v4PoolId, e.address.ip).catch((err: unknown) => {
        this.#log.error('release address %s of endpoint %s failed: %o', formatIp((e.address as IpCidr).ip), e.id, err)
      })
    }
    if (e.addressIPv6 !== undefined && e.v6PoolId !== undefined) {
      await ipam.releaseAddress(e.v6PoolId, e.addressIPv6.ip).catch((err: unknown) => {
        this.#log.error(
          'release address %s of endpoint %s failed: %o',
          formatIp((e.addressIPv6 as IpCidr).ip),
          e.id,
          err,
        )
      })
    }
  }

  /**
   * Deletes an endpoint: joined and not forced → forbidden ("has active containers"); forced → leave
   * first. Frees its addresses (and, in the driver, its host ports).
   */
  async deleteEndpoint(eid: string, options: DeleteEndpointOptions = {}): Promise<void> {
    this.#running(options)
    checkId('endpoint', eid)
    const ep = this.#endpoint(eid)
    if (ep.sandboxId !== undefined) {
      if (options.force !== true) throw new ActiveContainerError(ep.name, ep.id)
      try {
        await this.leave(ep.sandboxId, eid, sig(options))
      } catch (err) {
        this.#log.error('forced delete of endpoint %s: leave failed, dropping the join: %o', eid, err)
        this.#forgetJoin(ep)
      }
    }
    await this.#locks.run(
      `ep:${eid}`,
      () => this.#locks.run(`net:${ep.networkId}`, () => this.#deleteEndpointLocked(eid, options), options),
      options,
    )
  }

  async #deleteEndpointLocked(eid: string, options: DeleteEndpointOptions): Promise<void> {
    const ep = this.#endpoint(eid)
    if (ep.sandboxId !== undefined) throw new ActiveContainerError(ep.name, ep.id)
    const net = this.#networks.get(ep.networkId)
    if (net === undefined) throw new NetworkNotFoundError(ep.networkId)
    const driver = this.#driver(net.type)
    if (net.persist) await this.#store.remove(keys.endpoint(net.id, ep.id), sig(options))
    try {
      await driver.deleteEndpoint(net.id, ep.id, sig(options))
    } catch (err) {
      if (isCnmError(err) && err.kind === 'forbidden' && options.force !== true) {
        if (net.persist) {
          await this.#saveEndpoint(ep).catch((e: unknown) =>
            this.#log.error('re-persist endpoint %s failed: %o', eid, e),
          )
        }
        throw err
      }
      if (isCnmError(err) && (err.maskable || err.kind === 'not-found'))
        this.#log.trace('driver deleteEndpoint %s: %o', eid, err)
      else this.#log.error('driver deleteEndpoint %s failed: %o', eid, err)
    }
    await this.#releaseEndpointAddresses(net, ep)
    this.#endpoints.delete(ep.id)
    await this.#bumpCount(net, -1).catch((err: unknown) => this.#log.error('endpoint count of %s: %o', net.id, err))
    this.#log('deleted endpoint %s (%s)', ep.name, ep.id)
    this.#emit({ type: 'endpoint-deleted', networkId: net.id, endpointId: ep.id, name: ep.name })
  }

  /** Clears a join in memory only (used when a leave failed during a forced operation). */
  #forgetJoin(ep: EndpointState): void {
    const sid = ep.sandboxId
    delete ep.sandboxId
    delete ep.join
    if (sid === undefined) return
    const sb = this.#sandboxes.get(sid)
    if (sb === undefined) return
    sb.endpoints = sb.endpoints.filter((x) => x !== ep.id)
    if (sb.gatewayEndpoint === ep.id) delete sb.gatewayEndpoint
    this.#emit({
      type: 'endpoint-left',
      networkId: ep.networkId,
      endpointId: ep.id,
      sandboxId: sid,
      containerId: sb.containerId,
    })
    this.#emit({ type: 'records-changed', networkId: ep.networkId })
  }

  // ---------------------------------------------------------------- join / leave

  /** Runs an OS-layer call; untyped failures become ControllerInternalError naming the step. */
  async #osCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (err) {
      throw driverError(err, what)
    }
  }

  #ordered(ids: readonly string[]): OrderedEndpoint[] {
    const out: OrderedEndpoint[] = []
    for (const id of ids) {
      const ep = this.#endpoints.get(id)
      const net = ep && this.#networks.get(ep.networkId)
      if (ep !== undefined && net !== undefined) out.push({ ep, net })
    }
    return out.sort(compareEndpoints)
  }

  #nextIfName(sb: SandboxState, prefix: string): string {
    const used = new Set(sb.endpoints.map((id) => this.#endpoints.get(id)?.join?.ifaceName))
    for (let i = 0; ; i++) if (!used.has(`${prefix}${i}`)) return `${prefix}${i}`
  }

  /** Remembers the host ports the driver mapped for the gateway endpoint (for `_host_` SRV records). */
  async #cachePortMappings(d: NetworkDriver, n: NetworkState, e: EndpointState, options?: AbortOptions): Promise<void> {
    try {
      const info = await d.endpointOperInfo(n.id, e.id, sig(options))
      if (e.join !== undefined) e.join.portMappings = [...(info.portMappings ?? [])]
    } catch (err) {
      this.#log.trace('endpointOperInfo of %s for port mappings failed: %o', e.id, err)
    }
  }

  /**
   * Recomputes the sandbox's gateway endpoint (§7.2); when it changed: revoke external connectivity on
   * the old one (if still joined), program it on the new one (unless internal), set the default routes.
   * Pushes undo steps when `undo` is given; otherwise failures after the change are logged.
   */
  async #applyGateway(sb: SandboxState, undo: UndoStack | undefined, options?: AbortOptions): Promise<boolean> {
    const newGw = gatewayEndpoint(this.#ordered(sb.endpoints), (t) => this.#special(t))
    const oldGw = sb.gatewayEndpoint
    if (newGw === oldGw) return false
    const oldEp = oldGw === undefined ? undefined : this.#endpoints.get(oldGw)
    const oldNet = oldEp && this.#networks.get(oldEp.networkId)
    if (
      oldEp !== undefined &&
      oldNet !== undefined &&
      oldEp.sandboxId === sb.id &&
      sb.endpoints.includes(oldEp.id) &&
      !oldNet.internal
    ) {
      const d = this.#driver(oldNet.type)
      try {
        await d.revokeExternalConnectivity(oldNet.id, oldEp.id, sig(options))
        if (oldEp.join !== undefined) delete oldEp.join.portMappings
        undo?.push('re-program old gateway endpoint', () =>
          d.programExternalConnectivity(oldNet.id, oldEp.id, this.#sandboxDriverConfig(sb, oldEp)),
        )
      } catch (err) {
        if (undo !== undefined) throw driverError(err, 'revokeExternalConnectivity')
        this.#log.error('revoke external connectivity of %s failed: %o', oldEp.id, err)
      }
    }
    const newEp = newGw === undefined ? undefined : this.#endpoints.get(newGw)
    const newNet = newEp && this.#networks.get(newEp.networkId)
    if (newEp !== undefined && newNet !== undefined && !newNet.internal) {
      const d = this.#driver(newNet.type)
      try {
        await d.programExternalConnectivity(newNet.id, newEp.id, this.#sandboxDriverConfig(sb, newEp), sig(options))
        undo?.push('revoke new gateway endpoint', () => d.revokeExternalConnectivity(newNet.id, newEp.id))
        await this.#cachePortMappings(d, newNet, newEp, options)
      } catch (err) {
        if (undo !== undefined) throw driverError(err, 'programExternalConnectivity')
        this.#log.error('program external connectivity of %s failed: %o', newEp.id, err)
      }
    }
    if (!sb.useDefaultSandbox) {
      const gw = {
        ...(newEp?.join?.gateway !== undefined && { ipv4: newEp.join.gateway }),
        ...(newEp?.join?.gatewayIPv6 !== undefined && { ipv6: newEp.join.gatewayIPv6 }),
      }
      const oldGwRoutes = {
        ...(oldEp?.join?.gateway !== undefined && { ipv4: oldEp.join.gateway }),
        ...(oldEp?.join?.gatewayIPv6 !== undefined && { ipv6: oldEp.join.gatewayIPv6 }),
      }
      try {
        await this.#os.setGateway(sb.key, gw, sig(options))
        undo?.push('restore default routes', () => this.#os.setGateway(sb.key, oldGwRoutes))
      } catch (err) {
        if (undo !== undefined) throw driverError(err, `set gateway of sandbox ${sb.key}`)
        this.#log.error('set gateway of sandbox %s failed: %o', sb.id, err)
      }
    }
    if (newGw === undefined) delete sb.gatewayEndpoint
    else sb.gatewayEndpoint = newGw
    undo?.push('restore gateway endpoint', () => {
      if (oldGw === undefined) delete sb.gatewayEndpoint
      else sb.gatewayEndpoint = oldGw
    })
    return true
  }

  /**
   * Joins an endpoint to a sandbox (README §6 join): serialised per sandbox; an endpoint joined
   * elsewhere → forbidden. Moves the driver's interface in, orders endpoints, programs the gateway.
   */
  async join(sandboxId: string, endpointId: string, options: JoinOptions = {}): Promise<EndpointInfo> {
    this.#running(options)
    checkId('sandbox', sandboxId)
    checkId('endpoint', endpointId)
    this.#sandbox(sandboxId)
    this.#endpoint(endpointId)
    if (options.priority !== undefined && !Number.isSafeInteger(options.priority)) {
      throw new InvalidRequestError(`invalid join priority ${String(options.priority)}`)
    }
    return this.#locks.run(`sb:${sandboxId}`, () => this.#joinInSandbox(sandboxId, endpointId, options), options)
  }

  /** Join under the sandbox lock, then attach/detach docker_gwbridge as needed (§6 join steps 6–8). */
  async #joinInSandbox(sid: string, eid: string, options: JoinOptions): Promise<EndpointInfo> {
    await this.#locks.run(`ep:${eid}`, () => this.#joinLocked(sid, eid, options), options)
    try {
      await this.#reconcileGwBridge(sid, options)
    } catch (err) {
      this.#log.error('docker_gwbridge for sandbox %s failed; undoing the join of %s: %o', sid, eid, err)
      await this.#locks
        .run(`ep:${eid}`, () => this.#leaveLocked(sid, eid))
        .catch((e: unknown) => this.#log.error('undo join of %s failed: %o', eid, e))
      throw err
    }
    return this.#endpointInfo(this.#endpoint(eid))
  }

  /**
   * §7.3: a sandbox needs a default gateway when some endpoint (not on docker_gwbridge, not null/host,
   * not internal, not disabling the gateway service) exists and none of them has a gateway or a
   * default static route.
   */
  #needsDefaultGw(sb: SandboxState): boolean {
    let need = false
    for (const eid of sb.endpoints) {
      const e = this.#endpoints.get(eid)
      const n = e && this.#networks.get(e.networkId)
      if (e === undefined || n === undefined) continue
      if (n.name === GW_BRIDGE_NETWORK || this.#special(n.type) || n.internal) continue
      if (e.join?.disableGatewayService === true) continue
      if (e.join?.gateway !== undefined) return false
      if (e.join?.staticRoutes.some((r) => r.destination.version === 4 && r.destination.bits === 0) === true)
        return false
      need = true
    }
    return need
  }

  /** Attaches the sandbox to docker_gwbridge when it needs a default gateway, detaches it when not (sandbox lock held). */
  async #reconcileGwBridge(sid: string, options?: AbortOptions): Promise<void> {
    if (!this.#cfg.gatewayBridge) return
    const sb = this.#sandboxes.get(sid)
    if (sb === undefined || sb.useDefaultSandbox) return
    const gwEp = sb.endpoints
      .map((id) => this.#endpoints.get(id))
      .find((e) => e !== undefined && this.#networks.get(e.networkId)?.name === GW_BRIDGE_NETWORK)
    const need = this.#needsDefaultGw(sb)
    if (need && gwEp === undefined) {
      const type = this.#cfg.gatewayBridgeDriver
      if (!this.#drivers.has(type)) {
        this.#log.error('sandbox %s needs %s but driver %s is not registered', sid, GW_BRIDGE_NETWORK, type)
        return
      }
      let net = [...this.#networks.values()].find((n) => n.name === GW_BRIDGE_NETWORK && !n.inDelete)
      if (net === undefined) {
        const info = await this.createNetwork(
          {
            name: GW_BRIDGE_NETWORK,
            type,
            checkDuplicate: true,
            driverOptions: {
              'com.docker.network.bridge.name': GW_BRIDGE_NETWORK,
              'com.docker.network.bridge.enable_icc': 'false',
              'com.docker.network.bridge.enable_ip_masquerade': 'true',
            },
          },
          options,
        )
        net = this.#net(info.id)
      }
      // [S3]: a container restarting reuses its gateway endpoint (same address, same host ports).
      let ep = this.#endpointsOf(net.id).find((e) => e.containerId === sb.containerId && e.sandboxId === undefined)
      if (ep === undefined) {
        const name = `gateway_${sb.containerId.length > 12 ? sb.id.slice(0, 12) : sb.containerId}`
        const info = await this.createEndpoint(
          net.id,
          { name, anonymous: true, portBindings: sb.portBindings, exposedPorts: sb.exposedPorts },
          options,
        )
        ep = this.#endpoint(info.id)
      }
      const gw = ep
      try {
        await this.#locks.run(`ep:${gw.id}`, () => this.#joinLocked(sid, gw.id, options ?? {}), options)
      } catch (err) {
        await this.deleteEndpoint(gw.id).catch((e: unknown) =>
          this.#log.error('delete unused gateway endpoint %s: %o', gw.id, e),
        )
        throw err
      }
      this.#log('attached sandbox %s to %s through %s', sid, GW_BRIDGE_NETWORK, gw.id)
    } else if (!need && gwEp !== undefined) {
      await this.#locks.run(`ep:${gwEp.id}`, () => this.#leaveLocked(sid, gwEp.id, options), options)
      await this.deleteEndpoint(gwEp.id, sig(options))
      this.#log('detached sandbox %s from %s', sid, GW_BRIDGE_NETWORK)
    }
  }

  async #joinLocked(sid: string, eid: string, options: JoinOptions): Promise<EndpointInfo> {
    const sb = this.#sandbox(sid)
    if (sb.deleting) throw new SandboxInDeleteError(sid)
    const ep = this.#endpoint(eid)
    if (ep.sandboxId !== undefined) throw new EndpointAttachedError()
    const net = this.#net(ep.networkId)
    const driver = this.#driver(net.type)
    const undo = new UndoStack(this.#log)
    const ji = new JoinInfoRecorder({ canCreateVeth: this.#os.vethInPlace === true && !sb.useDefaultSandbox })
    try {
      await driver.join(net.id, ep.id, sb.key, ji, this.#sandboxDriverConfig(sb, ep), sig(options))
    } catch (err) {
      throw driverError(err, `driver ${net.type} join`)
    }
    undo.push(`driver leave ${eid}`, () => driver.leave(net.id, ep.id))
    const jr = ji.result()
    const join: JoinState = {
      ...(jr.interfaceName !== undefined && {
        srcName: jr.interfaceName.srcName,
        dstPrefix: jr.interfaceName.dstPrefix,
      }),
      ...(jr.gateway !== undefined && { gateway: jr.gateway }),
      ...(jr.gatewayIPv6 !== undefined && { gatewayIPv6: jr.gatewayIPv6 }),
      staticRoutes: [...jr.staticRoutes],
      disableGatewayService: jr.disableGatewayService,
      priority: options.priority ?? 0,
    }
    const prevSbEndpoints = [...sb.endpoints]
    let persisted = false
    let gwChanged = false
    try {
      const ifReq =
        jr.interfaceName ??
        (jr.veth === undefined ? undefined : { srcName: jr.veth.spec.hostName, dstPrefix: jr.veth.dstPrefix })
      if (ifReq !== undefined) {
        const srcName = ifReq.srcName
        const dstName = this.#nextIfName(sb, ifReq.dstPrefix)
        join.ifaceName = dstName
        if (!sb.useDefaultSandbox) {
          await this.#osCall(`add interface ${dstName} to ${sb.key}`, () =>
            this.#os.addInterface(
              sb.key,
              {
                srcName,
                dstName,
                ...(jr.veth !== undefined && { veth: jr.veth.spec }),
                ...(ep.address !== undefined && { address: ep.address }),
                ...(ep.addressIPv6 !== undefined && { addressIPv6: ep.addressIPv6 }),
                linkLocalAddresses: [...ep.linkLocal],
                ...(ep.mac !== undefined && { macAddress: ep.mac }),
                routes: [...jr.staticRoutes],
              },
              sig(options),
            ),
          )
          undo.push(`remove interface ${dstName}`, () => this.#os.removeInterface(sb.key, dstName))
        }
      }
      ep.sandboxId = sb.id
      ep.containerId = sb.containerId
      ep.join = join
      undo.push('forget join in memory', () => {
        delete ep.sandboxId
        delete ep.join
      })
      sb.endpoints = this.#ordered([...sb.endpoints, ep.id]).map((o) => o.ep.id)
      undo.push('restore sandbox endpoint list', () => {
        sb.endpoints = prevSbEndpoints
      })
      gwChanged = await this.#applyGateway(sb, undo, options)
      persisted = true
      await this.#saveEndpoint(ep, options)
      await this.#saveSandbox(sb, options)
    } catch (err) {
      await undo.run()
      if (persisted) {
        await this.#saveEndpoint(ep).catch((e: unknown) => this.#log.error('re-persist endpoint %s failed: %o', eid, e))
        await this.#saveSandbox(sb).catch((e: unknown) => this.#log.error('re-persist sandbox %s failed: %o', sid, e))
      }
      throw err
    }
    this.#log('joined endpoint %s to sandbox %s', eid, sid)
    this.#emit({
      type: 'endpoint-joined',
      networkId: net.id,
      endpointId: ep.id,
      sandboxId: sb.id,
      containerId: sb.containerId,
    })
    this.#emit({ type: 'records-changed', networkId: net.id })
    if (gwChanged) {
      this.#emit({
        type: 'gateway-changed',
        sandboxId: sb.id,
        ...(sb.gatewayEndpoint !== undefined && { endpointId: sb.gatewayEndpoint }),
      })
    }
    return this.#endpointInfo(ep)
  }

  /**
   * Leaves (README §6 leave): the sandbox must be the joined one (else forbidden). Addresses and host
   * ports stay with the endpoint ([S3]); the gateway moves to the next endpoint.
   */
  async leave(sandboxId: string, endpointId: string, options?: AbortOptions): Promise<void> {
    this.#running(options)
    checkId('sandbox', sandboxId)
    checkId('endpoint', endpointId)
    this.#sandbox(sandboxId)
    this.#endpoint(endpointId)
    await this.#locks.run(
      `sb:${sandboxId}`,
      async () => {
        await this.#locks.run(`ep:${endpointId}`, () => this.#leaveLocked(sandboxId, endpointId, options), options)
        await this.#reconcileGwBridge(sandboxId, options).catch((err: unknown) => {
          this.#log.error('docker_gwbridge update of sandbox %s after leave failed: %o', sandboxId, err)
        })
      },
      options,
    )
  }

  async #leaveLocked(sid: string, eid: string, options?: AbortOptions): Promise<void> {
    const sb = this.#sandbox(sid)
    const ep = this.#endpoint(eid)
    if (ep.sandboxId !== sb.id) throw new NotJoinedError(eid, sid)
    const net = this.#networks.get(ep.networkId)
    if (net === undefined) throw new NetworkNotFoundError(ep.networkId)
    const driver = this.#driver(net.type)
    const wasGw = sb.gatewayEndpoint === ep.id
    if (wasGw && !net.internal) {
      try {
        await driver.revokeExternalConnectivity(net.id, ep.id, sig(options))
      } catch (err) {
        if (!(isCnmError(err) && (err.maskable || err.kind === 'not-found')))
          throw driverError(err, 'revokeExternalConnectivity')
        this.#log.trace('revoke on leave %s: %o', eid, err)
      }
    }
    try {
      await driver.leave(net.id, ep.id, sig(options))
    } catch (err) {
      if (!(isCnmError(err) && (err.maskable || err.kind === 'not-found'))) {
        if (wasGw && !net.internal) {
          await driver
            .programExternalConnectivity(net.id, ep.id, this.#sandboxDriverConfig(sb, ep))
            .catch((e: unknown) => this.#log.error('re-program %s after failed leave: %o', eid, e))
        }
        throw driverError(err, `driver ${net.type} leave`)
      }
      this.#log.trace('driver leave %s: maskable error ignored: %o', eid, err)
    }
    // The endpoint has left as far as the driver is concerned; what follows only logs failures.
    const ifaceName = ep.join?.ifaceName
    if (ifaceName !== undefined && !sb.useDefaultSandbox) {
      await this.#os.removeInterface(sb.key, ifaceName).catch((err: unknown) => {
        this.#log.error('remove interface %s from sandbox %s failed: %o', ifaceName, sid, err)
      })
    }
    sb.endpoints = sb.endpoints.filter((x) => x !== ep.id)
    delete ep.sandboxId
    delete ep.join
    if (wasGw) delete sb.gatewayEndpoint
    const changed = (await this.#applyGateway(sb, undefined, options)) || wasGw
    if (wasGw && sb.gatewayEndpoint === undefined && !sb.useDefaultSandbox) {
      await this.#os
        .setGateway(sb.key, {})
        .catch((err: unknown) => this.#log.error('clear gateway of %s failed: %o', sid, err))
    }
    await this.#saveEndpoint(ep)
    await this.#saveSandbox(sb)
    this.#log('endpoint %s left sandbox %s', eid, sid)
    this.#emit({
      type: 'endpoint-left',
      networkId: net.id,
      endpointId: ep.id,
      sandboxId: sb.id,
      containerId: sb.containerId,
    })
    this.#emit({ type: 'records-changed', networkId: net.id })
    if (changed) {
      this.#emit({
        type: 'gateway-changed',
        sandboxId: sb.id,
        ...(sb.gatewayEndpoint !== undefined && { endpointId: sb.gatewayEndpoint }),
      })
    }
  }

  /** `network connect`: create an endpoint and join it; the endpoint is deleted again if the join fails. */
  async connect(
    sandboxId: string,
    networkIdOrName: string,
    req: CreateEndpointRequest,
    options: ConnectOptions = {},
  ): Promise<EndpointInfo> {
    this.#running(options)
    this.#sandbox(checkId('sandbox', sandboxId))
    const ep = await this.createEndpoint(networkIdOrName, req, options)
    try {
      return await this.join(sandboxId, ep.id, options)
    } catch (err) {
      await this.deleteEndpoint(ep.id, { force: true }).catch((e: unknown) =>
        this.#log.error('rollback of endpoint %s failed: %o', ep.id, e),
      )
      throw err
    }
  }

  /** `network disconnect`: leave, then delete the endpoint unless `keep` ([S3] stop keeps it). */
  async disconnect(
    sandboxId: string,
    endpointId: string,
    options: AbortOptions & { keep?: boolean } = {},
  ): Promise<void> {
    await this.leave(sandboxId, endpointId, options)
    if (options.keep !== true) await this.deleteEndpoint(endpointId, sig(options))
  }

  // ---------------------------------------------------------------- sandboxes (§7)

  /** Creates a sandbox for a container (empty id → bad request; a second one → forbidden). */
  async createSandbox(req: CreateSandboxRequest, options?: AbortOptions): Promise<SandboxInfo> {
    this.#running(options)
    if (req === null || typeof req !== 'object') throw new InvalidRequestError('missing sandbox request')
    const cid = checkId('container', req.containerId)
    for (const s of req.dnsServers ?? []) {
      if (parseIpSafe(s) === undefined) throw new InvalidRequestError(`invalid DNS server ${JSON.stringify(s)}`)
    }
    for (const h of req.extraHosts ?? []) {
      checkName('extra host', h?.name)
      if (parseIpSafe(h.ip) === undefined)
        throw new InvalidRequestError(`invalid extra host address ${JSON.stringify(h.ip)}`)
    }
    return this.#locks.run(
      `container:${cid}`,
      async () => {
        for (const s of this.#sandboxes.values()) if (s.containerId === cid) throw new SandboxExistsError(cid, s.id)
        const id = generateId() as SandboxId
        const useDefault = req.useDefaultSandbox === true
        const sb: SandboxState = {
          id,
          containerId: cid,
          key: useDefault ? `${this.#cfg.netnsRoot}/default` : `${this.#cfg.netnsRoot}/${id.slice(0, 12)}`,
          created: new Date().toISOString(),
          ...(req.hostname !== undefined && { hostname: req.hostname }),
          ...(req.domainname !== undefined && { domainname: req.domainname }),
          labels: { ...(req.labels ?? {}) },
          portBindings: [...(req.portBindings ?? [])],
          exposedPorts: [...(req.exposedPorts ?? [])],
          dnsServers: [...(req.dnsServers ?? [])],
          dnsSearch: [...(req.dnsSearch ?? [])],
          dnsOptions: [...(req.dnsOptions ?? [])],
          extraHosts: (req.extraHosts ?? []).map((h) => ({ name: h.name, ip: h.ip })),
          useDefaultSandbox: useDefault,
          useExternalKey: req.useExternalKey === true,
          endpoints: [],
          deleting: false,
        }
        const undo = new UndoStack(this.#log)
        try {
          if (!useDefault && !sb.useExternalKey) {
            try {
              await this.#os.createSandbox(sb.key, sig(options))
            } catch (err) {
              throw driverError(err, `create sandbox ${sb.key}`)
            }
            undo.push(`delete sandbox ${sb.key}`, () => this.#os.deleteSandbox(sb.key))
          }
          await this.#saveSandbox(sb, options)
        } catch (err) {
          await undo.run()
          throw err
        }
        this.#sandboxes.set(id, sb)
        this.#log('created sandbox %s for container %s at %s', id, cid, sb.key)
        this.#emit({ type: 'sandbox-created', sandboxId: id, containerId: cid })
        return this.#sandboxInfo(sb)
      },
      options,
    )
  }

  /**
   * Sets the namespace path of a `useExternalKey` sandbox (the runtime created it). Empty → bad request;
   * during delete → forbidden; re-keying with joined endpoints is not implemented.
   */
  async setKey(sandboxId: string, key: string, options?: AbortOptions): Promise<SandboxInfo> {
    this.#running(options)
    if (typeof key !== 'string' || key.trim() === '') throw new InvalidRequestError('sandbox key must not be empty')
    return this.#locks.run(
      `sb:${sandboxId}`,
      async () => {
        const sb = this.#sandbox(sandboxId)
        if (sb.deleting) throw new SandboxInDeleteError(sandboxId)
        if (!sb.useExternalKey) throw new NetworkRuleError(`sandbox ${sandboxId} does not use an external key`)
        if (sb.endpoints.length > 0)
          throw new ControllerNotImplementedError('setKey on a sandbox with joined endpoints')
        const prev = sb.key
        sb.key = key
        try {
          await this.#saveSandbox(sb, options)
        } catch (err) {
          sb.key = prev
          throw err
        }
        return this.#sandboxInfo(sb)
      },
      options,
    )
  }

  /**
   * Deletes a sandbox (§7.1): leaves every endpoint and, by default, deletes it (`endpoints: 'leave'`
   * keeps them for a container restart, [S3]); destroys the namespace; removes the record.
   */
  async deleteSandbox(sandboxId: string, options: DeleteSandboxOptions = {}): Promise<void> {
    this.#running(options)
    checkId('sandbox', sandboxId)
    const sb = this.#sandbox(sandboxId)
    if (sb.deleting) throw new SandboxInDeleteError(sandboxId)
    sb.deleting = true
    try {
      for (const eid of [...sb.endpoints]) {
        const ep = this.#endpoints.get(eid)
        if (ep === undefined || ep.sandboxId !== sb.id) continue
        try {
          await this.#locks.run(
            `sb:${sb.id}`,
            () => this.#locks.run(`ep:${eid}`, () => this.#leaveLocked(sb.id, eid, sig(options))),
            options,
          )
        } catch (err) {
          this.#log.error('sandbox %s delete: leave of %s failed, dropping the join: %o', sb.id, eid, err)
          this.#forgetJoin(ep)
          await this.#saveEndpoint(ep).catch((e: unknown) => this.#log.error('persist endpoint %s failed: %o', eid, e))
        }
        if ((options.endpoints ?? 'delete') === 'delete') {
          await this.deleteEndpoint(eid, sig(options)).catch((err: unknown) => {
            this.#log.error('sandbox %s delete: delete of endpoint %s failed: %o', sb.id, eid, err)
          })
        }
      }
      await this.#locks.run(`sb:${sb.id}`, async () => {
        if (!sb.useDefaultSandbox && !sb.useExternalKey) {
          try {
            await this.#os.deleteSandbox(sb.key, sig(options))
          } catch (err) {
            throw driverError(err, `delete sandbox ${sb.key}`)
          }
        }
        await this.#store.remove(keys.sandbox(sb.id), sig(options))
        this.#sandboxes.delete(sb.id)
      })
    } finally {
      sb.deleting = false
    }
    this.#log('deleted sandbox %s of container %s', sb.id, sb.containerId)
    this.#emit({ type: 'sandbox-deleted', sandboxId: sb.id, containerId: sb.containerId })
  }

  /** Deletes the sandbox of a container, if there is one (no-op otherwise). */
  async sandboxDestroy(containerId: string, options: DeleteSandboxOptions = {}): Promise<void> {
    this.#running(options)
    for (const s of this.#sandboxes.values()) {
      if (s.containerId === containerId) {
        await this.deleteSandbox(s.id, options)
        return
      }
    }
  }

  // ---------------------------------------------------------------- service discovery

  /** Service records of one network: every joined endpoint with its names and addresses. */
  networkRecords(networkId: string): ServiceRecord[] {
    const n = this.#net(checkId('network', networkId))
    const out: ServiceRecord[] = []
    for (const e of this.#endpointsOf(n.id)) {
      if (e.sandboxId === undefined) continue
      const names = [...(e.anonymous ? [] : [e.name]), ...e.aliases]
      out.push({
        networkId: n.id,
        networkName: n.name,
        endpointId: e.id,
        sandboxId: e.sandboxId,
        containerId: e.containerId ?? '',
        names,
        ...(e.address !== undefined && { ipv4: e.address.ip }),
        ...(e.addressIPv6 !== undefined && { ipv6: e.addressIPv6.ip }),
      })
    }
    return out
  }

  /** Records visible from a sandbox: those of every network it is joined to. */
  sandboxRecords(sandboxId: string): ServiceRecord[] {
    const sb = this.#sandbox(checkId('sandbox', sandboxId))
    const nets = new Set<string>()
    for (const eid of sb.endpoints) {
      const e = this.#endpoints.get(eid)
      if (e !== undefined) nets.add(e.networkId)
    }
    return [...nets]
      .filter((nid) => this.#networks.get(nid)?.inDelete === false)
      .flatMap((nid) => this.networkRecords(nid))
  }

  /** Resolves a DNS name (case-insensitive) from a sandbox; undefined when no record matches. */
  resolveName(sandboxId: string, name: string): ResolvedName | undefined {
    const q = name.replace(/\.$/, '').toLowerCase()
    const ipv4: IpAddr[] = []
    const ipv6: IpAddr[] = []
    for (const r of this.sandboxRecords(sandboxId)) {
      if (!r.names.some((x) => x.toLowerCase() === q)) continue
      if (r.ipv4 !== undefined && !ipv4.some((a) => ipEquals(a, r.ipv4 as IpAddr))) ipv4.push(r.ipv4)
      if (r.ipv6 !== undefined && !ipv6.some((a) => ipEquals(a, r.ipv6 as IpAddr))) ipv6.push(r.ipv6)
    }
    return ipv4.length === 0 && ipv6.length === 0 ? undefined : { ipv4, ipv6 }
  }

  /** Reverse lookup from a sandbox: the names owning `ip` (first the endpoint name). */
  resolveAddress(sandboxId: string, ip: IpAddr | string): string[] {
    const addr = typeof ip === 'string' ? parseIpSafe(ip) : ip
    if (addr === undefined) throw new InvalidRequestError(`invalid address ${JSON.stringify(ip)}`)
    const out: string[] = []
    for (const r of this.sandboxRecords(sandboxId)) {
      const hit = (r.ipv4 !== undefined && ipEquals(r.ipv4, addr)) || (r.ipv6 !== undefined && ipEquals(r.ipv6, addr))
      if (hit) for (const n of r.names) if (!out.includes(n)) out.push(n)
    }
    return out
  }

  /**
   * A per-sandbox record source in the shape `@cnm/resolver` asks for (sandbox-dns.md §3): synchronous
   * map lookups over the controller's state, `generation` changing whenever an answer could change.
   * Lookups of a deleted sandbox return undefined.
   */
  dnsRecordSource(sandboxId: string): DnsRecordSource {
    this.#sandbox(checkId('sandbox', sandboxId))
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const ctl = this
    return {
      get generation(): number {
        return ctl.#generation
      },
      lookupName: (name) => this.#dnsLookupName(sandboxId, name),
      lookupAddress: (address) => this.#dnsLookupAddress(sandboxId, address),
      lookupService: (name, service, protocol) => this.#dnsLookupService(sandboxId, name, service, protocol),
    }
  }

  /** Networks the sandbox is joined to, in its endpoint order. */
  #dnsNetworks(sid: string): NetworkState[] {
    const sb = this.#sandboxes.get(sid)
    if (sb === undefined) return []
    const out: NetworkState[] = []
    for (const eid of sb.endpoints) {
      const e = this.#endpoints.get(eid)
      const n = e && this.#networks.get(e.networkId)
      if (n !== undefined && !n.inDelete && !n.ingress && !out.includes(n)) out.push(n)
    }
    return out
  }

  #namesOf(e: EndpointState): string[] {
    return [...(e.anonymous ? [] : [e.name]), ...e.aliases].map((x) => x.toLowerCase())
  }

  /** Joined endpoints of network `n` answering to `name` (lower case). */
  #dnsMatches(n: NetworkState, name: string): EndpointState[] {
    return this.#endpointsOf(n.id).filter((e) => e.sandboxId !== undefined && this.#namesOf(e).includes(name))
  }

  #dnsLookupName(sid: string, raw: string): { ipv4: string[]; ipv6: string[] } | undefined {
    const name = raw.replace(/\.$/, '').toLowerCase()
    const nets = this.#dnsNetworks(sid)
    const candidates: Array<[string, string | undefined]> = [[name, undefined]]
    for (let i = name.lastIndexOf('.'); i > 0; i = name.lastIndexOf('.', i - 1))
      candidates.push([name.slice(0, i), name.slice(i + 1)])
    for (const [host, netName] of candidates) {
      for (const n of nets) {
        if (netName !== undefined && n.name.toLowerCase() !== netName) continue
        const hits = this.#dnsMatches(n, host)
        if (hits.length === 0) continue
        const ipv4 = [...new Set(hits.flatMap((e) => (e.address === undefined ? [] : [formatIp(e.address.ip)])))]
        const ipv6 = [
          ...new Set(hits.flatMap((e) => (e.addressIPv6 === undefined ? [] : [formatIp(e.addressIPv6.ip)]))),
        ]
        return { ipv4, ipv6 }
      }
    }
    return undefined
  }

  #dnsLookupAddress(sid: string, address: string): string | undefined {
    const ip = parseIpSafe(address)
    if (ip === undefined) return undefined
    for (const n of this.#dnsNetworks(sid)) {
      for (const e of this.#endpointsOf(n.id)) {
        if (e.sandboxId === undefined) continue
        const own =
          (e.address !== undefined && ipEquals(e.address.ip, ip)) ||
          (e.addressIPv6 !== undefined && ipEquals(e.addressIPv6.ip, ip))
        if (!own) continue
        const primary = e.anonymous ? e.aliases[0] : e.name
        if (primary !== undefined) return `${primary}.${n.name}`
      }
    }
    return undefined
  }

  #dnsLookupService(
    sid: string,
    raw: string,
    service: string,
    protocol: DnsServiceProtocol,
  ): DnsServiceRecord[] | undefined {
    const name = raw.replace(/\.$/, '').toLowerCase()
    const host = service.startsWith('host_')
    const port = Number(host ? service.slice(5) : service)
    if (!Number.isSafeInteger(port) || port <= 0) return undefined
    for (const n of this.#dnsNetworks(sid)) {
      const out: DnsServiceRecord[] = []
      for (const e of this.#dnsMatches(n, name)) {
        const sb = this.#sandboxes.get(e.sandboxId as string)
        if (sb === undefined) continue
        const bindings = sb.portBindings.length > 0 ? sb.portBindings : e.portBindings
        if (!bindings.some((b) => b.proto === protocol && b.containerPort === port)) continue
        const target = e.anonymous ? e.aliases[0] : e.name
        if (target === undefined) continue
        if (!host) {
          const addresses = [e.address, e.addressIPv6].flatMap((a) => (a === undefined ? [] : [formatIp(a.ip)]))
          out.push({ target, port, addresses })
          continue
        }
        for (const m of e.join?.portMappings ?? []) {
          if (m.proto !== protocol || m.containerPort !== port) continue
          const addr = m.hostIp !== undefined && !(m.hostIp.value === 0n) ? formatIp(m.hostIp) : this.#cfg.hostAddress
          if (addr === undefined || addr === '') continue
          out.push({ target, port: m.hostPort, addresses: [addr] })
        }
      }
      if (out.length > 0) return out
    }
    return undefined
  }

  // ---------------------------------------------------------------- recovery

  async #recover(options?: AbortOptions): Promise<void> {
    const s = sig(options)
    this.#networks.clear()
    this.#endpoints.clear()
    this.#sandboxes.clear()
    for (const { key, value } of await this.#store.list<NetworkRecord>(keys.networks(), s)) {
      try {
        if (value === undefined) throw new Error('unparsable JSON')
        const n = networkFromRecord(value)
        this.#networks.set(n.id, n)
      } catch (err) {
        this.#log.error('skipping unreadable network record %s: %o', key, err)
      }
    }
    for (const { key, value } of await this.#store.list<EndpointRecord>(keys.endpoints(), s)) {
      try {
        if (value === undefined) throw new Error('unparsable JSON')
        const e = endpointFromRecord(value)
        this.#endpoints.set(e.id, e)
      } catch (err) {
        this.#log.error('skipping unreadable endpoint record %s: %o', key, err)
      }
    }
    for (const { key, value } of await this.#store.list<SandboxRecord>(keys.sandboxes(), s)) {
      try {
        if (value === undefined) throw new Error('unparsable JSON')
        const sb = sandboxFromRecord(value)
        this.#sandboxes.set(sb.id, sb)
      } catch (err) {
        this.#log.error('skipping unreadable sandbox record %s: %o', key, err)
      }
    }
    this.#log(
      'recovering %d networks, %d endpoints, %d sandboxes',
      this.#networks.size,
      this.#endpoints.size,
      this.#sandboxes.size,
    )

    // 1. Endpoints of networks that no longer exist.
    for (const e of [...this.#endpoints.values()]) {
      if (!this.#networks.has(e.networkId)) {
        this.#log('removing orphan endpoint %s of missing network %s', e.id, e.networkId)
        await this.#store.remove(keys.endpoint(e.networkId, e.id), s)
        this.#endpoints.delete(e.id)
      }
    }

    // 2. IPAM replay for local networks whose IPAM asks for it (allocation.md §3.9).
    for (const n of this.#networks.values()) {
      if (n.inDelete || n.configOnly || this.#special(n.type) || n.scope !== 'local') continue
      const ipam = this.#ipams.get(n.ipamDriver)
      if (ipam === undefined) {
        this.#log.error('IPAM %s of network %s is not registered', n.ipamDriver, n.id)
        continue
      }
      if (ipam.capabilities.requiresRequestReplay) await this.#replayIpam(n, ipam, options)
    }

    // 3. Sandboxes whose namespace is gone are dead: their endpoints leave (kept, [S3]).
    const dirty = new Set<EndpointState>()
    const kernel = new Set(await this.#os.listSandboxes(s))
    for (const sb of [...this.#sandboxes.values()]) {
      if (sb.useDefaultSandbox || sb.useExternalKey || kernel.has(sb.key)) continue
      this.#log('sandbox %s lost its namespace %s; its endpoints leave', sb.id, sb.key)
      for (const eid of sb.endpoints) {
        const e = this.#endpoints.get(eid)
        if (e === undefined) continue
        delete e.sandboxId
        delete e.join
        dirty.add(e)
      }
      this.#sandboxes.delete(sb.id)
      await this.#store.remove(keys.sandbox(sb.id), s)
    }
    // Joins that point at missing sandboxes; sandbox lists that point at missing or un-joined endpoints.
    for (const e of this.#endpoints.values()) {
      if (e.sandboxId !== undefined && !this.#sandboxes.has(e.sandboxId)) {
        delete e.sandboxId
        delete e.join
        dirty.add(e)
      }
    }
    for (const sb of this.#sandboxes.values()) {
      const before = sb.endpoints.length
      sb.endpoints = sb.endpoints.filter((eid) => this.#endpoints.get(eid)?.sandboxId === sb.id)
      for (const e of this.#endpoints.values())
        if (e.sandboxId === sb.id && !sb.endpoints.includes(e.id)) sb.endpoints.push(e.id)
      sb.endpoints = this.#ordered(sb.endpoints).map((o) => o.ep.id)
      if (sb.gatewayEndpoint !== undefined && !sb.endpoints.includes(sb.gatewayEndpoint)) delete sb.gatewayEndpoint
      if (before !== sb.endpoints.length) await this.#saveSandbox(sb, s)
    }

    // 4. Drivers rebuild their state for the networks that remain and drop their leftovers.
    const gatewayEps = new Set(
      [...this.#sandboxes.values()].map((sb) => sb.gatewayEndpoint).filter((x) => x !== undefined),
    )
    for (const [type, driver] of this.#drivers) {
      if (driver.restore === undefined) continue
      const nets: RestoredNetwork[] = [...this.#networks.values()]
        .filter((n) => n.type === type && !n.inDelete && !n.configOnly)
        .map((n) => ({
          id: n.id,
          config: this.#driverConfig(n),
          ipv4Data: this.#ipamData(n.v4),
          ipv6Data: this.#ipamData(n.v6),
          endpoints: this.#endpointsOf(n.id).map((e) => {
            const sb = e.sandboxId === undefined ? undefined : this.#sandboxes.get(e.sandboxId)
            return {
              id: e.id,
              config: this.#endpointDriverConfig(e),
              ...(e.address !== undefined && { address: e.address }),
              ...(e.addressIPv6 !== undefined && { addressIPv6: e.addressIPv6 }),
              ...(e.mac !== undefined && { macAddress: e.mac }),
              ...(sb !== undefined && { sandboxKey: sb.key }),
              externalConnectivity: gatewayEps.has(e.id),
            }
          }),
        }))
      try {
        await driver.restore(nets, s)
      } catch (err) {
        this.#log.error('driver %s restore failed: %o', type, err)
      }
    }

    // 5. Finish half-deleted networks (forced delete: ignore endpoint counts and driver errors).
    for (const n of [...this.#networks.values()]) {
      if (!n.inDelete) continue
      this.#log('finishing half-deleted network %s (%s)', n.name, n.id)
      try {
        await this.#deleteNetworkLocked(n.id, { force: true, ...s })
      } catch (err) {
        this.#log.error('forced delete of network %s failed: %o', n.id, err)
      }
    }

    // 6. Namespaces nobody owns leak: delete them.
    const owned = new Set([...this.#sandboxes.values()].map((sb) => sb.key))
    for (const key of kernel) {
      if (owned.has(key) || key === `${this.#cfg.netnsRoot}/default`) continue
      this.#log('deleting stale sandbox namespace %s', key)
      await this.#os
        .deleteSandbox(key, s)
        .catch((err: unknown) => this.#log.error('delete stale namespace %s failed: %o', key, err))
    }

    // 7. Persist repaired endpoints and reconcile endpoint counters.
    for (const e of dirty) {
      const n = this.#networks.get(e.networkId)
      if (this.#endpoints.has(e.id) && n?.persist === true) await this.#saveEndpoint(e, s)
    }
    for (const n of this.#networks.values()) {
      if (!n.persist || n.configOnly) continue
      const count = this.#endpointsOf(n.id).length
      await this.#store.modify<CountRecord>(keys.endpointCount(n.id), () => ({ count }), this.#cfg.casRetries, s)
    }
  }

  async #replayIpam(n: NetworkState, ipam: Ipam, options?: AbortOptions): Promise<void> {
    const undo = new UndoStack(this.#log)
    try {
      const pinned = (infos: NetworkIpamInfo[], confs: IpamConfig[]): IpamConfig[] =>
        infos.map((i, k) => ({
          ...confs[k],
          pool: formatPrefix(i.pool),
          ...(i.gateway !== undefined && { gateway: formatIp(i.gateway.ip) }),
          auxAddresses: Object.fromEntries(Object.entries(i.auxAddresses).map(([k2, v]) => [k2, formatIp(v.ip)])),
        }))
      const space = n.addressSpace ?? (await ipam.getDefaultAddressSpaces(sig(options))).local
      const v4 = await allocatePools(ipam, space, pinned(n.v4, n.ipamConfigV4), 4, n.ipamOptions, undo, options)
      const v6 = await allocatePools(ipam, space, pinned(n.v6, n.ipamConfigV6), 6, n.ipamOptions, undo, options)
      n.v4 = v4
      n.v6 = v6
      for (const e of this.#endpointsOf(n.id)) {
        if (e.address !== undefined && e.v4PoolId !== undefined) {
          const a = await assignAddress(ipam, n.v4, 4, e.address.ip, e.ipamOptions, options)
          if (a !== undefined && a.poolId !== e.v4PoolId) {
            e.v4PoolId = a.poolId
            await this.#saveEndpoint(e, sig(options))
          }
        }
        if (e.addressIPv6 !== undefined && e.v6PoolId !== undefined) {
          const a = await assignAddress(ipam, n.v6, 6, e.addressIPv6.ip, e.ipamOptions, options)
          if (a !== undefined && a.poolId !== e.v6PoolId) {
            e.v6PoolId = a.poolId
            await this.#saveEndpoint(e, sig(options))
          }
        }
      }
      await this.#saveNetwork(n, sig(options))
    } catch (err) {
      this.#log.error('IPAM replay of network %s failed: %o', n.id, err)
    }
  }
}

/** Stable listing order: name, then id. */
function byNameThenId(a: { name: string; id: string }, b: { name: string; id: string }): number {
  if (a.name !== b.name) return a.name < b.name ? -1 : 1
  return a.id < b.id ? -1 : a.id > b.id ? 1 : 0
}

function parseIpSafe(s: unknown): IpAddr | undefined {
  if (typeof s !== 'string') return undefined
  try {
    return parseIp(s)
  } catch {
    return undefined
  }
}

/** The IPAM data JSON a driver got for a network (for inspect output). */
export function ipamInfoToJSON(info: NetworkIpamInfo): ReturnType<typeof ipamDataToJSON> & { PoolID: string } {
  return {
    ...ipamDataToJSON({
      addressSpace: info.addressSpace,
      pool: info.pool,
      ...(info.gateway !== undefined && { gateway: info.gateway }),
      auxAddresses: info.auxAddresses,
    }),
    PoolID: info.poolId,
  }
}

/** Two-stage factory: `createController(init)(components)` → a Controller to `start()`. */
export function createController(init: ControllerInit = {}): (components: ControllerComponents) => Controller {
  return (components) => new Controller(init, components)
}
