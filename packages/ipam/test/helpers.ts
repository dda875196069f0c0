import { expect } from 'vitest'
import { formatIp, isCnmError, noopLogger, type PoolId } from '@cnm/types'
import type { Ipam } from '@cnm/ipamapi'
import { defaultIpam, type DefaultIpam, type DefaultIpamComponents, type DefaultIpamInit } from '../src/index.js'

/** Awaits `p`, expects it to reject with a cnm error of `code` (and `kind`), and returns the error. */
export async function expectReject(p: Promise<unknown>, code: string, kind?: string): Promise<Error> {
  let err: unknown
  try {
    await p
  } catch (e) {
    err = e
  }
  expect(err, `expected rejection with ${code}`).toBeDefined()
  expect(isCnmError(err), `not a CnmError: ${String(err)}`).toBe(true)
  expect((err as { code: string }).code).toBe(code)
  if (kind !== undefined) expect((err as { kind: string }).kind).toBe(kind)
  return err as Error
}

export function make(init?: DefaultIpamInit, components?: Partial<DefaultIpamComponents>): DefaultIpam {
  return defaultIpam(init)({ logger: noopLogger(), ...components })
}

/** requestAddress and return the address text. */
export async function addr(ipam: Ipam, poolId: PoolId, opts?: Parameters<Ipam['requestAddress']>[1]): Promise<string> {
  const r = await ipam.requestAddress(poolId, opts)
  if (r === undefined) throw new Error('no address')
  return formatIp(r.address.ip)
}
