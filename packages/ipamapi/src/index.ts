/**
 * @cnm/ipamapi: the IPAM contract of cnm (libnetwork's `ipamapi`). Types, option keys and error classes;
 * no I/O. The compliance suite lives at `@cnm/ipamapi/testing`.
 */
import type { AbortOptions, IpAddr, IpCidr, IpPrefix, PoolId } from '@cnm/types'

export type { PoolId } from '@cnm/types'
export {
  InvalidAddressSpaceError,
  InvalidPoolError,
  InvalidSubPoolError,
  InvalidPoolIdError,
  InvalidAddressError,
  InvalidIpamConfigError,
  UnsupportedRequestError,
  OutOfRangeError,
  BadPoolError,
  PoolNotFoundError,
  NoAvailablePoolError,
  PoolOverlapError,
  AddressInUseError,
  NoAvailableAddressError,
  DefaultPoolNotSupportedError,
  IpamStoreError,
} from './errors.js'
export type { IpamErrorCode } from './errors.js'

/** Registry name of the built-in IPAM. */
export const DEFAULT_IPAM = 'default'
/** Registry name of the null IPAM. */
export const NULL_IPAM = 'null'

/** Option (requestAddress `options`): `"true"` selects serial allocation (freed addresses are reused last). */
export const OPTION_SERIAL = 'com.docker.network.ipam.serial'
/** Option key (requestAddress `options`) naming the kind of address requested. */
export const OPTION_REQUEST_ADDRESS_TYPE = 'RequestAddressType'
/** Value of {@link OPTION_REQUEST_ADDRESS_TYPE} for the network gateway request. */
export const REQUEST_ADDRESS_TYPE_GATEWAY = 'com.docker.network.gateway'
/** Option (requestAddress `options`): the endpoint MAC address, passed when `capabilities.requiresMacAddress`. */
export const OPTION_MAC_ADDRESS = 'com.docker.network.endpoint.macaddress'
/** Pool metadata key: a gateway CIDR the IPAM chose for the pool (the controller then skips the gateway request). */
export const META_GATEWAY = 'com.docker.network.gateway'

/**
 * String options passed through to the IPAM unchanged (driver options from the user, or the keys above).
 * Values are strings, as in Docker's API.
 */
export type IpamOptions = Readonly<Record<string, string>>

/** Metadata an IPAM returns with a pool or an address. */
export type IpamMeta = Readonly<Record<string, string>>

/** The two default address spaces of an IPAM: for local-scope and for global-scope networks. */
export interface AddressSpaces {
  readonly local: string
  readonly global: string
}

/** What the controller must do for this IPAM. */
export interface IpamCapabilities {
  /** Pass the endpoint MAC in requestAddress options under {@link OPTION_MAC_ADDRESS}. */
  readonly requiresMacAddress: boolean
  /** On restart, replay pool, gateway and endpoint address requests for local-scope networks. */
  readonly requiresRequestReplay: boolean
}

/** Arguments of {@link Ipam.requestPool}. */
export interface RequestPoolOptions extends AbortOptions {
  /** Address space to allocate in; usually one of {@link Ipam.getDefaultAddressSpaces}. Required, not empty. */
  addressSpace: string
  /**
   * The pool as a CIDR string (canonicalised: `10.1.2.3/16` means `10.1.0.0/16`).
   * @default undefined: the IPAM picks a free default pool of the address space
   */
  pool?: string
  /**
   * A CIDR inside `pool` from which addresses are handed out when no preferred address is given.
   * Only valid together with `pool`.
   * @default undefined: the whole pool
   */
  subPool?: string
  /** IPAM driver options. @default {} */
  options?: IpamOptions
  /** Ask for an IPv6 pool (matters only when `pool` is not given). @default false */
  v6?: boolean
}

/** Result of {@link Ipam.requestPool}. */
export interface PoolResult {
  /** Opaque handle for the later calls. */
  readonly poolId: PoolId
  /** The (canonical) pool as a prefix value; `formatPrefix(pool)` from `@cnm/types` gives the CIDR string. */
  readonly pool: IpPrefix
  /** IPAM metadata, e.g. {@link META_GATEWAY}. */
  readonly meta: IpamMeta
}

/** Arguments of {@link Ipam.requestAddress}. */
export interface RequestAddressOptions extends AbortOptions {
  /**
   * A specific address to reserve; an `IpAddr` value or its text form (`parseIp` syntax).
   * @default undefined: the IPAM picks a free one
   */
  preferred?: IpAddr | string
  /** IPAM options, e.g. {@link OPTION_SERIAL}, {@link OPTION_REQUEST_ADDRESS_TYPE}, {@link OPTION_MAC_ADDRESS}. @default {} */
  options?: IpamOptions
}

/** Result of {@link Ipam.requestAddress}. */
export interface AddressResult {
  /** The address, with the (master) pool's prefix length: `address.prefix` is the pool. */
  readonly address: IpCidr
  readonly meta: IpamMeta
}

/**
 * The IPAM contract (libnetwork `ipamapi.Ipam`). Every method is async, honours `signal` (rejecting with
 * `AbortError`, `ERR_ABORTED`) and throws the error classes of this package.
 */
export interface Ipam {
  /** True for the IPAMs built into cnm (`default`, `null`); false for plugins. */
  readonly builtIn: boolean
  readonly capabilities: IpamCapabilities
  /** The default local and global address space names. */
  getDefaultAddressSpaces(options?: AbortOptions): Promise<AddressSpaces>
  /**
   * Registers a pool (the given one, or a free default one when `pool` is omitted).
   * @throws InvalidAddressSpaceError, InvalidPoolError, InvalidSubPoolError, PoolOverlapError,
   *   NoAvailablePoolError, DefaultPoolNotSupportedError, UnsupportedRequestError, IpamStoreError
   */
  requestPool(request: RequestPoolOptions): Promise<PoolResult>
  /**
   * Drops one reference to a pool; the pool is gone when its last reference is.
   * @throws InvalidPoolIdError, BadPoolError (unknown pool), IpamStoreError
   */
  releasePool(poolId: PoolId, options?: AbortOptions): Promise<void>
  /**
   * Reserves an address in the pool: the preferred one or a free one. Returns `undefined` when this IPAM
   * hands out no addresses (null IPAM).
   * @throws InvalidPoolIdError, PoolNotFoundError, InvalidAddressError, OutOfRangeError, AddressInUseError,
   *   NoAvailableAddressError, IpamStoreError
   */
  requestAddress(poolId: PoolId, request?: RequestAddressOptions): Promise<AddressResult | undefined>
  /**
   * Frees an address of the pool.
   * @throws InvalidPoolIdError, PoolNotFoundError, InvalidAddressError, OutOfRangeError, IpamStoreError
   */
  releaseAddress(poolId: PoolId, address: IpAddr | string, options?: AbortOptions): Promise<void>
}

/** Host-provided services an IPAM factory may use; each IPAM declares which it needs in its own Components type. */
export type IpamFactory<C> = (components: C) => Ipam
