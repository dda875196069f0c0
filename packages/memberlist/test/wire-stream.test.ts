import { describe, expect, it } from 'vitest'
import {
  encodeMessage,
  encodeUserStream,
  ERR_NO_ENCRYPTION,
  ERR_NOT_ENCRYPTED,
  KeyringImpl,
  lzwCompress,
  MAX_STREAM_BYTES,
  packStream,
  readStreamMessage,
  sealStreamFrame,
  WireError,
  compressMessage,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { encryptPayloadV0 } from '../src/wire/crypto.js'
import { normalize, toHex } from './fixtures-wire/vectors.js'

const K16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const K24 = Buffer.alloc(24, 3)
const VSN = Uint8Array.from([1, 5, 2, 0, 0, 0])

const pushPull: Message = {
  type: 'pushPull',
  join: true,
  nodes: Array.from({ length: 20 }, (_, i) => ({
    name: `node${i}`,
    addr: Uint8Array.from([10, 0, 0, i]),
    port: 7946,
    meta: i % 2 === 0 ? null : new Uint8Array(0),
    incarnation: i + 1,
    state: i % 3,
    vsn: VSN,
  })),
  userState: Buffer.alloc(3000, 0x5a),
}

function wireError(fn: () => unknown): WireError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(WireError)
    return err as WireError
  }
  throw new Error('expected a WireError')
}

describe('packStream / readStreamMessage round trips', () => {
  const cases: [string, Uint8Array, Message][] = [
    ['pushPull', encodeMessage(pushPull), pushPull],
    ['user', encodeUserStream(Buffer.from('bulk sync')), { type: 'user', payload: Buffer.from('bulk sync') }],
    ['ping', encodeMessage({ type: 'ping', seqNo: 4243, node: 'node1' }), { type: 'ping', seqNo: 4243, node: 'node1' }],
    ['ack', encodeMessage({ type: 'ack', seqNo: 4243, payload: null }), { type: 'ack', seqNo: 4243, payload: null }],
    ['err', encodeMessage({ type: 'err', error: ERR_NOT_ENCRYPTED }), { type: 'err', error: ERR_NOT_ENCRYPTED }],
  ]
  for (const keyring of [undefined, new KeyringImpl([K16]), new KeyringImpl([K24, K16])]) {
    for (const compress of [false, true]) {
      it.each(cases)(`%s (compress=${compress}, keys=${keyring?.keys().length ?? 0})`, (_n, body, msg) => {
        const opts = keyring === undefined ? {} : { keyring }
        const wire = packStream(body, { compress, ...opts })
        if (keyring !== undefined) expect(wire[0]).toBe(10)
        else expect(wire[0]).toBe(compress ? 9 : body[0])
        const res = readStreamMessage(wire, opts)
        expect(res?.consumed).toBe(wire.length)
        expect(normalize(res!.message)).toEqual(normalize(msg))
      })
    }
  }

  it('always compresses when asked, even when it makes the message longer', () => {
    const body = encodeMessage({ type: 'nack', seqNo: 1 })
    const wire = packStream(body, { compress: true })
    expect(wire.length).toBeGreaterThan(body.length)
    expect(toHex(wire)).toBe(toHex(compressMessage(body)))
  })

  it('frames encryption as 0a | L | v1 with L = 29 + plaintext', () => {
    const body = encodeMessage({ type: 'ping', seqNo: 1, node: 'x' })
    const wire = Buffer.from(packStream(body, { compress: false, keyring: new KeyringImpl([K16]) }))
    expect(wire.readUInt32BE(1)).toBe(29 + body.length)
    expect(wire.length).toBe(5 + 29 + body.length)
    expect(wire[5]).toBe(1)
  })

  it('refuses to send an empty message', () => {
    expect(() => packStream(new Uint8Array(0), { compress: true })).toThrow(WireError)
  })
})

describe('readStreamMessage on partial, bad and hostile input', () => {
  it('returns undefined for every proper prefix, then the message (plain, compressed, encrypted)', () => {
    const body = encodeMessage(pushPull)
    for (const opts of [{ compress: false }, { compress: true }, { compress: true, keyring: new KeyringImpl([K16]) }]) {
      const wire = packStream(body, opts)
      const read = { ...(opts.keyring === undefined ? {} : { keyring: opts.keyring }) }
      for (let n = 0; n < wire.length; n += n < 64 ? 1 : 97) {
        expect(readStreamMessage(wire.subarray(0, n), read)).toBeUndefined()
      }
      expect(readStreamMessage(wire.subarray(0, wire.length - 1), read)).toBeUndefined()
      expect(readStreamMessage(wire, read)!.consumed).toBe(wire.length)
    }
  })

  it('refuses an encrypt frame declaring more than 10 MiB as soon as the header is in', () => {
    const keyring = new KeyringImpl([K16])
    const head = Buffer.from([10, 0, 0, 0, 0])
    head.writeUInt32BE(MAX_STREAM_BYTES + 1, 1)
    expect(wireError(() => readStreamMessage(head, { keyring })).message).toBe(
      `Remote node state is larger than limit (${MAX_STREAM_BYTES + 1})`,
    )
    head.writeUInt32BE(0xffffffff, 1)
    expect(() => readStreamMessage(head, { keyring })).toThrow(WireError)
    head.writeUInt32BE(MAX_STREAM_BYTES, 1)
    expect(readStreamMessage(head, { keyring })).toBeUndefined()
  })

  it('refuses oversized plaintext user messages and user states before buffering them', () => {
    const user = Buffer.from(
      `0881aa557365724d73674c656ece${(MAX_STREAM_BYTES + 1).toString(16).padStart(8, '0')}`,
      'hex',
    )
    expect(() => readStreamMessage(user, {})).toThrow(WireError)
    const pp = Buffer.from(
      `0683a44a6f696ec2a54e6f64657300ac5573657253746174654c656ece${(MAX_STREAM_BYTES + 1).toString(16).padStart(8, '0')}`,
      'hex',
    )
    expect(() => readStreamMessage(pp, {})).toThrow(/larger than limit/)
    const nodes = Buffer.from('0683a44a6f696ec2a54e6f646573cf0000000100000000ac5573657253746174654c656e00', 'hex')
    expect(() => readStreamMessage(nodes, {})).toThrow(WireError)
  })

  it('refuses a compressed stream whose declared Buf is beyond the limit', () => {
    const c = Buffer.from(
      `0982a4416c676f00a3427566db${(MAX_STREAM_BYTES + 100).toString(16).padStart(8, '0')}00`,
      'hex',
    )
    expect(wireError(() => readStreamMessage(c, {})).message).toMatch(/larger than limit/)
    const err = Buffer.from(`0d81a54572726f72db${(MAX_STREAM_BYTES + 1).toString(16).padStart(8, '0')}`, 'hex')
    expect(wireError(() => readStreamMessage(err, {})).message).toMatch(/larger than limit/)
  })

  it('enforces the encryption configuration with Go texts', () => {
    const plain = packStream(encodeMessage({ type: 'ping', seqNo: 1, node: '' }), { compress: true })
    expect(wireError(() => readStreamMessage(plain, { keyring: new KeyringImpl([K16]) })).message).toBe(
      ERR_NOT_ENCRYPTED,
    )
    const enc = packStream(encodeMessage({ type: 'ping', seqNo: 1, node: '' }), {
      compress: true,
      keyring: new KeyringImpl([K16]),
    })
    expect(wireError(() => readStreamMessage(enc, {})).message).toBe(ERR_NO_ENCRYPTION)
    expect(wireError(() => readStreamMessage(enc, { keyring: new KeyringImpl() })).message).toBe(ERR_NO_ENCRYPTION)
    expect(wireError(() => readStreamMessage(enc, { keyring: new KeyringImpl([K24]) })).message).toBe(
      'No installed keys could decrypt the message',
    )
  })

  it('checks the frame header as additional data', () => {
    const body = encodeMessage({ type: 'ping', seqNo: 1, node: '' })
    const wire = Buffer.from(packStream(body, { compress: false, keyring: new KeyringImpl([K16]) }))
    const extended = Buffer.concat([wire, Buffer.alloc(1)])
    extended.writeUInt32BE(wire.length - 5 + 1, 1)
    expect(() => readStreamMessage(extended, { keyring: new KeyringImpl([K16]) })).toThrow(WireError)
  })

  it('accepts a version 0 (padded) encrypt frame', () => {
    const body = encodeMessage({ type: 'ping', seqNo: 9, node: 'a' })
    const len = 29 + body.length + (16 - (body.length % 16))
    const head = Buffer.from([10, 0, 0, 0, 0])
    head.writeUInt32BE(len, 1)
    const frame = Buffer.concat([head, encryptPayloadV0(K16, body, undefined, head)])
    expect(frame.length).toBe(5 + len)
    expect(readStreamMessage(frame, { keyring: new KeyringImpl([K16]) })!.message).toEqual({
      type: 'ping',
      seqNo: 9,
      node: 'a',
    })
  })

  it('refuses garbage, nested containers and empty payloads', () => {
    for (const t of [7, 12, 14, 0x42, 0xff]) {
      expect(wireError(() => readStreamMessage(Uint8Array.from([t, 0x80, 0, 0]), {})).message).toMatch(
        /invalid msgType/,
      )
    }
    // compress inside compress: Go handles one level only.
    const twice = compressMessage(compressMessage(encodeMessage({ type: 'nack', seqNo: 1 })))
    expect(() => readStreamMessage(twice, {})).toThrow(/invalid msgType \(9\)/)
    // An encrypt frame whose plaintext is another frame.
    const keyring = new KeyringImpl([K16])
    const inner = sealStreamFrame(K16, encodeMessage({ type: 'nack', seqNo: 1 }))
    expect(() => readStreamMessage(sealStreamFrame(K16, inner), { keyring })).toThrow(/invalid msgType \(10\)/)
    // Truncated content inside a complete compress value or frame is an error, not "need more".
    const cut = encodeMessage(pushPull).subarray(0, 200)
    expect(() => readStreamMessage(compressMessage(cut), {})).toThrow(WireError)
    expect(() => readStreamMessage(sealStreamFrame(K16, cut), { keyring })).toThrow(WireError)
    expect(() => readStreamMessage(compressMessage(new Uint8Array(0)), {})).toThrow(/empty/)
    expect(() => readStreamMessage(Buffer.from('0982a4416c676f00a3427566a3ffffff', 'hex'), {})).toThrow(WireError)
    const small = Buffer.from([10, 0, 0, 0, 3, 1, 2, 3])
    expect(wireError(() => readStreamMessage(small, { keyring })).message).toBe('Payload is too small to decrypt: 3')
    expect(readStreamMessage(new Uint8Array(0), {})).toBeUndefined()
  })

  it('decodes a plaintext compressed stream written with a bin-typed Buf', () => {
    const lzw = lzwCompress(encodeMessage({ type: 'nack', seqNo: 5 }))
    const wire = Buffer.concat([Buffer.from('0982a4416c676f00a3427566c4', 'hex'), Buffer.from([lzw.length]), lzw])
    expect(readStreamMessage(wire, {})).toEqual({ message: { type: 'nack', seqNo: 5 }, consumed: wire.length })
  })
})
