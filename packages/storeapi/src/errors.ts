import { CnmError, type CnmErrorOptions } from '@cnm/types'

/** A compare-and-swap lost: the key changed (or vanished) since it was read. Re-read and retry. */
export class KeyModifiedError extends CnmError<'ERR_STORE_KEY_MODIFIED'> {
  constructor(key: string, options?: CnmErrorOptions) {
    super('ERR_STORE_KEY_MODIFIED', 'conflict', `key modified: ${key}`, { retry: true, ...options })
  }
}

/** create() on a key that already exists. */
export class KeyExistsError extends CnmError<'ERR_STORE_KEY_EXISTS'> {
  constructor(key: string, options?: CnmErrorOptions) {
    super('ERR_STORE_KEY_EXISTS', 'conflict', `key already exists: ${key}`, { retry: true, ...options })
  }
}

/** The store is closed or its backend failed. */
export class StoreUnavailableError extends CnmError<'ERR_STORE_UNAVAILABLE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_STORE_UNAVAILABLE', 'unavailable', message, options)
  }
}

/**
 * A key or prefix that breaks the key rules (see `assertValidKey`: empty, control characters, leading `/`,
 * empty segments, too long), or a value that is not a Uint8Array.
 */
export class InvalidKeyError extends CnmError<'ERR_STORE_INVALID_KEY'> {
  constructor(key: unknown, options?: CnmErrorOptions & { reason?: string }) {
    const shown = typeof key === 'string' ? JSON.stringify(key.length > 80 ? `${key.slice(0, 80)}…` : key) : typeof key
    const why = options?.reason === undefined ? '' : ` (${options.reason})`
    super('ERR_STORE_INVALID_KEY', 'invalid-argument', `invalid store key: ${shown}${why}`, options)
  }
}
