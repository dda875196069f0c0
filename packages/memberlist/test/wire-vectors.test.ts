import { describe, expect, it } from 'vitest'
import {
  crc32,
  decodeCompound,
  decodeMessage,
  decompressMessage,
  decryptPayload,
  encodeCompound,
  encodeMessage,
  encodeUserStream,
  encryptPayloadWithNonce,
  ERR_NO_ENCRYPTION,
  ERR_NOT_ENCRYPTED,
  KeyringImpl,
  lzwCompress,
  lzwDecompress,
  packPacket,
  packPacketWithNonce,
  packStream,
  packStreamWithNonce,
  readStreamMessage,
  unpackPacket,
  WireError,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { bytesField, expectedMessage, fromHex, loadVectors, need, normalize, toHex } from './fixtures-wire/vectors.js'
import type { VCompress, VEncryption, Vector, VNode } from './fixtures-wire/vectors.js'

const vectors = loadVectors()
const udp = vectors.filter((v) => v.transport === 'udp')
const tcp = vectors.filter((v) => v.transport === 'tcp')

function keysOf(v: Vector): Buffer[] {
  return [...(v.keys ?? [])].sort((a, b) => a.index - b.index).map((k) => fromHex(k.hex))
}

function wireError(fn: () => unknown): WireError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(WireError)
    expect((err as WireError).code).toBe('ERR_WIRE')
    return err as WireError
  }
  throw new Error('expected a WireError')
}

/** Leaf encoding: `user` is 08 + payload, struct messages are type + msgpack. */
function leafBytes(node: VNode): Buffer {
  if (node.name === 'user') return Buffer.concat([Buffer.from([8]), fromHex(need(node.payload_hex, 'payload_hex'))])
  return Buffer.concat([Buffer.from([node.type]), fromHex(need(node.msgpack_hex, 'msgpack_hex'))])
}

interface Walk {
  leaves: Message[]
  leafBytes: Buffer[]
  hasCrc: boolean
  compressed: boolean
}

/**
 * Walks a UDP decoded tree, checking each layer against the bytes it covers and re-encoding it from its
 * parts; collects the leaf messages in order.
 */
function walk(node: VNode, bytes: Buffer, out: Walk, depth = 0): void {
  expect(bytes[0]).toBe(node.type)
  switch (node.name) {
    case 'hasCrc': {
      expect(depth).toBe(0)
      out.hasCrc = true
      const covered = bytes.subarray(5)
      expect(covered.length).toBe(node.covered_bytes)
      const crc = need(node.crc32_be, 'crc32_be')
      expect(crc32(covered).toString(16).padStart(8, '0')).toBe(crc)
      expect(bytes.readUInt32BE(1)).toBe(Number.parseInt(crc, 16))
      walk(need(node.inner, 'inner'), covered, out, depth + 1)
      return
    }
    case 'compress': {
      out.compressed = true
      expect(toHex(bytes.subarray(1))).toBe(node.msgpack_hex)
      const fields = need(node.fields, 'fields')
      expect(fields.Algo).toBe(0)
      const buf = fields.Buf
      const lzw = bytesField(buf)!
      expect(lzw.length).toBe(typeof buf === 'object' ? buf?.len : undefined)
      const decompressed = need(node.decompressed_hex, 'decompressed_hex')
      const plain = fromHex(decompressed)
      expect(toHex(lzwDecompress(lzw))).toBe(decompressed)
      expect(toHex(lzwCompress(plain))).toBe(toHex(lzw))
      expect(toHex(decompressMessage(bytes))).toBe(decompressed)
      walk(need(node.inner, 'inner'), plain, out, depth + 1)
      return
    }
    case 'compound': {
      const { parts, truncated } = decodeCompound(bytes)
      expect(truncated).toBe(0)
      expect(parts.length).toBe(node.count)
      expect(parts.map((p) => p.length)).toEqual(node.lengths)
      const nodes = need(node.parts, 'parts')
      expect(toHex(encodeCompound(nodes.map(leafOrSelf)))).toBe(toHex(bytes))
      nodes.forEach((p, i) => walk(p, Buffer.from(parts[i]!), out, depth + 1))
      return
    }
    default: {
      const msg = expectedMessage(node)
      expect(toHex(bytes)).toBe(toHex(leafBytes(node)))
      expect(normalize(decodeMessage(bytes))).toEqual(normalize(msg))
      expect(toHex(encodeMessage(msg))).toBe(toHex(bytes))
      out.leaves.push(msg)
      out.leafBytes.push(bytes)
    }
  }
}

function leafOrSelf(node: VNode): Buffer {
  if (node.name === 'compound' || node.name === 'compress' || node.name === 'hasCrc') {
    throw new Error('nested container inside a compound is not in the captured vectors')
  }
  return leafBytes(node)
}

function encOf(v: Vector): VEncryption {
  return need(v.decoded.encryption, 'encryption')
}

function compOf(v: Vector): VCompress {
  return need(v.decoded.compress, 'compress')
}

function walkUdp(v: Vector): { plain: Buffer; w: Walk } {
  const plain = v.encrypted ? fromHex(encOf(v).plaintext_hex) : fromHex(v.hex)
  const w: Walk = { leaves: [], leafBytes: [], hasCrc: false, compressed: false }
  walk(v.decoded.message, plain, w)
  return { plain, w }
}

describe('vector directory', () => {
  it('holds the 40 captured vectors', () => {
    expect(vectors.length).toBe(40)
    expect(udp.length).toBe(24)
    expect(tcp.length).toBe(16)
    for (const v of vectors) expect(fromHex(v.hex).length).toBe(v.length)
  })
})

describe('UDP vectors: decode', () => {
  it.each(udp.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const { w } = walkUdp(v)
    expect(w.leaves.length).toBeGreaterThan(0)
    const keyring = v.encrypted ? new KeyringImpl(keysOf(v)) : undefined
    const res = unpackPacket(fromHex(v.hex), keyring === undefined ? {} : { keyring })
    expect(res.errors).toEqual([])
    expect(res.crc).toBe(w.hasCrc)
    expect(normalize(res.messages)).toEqual(normalize(w.leaves))
  })
})

describe('UDP vectors: re-encode byte for byte', () => {
  it.each(udp.filter((v) => !v.encrypted).map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const { w } = walkUdp(v)
    // Go compresses every packet when compression is on and keeps the result only if shorter.
    const packed = packPacket(w.leaves.map(encodeMessage), { compress: true, crc: w.hasCrc })
    expect(toHex(packed)).toBe(v.hex)
    const uncompressed = packPacket(w.leafBytes, { compress: w.compressed, crc: w.hasCrc })
    expect(toHex(uncompressed)).toBe(v.hex)
  })
})

describe('encrypted UDP vectors', () => {
  const enc = udp.filter((v) => v.encrypted)
  it.each(enc.map((v) => [v.id, v] as const))('%s: decrypts with the right key, re-encrypts identically', (_id, v) => {
    const e = encOf(v)
    const keys = keysOf(v)
    const key = keys[e.decrypted_with_key_index]!
    const other = keys[1 - e.decrypted_with_key_index]!
    const wire = fromHex(v.hex)
    expect(wire[0]).toBe(e.version)
    expect(toHex(wire.subarray(1, 13))).toBe(e.nonce_hex)
    expect(toHex(wire.subarray(wire.length - 16))).toBe(e.tag_hex)
    expect(wire.length - 29).toBe(e.ciphertext_len)
    expect(toHex(decryptPayload([key], wire))).toBe(e.plaintext_hex)
    // Every key is tried, in order, whatever its position.
    expect(toHex(decryptPayload([other, key], wire))).toBe(e.plaintext_hex)
    expect(toHex(decryptPayload(keys, wire))).toBe(e.plaintext_hex)
    expect(wireError(() => decryptPayload([other], wire)).message).toBe('No installed keys could decrypt the message')
    // UDP has no additional data: with some, authentication fails.
    wireError(() => decryptPayload([key], wire, Buffer.from([1])))

    const nonce = fromHex(e.nonce_hex)
    expect(toHex(encryptPayloadWithNonce(key, fromHex(e.plaintext_hex), nonce))).toBe(v.hex)
    const { w } = walkUdp(v)
    const keyring = new KeyringImpl([key, other])
    const packed = packPacketWithNonce(w.leaves.map(encodeMessage), { compress: true, crc: w.hasCrc, keyring }, nonce)
    expect(toHex(packed)).toBe(v.hex)

    const reversed = unpackPacket(wire, { keyring: new KeyringImpl([other, key]) })
    expect(normalize(reversed.messages)).toEqual(normalize(w.leaves))
    const wrong = new KeyringImpl([Buffer.alloc(16, 0xee), Buffer.alloc(32, 0xdd)])
    expect(wireError(() => unpackPacket(wire, { keyring: wrong })).message).toBe(
      'No installed keys could decrypt the message',
    )
    // Without keys the ciphertext is not a valid message: nothing decodes.
    expect(unpackPacket(wire, {}).messages).toEqual([])
  })

  it('drops plaintext packets when keys are set', () => {
    const keyring = new KeyringImpl(keysOf(enc[0]!))
    for (const v of udp.filter((x) => !x.encrypted)) wireError(() => unpackPacket(fromHex(v.hex), { keyring }))
  })
})

function streamMessage(v: Vector): { msg: Message; body: Buffer } {
  const m = v.decoded.message
  const msg = expectedMessage(m)
  const body = msg.type === 'user' ? encodeUserStream(msg.payload) : encodeMessage(msg)
  return { msg, body }
}

describe('TCP vectors: decode and re-encode', () => {
  it.each(tcp.map((v) => [v.id, v] as const))('%s', (_id, v) => {
    const { msg, body } = streamMessage(v)
    const m = v.decoded.message
    const bytesHex = need(m.bytes_hex, 'bytes_hex')
    expect(toHex(body)).toBe(bytesHex)
    if (m.header !== undefined) expect(bytesHex.slice(2, 2 + m.header.msgpack_hex.length)).toBe(m.header.msgpack_hex)
    for (const n of m.nodes ?? []) expect(bytesHex).toContain(n.msgpack_hex)
    const c = compOf(v)
    expect(toHex(lzwDecompress(fromHex(c.fields.Buf.hex)))).toBe(c.decompressed_hex)
    expect(toHex(lzwCompress(fromHex(c.decompressed_hex)))).toBe(c.fields.Buf.hex)

    const wire = fromHex(v.hex)
    const keys = keysOf(v)
    const keyring = v.encrypted ? new KeyringImpl(keys) : undefined
    const res = readStreamMessage(wire, keyring === undefined ? {} : { keyring })
    expect(res).toBeDefined()
    expect(res!.consumed).toBe(wire.length)
    expect(normalize(res!.message)).toEqual(normalize(msg))
    // Trailing bytes are not consumed.
    const more = readStreamMessage(
      Buffer.concat([wire, Buffer.from([0, 1, 2])]),
      keyring === undefined ? {} : { keyring },
    )
    expect(more!.consumed).toBe(wire.length)

    if (!v.encrypted) {
      expect(toHex(packStream(body, { compress: true }))).toBe(v.hex)
      expect(toHex(packStream(body, { compress: false }))).toBe(bytesHex)
      return
    }
    const e = encOf(v)
    expect(e.frame_type).toBe(10)
    expect(wire.readUInt32BE(1)).toBe(e.length_field)
    expect(toHex(wire.subarray(0, 5))).toBe(e['header_hex (also the AAD)'])
    const key = keys[e.decrypted_with_key_index]!
    const other = keys[1 - e.decrypted_with_key_index]!
    const frame = wire.subarray(5)
    expect(toHex(decryptPayload([other, key], frame, wire.subarray(0, 5)))).toBe(e.plaintext_hex)
    // The AAD is the frame header: without it, authentication fails.
    wireError(() => decryptPayload([key], frame))
    const nonce = fromHex(e.nonce_hex)
    const packed = packStreamWithNonce(body, { compress: true, keyring: new KeyringImpl([key, other]) }, nonce)
    expect(toHex(packed)).toBe(v.hex)
    expect(readStreamMessage(wire, { keyring: new KeyringImpl([other, key]) })!.consumed).toBe(wire.length)
    const wrong = new KeyringImpl([Buffer.alloc(24, 7)])
    expect(wireError(() => readStreamMessage(wire, { keyring: wrong })).message).toBe(
      'No installed keys could decrypt the message',
    )
    expect(wireError(() => readStreamMessage(wire, {})).message).toBe(ERR_NO_ENCRYPTION)
  })

  it('uses the exact Go error texts of the captured errResp messages', () => {
    const texts = tcp.filter((v) => v.decoded.message.name === 'err').map((v) => v.decoded.message.fields?.Error)
    expect(texts.map(String).sort()).toEqual([ERR_NOT_ENCRYPTED, ERR_NO_ENCRYPTION].sort())
  })

  it('refuses a plaintext stream when keys are set', () => {
    const keyring = new KeyringImpl(keysOf(tcp.find((v) => v.encrypted)!))
    for (const v of tcp.filter((x) => !x.encrypted)) {
      expect(wireError(() => readStreamMessage(fromHex(v.hex), { keyring })).message).toBe(ERR_NOT_ENCRYPTED)
      // Even the first byte alone is enough to tell.
      expect(wireError(() => readStreamMessage(fromHex(v.hex).subarray(0, 1), { keyring })).message).toBe(
        ERR_NOT_ENCRYPTED,
      )
    }
  })

  it('reads the crafted encrypted request of tcp-09 only with key 0', () => {
    const v = tcp.find((x) => x.id === 'tcp-09-err-response')!
    const request = fromHex(v.notes![0]!.split(': ')[1]!)
    expect(wireError(() => readStreamMessage(request, {})).message).toBe(ERR_NO_ENCRYPTION)
    const keys = keysOf(tcp.find((x) => x.encrypted)!)
    const res = readStreamMessage(request, { keyring: new KeyringImpl([keys[1]!, keys[0]!]) })
    expect(res!.consumed).toBe(request.length)
  })
})

describe('TCP vectors: incremental reads', () => {
  it.each(tcp.map((v) => [v.id, v] as const))('%s byte by byte', (_id, v) => {
    const wire = fromHex(v.hex)
    const opts = v.encrypted ? { keyring: new KeyringImpl(keysOf(v)) } : {}
    for (let n = 0; n < wire.length; n++) expect(readStreamMessage(wire.subarray(0, n), opts)).toBeUndefined()
    expect(readStreamMessage(wire, opts)!.consumed).toBe(wire.length)
  })

  it('copies byte fields out of a plaintext receive buffer', () => {
    const v = tcp.find((x) => x.id === 'tcp-05-user-bulksync-unsolicited')!
    const body = streamMessage(v).body
    const buf = Buffer.from(body)
    const res = readStreamMessage(buf, {})!
    buf.fill(0)
    expect(toHex((res.message as { payload: Uint8Array }).payload)).toBe(v.decoded.message.user_msg_hex)
  })
})
