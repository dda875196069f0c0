/** Categories callers branch on (libnetwork's marker interfaces). The controller maps them to API status codes. */
export type ErrorKind =
  | 'invalid-argument'
  | 'not-found'
  | 'conflict'
  | 'forbidden'
  | 'unavailable'
  | 'timeout'
  | 'aborted'
  | 'not-implemented'
  | 'internal'

const BRAND = Symbol.for('cnm.error')

export interface CnmErrorOptions {
  cause?: unknown
  /** The caller may ignore this error (libnetwork's "maskable"). */
  maskable?: boolean
  /** A conflicting concurrent write: re-read and retry. */
  retry?: boolean
}

/** The one base class of every error thrown by a cnm package. */
export class CnmError<C extends string = string> extends Error {
  readonly code: C
  readonly kind: ErrorKind
  readonly maskable: boolean
  readonly retry: boolean
  readonly [BRAND] = true

  constructor(code: C, kind: ErrorKind, message: string, options: CnmErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = new.target.name
    this.code = code
    this.kind = kind
    this.maskable = options.maskable ?? false
    this.retry = options.retry ?? false
  }
}

/** True for any cnm error, even one thrown by another copy of this package; optionally checks the code. */
export function isCnmError(err: unknown, code?: string): err is CnmError {
  if (typeof err !== 'object' || err === null) return false
  if ((err as Record<symbol, unknown>)[BRAND] !== true) return false
  return code === undefined || (err as CnmError).code === code
}

/** Generic errors, one per kind, for cases no package-specific class fits. */
export class InvalidArgumentError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_INVALID_ARGUMENT', 'invalid-argument', message, options)
  }
}
export class NotFoundError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_NOT_FOUND', 'not-found', message, options)
  }
}
export class ConflictError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_CONFLICT', 'conflict', message, options)
  }
}
export class ForbiddenError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_FORBIDDEN', 'forbidden', message, options)
  }
}
export class UnavailableError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_UNAVAILABLE', 'unavailable', message, options)
  }
}
export class TimeoutError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_TIMEOUT', 'timeout', message, options)
  }
}
export class AbortError extends CnmError<'ERR_ABORTED'> {
  constructor(message = 'the operation was aborted', options?: CnmErrorOptions) {
    super('ERR_ABORTED', 'aborted', message, options)
  }
}
export class NotImplementedError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_NOT_IMPLEMENTED', 'not-implemented', message, options)
  }
}
export class InternalError extends CnmError<string> {
  constructor(message: string, options?: CnmErrorOptions & { code?: string }) {
    super(options?.code ?? 'ERR_INTERNAL', 'internal', message, options)
  }
}

/** Throws AbortError (cause = signal.reason) when the signal is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new AbortError(undefined, { cause: signal.reason })
}

/** HTTP status for an error kind, as the Docker API maps libnetwork's errors. */
export function statusForKind(kind: ErrorKind): number {
  switch (kind) {
    case 'invalid-argument':
      return 400
    case 'forbidden':
      return 403
    case 'not-found':
      return 404
    case 'conflict':
      return 409
    case 'not-implemented':
      return 501
    case 'unavailable':
      return 503
    case 'timeout':
      return 504
    case 'aborted':
      return 499
    case 'internal':
      return 500
  }
}
