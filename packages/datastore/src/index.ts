export type { Store, KVPair, ListOptions, WatchEvent, WatchOptions } from './contract.js'
export { KeyModifiedError, KeyExistsError, StoreUnavailableError, InvalidKeyError } from './errors.js'
