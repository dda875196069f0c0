import { CnmError, statusForKind, isCnmError, type CnmErrorOptions, type ErrorKind } from '@cnm/types'

/** Empty or whitespace-only network/endpoint name ("invalid name"). */
export class InvalidNameError extends CnmError<'ERR_CONTROLLER_INVALID_NAME'> {
  constructor(what: string, name: unknown, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_INVALID_NAME', 'invalid-argument', `invalid ${what} name: ${JSON.stringify(name)}`, options)
  }
}

/** A malformed request (bad id, address, label, link-local check, IPAM data mismatch …). */
export class InvalidRequestError extends CnmError<'ERR_CONTROLLER_BAD_REQUEST'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_BAD_REQUEST', 'invalid-argument', message, options)
  }
}

export class NetworkNotFoundError extends CnmError<'ERR_CONTROLLER_NETWORK_NOT_FOUND'> {
  constructor(what: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_NETWORK_NOT_FOUND', 'not-found', `network ${what} not found`, options)
  }
}

export class EndpointNotFoundError extends CnmError<'ERR_CONTROLLER_ENDPOINT_NOT_FOUND'> {
  constructor(what: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_ENDPOINT_NOT_FOUND', 'not-found', `endpoint ${what} not found`, options)
  }
}

export class SandboxNotFoundError extends CnmError<'ERR_CONTROLLER_SANDBOX_NOT_FOUND'> {
  constructor(what: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_SANDBOX_NOT_FOUND', 'not-found', `sandbox ${what} not found`, options)
  }
}

/** No network driver registered under this type. */
export class DriverNotFoundError extends CnmError<'ERR_CONTROLLER_DRIVER_NOT_FOUND'> {
  constructor(type: string, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_DRIVER_NOT_FOUND',
      'not-found',
      `could not find network driver ${JSON.stringify(type)}`,
      options,
    )
  }
}

/** No IPAM registered under this name. */
export class IpamNotFoundError extends CnmError<'ERR_CONTROLLER_IPAM_NOT_FOUND'> {
  constructor(name: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_IPAM_NOT_FOUND', 'not-found', `could not find IPAM driver ${JSON.stringify(name)}`, options)
  }
}

/** Duplicate network id, or duplicate name with `checkDuplicate` (reported as a 409 conflict). */
export class NetworkExistsError extends CnmError<'ERR_CONTROLLER_NETWORK_EXISTS'> {
  readonly networkId: string
  constructor(name: string, id: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_NETWORK_EXISTS', 'conflict', `network with name ${name} already exists (id ${id})`, options)
    this.networkId = id
  }
}

/** Duplicate endpoint name (or id) within a network. */
export class EndpointExistsError extends CnmError<'ERR_CONTROLLER_ENDPOINT_EXISTS'> {
  constructor(name: string, network: string, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_ENDPOINT_EXISTS',
      'forbidden',
      `endpoint with name ${name} already exists in network ${network}`,
      options,
    )
  }
}

/** A second sandbox for the same container. */
export class SandboxExistsError extends CnmError<'ERR_CONTROLLER_SANDBOX_EXISTS'> {
  constructor(containerId: string, sandboxId: string, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_SANDBOX_EXISTS',
      'forbidden',
      `container ${containerId} already has sandbox ${sandboxId}`,
      options,
    )
  }
}

/** Deleting a network that still has endpoints. */
export class ActiveEndpointsError extends CnmError<'ERR_CONTROLLER_ACTIVE_ENDPOINTS'> {
  constructor(name: string, id: string, count: number, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_ACTIVE_ENDPOINTS',
      'forbidden',
      `network ${name} id ${id} has active endpoints (${count})`,
      options,
    )
  }
}

/** Deleting an endpoint that is still joined, without force. */
export class ActiveContainerError extends CnmError<'ERR_CONTROLLER_ACTIVE_CONTAINER'> {
  constructor(name: string, id: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_ACTIVE_CONTAINER', 'forbidden', `endpoint ${name} (${id}) has active containers`, options)
  }
}

/** Joining an endpoint that is already joined. */
export class EndpointAttachedError extends CnmError<'ERR_CONTROLLER_ENDPOINT_ATTACHED'> {
  constructor(options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_ENDPOINT_ATTACHED',
      'forbidden',
      'another container is attached to the same network endpoint',
      options,
    )
  }
}

/** Leaving from a sandbox the endpoint is not joined to (or not joined at all). */
export class NotJoinedError extends CnmError<'ERR_CONTROLLER_NOT_JOINED'> {
  constructor(eid: string, sid: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_NOT_JOINED', 'forbidden', `endpoint ${eid} is not joined to sandbox ${sid}`, options)
  }
}

/** Registering a driver or IPAM type twice. */
export class AlreadyRegisteredError extends CnmError<'ERR_CONTROLLER_ALREADY_REGISTERED'> {
  constructor(what: string, type: string, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_ALREADY_REGISTERED',
      'forbidden',
      `${what} ${JSON.stringify(type)} already registered`,
      options,
    )
  }
}

/** Scope rules of README §4, config-only rules, single-instance/undeletable host and null networks. */
export class NetworkRuleError extends CnmError<'ERR_CONTROLLER_FORBIDDEN'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_FORBIDDEN', 'forbidden', message, options)
  }
}

/** A sandbox operation raced with its deletion. */
export class SandboxInDeleteError extends CnmError<'ERR_CONTROLLER_SANDBOX_IN_DELETE'> {
  constructor(sid: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_SANDBOX_IN_DELETE', 'forbidden', `sandbox ${sid} is being deleted`, options)
  }
}

/** The network's pools have no free address left. */
export class NoAddressError extends CnmError<'ERR_CONTROLLER_NO_ADDRESS'> {
  constructor(version: 4 | 6, options?: CnmErrorOptions) {
    super(
      'ERR_CONTROLLER_NO_ADDRESS',
      'unavailable',
      `no available IPv${version} addresses on this network's address pools`,
      options,
    )
  }
}

/** Reading or writing the store failed (including a lost compare-and-swap: `retry` is set). */
export class ControllerStoreError extends CnmError<'ERR_CONTROLLER_STORE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_STORE', 'internal', message, options)
  }
}

/** A driver or OS-layer failure without a typed error of its own. */
export class ControllerInternalError extends CnmError<'ERR_CONTROLLER_INTERNAL'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_INTERNAL', 'internal', message, options)
  }
}

/** The controller is not started, or stopped. */
export class ControllerStoppedError extends CnmError<'ERR_CONTROLLER_STOPPED'> {
  constructor(options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_STOPPED', 'unavailable', 'the controller is not running', options)
  }
}

/** Not supported by this controller (e.g. swarm scope, setKey with joined endpoints). */
export class ControllerNotImplementedError extends CnmError<'ERR_CONTROLLER_NOT_IMPLEMENTED'> {
  constructor(what: string, options?: CnmErrorOptions) {
    super('ERR_CONTROLLER_NOT_IMPLEMENTED', 'not-implemented', `${what} is not implemented`, options)
  }
}

/** What an API layer needs to answer an error: HTTP status, kind, code, message. */
export interface ApiError {
  readonly status: number
  readonly kind: ErrorKind
  readonly code: string
  readonly message: string
}

/** Maps any thrown value to an API answer (README §10): CnmErrors by kind, anything else → 500. */
export function toApiError(err: unknown): ApiError {
  if (isCnmError(err)) return { status: statusForKind(err.kind), kind: err.kind, code: err.code, message: err.message }
  return {
    status: 500,
    kind: 'internal',
    code: 'ERR_INTERNAL',
    message: err instanceof Error ? err.message : String(err),
  }
}
