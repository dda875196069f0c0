import { InvalidArgumentError } from '@cnm/types'

/** Throws InvalidArgumentError unless `index` is a bigint (what `KVPair.index` holds). */
export function assertIndex(index: unknown): asserts index is bigint {
  if (typeof index !== 'bigint') {
    throw new InvalidArgumentError(`previousIndex must be a bigint (got ${typeof index})`)
  }
}
