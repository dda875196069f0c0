import { isCnmError } from '@cnm/types'
import { describe, expect, it } from 'vitest'
import {
  bytesToIp,
  crc32,
  decryptPayload,
  ENCRYPT_OVERHEAD,
  encryptPayload,
  encryptPayloadWithNonce,
  ipToBytes,
  KeyringImpl,
  WireError,
} from '../src/wire/index.js'
import { crc32Software } from '../src/wire/crc32.js'
import { encryptPayloadV0 } from '../src/wire/crypto.js'
import { toHex } from './fixtures-wire/vectors.js'

const K16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const K24 = Buffer.alloc(24, 0x24)
const K32 = Buffer.from(Array.from({ length: 32 }, (_, i) => i))

describe('crc32', () => {
  it('is CRC-32/IEEE', () => {
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926)
    expect(crc32(new Uint8Array(0))).toBe(0)
    expect(crc32Software(Buffer.from('123456789'))).toBe(0xcbf43926)
  })

  it('the table version agrees with the one in use at every length and alignment', () => {
    const data = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 131 + 7) & 0xff))
    for (let start = 0; start < 4; start++) {
      for (let n = 0; n < 300; n += 1)
        expect(crc32Software(data.subarray(start, start + n))).toBe(crc32(data.subarray(start, start + n)))
    }
    expect(crc32Software(data)).toBe(crc32(data))
  })
})

describe('AES-GCM', () => {
  const plain = Buffer.from('hello memberlist')

  it.each([
    ['AES-128', K16],
    ['AES-192', K24],
    ['AES-256', K32],
  ])('%s round trip, with and without AAD', (_n, key) => {
    const enc = encryptPayload(key, plain)
    expect(enc.length).toBe(plain.length + ENCRYPT_OVERHEAD)
    expect(enc[0]).toBe(1)
    expect(toHex(decryptPayload([key], enc))).toBe(toHex(plain))
    const aad = Buffer.from([10, 0, 0, 0, 45])
    const withAad = encryptPayload(key, plain, aad)
    expect(toHex(decryptPayload([key], withAad, aad))).toBe(toHex(plain))
    expect(() => decryptPayload([key], withAad)).toThrow(WireError)
    expect(() => decryptPayload([key], withAad, Buffer.from([10, 0, 0, 0, 46]))).toThrow(WireError)
  })

  it('uses a fresh random nonce each time, or the one given', () => {
    expect(toHex(encryptPayload(K16, plain).subarray(1, 13))).not.toBe(
      toHex(encryptPayload(K16, plain).subarray(1, 13)),
    )
    const nonce = Buffer.alloc(12, 9)
    const a = encryptPayloadWithNonce(K16, plain, nonce)
    expect(toHex(a)).toBe(toHex(encryptPayloadWithNonce(K16, plain, nonce)))
    expect(toHex(a.subarray(1, 13))).toBe(toHex(nonce))
    expect(() => encryptPayloadWithNonce(K16, plain, Buffer.alloc(8))).toThrow(WireError)
  })

  it('encrypts an empty message to exactly the overhead', () => {
    const enc = encryptPayload(K16, new Uint8Array(0))
    expect(enc.length).toBe(29)
    expect(decryptPayload([K16], enc).length).toBe(0)
  })

  it('tries every key in order', () => {
    const enc = encryptPayload(K32, plain)
    expect(toHex(decryptPayload([K16, K24, K32], enc))).toBe(toHex(plain))
    expect(toHex(decryptPayload([Buffer.alloc(5), K32], enc))).toBe(toHex(plain))
    expect(() => decryptPayload([K16, K24], enc)).toThrow('No installed keys could decrypt the message')
    expect(() => decryptPayload([], enc)).toThrow('No installed keys could decrypt the message')
  })

  it('opens version 0 (PKCS#7 padded) payloads', () => {
    for (const n of [0, 1, 15, 16, 17, 40]) {
      const msg = Buffer.alloc(n, 0x33)
      const enc = encryptPayloadV0(K16, msg)
      expect(enc[0]).toBe(0)
      expect(enc.length).toBe(29 + n + (16 - (n % 16)))
      expect(toHex(decryptPayload([K24, K16], enc))).toBe(toHex(msg))
    }
  })

  it('rejects malformed payloads with memberlist texts', () => {
    expect(() => decryptPayload([K16], new Uint8Array(0))).toThrow('Cannot decrypt empty payload')
    expect(() => decryptPayload([K16], Buffer.alloc(60, 2))).toThrow('Unsupported encryption version 2')
    expect(() => decryptPayload([K16], Buffer.alloc(28, 1))).toThrow('Payload is too small to decrypt: 28')
    expect(() => decryptPayload([K16], Buffer.alloc(44, 0))).toThrow('Payload is too small to decrypt: 44')
    const tampered = encryptPayload(K16, plain)
    tampered[20]! ^= 1
    expect(() => decryptPayload([K16], tampered)).toThrow(WireError)
  })

  it('refuses to encrypt with a key of a bad size', () => {
    expect(() => encryptPayload(Buffer.alloc(20), plain)).toThrow(WireError)
  })
})

describe('KeyringImpl', () => {
  it('keeps the primary first, drops duplicates, validates sizes', () => {
    const kr = new KeyringImpl([K16, K32, K16])
    expect(kr.keys().map(toHex)).toEqual([toHex(K16), toHex(K32)])
    expect(toHex(kr.primaryKey()!)).toBe(toHex(K16))
    expect(new KeyringImpl().primaryKey()).toBeUndefined()
    let err: unknown
    try {
      new KeyringImpl([Buffer.alloc(17)])
    } catch (e) {
      err = e
    }
    expect(isCnmError(err)).toBe(true)
    expect((err as { kind: string }).kind).toBe('invalid-argument')
    expect(() => kr.addKey(Buffer.alloc(8))).toThrow(/16, 24 or 32/)
  })

  it('adds, reorders on useKey, refuses to remove the primary', () => {
    const kr = new KeyringImpl([K16])
    kr.addKey(K24)
    kr.addKey(K32)
    kr.addKey(K24)
    expect(kr.keys().map((k) => k.length)).toEqual([16, 24, 32])
    kr.useKey(K32)
    expect(kr.keys().map((k) => k.length)).toEqual([32, 16, 24])
    expect(() => kr.useKey(Buffer.alloc(16, 0xff))).toThrow(expect.objectContaining({ kind: 'not-found' }))
    expect(() => kr.removeKey(K32)).toThrow(expect.objectContaining({ kind: 'forbidden' }))
    kr.removeKey(K16)
    kr.removeKey(Buffer.alloc(16, 0xff))
    expect(kr.keys().map((k) => k.length)).toEqual([32, 24])
  })

  it('hands out copies and keeps its own', () => {
    const key = Buffer.from(K16)
    const kr = new KeyringImpl([key])
    key.fill(0)
    kr.keys()[0]!.fill(0)
    kr.primaryKey()!.fill(0)
    expect(toHex(kr.primaryKey()!)).toBe(toHex(K16))
  })
})

describe('ipToBytes / bytesToIp', () => {
  it('IPv4 is always 4 bytes', () => {
    expect(toHex(ipToBytes('127.0.0.1'))).toBe('7f000001')
    expect(bytesToIp(Uint8Array.from([10, 1, 2, 255]))).toBe('10.1.2.255')
  })

  it('IPv6 is 16 bytes; a v4-mapped 16-byte address prints dotted as Go does', () => {
    expect(toHex(ipToBytes('::1'))).toBe('00000000000000000000000000000001')
    expect(toHex(ipToBytes('fd00::1:2'))).toBe('fd000000000000000000000000010002')
    expect(bytesToIp(ipToBytes('fd00::1:2'))).toBe('fd00::1:2')
    expect(bytesToIp(ipToBytes('::ffff:1.2.3.4'))).toBe('1.2.3.4')
  })

  it('refuses bad input with WireError', () => {
    for (const bad of ['', '1.2.3', '256.1.1.1', 'host', '1.2.3.4/8', 'fe80::1%eth0']) {
      expect(() => ipToBytes(bad)).toThrow(WireError)
    }
    expect(() => bytesToIp(Uint8Array.from([1, 2, 3]))).toThrow(WireError)
  })
})
