import { CnmError, InvalidArgumentError, type CnmErrorOptions } from '@cnm/types'

/** The driver has no network with this id. Maskable when returned from `deleteNetwork`. */
export class NetworkNotFoundError extends CnmError<'ERR_DRIVER_NETWORK_NOT_FOUND'> {
  constructor(nid: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_NETWORK_NOT_FOUND', 'not-found', `network ${nid} does not exist`, options)
  }
}

/** The driver has no endpoint with this id on the network. */
export class EndpointNotFoundError extends CnmError<'ERR_DRIVER_ENDPOINT_NOT_FOUND'> {
  constructor(nid: string, eid: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_ENDPOINT_NOT_FOUND', 'not-found', `endpoint ${eid} does not exist in network ${nid}`, options)
  }
}

/** createNetwork with an id the driver already knows. */
export class NetworkExistsError extends CnmError<'ERR_DRIVER_NETWORK_EXISTS'> {
  constructor(nid: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_NETWORK_EXISTS', 'forbidden', `network ${nid} already exists`, options)
  }
}

/** createEndpoint with an id the driver already knows. */
export class EndpointExistsError extends CnmError<'ERR_DRIVER_ENDPOINT_EXISTS'> {
  constructor(eid: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_ENDPOINT_EXISTS', 'forbidden', `endpoint ${eid} already exists`, options)
  }
}

/** deleteNetwork while the driver still holds endpoints of the network. */
export class ActiveEndpointsError extends CnmError<'ERR_DRIVER_ACTIVE_ENDPOINTS'> {
  constructor(nid: string, count: number, options?: CnmErrorOptions) {
    super('ERR_DRIVER_ACTIVE_ENDPOINTS', 'forbidden', `network ${nid} has ${count} active endpoints`, options)
  }
}

/** A setter of InterfaceInfo was called on a field that is already set ("present … cannot be modified"). */
export class InterfaceFieldSetError extends CnmError<'ERR_DRIVER_INTERFACE_FIELD_SET'> {
  constructor(field: string, current: string, options?: CnmErrorOptions) {
    super(
      'ERR_DRIVER_INTERFACE_FIELD_SET',
      'forbidden',
      `endpoint interface ${field} present (${current}), cannot be modified`,
      options,
    )
  }
}

/** The driver cannot honour what it was given (pre-assigned address outside its subnets, empty pool, ...). */
export class DriverRequestError extends CnmError<'ERR_DRIVER_BAD_REQUEST'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_BAD_REQUEST', 'invalid-argument', message, options)
  }
}

/** A driver option (label, `-o k=v`, JSON field) failed to parse. Subclass of InvalidArgumentError. */
export class InvalidDriverOptionError extends InvalidArgumentError {
  declare readonly code: 'ERR_DRIVER_INVALID_OPTION'
  readonly field: string
  constructor(field: string, message: string, options?: CnmErrorOptions) {
    super(`invalid option ${field}: ${message}`, { ...options, code: 'ERR_DRIVER_INVALID_OPTION' })
    this.field = field
  }
}

/** The driver does not implement this call (e.g. networkAllocate on a node-local driver). */
export class DriverNotSupportedError extends CnmError<'ERR_DRIVER_NOT_SUPPORTED'> {
  constructor(what: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_NOT_SUPPORTED', 'not-implemented', `${what} is not supported by this driver`, options)
  }
}

/** Unexpected driver failure (kernel, store). Wrap the original as `cause`. */
export class DriverInternalError extends CnmError<'ERR_DRIVER_INTERNAL'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_INTERNAL', 'internal', message, options)
  }
}

/** join of an endpoint that is already joined to a sandbox. */
export class EndpointJoinedError extends CnmError<'ERR_DRIVER_ENDPOINT_JOINED'> {
  constructor(eid: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_ENDPOINT_JOINED', 'forbidden', `endpoint ${eid} is already joined to a sandbox`, options)
  }
}

/** A pre-assigned address is already used by another endpoint of the network. */
export class AddressInUseError extends CnmError<'ERR_DRIVER_ADDRESS_IN_USE'> {
  constructor(address: string, options?: CnmErrorOptions) {
    super('ERR_DRIVER_ADDRESS_IN_USE', 'forbidden', `address ${address} is already in use`, options)
  }
}

/** A host port requested by a port binding is taken ("Bind for ip:port failed: port is already allocated"). */
export class PortAllocatedError extends CnmError<'ERR_DRIVER_PORT_ALLOCATED'> {
  constructor(hostIp: string, port: number, options?: CnmErrorOptions) {
    super(
      'ERR_DRIVER_PORT_ALLOCATED',
      'forbidden',
      `Bind for ${hostIp}:${port} failed: port is already allocated`,
      options,
    )
  }
}
