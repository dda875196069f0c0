import { formatPrefix, hostBits, parsePrefix, type IpPrefix } from '@cnm/types'
import { InvalidIpamConfigError } from '@cnm/ipamapi'

/** One entry of a default-pool list: `base` split into subnets of prefix length `size`. */
export interface PoolBase {
  /** CIDR of the range to split, e.g. `10.0.0.0/8`. */
  readonly base: string
  /** Prefix length of each pool cut from `base`, e.g. `24`. */
  readonly size: number
}

interface ResolvedBase {
  readonly base: IpPrefix
  readonly size: number
  /** Number of subnets: 2^(size - base.bits). */
  readonly count: bigint
  /** Address distance between consecutive subnets: 2^(width - size). */
  readonly step: bigint
  /** Global index of this base's first subnet. */
  readonly first: bigint
}

/**
 * A default-pool list, held as its bases: pool `i` is computed on demand, so 10.0.0.0/8 split into /24s
 * costs one entry, not 65 536 objects.
 */
export class PredefinedPools {
  readonly bases: readonly ResolvedBase[]
  readonly length: bigint

  constructor(list: readonly PoolBase[], field: string) {
    const bases: ResolvedBase[] = []
    let first = 0n
    list.forEach((entry, i) => {
      let base: IpPrefix
      try {
        base = parsePrefix(entry.base)
      } catch (err) {
        throw new InvalidIpamConfigError(`${field}[${i}].base: invalid CIDR ${JSON.stringify(entry.base)}`, {
          cause: err,
        })
      }
      const width = base.version === 4 ? 32 : 128
      const size = entry.size
      if (!Number.isInteger(size) || size <= 0 || size < base.bits || size > width) {
        throw new InvalidIpamConfigError(
          `${field}[${i}].size: ${String(size)} is invalid for base ${formatPrefix(base)} (must be ${
            base.bits
          }..${width} and > 0)`,
        )
      }
      const count = 1n << BigInt(size - base.bits)
      bases.push({ base, size, count, step: 1n << BigInt(width - size), first })
      first += count
    })
    this.bases = bases
    this.length = first
  }

  /** Pool at global index `i` (0 <= i < length). */
  at(i: bigint): IpPrefix {
    const b = this.baseOf(i)
    return { version: b.base.version, network: b.base.network + (i - b.first) * b.step, bits: b.size }
  }

  baseOf(i: bigint): ResolvedBase {
    for (const b of this.bases) if (i < b.first + b.count) return b
    throw new RangeError(`predefined pool index ${i} out of range`)
  }

  /**
   * Smallest index >= `i` inside the same base whose subnet starts after `end` (an address), or the index
   * just past the base. Used to jump over a registered pool that covers many default subnets.
   */
  indexAfter(i: bigint, end: bigint): bigint {
    const b = this.baseOf(i)
    const off = (end - b.base.network) / b.step + 1n
    const j = b.first + (off < 0n ? 0n : off)
    const stop = b.first + b.count
    return j > stop ? stop : j < i + 1n ? i + 1n : j
  }
}

export function lastAddress(p: IpPrefix): bigint {
  return p.network | ((1n << BigInt(hostBits(p))) - 1n)
}

/** Local defaults, in libnetwork's order: 31 pools. */
export const LOCAL_DEFAULT_POOLS: readonly PoolBase[] = Object.freeze([
  { base: '172.17.0.0/16', size: 16 },
  { base: '172.18.0.0/16', size: 16 },
  { base: '172.19.0.0/16', size: 16 },
  { base: '172.20.0.0/14', size: 16 },
  { base: '172.24.0.0/14', size: 16 },
  { base: '172.28.0.0/14', size: 16 },
  { base: '192.168.0.0/16', size: 20 },
])

/** Global defaults: 10.0.0.0/8 split into /24s (65 536 pools). */
export const GLOBAL_DEFAULT_POOLS: readonly PoolBase[] = Object.freeze([{ base: '10.0.0.0/8', size: 24 }])
