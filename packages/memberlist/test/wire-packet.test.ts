import { describe, expect, it } from 'vitest'
import {
  crc32,
  encodeCompound,
  encodeMessage,
  encryptPayload,
  KeyringImpl,
  lzwCompress,
  packPacket,
  unpackPacket,
  WireError,
  compressMessage,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { normalize, toHex } from './fixtures-wire/vectors.js'

const K16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const K32 = Buffer.from(Array.from({ length: 32 }, (_, i) => i))
const ping: Message = { type: 'ping', seqNo: 1, node: 'node1' }
const user = (n: number): Message => ({ type: 'user', payload: Buffer.alloc(n, 0x61) })

function withCrc(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + msg.length)
  out[0] = 12
  out.writeUInt32BE(crc32(msg), 1)
  out.set(msg, 5)
  return out
}

describe('packPacket', () => {
  it('sends one message bare and several as a compound', () => {
    const a = encodeMessage(ping)
    const b = encodeMessage({ type: 'nack', seqNo: 3 })
    expect(toHex(packPacket([a], { compress: false, crc: false }))).toBe(toHex(a))
    expect(toHex(packPacket([a, b], { compress: false, crc: false }))).toBe(toHex(encodeCompound([a, b])))
  })

  it('compresses only when strictly shorter', () => {
    const small = encodeMessage(ping)
    expect(toHex(packPacket([small], { compress: true, crc: false }))).toBe(toHex(small))
    const big = encodeMessage(user(600))
    const packed = packPacket([big], { compress: true, crc: false })
    expect(packed[0]).toBe(9)
    expect(packed.length).toBeLessThan(big.length)
    expect(toHex(packed)).toBe(toHex(compressMessage(big)))
  })

  it('keeps the uncompressed form when compression gives the same length', () => {
    // Find a payload whose compressed wrapper is exactly as long as the message: it must stay plain.
    for (let n = 1; n < 200; n++) {
      const payload = Buffer.from(Array.from({ length: n }, (_, i) => (i * 37 + n) & 0xff))
      const msg = encodeMessage({ type: 'user', payload })
      const wrapped = compressMessage(msg)
      const packed = packPacket([msg], { compress: true, crc: false })
      if (wrapped.length < msg.length) expect(toHex(packed)).toBe(toHex(wrapped))
      else expect(toHex(packed)).toBe(toHex(msg))
    }
  })

  it('prefixes hasCrc over the (possibly compressed) message', () => {
    const big = encodeMessage(user(600))
    const packed = packPacket([big], { compress: true, crc: true })
    expect(toHex(packed)).toBe(toHex(withCrc(compressMessage(big))))
  })

  it('encrypts with the primary key (v1, no AAD), after compress and CRC', () => {
    const keyring = new KeyringImpl([K32, K16])
    const msg = encodeMessage(user(300))
    const packed = packPacket([msg], { compress: true, crc: true, keyring })
    expect(packed[0]).toBe(1)
    const res = unpackPacket(packed, { keyring: new KeyringImpl([K32]) })
    expect(res.crc).toBe(true)
    expect(normalize(res.messages)).toEqual(normalize([user(300)]))
    expect(() => unpackPacket(packed, { keyring: new KeyringImpl([K16]) })).toThrow(WireError)
    // Two packets of the same message differ (fresh nonce).
    expect(toHex(packPacket([msg], { compress: true, crc: true, keyring }))).not.toBe(toHex(packed))
  })

  it('does not encrypt with an empty keyring', () => {
    const msg = encodeMessage(ping)
    expect(toHex(packPacket([msg], { compress: false, crc: false, keyring: new KeyringImpl() }))).toBe(toHex(msg))
  })

  it('never emits an empty message', () => {
    expect(() => packPacket([], { compress: false, crc: false })).toThrow(WireError)
    expect(() => packPacket([new Uint8Array(0)], { compress: true, crc: true })).toThrow(WireError)
    expect(() => packPacket([encodeMessage(ping), new Uint8Array(0)], { compress: false, crc: false })).toThrow(
      WireError,
    )
    expect(() => packPacket(Array(128).fill(encodeMessage(ping)), { compress: false, crc: false })).toThrow(WireError)
  })
})

describe('unpackPacket', () => {
  const a = encodeMessage(ping)
  const b = encodeMessage({ type: 'suspect', incarnation: 1, node: 'n2', from: 'n3' })
  const u = encodeMessage(user(5))

  it('reports whether a CRC was present, and rejects a wrong one', () => {
    expect(unpackPacket(a, {}).crc).toBe(false)
    const good = withCrc(a)
    expect(unpackPacket(good, {})).toEqual({ messages: [ping], crc: true, errors: [] })
    good[3]! ^= 1
    expect(() => unpackPacket(good, {})).toThrow(/invalid checksum/)
    const body = withCrc(a)
    body[body.length - 1]! ^= 0x40
    expect(() => unpackPacket(body, {})).toThrow(WireError)
  })

  it('treats hasCrc shorter than 5 bytes as an unsupported message', () => {
    const res = unpackPacket(Uint8Array.from([12, 0, 0]), {})
    expect(res.messages).toEqual([])
    expect(res.errors).toEqual(['msg type (12) not supported'])
  })

  it('recognises hasCrc only at the outermost level', () => {
    const res = unpackPacket(encodeCompound([withCrc(a), b]), {})
    expect(res.messages.map((m) => m.type)).toEqual(['suspect'])
    expect(res.errors).toEqual(['msg type (12) not supported'])
  })

  it('dispatches through nested compress and compound', () => {
    const inner = encodeCompound([b, compressMessage(encodeCompound([a, u]))])
    const pkt = withCrc(compressMessage(encodeCompound([u, inner, a])))
    const res = unpackPacket(pkt, {})
    expect(res.errors).toEqual([])
    expect(res.messages.map((m) => m.type)).toEqual(['user', 'suspect', 'ping', 'user', 'ping'])
  })

  it('refuses nesting deeper than 8 levels but keeps what came before', () => {
    let deep: Uint8Array = a
    for (let i = 0; i < 12; i++) deep = encodeCompound([deep])
    const res = unpackPacket(encodeCompound([b, deep]), {})
    expect(res.messages).toEqual([{ type: 'suspect', incarnation: 1, node: 'n2', from: 'n3' }])
    expect(res.errors).toEqual(['message nesting too deep'])
  })

  it('keeps earlier compound parts when a later length runs past the end', () => {
    const c = encodeCompound([a, b, u])
    const res = unpackPacket(c.subarray(0, c.length - u.length - 2), {})
    expect(res.messages).toEqual([ping])
    expect(res.errors).toEqual(['Compound request had 2 truncated messages'])
  })

  it('skips malformed, empty and unsupported parts and keeps the rest', () => {
    const bad = Uint8Array.from([0, 0x82, 0xa4])
    const pushPull = encodeMessage({ type: 'pushPull', join: false, nodes: [], userState: new Uint8Array(0) })
    const err = encodeMessage({ type: 'err', error: 'x' })
    const pkt = Buffer.concat([
      Buffer.from([7, 6, 0, a.length, 0, bad.length, 0, 0, 0, pushPull.length, 0, err.length, 0, 1]),
      a,
      bad,
      pushPull,
      err,
      Buffer.from([99]),
    ])
    const res = unpackPacket(pkt, {})
    expect(res.messages).toEqual([ping])
    expect(res.errors).toEqual([
      'msgpack: unexpected end of data',
      'empty message',
      'msg type (6) not supported',
      'msg type (13) not supported',
      'msg type (99) not supported',
    ])
  })

  it('reports a bad compress body', () => {
    const wrongAlgo = Buffer.concat([
      Buffer.from('0982a4416c676f01a3427566', 'hex'),
      Buffer.from([0xa3]),
      lzwCompress(a).subarray(0, 3),
    ])
    expect(unpackPacket(wrongAlgo, {}).errors).toEqual(['Cannot decompress unknown algorithm 1'])
    const badLzw = Buffer.from('0982a4416c676f00a3427566a2ffff', 'hex')
    expect(unpackPacket(badLzw, {}).errors.length).toBe(1)
    const empty = compressMessage(new Uint8Array(0))
    expect(unpackPacket(empty, {}).errors).toEqual(['empty message'])
  })

  it('returns nothing for an empty datagram', () => {
    expect(unpackPacket(new Uint8Array(0), {})).toEqual({ messages: [], crc: false, errors: ['empty message'] })
  })

  it('with keys: drops plaintext and undecryptable packets with Go texts', () => {
    const keyring = new KeyringImpl([K16])
    expect(() => unpackPacket(a, { keyring })).toThrow(WireError)
    expect(() => unpackPacket(new Uint8Array(0), { keyring })).toThrow('Cannot decrypt empty payload')
    expect(() => unpackPacket(Uint8Array.from([2, ...Array(40).fill(0)]), { keyring })).toThrow(
      'Unsupported encryption version 2',
    )
    expect(() => unpackPacket(Uint8Array.from([1, ...Array(27).fill(0)]), { keyring })).toThrow(
      'Payload is too small to decrypt: 28',
    )
    const other = encryptPayload(K32, a)
    expect(() => unpackPacket(other, { keyring })).toThrow('No installed keys could decrypt the message')
    expect(unpackPacket(encryptPayload(K16, a), { keyring }).messages).toEqual([ping])
  })
})
