import { CnmError, type CnmErrorOptions, type ErrorKind } from '@cnm/types'
import { InvalidDriverOptionError } from '@cnm/driverapi'

/** Every code this package throws. Callers branch on `code`, never on message text. */
export type BridgeErrorCode =
  | 'ERR_BRIDGE_INVALID_CONFIG'
  | 'ERR_BRIDGE_IPV4_POOL_EMPTY'
  | 'ERR_BRIDGE_MULTIPLE_SUBNETS'
  | 'ERR_BRIDGE_INVALID_GATEWAY'
  | 'ERR_BRIDGE_NETWORK_CONFLICT'
  | 'ERR_BRIDGE_NOT_A_BRIDGE'
  | 'ERR_BRIDGE_DEVICE_MISSING'
  | 'ERR_BRIDGE_ENDPOINT_JOINED'
  | 'ERR_BRIDGE_ENDPOINT_NOT_JOINED'
  | 'ERR_BRIDGE_NO_ADDRESS'
  | 'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET'
  | 'ERR_BRIDGE_IPV6_PREFIX_TOO_LONG'
  | 'ERR_BRIDGE_INVALID_PORT_BINDING'
  | 'ERR_BRIDGE_KERNEL'
  | 'ERR_BRIDGE_STORE'
  | 'ERR_BRIDGE_SINGLE_NETWORK'
  | 'ERR_BRIDGE_UNDELETABLE_NETWORK'

/** The base of every error this package throws (a CnmError with a bridge-specific code). */
export class BridgeError extends CnmError<BridgeErrorCode> {
  constructor(code: BridgeErrorCode, kind: ErrorKind, message: string, options?: CnmErrorOptions) {
    super(code, kind, message, options)
  }
}

/**
 * A network option (label or typed field) could not be parsed or is out of range. It is the driver API's
 * InvalidDriverOptionError (code `ERR_DRIVER_INVALID_OPTION`, kind invalid-argument), so callers can branch on
 * one code for every driver; `field` names the rejected key.
 */
export class InvalidBridgeOptionError extends InvalidDriverOptionError {}

/** The driver's own configuration (`BridgeDriverInit`) is invalid. */
export class InvalidBridgeConfigError extends BridgeError {
  readonly field: string
  constructor(field: string, message: string, options?: CnmErrorOptions) {
    super('ERR_BRIDGE_INVALID_CONFIG', 'invalid-argument', message, options)
    this.field = field
  }
}

/** The IPAM data handed to createNetwork cannot be used (empty pool, bad gateway, several pools). */
export class InvalidIpamDataError extends BridgeError {
  constructor(
    code: 'ERR_BRIDGE_IPV4_POOL_EMPTY' | 'ERR_BRIDGE_INVALID_GATEWAY' | 'ERR_BRIDGE_MULTIPLE_SUBNETS',
    message: string,
    options?: CnmErrorOptions,
  ) {
    super(code, code === 'ERR_BRIDGE_MULTIPLE_SUBNETS' ? 'forbidden' : 'invalid-argument', message, options)
  }
}

/** The new network would share a bridge device or an overlapping subnet with an existing one. */
export class NetworkConflictError extends BridgeError {
  readonly conflictingNetwork: string
  constructor(nid: string, other: string, reason: string, options?: CnmErrorOptions) {
    super(
      'ERR_BRIDGE_NETWORK_CONFLICT',
      'forbidden',
      `network ${nid} conflicts with network ${other}: ${reason}`,
      options,
    )
    this.conflictingNetwork = other
  }
}

/** A device with the requested bridge name exists but is not a bridge, or a required device is missing. */
export class BridgeDeviceError extends BridgeError {
  constructor(
    code: 'ERR_BRIDGE_NOT_A_BRIDGE' | 'ERR_BRIDGE_DEVICE_MISSING',
    message: string,
    options?: CnmErrorOptions,
  ) {
    super(code, code === 'ERR_BRIDGE_NOT_A_BRIDGE' ? 'forbidden' : 'not-found', message, options)
  }
}

/** join on an endpoint that is already joined, or leave on one that is not. */
export class EndpointStateError extends BridgeError {
  constructor(
    code: 'ERR_BRIDGE_ENDPOINT_JOINED' | 'ERR_BRIDGE_ENDPOINT_NOT_JOINED',
    message: string,
    options?: CnmErrorOptions,
  ) {
    super(code, 'forbidden', message, options)
  }
}

/** The endpoint has no IPv4 address (and the bridge cannot invent one), or its address is unusable. */
export class EndpointAddressError extends BridgeError {
  constructor(
    code: 'ERR_BRIDGE_NO_ADDRESS' | 'ERR_BRIDGE_ADDRESS_OUTSIDE_SUBNET' | 'ERR_BRIDGE_IPV6_PREFIX_TOO_LONG',
    message: string,
    options?: CnmErrorOptions,
  ) {
    super(code, code === 'ERR_BRIDGE_IPV6_PREFIX_TOO_LONG' ? 'forbidden' : 'invalid-argument', message, options)
  }
}

/** A port binding or exposed port could not be parsed. */
export class InvalidPortBindingError extends BridgeError {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_BRIDGE_INVALID_PORT_BINDING', 'invalid-argument', message, options)
  }
}

/** A kernel operation (links, addresses, firewall) failed; `cause` holds the osl/iptables error. */
export class BridgeKernelError extends BridgeError {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_BRIDGE_KERNEL', 'internal', message, options)
  }
}

/** Reading or writing the driver's state in the store failed. */
export class BridgeStoreError extends BridgeError {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_BRIDGE_STORE', 'internal', message, options)
  }
}

/** `host` and `null`: only one network of the type may exist, and it cannot be deleted. */
export class SingletonNetworkError extends BridgeError {
  constructor(
    code: 'ERR_BRIDGE_SINGLE_NETWORK' | 'ERR_BRIDGE_UNDELETABLE_NETWORK',
    message: string,
    options?: CnmErrorOptions,
  ) {
    super(code, 'forbidden', message, options)
  }
}
