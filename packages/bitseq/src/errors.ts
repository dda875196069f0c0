import { CnmError, type CnmErrorOptions } from '@cnm/types'

/** Every bit (of the handle, or of the requested range) is already set. libnetwork's `ErrNoBitAvailable`. */
export class NoBitAvailableError extends CnmError<'ERR_BITSEQ_NO_BIT_AVAILABLE'> {
  constructor(message = 'no bit available', options?: CnmErrorOptions) {
    super('ERR_BITSEQ_NO_BIT_AVAILABLE', 'unavailable', message, options)
  }
}

/** `set(k)` on a bit that is already set. libnetwork's `ErrBitAllocated`. */
export class BitAlreadyAllocatedError extends CnmError<'ERR_BITSEQ_BIT_ALLOCATED'> {
  constructor(message = 'requested bit is already allocated', options?: CnmErrorOptions) {
    super('ERR_BITSEQ_BIT_ALLOCATED', 'forbidden', message, options)
  }
}

/** `setAnyInRange(start, end)` with `end < start`, `start < 0` or `end >= bits`. */
export class InvalidRangeError extends CnmError<'ERR_BITSEQ_INVALID_RANGE'> {
  constructor(start: bigint, end: bigint, options?: CnmErrorOptions) {
    super('ERR_BITSEQ_INVALID_RANGE', 'invalid-argument', `invalid bit range [${start}, ${end}]`, options)
  }
}

/** `set`/`unset` of an ordinal outside `[0, bits)`. */
export class OutOfRangeError extends CnmError<'ERR_BITSEQ_OUT_OF_RANGE'> {
  constructor(ordinal: bigint | number, bits: bigint, options?: CnmErrorOptions) {
    super(
      'ERR_BITSEQ_OUT_OF_RANGE',
      'invalid-argument',
      `bit does not belong to the sequence: ordinal ${ordinal}, bits ${bits}`,
      options,
    )
  }
}

/** A serialized handle (binary form or store JSON) that cannot be decoded. */
export class InvalidSequenceError extends CnmError<'ERR_BITSEQ_INVALID_SEQUENCE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_BITSEQ_INVALID_SEQUENCE', 'invalid-argument', message, options)
  }
}

/** A `*Sync` method was called on a handle that persists to a store (use the async method instead). */
export class StoreAttachedError extends CnmError<'ERR_BITSEQ_STORE_ATTACHED'> {
  constructor(method: string, options?: CnmErrorOptions) {
    super(
      'ERR_BITSEQ_STORE_ATTACHED',
      'forbidden',
      `${method}() is only available on handles without a store; use the async variant`,
      options,
    )
  }
}

/** The store failed with an error that is not a cnm error; the original is the `cause`. */
export class BitseqStoreError extends CnmError<'ERR_BITSEQ_STORE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_BITSEQ_STORE', 'internal', message, options)
  }
}
