export type { Store, KVPair, ListOptions, WatchEvent, WatchOptions } from './contract.js'
export { KeyModifiedError, KeyExistsError, StoreUnavailableError, InvalidKeyError } from './errors.js'
export { MAX_KEY_BYTES, assertValidKey, assertValidPrefix, assertValidValue, compareKeys } from './keys.js'
