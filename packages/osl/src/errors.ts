import {
  ConflictError,
  InternalError,
  InvalidArgumentError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
  type CnmErrorOptions,
} from '@cnm/types'

type Opts = Omit<CnmErrorOptions, 'code'>

/** An interface name the kernel would refuse: empty, longer than 15 bytes, `.`/`..`, or with `/`, `:`, whitespace or quotes. */
export class InvalidInterfaceNameError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INVALID_NAME' })
  }
}

/** A malformed IP address, CIDR or route destination. */
export class InvalidAddressError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INVALID_ADDRESS' })
  }
}

/** A malformed or multicast MAC address. */
export class InvalidMacError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INVALID_MAC' })
  }
}

/** An MTU outside 68..65535 (or not an integer). */
export class InvalidMtuError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INVALID_MTU' })
  }
}

/** Any other option that fails validation (sysctl keys, prefixes, socket options, ...). The message names the field. */
export class InvalidOptionError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INVALID_OPTION' })
  }
}

/** The network namespace (sandbox key, host namespace, or path) does not exist or is not a network namespace. */
export class NamespaceNotFoundError extends NotFoundError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NETNS_NOT_FOUND' })
  }
}

/** A sandbox with this key already exists (createSandbox with `exist: 'error'`). */
export class NamespaceExistsError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NETNS_EXISTS' })
  }
}

/** A link named in an operation does not exist in that namespace. */
export class LinkNotFoundError extends NotFoundError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_LINK_NOT_FOUND' })
  }
}

/** A link with that name already exists in the target namespace. */
export class LinkExistsError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_LINK_EXISTS' })
  }
}

/** An address, route or neighbour entry already exists (kernel EEXIST on a non-link object). */
export class EntryExistsError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_EXISTS' })
  }
}

/** An address to program overlaps an existing route of the sandbox ("cannot program address … conflicts with existing route"). */
export class RouteConflictError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_ROUTE_CONFLICT' })
  }
}

/** The gateway is not reachable through a directly connected route ("Direct route for the gateway … could not be found"). */
export class GatewayUnreachableError extends InvalidArgumentError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NO_DIRECT_ROUTE' })
  }
}

/** A neighbour entry with the same IP and MAC was already added to this sandbox (pass `force` to re-program it). */
export class NeighborExistsError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NEIGHBOR_EXISTS' })
  }
}

/** No such neighbour entry was added to this sandbox. */
export class NeighborNotFoundError extends NotFoundError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NEIGHBOR_NOT_FOUND' })
  }
}

/** An interface (by source or in-sandbox name) is not known to this sandbox, or a master bridge was not added first. */
export class InterfaceNotFoundError extends NotFoundError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_INTERFACE_NOT_FOUND' })
  }
}

/** openSocketInNetns: the address and port are already bound in that namespace (EADDRINUSE). */
export class AddressInUseError extends ConflictError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_ADDRESS_IN_USE' })
  }
}

/** connectSocketInNetns: refused, or no route to the peer (ECONNREFUSED, EHOSTUNREACH, ENETUNREACH). */
export class ConnectFailedError extends UnavailableError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_CONNECT_FAILED' })
  }
}

/** connectSocketInNetns: no answer within `timeoutMs`. */
export class ConnectTimeoutError extends TimeoutError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_CONNECT_TIMEOUT' })
  }
}

/** The kernel (through `ip` or a native call) refused an operation. `stderr` holds the tool's text; `cause` wraps it. */
export class KernelError extends InternalError {
  readonly stderr: string
  readonly command: string
  constructor(message: string, details: { stderr: string; command: string }, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_KERNEL' })
    this.stderr = details.stderr
    this.command = details.command
  }
}

/** A required tool (`ip`, `nsenter`) could not be started. */
export class ToolMissingError extends UnavailableError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_TOOL_MISSING' })
  }
}

/** The native addon (native/build/Release/cnm_osl.node) is not built or cannot be loaded. */
export class NativeAddonMissingError extends UnavailableError {
  constructor(message: string, options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_NATIVE_MISSING' })
  }
}

/** The Osl was closed. */
export class OslClosedError extends UnavailableError {
  constructor(message = 'the OS layer is closed', options?: Opts) {
    super(message, { ...options, code: 'ERR_OSL_CLOSED' })
  }
}
