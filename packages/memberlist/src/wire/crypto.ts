/**
 * AES-GCM as memberlist does it (spec §7): `version | nonce(12) | ciphertext | tag(16)`. Version 1 seals
 * the message as-is; version 0 (protocol 1 peers) PKCS#7-pads to 16 bytes first. We send version 1 and
 * accept both. The key length picks AES-128/192/256.
 */
import { createCipheriv, createDecipheriv, randomFillSync } from 'node:crypto'
import { WireError } from './errors.js'

export const NONCE_SIZE = 12
export const TAG_SIZE = 16
/** Bytes added by version 1: version byte, nonce, tag. */
export const ENCRYPT_OVERHEAD = 1 + NONCE_SIZE + TAG_SIZE
const VERSION_PADDED = 0
const VERSION = 1

function cipherName(key: Uint8Array): 'aes-128-gcm' | 'aes-192-gcm' | 'aes-256-gcm' | undefined {
  switch (key.length) {
    case 16:
      return 'aes-128-gcm'
    case 24:
      return 'aes-192-gcm'
    case 32:
      return 'aes-256-gcm'
    default:
      return undefined
  }
}

/**
 * Seals `plain` (version 1) into `out` at `offset` (which must have ENCRYPT_OVERHEAD + plain.length bytes
 * free) with the given nonce, or a random one. `aad` may alias `out` (the stream frame header).
 */
export function sealInto(
  key: Uint8Array,
  plain: Uint8Array,
  out: Buffer,
  offset: number,
  aad?: Uint8Array,
  nonce?: Uint8Array,
): void {
  const name = cipherName(key)
  if (name === undefined) throw new WireError(`invalid key size ${key.length} (want 16, 24 or 32 bytes)`)
  out[offset] = VERSION
  const nonceAt = offset + 1
  if (nonce === undefined) randomFillSync(out, nonceAt, NONCE_SIZE)
  else {
    if (nonce.length !== NONCE_SIZE) throw new WireError(`nonce must be ${NONCE_SIZE} bytes`)
    out.set(nonce, nonceAt)
  }
  const cipher = createCipheriv(name, key, out.subarray(nonceAt, nonceAt + NONCE_SIZE))
  if (aad !== undefined) cipher.setAAD(aad)
  let at = nonceAt + NONCE_SIZE
  const ct = cipher.update(plain)
  out.set(ct, at)
  at += ct.length
  const fin = cipher.final()
  out.set(fin, at)
  at += fin.length
  out.set(cipher.getAuthTag(), at)
}

/** Version 1 encryption with a fresh random nonce: `01 | nonce | ciphertext | tag`. */
export function encryptPayload(key: Uint8Array, plain: Uint8Array, aad?: Uint8Array): Buffer {
  return encryptPayloadWithNonce(key, plain, undefined, aad)
}

/** Like encryptPayload with a caller-chosen nonce (tests reproduce captured bytes with it). */
export function encryptPayloadWithNonce(
  key: Uint8Array,
  plain: Uint8Array,
  nonce: Uint8Array | undefined,
  aad?: Uint8Array,
): Buffer {
  const out = Buffer.allocUnsafe(ENCRYPT_OVERHEAD + plain.length)
  sealInto(key, plain, out, 0, aad, nonce)
  return out
}

/**
 * Opens a version 0 or 1 payload, trying every key in order; the first that authenticates wins.
 * Throws WireError with memberlist's messages otherwise.
 */
export function decryptPayload(keys: readonly Uint8Array[], buf: Uint8Array, aad?: Uint8Array): Buffer {
  if (buf.length === 0) throw new WireError('Cannot decrypt empty payload')
  const vsn = buf[0]!
  if (vsn > VERSION) throw new WireError(`Unsupported encryption version ${vsn}`)
  const min = ENCRYPT_OVERHEAD + (vsn === VERSION_PADDED ? 16 : 0)
  if (buf.length < min) throw new WireError(`Payload is too small to decrypt: ${buf.length}`)
  const nonce = buf.subarray(1, 1 + NONCE_SIZE)
  const ct = buf.subarray(1 + NONCE_SIZE, buf.length - TAG_SIZE)
  const tag = buf.subarray(buf.length - TAG_SIZE)
  for (const key of keys) {
    const name = cipherName(key)
    if (name === undefined) continue
    let plain: Buffer
    try {
      const decipher = createDecipheriv(name, key, nonce)
      decipher.setAuthTag(tag)
      if (aad !== undefined) decipher.setAAD(aad)
      const head = decipher.update(ct)
      const fin = decipher.final()
      plain = fin.length === 0 ? head : Buffer.concat([head, fin])
    } catch {
      // Authentication failed with this key (node:crypto throws): try the next one, as memberlist does.
      continue
    }
    return vsn === VERSION_PADDED ? unpad(plain) : plain
  }
  throw new WireError('No installed keys could decrypt the message')
}

function unpad(plain: Buffer): Buffer {
  const pad = plain.length > 0 ? plain[plain.length - 1]! : 0
  if (pad < 1 || pad > 16 || pad > plain.length) throw new WireError('invalid PKCS#7 padding')
  return plain.subarray(0, plain.length - pad)
}

/** Version 0 sealing (PKCS#7 padding), for tests of the receive path only: memberlist peers on protocol 2 never send it. */
export function encryptPayloadV0(key: Uint8Array, plain: Uint8Array, nonce?: Uint8Array, aad?: Uint8Array): Buffer {
  const pad = 16 - (plain.length % 16)
  const padded = Buffer.alloc(plain.length + pad, pad)
  padded.set(plain, 0)
  const out = encryptPayloadWithNonce(key, padded, nonce, aad)
  out[0] = VERSION_PADDED
  // Version byte is not authenticated (not part of the AAD), so flipping it after sealing is what Go does too.
  return out
}
