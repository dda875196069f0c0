import { describe, expect, it } from 'vitest'
import { isCnmError, parsePrefix } from '@cnm/types'
import { AddressSpaceState, rangeOf } from '../src/internal/address-space.js'
import { formatKey, parsePoolId } from '../src/internal/pool-id.js'

const key = (subnet: string, childSubnet = '') => ({ addressSpace: 'S', subnet, childSubnet })

describe('address space records', () => {
  it('round-trips through the stored JSON', () => {
    const s = new AddressSpaceState('S', 'global')
    s.addPool(key('10.0.0.0/16'), parsePrefix('10.0.0.0/16'), undefined)
    s.addPool(
      key('10.0.0.0/16', '10.0.1.0/24'),
      parsePrefix('10.0.0.0/16'),
      rangeOf(parsePrefix('10.0.0.0/16'), parsePrefix('10.0.1.0/24')),
    )
    s.addPool(
      key('fd00::/64', 'fd00::/120'),
      parsePrefix('fd00::/64'),
      rangeOf(parsePrefix('fd00::/64'), parsePrefix('fd00::/120')),
    )
    const t = AddressSpaceState.fromJSON('S', 'global', s.toJSON())
    expect(t.toJSON()).toBe(s.toJSON())
    expect(t.get('S/10.0.0.0/16')?.refCount).toBe(2)
    expect(t.get('S/fd00::/64')?.refCount).toBe(1)
    expect(t.get('S/10.0.0.0/16/10.0.1.0/24')?.range).toEqual({
      sub: parsePrefix('10.0.1.0/24'),
      start: 256n,
      end: 511n,
    })
    // The overlap index is rebuilt too.
    expect(t.overlaps(parsePrefix('10.0.200.0/24'))).toBe(true)
    expect(t.overlaps(parsePrefix('10.1.0.0/24'))).toBe(false)
  })

  it('indexes only master pools for overlap checks, with multiplicity', () => {
    const s = new AddressSpaceState('S', 'local')
    s.addPool(
      key('10.0.0.0/8', '10.5.0.0/16'),
      parsePrefix('10.0.0.0/8'),
      rangeOf(parsePrefix('10.0.0.0/8'), parsePrefix('10.5.0.0/16')),
    )
    expect(s.containing(parsePrefix('10.9.0.0/16'))).toEqual(parsePrefix('10.0.0.0/8'))
    expect(s.overlaps(parsePrefix('0.0.0.0/0'))).toBe(true)
    // The sub-pool path adds no overlap check against other masters (upstream behaviour).
    s.addPool(
      key('10.5.0.0/16', '10.5.5.0/24'),
      parsePrefix('10.5.0.0/16'),
      rangeOf(parsePrefix('10.5.0.0/16'), parsePrefix('10.5.5.0/24')),
    )
    s.releasePool('S/10.0.0.0/8/10.5.0.0/16')
    expect(s.get('S/10.0.0.0/8')).toBeUndefined()
    expect(s.overlaps(parsePrefix('10.5.1.0/24'))).toBe(true)
    expect(s.overlaps(parsePrefix('10.6.0.0/16'))).toBe(false)
  })

  it('rejects malformed stored records with ERR_IPAM_STORE', () => {
    for (const text of [
      '[',
      '{"Subnets":5}',
      '{"Subnets":{"S/10.0.0.0/16":{"Pool":"nope","RefCount":1}}}',
      '{"Subnets":{"S/10.0.0.0/16":{"Pool":"10.0.0.0/16","RefCount":-1}}}',
      '{"Subnets":{"S/10.0.0.0/16":{"Pool":"10.0.0.0/16","RefCount":1,"Range":{"Sub":"10.0.0.0/24"}}}}',
      '{"Subnets":{"x":{"Pool":"10.0.0.0/16","RefCount":1}}}',
    ]) {
      let err: unknown
      try {
        AddressSpaceState.fromJSON('S', 'local', text)
      } catch (e) {
        err = e
      }
      expect(isCnmError(err, 'ERR_IPAM_STORE'), text).toBe(true)
    }
  })
})

describe('pool ids', () => {
  it('parses 3- and 5-part IDs and canonicalises them', () => {
    const m = parsePoolId('LocalDefault/10.1.2.3/16')
    expect(formatKey(m.key)).toBe('LocalDefault/10.1.0.0/16')
    expect(m.sub).toBeUndefined()
    const s = parsePoolId('LocalDefault/172.18.0.0/16/172.18.5.0/24')
    expect(s.key).toEqual({ addressSpace: 'LocalDefault', subnet: '172.18.0.0/16', childSubnet: '172.18.5.0/24' })
    expect(formatKey(parsePoolId('G/fd00::/64').key)).toBe('G/fd00::/64')
  })

  it.each(['', 'a', 'a/b', 'a/10.0.0.0/8/x', '/10.0.0.0/8', 'a/10.0.0.0/40', 'a/10.0.0.0/8/10.0.0.0/99', 5])(
    'rejects %j with ERR_IPAM_INVALID_POOL_ID',
    (id) => {
      expect(() => parsePoolId(id as string)).toThrow(expect.objectContaining({ code: 'ERR_IPAM_INVALID_POOL_ID' }))
    },
  )
})
