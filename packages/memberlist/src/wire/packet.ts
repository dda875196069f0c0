/** UDP packets (spec §5): compound, compress-if-smaller, hasCrc, AES-GCM without additional data. */
import type { Keyring } from '../types.js'
import { crc32 } from './crc32.js'
import { decryptPayload, ENCRYPT_OVERHEAD, sealInto } from './crypto.js'
import { WireError } from './errors.js'
import { keysOf, primaryOf } from './keyring.js'
import { lzwCompress, lzwDecompress } from './lzw.js'
import {
  decodeCompound,
  encodeCompound,
  encodeCompressWrapper,
  MAX_STREAM_BYTES,
  MessageType,
  readBody,
  readCompress,
} from './messages.js'
import type { Message } from './messages.js'
import { MsgpackReader, rawHeaderSize } from './msgpack.js'

/** Nesting (compress/compound inside each other) beyond this is refused on receive. */
const MAX_DEPTH = 8

/** Compresses a whole message into its `09 {Algo, Buf}` wrapper. */
export function compressMessage(msg: Uint8Array): Buffer {
  return encodeCompressWrapper(lzwCompress(msg))
}

/**
 * Decompresses a compress message (type byte first) into the message it carries. Throws WireError for a
 * malformed wrapper, an unknown algorithm, bad LZW data, or more than 10 MiB of output.
 */
export function decompressMessage(buf: Uint8Array): Buffer {
  const r = new MsgpackReader(buf, 1)
  return lzwDecompress(readCompress(r), MAX_STREAM_BYTES)
}

export interface PackOptions {
  compress: boolean
  crc: boolean
  keyring?: Keyring | undefined
}

/**
 * Outgoing UDP pipeline (§5.1): one message or a compound of several, compressed when `compress` and
 * strictly shorter, hasCrc when `crc`, AES-GCM v1 with the primary key when the keyring has keys.
 */
export function packPacket(messages: readonly Uint8Array[], opts: PackOptions): Uint8Array {
  return packPacketWithNonce(messages, opts, undefined)
}

/** packPacket with an explicit GCM nonce (tests). */
export function packPacketWithNonce(
  messages: readonly Uint8Array[],
  opts: PackOptions,
  nonce: Uint8Array | undefined,
): Uint8Array {
  if (messages.length === 0) throw new WireError('no message to send')
  let msg: Uint8Array
  if (messages.length === 1) {
    msg = messages[0]!
    if (msg.length === 0) throw new WireError('refusing to send an empty message')
  } else msg = encodeCompound(messages)

  if (opts.compress) {
    const lzw = lzwCompress(msg)
    // 09, fixmap, "Algo" 0, "Buf" + raw header: 1 + 1 + 5 + 1 + 4 = 12 bytes before the raw header.
    if (12 + rawHeaderSize(lzw.length) + lzw.length < msg.length) msg = encodeCompressWrapper(lzw)
  }
  const key = primaryOf(opts.keyring)
  const crcLen = opts.crc ? 5 : 0
  const out = Buffer.allocUnsafe(crcLen + msg.length + (key === undefined ? 0 : ENCRYPT_OVERHEAD))
  if (key === undefined) {
    if (opts.crc) writeCrc(out, 0, msg)
    out.set(msg, crcLen)
    return out
  }
  // Encrypt from a plaintext staging area; ciphertext lands in `out`.
  let plain = msg
  if (opts.crc) {
    const staged = Buffer.allocUnsafe(5 + msg.length)
    writeCrc(staged, 0, msg)
    staged.set(msg, 5)
    plain = staged
  }
  sealInto(key, plain, out, 0, undefined, nonce)
  return out
}

function writeCrc(out: Buffer, at: number, msg: Uint8Array): void {
  out[at] = MessageType.hasCrc
  out.writeUInt32BE(crc32(msg), at + 1)
}

export interface UnpackResult {
  /** Leaf messages in order. Byte fields are views into the (decrypted) packet. */
  messages: Message[]
  /** The packet carried a (valid) hasCrc prefix. */
  crc: boolean
  /** Why parts were skipped (malformed, unsupported type, truncated compound, …). */
  errors: string[]
}

/**
 * Incoming UDP pipeline: decrypt when the keyring has keys, verify and strip hasCrc at the outermost
 * level, then dispatch through compress and compound. Throws WireError only for decrypt or CRC failure.
 */
export function unpackPacket(buf: Uint8Array, opts: { keyring?: Keyring | undefined }): UnpackResult {
  const keys = keysOf(opts.keyring)
  let data = buf
  if (keys.length > 0) data = decryptPayload(keys, buf)
  let crc = false
  if (data.length >= 5 && data[0] === MessageType.hasCrc) {
    const expected = ((data[1]! << 24) | (data[2]! << 16) | (data[3]! << 8) | data[4]!) >>> 0
    data = data.subarray(5)
    const actual = crc32(data)
    if (actual !== expected) {
      throw new WireError(`Got invalid checksum for UDP packet: ${hex32(actual)}, ${hex32(expected)}`)
    }
    crc = true
  }
  const result: UnpackResult = { messages: [], crc, errors: [] }
  dispatch(data, result, 0)
  return result
}

function hex32(n: number): string {
  return n.toString(16)
}

function dispatch(data: Uint8Array, out: UnpackResult, depth: number): void {
  if (data.length === 0) {
    out.errors.push('empty message')
    return
  }
  const type = data[0]!
  try {
    if (type === MessageType.compound || type === MessageType.compress) {
      if (depth >= MAX_DEPTH) {
        out.errors.push('message nesting too deep')
        return
      }
      if (type === MessageType.compress) {
        dispatch(decompressMessage(data), out, depth + 1)
        return
      }
      const { parts, truncated } = decodeCompound(data)
      for (const part of parts) dispatch(part, out, depth + 1)
      if (truncated > 0) out.errors.push(`Compound request had ${truncated} truncated messages`)
      return
    }
    const msg = type === MessageType.err ? undefined : readBody(type, new MsgpackReader(data, 1), false)
    if (msg === undefined || msg.type === 'pushPull') out.errors.push(`msg type (${type}) not supported`)
    else out.messages.push(msg)
  } catch (err) {
    if (!(err instanceof WireError)) throw err
    out.errors.push(err.message)
  }
}
