import {
  formatCidr,
  formatIp,
  formatPrefix,
  isCnmError,
  parseCidr,
  parseIp,
  prefixContains,
  type AbortOptions,
  type IpAddr,
  type IpCidr,
  type IpVersion,
  type Logger,
  type PoolId,
} from '@cnm/types'
import { META_GATEWAY, OPTION_REQUEST_ADDRESS_TYPE, REQUEST_ADDRESS_TYPE_GATEWAY, type Ipam } from '@cnm/ipamapi'
import { InvalidRequestError, NetworkRuleError, NoAddressError } from '../errors.js'
import type { IpamConfig, NetworkIpamInfo } from '../types.js'
import type { UndoStack } from './undo.js'

/** Parses and checks IPAM configs up front (bad request before anything is allocated). */
export function validateIpamConfigs(confs: readonly IpamConfig[], version: IpVersion): void {
  for (const c of confs) {
    let pool
    if (c.pool !== undefined && c.pool !== '') {
      try {
        pool = parseCidr(c.pool).prefix
      } catch (cause) {
        throw new InvalidRequestError(`invalid pool ${JSON.stringify(c.pool)}`, { cause })
      }
      if (pool.version !== version) throw new InvalidRequestError(`pool ${c.pool} is not an IPv${version} pool`)
    } else if (c.subPool !== undefined && c.subPool !== '') {
      throw new InvalidRequestError('a sub-pool needs a pool')
    }
    for (const [what, v] of [
      ['gateway', c.gateway] as const,
      ...Object.entries(c.auxAddresses ?? {}).map(([k, a]) => [`aux address ${k}`, a] as const),
    ]) {
      if (v === undefined || v === '') continue
      let ip: IpAddr
      try {
        ip = parseIp(v)
      } catch (cause) {
        throw new InvalidRequestError(`invalid ${what} ${JSON.stringify(v)}`, { cause })
      }
      if (ip.version !== version) throw new InvalidRequestError(`${what} ${v} is not an IPv${version} address`)
      if (pool !== undefined && !prefixContains(pool, ip)) {
        if (what === 'gateway') throw new InvalidRequestError(`gateway ${v} is not in pool ${c.pool}`)
        throw new NetworkRuleError(`${what} ${v} is not in pool ${c.pool}`)
      }
    }
  }
}

/**
 * allocation.md §3.8 steps 1–6 for one IP version: request each pool, its gateway and aux addresses.
 * Every reservation pushes its release on `undo`.
 */
export async function allocatePools(
  ipam: Ipam,
  addressSpace: string,
  confs: readonly IpamConfig[],
  version: IpVersion,
  ipamOptions: Readonly<Record<string, string>>,
  undo: UndoStack,
  options?: AbortOptions,
): Promise<NetworkIpamInfo[]> {
  const out: NetworkIpamInfo[] = []
  for (const c of confs) {
    const res = await ipam.requestPool({
      addressSpace,
      ...(c.pool !== undefined && c.pool !== '' && { pool: c.pool }),
      ...(c.subPool !== undefined && c.subPool !== '' && { subPool: c.subPool }),
      options: ipamOptions,
      v6: version === 6,
      ...(options?.signal !== undefined && { signal: options.signal }),
    })
    undo.push(`release pool ${res.poolId}`, () => ipam.releasePool(res.poolId))
    if (res.pool.version !== version) {
      throw new InvalidRequestError(`IPAM returned pool ${formatPrefix(res.pool)} for an IPv${version} request`)
    }
    let gateway: IpCidr | undefined
    const meta = res.meta[META_GATEWAY]
    if (meta !== undefined && meta !== '') {
      try {
        gateway = parseCidr(meta)
      } catch (cause) {
        throw new InvalidRequestError(`IPAM returned an invalid gateway ${JSON.stringify(meta)}`, { cause })
      }
    }
    const userGw = c.gateway !== undefined && c.gateway !== '' ? c.gateway : undefined
    if (userGw !== undefined || gateway === undefined) {
      const r = await ipam.requestAddress(res.poolId, {
        ...(userGw !== undefined && { preferred: userGw }),
        options: { ...ipamOptions, [OPTION_REQUEST_ADDRESS_TYPE]: REQUEST_ADDRESS_TYPE_GATEWAY },
        ...(options?.signal !== undefined && { signal: options.signal }),
      })
      if (r !== undefined) {
        gateway = r.address
        undo.push(`release gateway ${formatCidr(r.address)}`, () => ipam.releaseAddress(res.poolId, r.address.ip))
      }
    }
    const aux: Record<string, IpCidr> = {}
    for (const [name, s] of Object.entries(c.auxAddresses ?? {})) {
      const ip = parseIp(s)
      if (!prefixContains(res.pool, ip))
        throw new NetworkRuleError(`aux address ${s} is not in pool ${formatPrefix(res.pool)}`)
      try {
        await ipam.requestAddress(res.poolId, {
          preferred: ip,
          ...(options?.signal !== undefined && { signal: options.signal }),
        })
        undo.push(`release aux ${s}`, () => ipam.releaseAddress(res.poolId, ip))
      } catch (err) {
        // An aux address outside the sub-pool range is tolerated (allocation.md §3.8 step 5).
        if (!isCnmError(err, 'ERR_IPAM_OUT_OF_RANGE')) throw err
      }
      aux[name] = { ip, prefix: res.pool }
    }
    out.push({
      poolId: res.poolId,
      addressSpace,
      pool: res.pool,
      ...(gateway !== undefined && { gateway }),
      auxAddresses: aux,
    })
  }
  return out
}

/** Releases gateways, aux addresses and pools of a network; errors are only logged. */
export async function releasePools(ipam: Ipam, infos: readonly NetworkIpamInfo[], log: Logger): Promise<void> {
  for (const i of infos) {
    if (i.gateway !== undefined) {
      await ipam.releaseAddress(i.poolId, i.gateway.ip).catch((err: unknown) => {
        log.error('release gateway %s of pool %s failed: %o', formatCidr(i.gateway as IpCidr), i.poolId, err)
      })
    }
    for (const a of Object.values(i.auxAddresses)) {
      if (!prefixContains(i.pool, a.ip)) continue
      await ipam.releaseAddress(i.poolId, a.ip).catch((err: unknown) => {
        log.trace('release aux %s of pool %s failed (may be outside the sub-pool): %o', formatIp(a.ip), i.poolId, err)
      })
    }
    await ipam.releasePool(i.poolId).catch((err: unknown) => {
      log.error('release pool %s failed: %o', i.poolId, err)
    })
  }
}

/**
 * Endpoint address assignment (allocation.md §3.8): try each pool in order; with a preferred address
 * only pools containing it; "no available addresses" moves on only when nothing specific was asked.
 */
export async function assignAddress(
  ipam: Ipam,
  infos: readonly NetworkIpamInfo[],
  version: IpVersion,
  preferred: IpAddr | undefined,
  ipamOptions: Readonly<Record<string, string>>,
  options?: AbortOptions,
): Promise<{ address: IpCidr; poolId: PoolId } | undefined> {
  if (infos.length === 0) return undefined
  for (const info of infos) {
    if (preferred !== undefined && !prefixContains(info.pool, preferred)) continue
    try {
      const r = await ipam.requestAddress(info.poolId, {
        ...(preferred !== undefined && { preferred }),
        options: ipamOptions,
        ...(options?.signal !== undefined && { signal: options.signal }),
      })
      if (r === undefined) return undefined
      return { address: r.address, poolId: info.poolId }
    } catch (err) {
      if (preferred === undefined && isCnmError(err, 'ERR_IPAM_NO_AVAILABLE_ADDRESS')) continue
      throw err
    }
  }
  if (preferred !== undefined) {
    throw new InvalidRequestError(
      `requested address ${formatIp(preferred)} does not belong to any of this network's subnets`,
    )
  }
  throw new NoAddressError(version)
}
