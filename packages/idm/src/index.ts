export { Idm, IDM_KEY_PREFIX } from './idm.js'
export type { IdmInit, IdValue } from './idm.js'
export { IdOutOfRangeError } from './errors.js'
// The allocation errors come from the bitmap underneath; re-exported so callers need not import @cnm/bitseq.
export { NoBitAvailableError, BitAlreadyAllocatedError, InvalidRangeError } from '@cnm/bitseq'
