import { describe, expect, it } from 'vitest'
import { isCnmError, statusForKind } from '@cnm/types'
import * as api from '../src/index.js'

const expected: Array<[new () => Error & { code: string; kind: string }, string, string]> = [
  [api.InvalidAddressSpaceError, 'ERR_IPAM_INVALID_ADDRESS_SPACE', 'invalid-argument'],
  [api.InvalidPoolError, 'ERR_IPAM_INVALID_POOL', 'invalid-argument'],
  [api.InvalidSubPoolError, 'ERR_IPAM_INVALID_SUBPOOL', 'invalid-argument'],
  [api.InvalidPoolIdError, 'ERR_IPAM_INVALID_POOL_ID', 'invalid-argument'],
  [api.InvalidAddressError, 'ERR_IPAM_INVALID_ADDRESS', 'invalid-argument'],
  [api.InvalidIpamConfigError, 'ERR_IPAM_INVALID_CONFIG', 'invalid-argument'],
  [api.UnsupportedRequestError, 'ERR_IPAM_UNSUPPORTED_REQUEST', 'invalid-argument'],
  [api.OutOfRangeError, 'ERR_IPAM_OUT_OF_RANGE', 'invalid-argument'],
  [api.BadPoolError, 'ERR_IPAM_BAD_POOL', 'invalid-argument'],
  [api.PoolNotFoundError, 'ERR_IPAM_POOL_NOT_FOUND', 'not-found'],
  [api.NoAvailablePoolError, 'ERR_IPAM_NO_AVAILABLE_POOL', 'not-found'],
  [api.PoolOverlapError, 'ERR_IPAM_POOL_OVERLAP', 'forbidden'],
  [api.AddressInUseError, 'ERR_IPAM_ADDRESS_IN_USE', 'forbidden'],
  [api.NoAvailableAddressError, 'ERR_IPAM_NO_AVAILABLE_ADDRESS', 'unavailable'],
  [api.DefaultPoolNotSupportedError, 'ERR_IPAM_DEFAULT_POOL_NOT_SUPPORTED', 'not-implemented'],
  [api.IpamStoreError, 'ERR_IPAM_STORE', 'internal'],
]

describe('ipamapi errors', () => {
  it.each(expected)('%o has its code and kind', (Cls, code, kind) => {
    const err = new Cls()
    expect(err).toBeInstanceOf(Error)
    expect(err.name).toBe(Cls.name)
    expect(err.code).toBe(code)
    expect(err.kind).toBe(kind)
    expect(isCnmError(err, code)).toBe(true)
    expect(err.message.length).toBeGreaterThan(0)
  })

  it('maps kinds to the Docker API statuses of spec README §10', () => {
    expect(statusForKind(new api.PoolOverlapError().kind)).toBe(403)
    expect(statusForKind(new api.AddressInUseError().kind)).toBe(403)
    expect(statusForKind(new api.NoAvailableAddressError().kind)).toBe(503)
    expect(statusForKind(new api.OutOfRangeError().kind)).toBe(400)
    expect(statusForKind(new api.PoolNotFoundError().kind)).toBe(404)
  })

  it('keeps the cause', () => {
    const cause = new Error('disk')
    expect(new api.IpamStoreError('write failed', { cause }).cause).toBe(cause)
  })

  it('exports the option keys libnetwork uses', () => {
    expect(api.OPTION_SERIAL).toBe('com.docker.network.ipam.serial')
    expect(api.OPTION_REQUEST_ADDRESS_TYPE).toBe('RequestAddressType')
    expect(api.REQUEST_ADDRESS_TYPE_GATEWAY).toBe('com.docker.network.gateway')
    expect(api.OPTION_MAC_ADDRESS).toBe('com.docker.network.endpoint.macaddress')
    expect(api.META_GATEWAY).toBe('com.docker.network.gateway')
    expect(api.DEFAULT_IPAM).toBe('default')
    expect(api.NULL_IPAM).toBe('null')
  })
})
