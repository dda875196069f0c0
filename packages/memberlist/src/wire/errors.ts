import { InvalidArgumentError } from '@cnm/types'
import type { CnmErrorOptions } from '@cnm/types'

/** Malformed, truncated, oversized or undecryptable wire data. Decoders throw nothing else on bad input. */
export class WireError extends InvalidArgumentError {
  constructor(message: string, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_WIRE' })
  }
}

/**
 * Thrown by a partial (streaming) reader when the input ends before the value does. Always caught inside
 * the wire layer; it is a WireError so that it could never escape as anything else.
 */
export class NeedMoreDataError extends WireError {
  constructor() {
    super('more data needed')
  }
}

/** One shared instance: throwing it costs no stack capture. */
export const NEED_MORE = new NeedMoreDataError()
