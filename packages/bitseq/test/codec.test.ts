import { describe, expect, it } from 'vitest'
import { Bitseq, BITSEQ_MAX_BITS, InvalidSequenceError } from '../src/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s.replace(/\s+/g, ''), 'hex'))

describe('bitseq: binary form (§1.4), byte-compatible with libnetwork', () => {
  it('fresh 1024-bit handle', async () => {
    const h = await Bitseq.create({ bits: 1024n })
    // bits=0x400 ‖ unselected=0x400 ‖ block=0 ‖ count=32
    expect(hex(h.serialize())).toBe('0000000000000400' + '0000000000000400' + '00000000' + '0000000000000020')
  })

  it('100 bits with ordinals 0 and 33 set', async () => {
    const h = await Bitseq.create({ bits: 100n })
    await h.set(0n)
    await h.set(33n)
    expect(h.sequenceString()).toBe('(0x80000000, 1)->(0x40000000, 1)->(0x0, 2)->end')
    expect(hex(h.serialize())).toBe(
      '0000000000000064' + // bits 100
        '0000000000000062' + // unselected 98
        '80000000' +
        '0000000000000001' +
        '40000000' +
        '0000000000000001' +
        '00000000' +
        '0000000000000002',
    )
  })

  it('2^64 - 1 bits with the last ordinal set', async () => {
    const h = await Bitseq.create({ bits: BITSEQ_MAX_BITS })
    await h.set(BITSEQ_MAX_BITS - 1n)
    expect(hex(h.serialize())).toBe(
      'ffffffffffffffff' + // bits
        'fffffffffffffffe' + // unselected
        '00000000' +
        '07ffffffffffffff' + // 2^59 - 1 empty blocks
        '00000002' +
        '0000000000000001', // bit 30 of the last block
    )
  })

  it('store value is {"id","sequence":base64}', async () => {
    const h = await Bitseq.create({ bits: 1024n, key: 'idm/x', id: 'x' })
    expect(new TextDecoder().decode(h.storeValue())).toBe(
      '{"id":"x","sequence":"AAAAAAAABAAAAAAAAAAEAAAAAAAAAAAAAAAAIA=="}',
    )
  })

  it('round-trips to an equal handle', async () => {
    for (const bits of [0n, 1n, 30n, 1024n, 65536n, 2n ** 53n, 2n ** 53n + 1n, BITSEQ_MAX_BITS]) {
      const h = await Bitseq.create({ bits })
      if (bits > 10n) {
        await h.set(3n)
        await h.set(bits - 1n)
        await h.setAny()
        await h.setAnyInRange(bits / 2n, bits - 1n)
      }
      const back = Bitseq.deserialize(h.serialize())
      expect(back.equals(h)).toBe(true)
      expect(back.sequenceString()).toBe(h.sequenceString())
      expect(back.bits()).toBe(h.bits())
      expect(back.unselected()).toBe(h.unselected())
      expect(hex(back.serialize())).toBe(hex(h.serialize()))
    }
  })

  it('reads a hand-written libnetwork payload and keeps working on it', () => {
    const h = Bitseq.deserialize(
      unhex(`0000000000000040 000000000000003e
             c0000000 0000000000000001
             00000000 0000000000000001`),
    )
    expect(h.bits()).toBe(64n)
    expect(h.unselected()).toBe(62n)
    expect(h.isSet(0n)).toBe(true)
    expect(h.isSet(1n)).toBe(true)
    expect(h.setAnySync()).toBe(2n)
  })

  it('rejects a 13-byte sequence part', () => {
    const bytes = new Uint8Array(16 + 13)
    expect(() => Bitseq.deserialize(bytes)).toThrow(InvalidSequenceError)
    try {
      Bitseq.deserialize(bytes)
    } catch (err) {
      expect((err as InvalidSequenceError).code).toBe('ERR_BITSEQ_INVALID_SEQUENCE')
      expect((err as InvalidSequenceError).kind).toBe('invalid-argument')
    }
  })

  it('rejects short headers, empty sequence parts and counts that do not cover the bits', () => {
    expect(() => Bitseq.deserialize(new Uint8Array(15))).toThrow(InvalidSequenceError)
    expect(() => Bitseq.deserialize(unhex('0000000000000040 0000000000000040'))).toThrow(InvalidSequenceError)
    expect(() => Bitseq.deserialize(unhex('0000000000000040 0000000000000040 00000000 0000000000000003'))).toThrow(
      /cover 3 blocks/,
    )
  })
})
