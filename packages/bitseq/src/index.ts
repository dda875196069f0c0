export { Bitseq, BITSEQ_MAX_BITS } from './bitseq.js'
export type { BitseqInit, Ordinal } from './bitseq.js'
export {
  NoBitAvailableError,
  BitAlreadyAllocatedError,
  InvalidRangeError,
  OutOfRangeError,
  InvalidSequenceError,
  StoreAttachedError,
  BitseqStoreError,
} from './errors.js'
