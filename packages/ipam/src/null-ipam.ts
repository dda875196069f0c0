import {
  InvalidAddressSpaceError,
  InvalidPoolIdError,
  InvalidSubPoolError,
  UnsupportedRequestError,
  type AddressSpaces,
  type Ipam,
  type IpamCapabilities,
  type PoolResult,
  type RequestAddressOptions,
  type RequestPoolOptions,
} from '@cnm/ipamapi'
import { throwIfAborted, type AbortOptions, type IpAddr, type PoolId } from '@cnm/types'

/** Name of the null IPAM's only address space (local and global). */
export const NULL_ADDRESS_SPACE = 'null'
/** The null IPAM's only pool ID. */
export const NULL_POOL_ID = 'null/0.0.0.0/0' as PoolId

const NULL_POOL = Object.freeze({ version: 4 as const, network: 0n, bits: 0 })

/**
 * The null IPAM (libnetwork's `null` driver): one address space `null`, one pool `0.0.0.0/0`, and no
 * addresses. Networks using it get their addresses from their driver (remote drivers) or none at all.
 */
export class NullIpam implements Ipam {
  readonly builtIn = true
  readonly capabilities: IpamCapabilities = Object.freeze({ requiresMacAddress: false, requiresRequestReplay: false })

  async getDefaultAddressSpaces(options?: AbortOptions): Promise<AddressSpaces> {
    throwIfAborted(options?.signal)
    return { local: NULL_ADDRESS_SPACE, global: NULL_ADDRESS_SPACE }
  }

  async requestPool(request: RequestPoolOptions): Promise<PoolResult> {
    throwIfAborted(request?.signal)
    if (request.addressSpace === '' || typeof request.addressSpace !== 'string') throw new InvalidAddressSpaceError()
    const hasPool = request.pool !== undefined && request.pool !== ''
    const hasSub = request.subPool !== undefined && request.subPool !== ''
    if (!hasPool && hasSub) throw new InvalidSubPoolError('a sub-pool requires a pool')
    if (request.addressSpace !== NULL_ADDRESS_SPACE) {
      throw new InvalidAddressSpaceError(`unknown address space: ${request.addressSpace}`)
    }
    if (hasPool) throw new UnsupportedRequestError('null ipam driver does not handle specific address pool requests')
    if (request.v6 === true) {
      throw new UnsupportedRequestError('null ipam driver does not handle IPv6 address pool requests')
    }
    return { poolId: NULL_POOL_ID, pool: NULL_POOL, meta: {} }
  }

  async releasePool(poolId: PoolId, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    checkPoolId(poolId)
  }

  async requestAddress(poolId: PoolId, request?: RequestAddressOptions): Promise<undefined> {
    throwIfAborted(request?.signal)
    checkPoolId(poolId)
    return undefined
  }

  async releaseAddress(poolId: PoolId, _address: IpAddr | string, options?: AbortOptions): Promise<void> {
    throwIfAborted(options?.signal)
    checkPoolId(poolId)
  }
}

function checkPoolId(poolId: PoolId): void {
  if (poolId !== NULL_POOL_ID) throw new InvalidPoolIdError(`unknown pool id: ${String(poolId)}`)
}
