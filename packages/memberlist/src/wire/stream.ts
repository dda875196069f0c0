/** TCP stream messages (spec §6, §7.3): optional compress wrapper, optional encrypt frame `0a | L | v1`. */
import type { Keyring } from '../types.js'
import { decryptPayload, ENCRYPT_OVERHEAD, sealInto } from './crypto.js'
import { NEED_MORE, WireError } from './errors.js'
import { keysOf, primaryOf } from './keyring.js'
import { lzwCompress, lzwDecompress } from './lzw.js'
import { encodeCompressWrapper, MAX_STREAM_BYTES, MessageType, readBody, readCompress } from './messages.js'
import type { Message } from './messages.js'
import { MsgpackReader } from './msgpack.js'

/** errResp text of a Go peer with keys that got a plaintext stream. */
export const ERR_NOT_ENCRYPTED = 'Encryption is configured but remote state is not encrypted'
/** errResp text of a Go peer without keys that got an encrypted stream. */
export const ERR_NO_ENCRYPTION = 'Remote state is encrypted and encryption is not configured'

const FRAME_HEADER = 5

/**
 * Outgoing stream message: always wrapped in compress when `compress`, then in the encrypt frame (AAD =
 * the 5 header bytes) when the keyring has keys.
 */
export function packStream(msg: Uint8Array, opts: { compress: boolean; keyring?: Keyring | undefined }): Uint8Array {
  return packStreamWithNonce(msg, opts, undefined)
}

/** packStream with an explicit GCM nonce (tests). */
export function packStreamWithNonce(
  msg: Uint8Array,
  opts: { compress: boolean; keyring?: Keyring | undefined },
  nonce: Uint8Array | undefined,
): Uint8Array {
  if (msg.length === 0) throw new WireError('refusing to send an empty message')
  const plain = opts.compress ? encodeCompressWrapper(lzwCompress(msg)) : msg
  const key = primaryOf(opts.keyring)
  if (key === undefined) return plain
  return sealStreamFrame(key, plain, nonce)
}

/** `0a | L (uint32 BE) | 01 | nonce | ciphertext | tag`, the header being the GCM additional data. */
export function sealStreamFrame(key: Uint8Array, plain: Uint8Array, nonce?: Uint8Array): Buffer {
  const len = ENCRYPT_OVERHEAD + plain.length
  if (len > MAX_STREAM_BYTES) throw new WireError(`stream message of ${len} bytes is larger than limit`)
  const out = Buffer.allocUnsafe(FRAME_HEADER + len)
  out[0] = MessageType.encrypt
  out.writeUInt32BE(len, 1)
  sealInto(key, plain, out, FRAME_HEADER, out.subarray(0, FRAME_HEADER), nonce)
  return out
}

/**
 * Incremental stream reader: call it with everything received so far. Returns undefined while more
 * bytes are needed, else the message and the bytes it used. Throws WireError on malformed input, on an
 * encrypt frame over 10 MiB, and on an encryption mismatch (Go's error texts). `maxBytes` (default
 * 10 MiB) bounds plaintext messages and decompressed data; Go has no such bound, so a memberlist node
 * that must take tens of MB over plaintext streams passes a larger one. The encrypt frame limit stays.
 */
export function readStreamMessage(
  buf: Uint8Array,
  opts: { keyring?: Keyring | undefined; maxBytes?: number | undefined },
): { message: Message; consumed: number } | undefined {
  if (buf.length === 0) return undefined
  const limit = opts.maxBytes ?? MAX_STREAM_BYTES
  const keys = keysOf(opts.keyring)
  if (buf[0] === MessageType.encrypt) {
    if (keys.length === 0) throw new WireError(ERR_NO_ENCRYPTION)
    if (buf.length < FRAME_HEADER) return undefined
    const len = ((buf[1]! << 24) | (buf[2]! << 16) | (buf[3]! << 8) | buf[4]!) >>> 0
    if (len > MAX_STREAM_BYTES) throw new WireError(`Remote node state is larger than limit (${len})`)
    if (buf.length < FRAME_HEADER + len) return undefined
    const plain = decryptPayload(keys, buf.subarray(FRAME_HEADER, FRAME_HEADER + len), buf.subarray(0, FRAME_HEADER))
    if (plain.length === 0) throw new WireError('empty decrypted stream message')
    const message = readPlain(new MsgpackReader(plain, 0, plain.length, false, false), true, limit)
    return { message, consumed: FRAME_HEADER + len }
  }
  if (keys.length > 0) throw new WireError(ERR_NOT_ENCRYPTED)
  // Plaintext: parse what we have; running out of input means "wait for more". Byte fields are copied so
  // that the caller may reuse its receive buffer.
  const r = new MsgpackReader(buf, 0, buf.length, true, true)
  r.maxLength = limit
  try {
    const message = readPlain(r, true, limit)
    return { message, consumed: r.pos }
  } catch (err) {
    if (err !== NEED_MORE) throw err
    if (buf.length > limit + 64) throw new WireError('stream message is larger than limit')
    return undefined
  }
}

/** Type byte, an optional compress wrapper (one level, as Go), then the message body. */
function readPlain(r: MsgpackReader, allowCompress: boolean, limit: number): Message {
  const type = r.u8()
  if (type === MessageType.compress && allowCompress) {
    const data = lzwDecompress(readCompress(r), limit)
    if (data.length === 0) throw new WireError('empty decompressed stream message')
    const inner = new MsgpackReader(data, 0, data.length, false, false)
    inner.maxLength = limit
    return readPlain(inner, false, limit)
  }
  const msg = readBody(type, r, true)
  if (msg === undefined) throw new WireError(`Received invalid msgType (${type})`)
  return msg
}
