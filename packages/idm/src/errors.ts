import { CnmError, type CnmErrorOptions } from '@cnm/types'

/** An ID (or an ID range) outside the set's `[start, end]`. */
export class IdOutOfRangeError extends CnmError<'ERR_IDM_OUT_OF_RANGE'> {
  constructor(message = 'requested id does not belong to the set', options?: CnmErrorOptions) {
    super('ERR_IDM_OUT_OF_RANGE', 'invalid-argument', message, options)
  }
}
