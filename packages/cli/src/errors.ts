import { CnmError, type CnmErrorOptions, type ErrorKind } from '@cnm/types'

/** A request body or query that does not match the route's schema (malformed JSON, unknown or bad fields). */
export class BadRequestError extends CnmError<'ERR_CLI_BAD_REQUEST'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CLI_BAD_REQUEST', 'invalid-argument', message, options)
  }
}

/** No route for this path. */
export class RouteNotFoundError extends CnmError<'ERR_CLI_ROUTE_NOT_FOUND'> {
  constructor(method: string, path: string, options?: CnmErrorOptions) {
    super('ERR_CLI_ROUTE_NOT_FOUND', 'not-found', `page not found: ${method} ${path}`, options)
  }
}

/** The path exists but not with this method (HTTP 405). */
export class MethodNotAllowedError extends CnmError<'ERR_CLI_METHOD_NOT_ALLOWED'> {
  readonly allow: readonly string[]
  constructor(method: string, path: string, allow: readonly string[], options?: CnmErrorOptions) {
    super(
      'ERR_CLI_METHOD_NOT_ALLOWED',
      'invalid-argument',
      `method ${method} not allowed on ${path} (allowed: ${allow.join(', ')})`,
      options,
    )
    this.allow = allow
  }
}

/** A request body larger than the daemon accepts (HTTP 413). */
export class BodyTooLargeError extends CnmError<'ERR_CLI_BODY_TOO_LARGE'> {
  constructor(limitBytes: number, options?: CnmErrorOptions) {
    super('ERR_CLI_BODY_TOO_LARGE', 'invalid-argument', `request body larger than ${limitBytes} bytes`, options)
  }
}

/** A name or id prefix that matches more than one object. */
export class AmbiguousNameError extends CnmError<'ERR_CLI_AMBIGUOUS'> {
  constructor(what: string, ref: string, count: number, options?: CnmErrorOptions) {
    super('ERR_CLI_AMBIGUOUS', 'invalid-argument', `${what} ${ref} is ambiguous (${count} matches)`, options)
  }
}

/** A sandbox name or id that matches nothing. */
export class NoSuchSandboxError extends CnmError<'ERR_CLI_NO_SUCH_SANDBOX'> {
  constructor(ref: string, options?: CnmErrorOptions) {
    super('ERR_CLI_NO_SUCH_SANDBOX', 'not-found', `no such sandbox: ${ref}`, options)
  }
}

/** A sandbox that is not connected to the network named in a disconnect. */
export class NotConnectedError extends CnmError<'ERR_CLI_NOT_CONNECTED'> {
  constructor(sandbox: string, network: string, options?: CnmErrorOptions) {
    super('ERR_CLI_NOT_CONNECTED', 'not-found', `sandbox ${sandbox} is not connected to network ${network}`, options)
  }
}

/** Invalid daemon configuration (bad path, bad --tcp address, missing host namespace …). */
export class DaemonConfigError extends CnmError<'ERR_CLI_DAEMON_CONFIG'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CLI_DAEMON_CONFIG', 'invalid-argument', message, options)
  }
}

/** The daemon refuses new requests while it shuts down. */
export class DaemonStoppingError extends CnmError<'ERR_CLI_DAEMON_STOPPING'> {
  constructor(options?: CnmErrorOptions) {
    super('ERR_CLI_DAEMON_STOPPING', 'unavailable', 'the daemon is shutting down', options)
  }
}

/** Client side: the daemon cannot be reached on its socket. */
export class DaemonUnreachableError extends CnmError<'ERR_CLI_DAEMON_UNREACHABLE'> {
  constructor(where: string, options?: CnmErrorOptions) {
    super(
      'ERR_CLI_DAEMON_UNREACHABLE',
      'unavailable',
      `cannot connect to the cnm daemon at ${where}: is the daemon running?`,
      options,
    )
  }
}

/** Client side: an error answer from the daemon, with its HTTP status and the daemon's kind and code. */
export class ApiResponseError extends CnmError<string> {
  readonly status: number
  constructor(status: number, kind: ErrorKind, code: string, message: string, options?: CnmErrorOptions) {
    super(code, kind, message, options)
    this.status = status
  }
}

/** Client side: invalid command-line usage (exit code 2). */
export class UsageError extends CnmError<'ERR_CLI_USAGE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CLI_USAGE', 'invalid-argument', message, options)
  }
}

/** An operation that needs a running sandbox on a stopped one (connect). */
export class SandboxStoppedError extends CnmError<'ERR_CLI_SANDBOX_STOPPED'> {
  constructor(name: string, options?: CnmErrorOptions) {
    super('ERR_CLI_SANDBOX_STOPPED', 'conflict', `sandbox ${name} is stopped: start it first`, options)
  }
}

/** A sandbox name taken by a stopped sandbox. */
export class NameInUseError extends CnmError<'ERR_CLI_NAME_IN_USE'> {
  constructor(name: string, options?: CnmErrorOptions) {
    super(
      'ERR_CLI_NAME_IN_USE',
      'forbidden',
      `container ${name} already has sandbox (stopped): start it or remove it first`,
      options,
    )
  }
}

/** What the default bridge network does not allow: removal, network-scoped aliases. */
export class DefaultNetworkError extends CnmError<'ERR_CLI_DEFAULT_NETWORK'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_CLI_DEFAULT_NETWORK', 'forbidden', message, options)
  }
}

/** A legacy link (`--link`) that cannot be made: no such target, or not on the default bridge. */
export class LinkError extends CnmError<'ERR_CLI_LINK'> {
  constructor(message: string, kind: 'invalid-argument' | 'not-found' = 'invalid-argument', options?: CnmErrorOptions) {
    super('ERR_CLI_LINK', kind, message, options)
  }
}

/** Client side: `cnm exec` on a sandbox that is not running. */
export class SandboxNotRunningError extends CnmError<'ERR_CLI_NOT_RUNNING'> {
  constructor(name: string, options?: CnmErrorOptions) {
    super('ERR_CLI_NOT_RUNNING', 'conflict', `sandbox ${name} is not running: start it first`, options)
  }
}
