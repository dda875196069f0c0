import { describe, expect, it } from 'vitest'
import { formatPrefix, type PoolId } from '@cnm/types'
import { NULL_POOL_ID, nullIpam } from '../src/index.js'
import { expectReject } from './helpers.js'

describe('null ipam (§3.11, §5.17)', () => {
  it('has the null address spaces and no capabilities', async () => {
    const ipam = nullIpam()()
    expect(await ipam.getDefaultAddressSpaces()).toEqual({ local: 'null', global: 'null' })
    expect(ipam.builtIn).toBe(true)
    expect(ipam.capabilities).toEqual({ requiresMacAddress: false, requiresRequestReplay: false })
  })

  it('hands out pool null/0.0.0.0/0 and no address', async () => {
    const ipam = nullIpam()()
    const p = await ipam.requestPool({ addressSpace: 'null' })
    expect(p.poolId).toBe('null/0.0.0.0/0')
    expect(p.poolId).toBe(NULL_POOL_ID)
    expect(formatPrefix(p.pool)).toBe('0.0.0.0/0')
    expect(await ipam.requestAddress(p.poolId)).toBeUndefined()
    expect(await ipam.requestAddress(p.poolId, { preferred: '10.0.0.1' })).toBeUndefined()
    await ipam.releaseAddress(p.poolId, '10.0.0.1')
    await ipam.releasePool(p.poolId)
    await ipam.releasePool(p.poolId)
  })

  it('rejects any other address space, explicit pools, sub-pools, IPv6 and pool IDs as bad requests', async () => {
    const ipam = nullIpam()()
    await expectReject(
      ipam.requestPool({ addressSpace: 'LocalDefault' }),
      'ERR_IPAM_INVALID_ADDRESS_SPACE',
      'invalid-argument',
    )
    await expectReject(ipam.requestPool({ addressSpace: '' }), 'ERR_IPAM_INVALID_ADDRESS_SPACE', 'invalid-argument')
    await expectReject(
      ipam.requestPool({ addressSpace: 'null', pool: '10.0.0.0/8' }),
      'ERR_IPAM_UNSUPPORTED_REQUEST',
      'invalid-argument',
    )
    await expectReject(
      ipam.requestPool({ addressSpace: 'null', subPool: '10.0.0.0/8' }),
      'ERR_IPAM_INVALID_SUBPOOL',
      'invalid-argument',
    )
    await expectReject(
      ipam.requestPool({ addressSpace: 'null', v6: true }),
      'ERR_IPAM_UNSUPPORTED_REQUEST',
      'invalid-argument',
    )
    for (const id of ['LocalDefault/10.0.0.0/8', 'null/0.0.0.0/1', '']) {
      await expectReject(ipam.requestAddress(id as PoolId), 'ERR_IPAM_INVALID_POOL_ID', 'invalid-argument')
      await expectReject(ipam.releaseAddress(id as PoolId, '10.0.0.1'), 'ERR_IPAM_INVALID_POOL_ID')
      await expectReject(ipam.releasePool(id as PoolId), 'ERR_IPAM_INVALID_POOL_ID')
    }
  })

  it('honours an aborted signal', async () => {
    const ipam = nullIpam()()
    const signal = AbortSignal.abort()
    await expectReject(ipam.requestPool({ addressSpace: 'null', signal }), 'ERR_ABORTED', 'aborted')
    await expectReject(ipam.requestAddress(NULL_POOL_ID, { signal }), 'ERR_ABORTED')
  })
})
