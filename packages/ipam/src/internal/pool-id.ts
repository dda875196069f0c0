import { formatPrefix, parsePrefix, type IpPrefix, type PoolId } from '@cnm/types'
import { InvalidPoolIdError } from '@cnm/ipamapi'

/**
 * libnetwork's SubnetKey: `<AddressSpace>/<subnet CIDR>` for a master pool,
 * `<AddressSpace>/<subnet CIDR>/<sub-pool CIDR>` for a sub-pool.
 */
export interface SubnetKey {
  readonly addressSpace: string
  /** Canonical CIDR of the (master) pool. */
  readonly subnet: string
  /** Canonical CIDR of the sub-pool, or '' for a master pool. */
  readonly childSubnet: string
}

export function formatKey(k: SubnetKey): string {
  const s = `${k.addressSpace}/${k.subnet}`
  return k.childSubnet === '' ? s : `${s}/${k.childSubnet}`
}

export function masterKeyOf(k: SubnetKey): SubnetKey {
  return k.childSubnet === '' ? k : { addressSpace: k.addressSpace, subnet: k.subnet, childSubnet: '' }
}

export interface ParsedPoolId {
  readonly key: SubnetKey
  readonly pool: IpPrefix
  readonly sub: IpPrefix | undefined
}

/** Parses a pool ID (3 or 5 `/`-separated parts). Throws InvalidPoolIdError. */
export function parsePoolId(id: PoolId | string): ParsedPoolId {
  if (typeof id !== 'string') throw new InvalidPoolIdError(`invalid pool id: ${String(id)}`)
  const parts = id.split('/')
  if ((parts.length !== 3 && parts.length !== 5) || parts[0] === '') {
    throw new InvalidPoolIdError(`invalid pool id: ${JSON.stringify(id)}`)
  }
  try {
    const pool = parsePrefix(`${parts[1]}/${parts[2]}`)
    const sub = parts.length === 5 ? parsePrefix(`${parts[3]}/${parts[4]}`) : undefined
    const key: SubnetKey = {
      addressSpace: parts[0] as string,
      subnet: formatPrefix(pool),
      childSubnet: sub === undefined ? '' : formatPrefix(sub),
    }
    return { key, pool, sub }
  } catch (err) {
    throw new InvalidPoolIdError(`invalid pool id: ${JSON.stringify(id)}`, { cause: err })
  }
}
