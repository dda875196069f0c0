import { throwIfAborted, type AbortOptions, type EndpointId, type NetworkId } from '@cnm/types'
import {
  EndpointExistsError,
  EndpointNotFoundError,
  NetworkExistsError,
  NetworkNotFoundError,
  type Capability,
  type EndpointOperInfo,
  type NetworkDriver,
} from '@cnm/driverapi'

/**
 * The trivial `host` and `null` drivers (drivers.md §1.6): endpoints and joins are bookkeeping only;
 * no interfaces, no IPAM (the controller skips IPAM for these types and keeps a single network of each).
 */
export class TrivialDriver implements NetworkDriver {
  readonly capability: Capability = { dataScope: 'local', connectivityScope: 'local' }
  readonly #networks = new Map<string, Set<string>>()
  constructor(readonly type: 'host' | 'null') {}

  #net(nid: NetworkId, maskable = false): Set<string> {
    const n = this.#networks.get(nid)
    if (n === undefined) throw new NetworkNotFoundError(nid, { maskable })
    return n
  }

  #ep(nid: NetworkId, eid: EndpointId): void {
    if (!this.#net(nid).has(eid)) throw new EndpointNotFoundError(nid, eid)
  }

  async createNetwork(nid: NetworkId, _c: unknown, _v4: unknown, _v6: unknown, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    if (this.#networks.has(nid)) throw new NetworkExistsError(nid)
    this.#networks.set(nid, new Set())
  }

  async deleteNetwork(nid: NetworkId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#net(nid, true)
    this.#networks.delete(nid)
  }

  async createEndpoint(nid: NetworkId, eid: EndpointId, _i: unknown, _c: unknown, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    const n = this.#net(nid)
    if (n.has(eid)) throw new EndpointExistsError(eid)
    n.add(eid)
  }

  async deleteEndpoint(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
    this.#net(nid).delete(eid)
  }

  async endpointOperInfo(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<EndpointOperInfo> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
    return {}
  }

  async join(nid: NetworkId, eid: EndpointId, _k: string, _j: unknown, _c: unknown, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
  }

  async leave(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
  }

  async programExternalConnectivity(nid: NetworkId, eid: EndpointId, _c: unknown, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
  }

  async revokeExternalConnectivity(nid: NetworkId, eid: EndpointId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#ep(nid, eid)
  }

  async restore(networks: ReadonlyArray<{ id: NetworkId; endpoints: ReadonlyArray<{ id: EndpointId }> }>, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    this.#networks.clear()
    for (const n of networks) this.#networks.set(n.id, new Set(n.endpoints.map((e) => e.id)))
  }
}

/** The `host` driver: containers share the host network namespace. */
export function hostDriver(): NetworkDriver {
  return new TrivialDriver('host')
}

/** The `null` driver: containers get only a loopback interface. */
export function nullDriver(): NetworkDriver {
  return new TrivialDriver('null')
}
