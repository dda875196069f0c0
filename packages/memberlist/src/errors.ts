import { ConflictError, InvalidArgumentError, UnavailableError } from '@cnm/types'
import type { CnmErrorOptions } from '@cnm/types'

/** No join address could be reached for a push-pull exchange. `errors` holds the reason per address. */
export class JoinError extends UnavailableError {
  readonly errors: ReadonlyMap<string, Error>
  constructor(message: string, errors: ReadonlyMap<string, Error>, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_MEMBERLIST_JOIN' })
    this.errors = errors
  }
}

/** The peer answered a stream with an errResp (type 13) or with a message we did not ask for. */
export class RemoteError extends UnavailableError {
  constructor(message: string, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_MEMBERLIST_REMOTE' })
  }
}

/** A push-pull was refused: the protocol or delegate versions of the two clusters do not overlap (§8). */
export class IncompatibleVersionError extends ConflictError {
  constructor(message: string, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_MEMBERLIST_VERSION' })
  }
}

/** The memberlist was shut down (or has left) and cannot do this any more. */
export class ShutdownError extends UnavailableError {
  constructor(message = 'memberlist is shut down', options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_MEMBERLIST_SHUTDOWN' })
  }
}

/** A configuration field is invalid; the message names it. */
export class ConfigError extends InvalidArgumentError {
  constructor(message: string, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_MEMBERLIST_CONFIG' })
  }
}
