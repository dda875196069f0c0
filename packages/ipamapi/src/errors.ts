import { CnmError, type CnmErrorOptions } from '@cnm/types'

/**
 * The errors of the IPAM contract. Every IPAM (built-in, null, remote) throws these, so the controller
 * can branch on `code` (or `kind`) without knowing which IPAM it talks to. Kinds follow libnetwork's
 * error taxonomy (spec README §10): bad request → `invalid-argument`, not found → `not-found`,
 * forbidden → `forbidden`, no service → `unavailable`, not implemented → `not-implemented`.
 */

/** Every code an IPAM error can carry. */
export type IpamErrorCode =
  | 'ERR_IPAM_INVALID_ADDRESS_SPACE'
  | 'ERR_IPAM_INVALID_POOL'
  | 'ERR_IPAM_INVALID_SUBPOOL'
  | 'ERR_IPAM_INVALID_POOL_ID'
  | 'ERR_IPAM_INVALID_ADDRESS'
  | 'ERR_IPAM_INVALID_CONFIG'
  | 'ERR_IPAM_UNSUPPORTED_REQUEST'
  | 'ERR_IPAM_OUT_OF_RANGE'
  | 'ERR_IPAM_BAD_POOL'
  | 'ERR_IPAM_POOL_NOT_FOUND'
  | 'ERR_IPAM_NO_AVAILABLE_POOL'
  | 'ERR_IPAM_POOL_OVERLAP'
  | 'ERR_IPAM_ADDRESS_IN_USE'
  | 'ERR_IPAM_NO_AVAILABLE_ADDRESS'
  | 'ERR_IPAM_DEFAULT_POOL_NOT_SUPPORTED'
  | 'ERR_IPAM_STORE'

/**
 * The address space is empty, or not one this IPAM knows (libnetwork: "invalid address space",
 * "cannot find address space … (most likely the backing datastore is not configured)").
 * Kind `invalid-argument`.
 */
export class InvalidAddressSpaceError extends CnmError<'ERR_IPAM_INVALID_ADDRESS_SPACE'> {
  constructor(message = 'invalid address space', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_ADDRESS_SPACE', 'invalid-argument', message, options)
  }
}

/** The requested pool is not a valid CIDR. Kind `invalid-argument`. */
export class InvalidPoolError extends CnmError<'ERR_IPAM_INVALID_POOL'> {
  constructor(message = 'invalid address pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_POOL', 'invalid-argument', message, options)
  }
}

/**
 * The sub-pool is not a valid CIDR, was given without a pool, or does not lie inside the pool.
 * Kind `invalid-argument`.
 */
export class InvalidSubPoolError extends CnmError<'ERR_IPAM_INVALID_SUBPOOL'> {
  constructor(message = 'invalid address subpool', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_SUBPOOL', 'invalid-argument', message, options)
  }
}

/** A pool ID this IPAM cannot parse (or, for the null IPAM, any ID but its own). Kind `invalid-argument`. */
export class InvalidPoolIdError extends CnmError<'ERR_IPAM_INVALID_POOL_ID'> {
  constructor(message = 'invalid pool id', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_POOL_ID', 'invalid-argument', message, options)
  }
}

/** An address argument that is missing or does not parse as an IP address. Kind `invalid-argument`. */
export class InvalidAddressError extends CnmError<'ERR_IPAM_INVALID_ADDRESS'> {
  constructor(message = 'invalid address', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_ADDRESS', 'invalid-argument', message, options)
  }
}

/** Invalid IPAM construction options (e.g. a default-pool size shorter than its base). Kind `invalid-argument`. */
export class InvalidIpamConfigError extends CnmError<'ERR_IPAM_INVALID_CONFIG'> {
  constructor(message = 'invalid ipam configuration', options?: CnmErrorOptions) {
    super('ERR_IPAM_INVALID_CONFIG', 'invalid-argument', message, options)
  }
}

/**
 * A request this IPAM does not handle at all (the null IPAM refuses explicit pools, sub-pools and IPv6).
 * Kind `invalid-argument`.
 */
export class UnsupportedRequestError extends CnmError<'ERR_IPAM_UNSUPPORTED_REQUEST'> {
  constructor(message = 'unsupported ipam request', options?: CnmErrorOptions) {
    super('ERR_IPAM_UNSUPPORTED_REQUEST', 'invalid-argument', message, options)
  }
}

/** The address is not inside the pool (libnetwork: "requested address is out of range"). Kind `invalid-argument`. */
export class OutOfRangeError extends CnmError<'ERR_IPAM_OUT_OF_RANGE'> {
  constructor(message = 'requested address is out of range', options?: CnmErrorOptions) {
    super('ERR_IPAM_OUT_OF_RANGE', 'invalid-argument', message, options)
  }
}

/**
 * releasePool of a pool ID that is well formed but not registered (libnetwork's `ErrBadPool`:
 * "address space does not contain specified address pool"). Kind `invalid-argument`.
 */
export class BadPoolError extends CnmError<'ERR_IPAM_BAD_POOL'> {
  constructor(message = 'address space does not contain specified address pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_BAD_POOL', 'invalid-argument', message, options)
  }
}

/** requestAddress/releaseAddress on a pool ID that is not registered. Kind `not-found`. */
export class PoolNotFoundError extends CnmError<'ERR_IPAM_POOL_NOT_FOUND'> {
  constructor(message = 'cannot find address pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_POOL_NOT_FOUND', 'not-found', message, options)
  }
}

/**
 * No default pool is left (or none exists, as for IPv6): "could not find an available,
 * non-overlapping IPv4 address pool among the defaults to assign to the network". Kind `not-found`,
 * which is what Docker reports for this case (libnetwork's declared-but-unused `ErrNoAvailablePool`
 * was a 503; the path that actually fires is a NotFound).
 */
export class NoAvailablePoolError extends CnmError<'ERR_IPAM_NO_AVAILABLE_POOL'> {
  constructor(message = 'no available pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_NO_AVAILABLE_POOL', 'not-found', message, options)
  }
}

/** The pool is already registered or overlaps a registered pool of the same address space. Kind `forbidden`. */
export class PoolOverlapError extends CnmError<'ERR_IPAM_POOL_OVERLAP'> {
  constructor(message = 'requested pool overlaps with existing pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_POOL_OVERLAP', 'forbidden', message, options)
  }
}

/** The preferred address is already allocated. Kind `forbidden`. */
export class AddressInUseError extends CnmError<'ERR_IPAM_ADDRESS_IN_USE'> {
  constructor(message = 'address already in use', options?: CnmErrorOptions) {
    super('ERR_IPAM_ADDRESS_IN_USE', 'forbidden', message, options)
  }
}

/** The pool (or sub-pool range) has no free address left. Kind `unavailable`. */
export class NoAvailableAddressError extends CnmError<'ERR_IPAM_NO_AVAILABLE_ADDRESS'> {
  constructor(message = 'no available addresses on this pool', options?: CnmErrorOptions) {
    super('ERR_IPAM_NO_AVAILABLE_ADDRESS', 'unavailable', message, options)
  }
}

/**
 * An automatic (default) pool was asked for in an address space that has no default pools.
 * Kind `not-implemented`.
 */
export class DefaultPoolNotSupportedError extends CnmError<'ERR_IPAM_DEFAULT_POOL_NOT_SUPPORTED'> {
  constructor(message = 'default pools are not supported in this address space', options?: CnmErrorOptions) {
    super('ERR_IPAM_DEFAULT_POOL_NOT_SUPPORTED', 'not-implemented', message, options)
  }
}

/** The backing store failed, or holds state this IPAM cannot decode. Kind `internal`; `cause` is the original. */
export class IpamStoreError extends CnmError<'ERR_IPAM_STORE'> {
  constructor(message = 'ipam store failure', options?: CnmErrorOptions) {
    super('ERR_IPAM_STORE', 'internal', message, options)
  }
}
