import type { EndpointId } from '@cnm/types'
import type { EndpointState, NetworkState } from './records.js'

/** Name of the default gateway network (§7.3). */
export const GW_BRIDGE_NETWORK = 'docker_gwbridge'

/**
 * The driver types with libnetwork's special rules (drivers.md §1.6): no IPAM, one network per type,
 * undeletable, endpoints never provide a gateway. The controller asks by the registered driver's
 * `type`; the drivers themselves come from the caller (e.g. @cnm/drivers-bridge's nullDriver/hostDriver).
 */
export const isSpecialType = (type: string): boolean => type === 'null' || type === 'host'

export interface OrderedEndpoint {
  readonly ep: EndpointState
  readonly net: NetworkState
}

/**
 * §7.2 order, highest first: join priority; not on docker_gwbridge; non-internal; (v6 gateway +2,
 * v4 gateway +1) larger first; network name ascending.
 */
export function compareEndpoints(a: OrderedEndpoint, b: OrderedEndpoint): number {
  const pa = a.ep.join?.priority ?? 0
  const pb = b.ep.join?.priority ?? 0
  if (pa !== pb) return pb - pa
  const ga = a.net.name === GW_BRIDGE_NETWORK ? 1 : 0
  const gb = b.net.name === GW_BRIDGE_NETWORK ? 1 : 0
  if (ga !== gb) return ga - gb
  const ia = a.net.internal ? 1 : 0
  const ib = b.net.internal ? 1 : 0
  if (ia !== ib) return ia - ib
  const score = (x: OrderedEndpoint): number =>
    (x.ep.join?.gatewayIPv6 !== undefined ? 2 : 0) + (x.ep.join?.gateway !== undefined ? 1 : 0)
  const sa = score(a)
  const sb = score(b)
  if (sa !== sb) return sb - sa
  return a.net.name < b.net.name ? -1 : a.net.name > b.net.name ? 1 : 0
}

/** The first endpoint (in order) that has an IPv4 gateway, ignoring null/host networks. */
export function gatewayEndpoint(
  ordered: readonly OrderedEndpoint[],
  special: (networkType: string) => boolean = isSpecialType,
): EndpointId | undefined {
  for (const o of ordered) {
    if (special(o.net.type)) continue
    if (o.ep.join?.gateway !== undefined) return o.ep.id
  }
  return undefined
}
