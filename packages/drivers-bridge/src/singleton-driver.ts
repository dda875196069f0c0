import {
  throwIfAborted,
  type AbortOptions,
  type ComponentLogger,
  type EndpointId,
  type Logger,
  type NetworkId,
} from '@cnm/types'
import {
  EndpointExistsError,
  EndpointNotFoundError,
  NetworkExistsError,
  NetworkNotFoundError,
  type Capability,
  type EndpointDriverConfig,
  type EndpointOperInfo,
  type InterfaceInfo,
  type IpamData,
  type JoinInfo,
  type NetworkDriver,
  type NetworkDriverConfig,
  type RestoredNetwork,
  type SandboxDriverConfig,
} from '@cnm/driverapi'
import { SingletonNetworkError } from './errors.js'

/** What the host injects into the `null` and `host` drivers. */
export interface SingletonDriverComponents {
  logger: ComponentLogger
}

/**
 * The shared shape of libnetwork's trivial built-in drivers (drivers.md §1.6): at most one network of the
 * type, which cannot be deleted; endpoints, joins and external connectivity are bookkeeping only (no
 * interfaces, no addresses, no kernel state). Endpoint ids are tracked so the driver contract's
 * not-found/duplicate rules hold.
 */
abstract class SingletonDriver implements NetworkDriver {
  abstract readonly type: 'null' | 'host'
  readonly capability: Capability = Object.freeze({ dataScope: 'local', connectivityScope: 'local' })
  protected readonly log: Logger
  private network: NetworkId | undefined
  private readonly endpoints = new Set<string>()

  constructor(components: SingletonDriverComponents, name: string) {
    this.log = components.logger.forComponent(`cnm:drivers-bridge:${name}`)
  }

  async createNetwork(
    nid: NetworkId,
    _config: NetworkDriverConfig,
    _ipv4Data: readonly IpamData[],
    _ipv6Data: readonly IpamData[],
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    if (this.network === nid) throw new NetworkExistsError(nid)
    if (this.network !== undefined) {
      throw new SingletonNetworkError(
        'ERR_BRIDGE_SINGLE_NETWORK',
        `only one instance of "${this.type}" network is allowed (network ${this.network} exists)`,
      )
    }
    this.network = nid
    this.log('created network %s', nid)
  }

  async deleteNetwork(nid: NetworkId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireNetwork(nid, true)
    throw new SingletonNetworkError(
      'ERR_BRIDGE_UNDELETABLE_NETWORK',
      `network of type "${this.type}" cannot be deleted`,
    )
  }

  async createEndpoint(
    nid: NetworkId,
    eid: EndpointId,
    _iface: InterfaceInfo,
    _config: EndpointDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireNetwork(nid)
    if (this.endpoints.has(eid)) throw new EndpointExistsError(eid)
    this.endpoints.add(eid)
    this.log.trace('created endpoint %s', eid)
  }

  async deleteEndpoint(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
    this.endpoints.delete(eid)
    this.log.trace('deleted endpoint %s', eid)
  }

  async endpointOperInfo(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<EndpointOperInfo> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
    return {}
  }

  async join(
    nid: NetworkId,
    eid: EndpointId,
    _sandboxKey: string,
    _joinInfo: JoinInfo,
    _config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
  }

  async leave(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
  }

  async programExternalConnectivity(
    nid: NetworkId,
    eid: EndpointId,
    _config: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
  }

  async revokeExternalConnectivity(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.requireEndpoint(nid, eid)
  }

  /** Re-learns the network (the first one given; there is at most one) and its endpoints. */
  async restore(networks: readonly RestoredNetwork[], options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.network = undefined
    this.endpoints.clear()
    const [first, ...rest] = networks
    if (rest.length > 0) this.log.error('restore: %d extra %s networks ignored', rest.length, this.type)
    if (first === undefined) return
    this.network = first.id
    for (const ep of first.endpoints) this.endpoints.add(ep.id)
    this.log('restored network %s with %d endpoints', first.id, first.endpoints.length)
  }

  private requireNetwork(nid: NetworkId, maskable = false): void {
    if (this.network !== nid) throw new NetworkNotFoundError(nid, { maskable })
  }

  private requireEndpoint(nid: NetworkId, eid: EndpointId): void {
    this.requireNetwork(nid)
    if (!this.endpoints.has(eid)) throw new EndpointNotFoundError(nid, eid)
  }
}

/** The `null` driver: a network with no connectivity (containers get only loopback). */
export class NullDriver extends SingletonDriver {
  readonly type = 'null' as const
  constructor(components: SingletonDriverComponents) {
    super(components, 'null')
  }
}

/** The `host` driver: sandboxes joining it use the host's network namespace; nothing is created. */
export class HostDriver extends SingletonDriver {
  readonly type = 'host' as const
  constructor(components: SingletonDriverComponents) {
    super(components, 'host')
  }
}

/** `nullDriver()(components)` → the `null` NetworkDriver. Takes no init options. */
export function nullDriver(): (components: SingletonDriverComponents) => NullDriver {
  return (components) => new NullDriver(components)
}

/** `hostDriver()(components)` → the `host` NetworkDriver. Takes no init options. */
export function hostDriver(): (components: SingletonDriverComponents) => HostDriver {
  return (components) => new HostDriver(components)
}
