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

/** Empty key, key with empty segments, or a non-bytes value. */
export class InvalidKeyError extends CnmError<'ERR_STORE_INVALID_KEY'> {
  constructor(key: unknown, options?: CnmErrorOptions) {
    super('ERR_STORE_INVALID_KEY', 'invalid-argument', `invalid store key: ${JSON.stringify(key)}`, options)
  }
}
