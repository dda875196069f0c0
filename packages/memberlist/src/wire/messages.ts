/** memberlist messages (spec §2, §4, §6.2, §6.3): type byte + one msgpack struct, encoded as Go does. */
import { WireError } from './errors.js'
import { Kind, MsgpackReader, MsgpackWriter, defineStruct, zeroValues } from './msgpack.js'
import type { StructDef } from './msgpack.js'

export const MessageType = {
  ping: 0,
  indirectPing: 1,
  ack: 2,
  suspect: 3,
  alive: 4,
  dead: 5,
  pushPull: 6,
  compound: 7,
  user: 8,
  compress: 9,
  encrypt: 10,
  nack: 11,
  hasCrc: 12,
  err: 13,
} as const

export type MessageTypeName = keyof typeof MessageType

export interface PushNodeState {
  name: string
  addr: Uint8Array
  port: number
  meta: Uint8Array | null
  incarnation: number
  /** 0 alive, 1 suspect, 2 dead. */
  state: number
  vsn: Uint8Array
}

/** Decoded (leaf) messages. */
export type Message =
  | { type: 'ping'; seqNo: number; node: string }
  | { type: 'indirectPing'; seqNo: number; target: Uint8Array; port: number; node: string; nack: boolean }
  | { type: 'ack'; seqNo: number; payload: Uint8Array | null }
  | { type: 'nack'; seqNo: number }
  | { type: 'err'; error: string }
  | { type: 'suspect'; incarnation: number; node: string; from: string }
  | {
      type: 'alive'
      incarnation: number
      node: string
      addr: Uint8Array
      port: number
      meta: Uint8Array | null
      vsn: Uint8Array
    }
  | { type: 'dead'; incarnation: number; node: string; from: string }
  | { type: 'user'; payload: Uint8Array }
  | { type: 'pushPull'; join: boolean; nodes: PushNodeState[]; userState: Uint8Array }

// Go declaration order (used for the array form); the wire order is sorted by name.
const f = (name: string, kind: Kind) => ({ name, kind })
const PING = defineStruct([f('SeqNo', Kind.U32), f('Node', Kind.Str)])
const INDIRECT = defineStruct([
  f('SeqNo', Kind.U32),
  f('Target', Kind.Bytes),
  f('Port', Kind.U16),
  f('Node', Kind.Str),
  f('Nack', Kind.Bool),
])
const ACK = defineStruct([f('SeqNo', Kind.U32), f('Payload', Kind.Bytes)])
const NACK = defineStruct([f('SeqNo', Kind.U32)])
const ERR = defineStruct([f('Error', Kind.Str)])
const SUSPECT = defineStruct([f('Incarnation', Kind.U32), f('Node', Kind.Str), f('From', Kind.Str)])
const ALIVE = defineStruct([
  f('Incarnation', Kind.U32),
  f('Node', Kind.Str),
  f('Addr', Kind.Bytes),
  f('Port', Kind.U16),
  f('Meta', Kind.Bytes),
  f('Vsn', Kind.Bytes),
])
const DEAD = defineStruct([f('Incarnation', Kind.U32), f('Node', Kind.Str), f('From', Kind.Str)])
const PUSH_PULL_HEADER = defineStruct([f('Nodes', Kind.Int), f('UserStateLen', Kind.Int), f('Join', Kind.Bool)])
const PUSH_NODE_STATE = defineStruct([
  f('Name', Kind.Str),
  f('Addr', Kind.Bytes),
  f('Port', Kind.U16),
  f('Meta', Kind.Bytes),
  f('Incarnation', Kind.U32),
  f('State', Kind.Int),
  f('Vsn', Kind.Bytes),
])
const USER_MSG_HEADER = defineStruct([f('UserMsgLen', Kind.Int)])
const COMPRESS = defineStruct([f('Algo', Kind.U8), f('Buf', Kind.Bytes)])

/** Largest stream message (encrypt frame, user message, user state, decompressed data): 10 MiB. */
export const MAX_STREAM_BYTES = 10 * 1024 * 1024

const EMPTY = new Uint8Array(0)

/** Writes the struct's keys and values; `values` are in wire order. */
function writeStruct(w: MsgpackWriter, def: StructDef, values: readonly unknown[]): void {
  w.mapHeader(def.fields.length)
  for (let i = 0; i < def.fields.length; i++) {
    w.raw(def.keys[i]!)
    const v = values[i]
    switch (def.fields[i]!.kind) {
      case Kind.Str:
        w.str(v as string)
        break
      case Kind.Bytes:
        w.bytes(v as Uint8Array | null)
        break
      case Kind.Bool:
        w.bool(v as boolean)
        break
      default: {
        const max = MAX_OF[def.fields[i]!.kind]!
        if (typeof v !== 'number' || v > max) {
          throw new WireError(`${def.fields[i]!.name} ${String(v)} does not fit its field (max ${max})`)
        }
        w.uint(v)
      }
    }
  }
}

const MAX_OF: Partial<Record<Kind, number>> = {
  [Kind.U8]: 0xff,
  [Kind.U16]: 0xffff,
  [Kind.U32]: 0xffffffff,
  [Kind.Int]: Number.MAX_SAFE_INTEGER,
}

function sizeHint(msg: Message): number {
  switch (msg.type) {
    case 'user':
      return msg.payload.length + 1
    case 'pushPull':
      return 64 + msg.userState.length + msg.nodes.length * 96
    case 'alive':
      return 96 + msg.node.length * 3 + (msg.meta?.length ?? 0)
    default:
      return 96
  }
}

/**
 * Type byte + one msgpack value, exactly as Go encodes it. 'user' is the UDP form (08 + raw payload);
 * 'pushPull' is the whole stream body (header, node states, user state).
 */
export function encodeMessage(msg: Message): Buffer {
  const w = new MsgpackWriter(sizeHint(msg))
  w.byte(MessageType[msg.type])
  switch (msg.type) {
    case 'ping':
      writeStruct(w, PING, [msg.node, msg.seqNo])
      break
    case 'indirectPing':
      writeStruct(w, INDIRECT, [msg.nack, msg.node, msg.port, msg.seqNo, msg.target])
      break
    case 'ack':
      writeStruct(w, ACK, [msg.payload, msg.seqNo])
      break
    case 'nack':
      writeStruct(w, NACK, [msg.seqNo])
      break
    case 'err':
      writeStruct(w, ERR, [msg.error])
      break
    case 'suspect':
      writeStruct(w, SUSPECT, [msg.from, msg.incarnation, msg.node])
      break
    case 'alive':
      writeStruct(w, ALIVE, [msg.addr, msg.incarnation, msg.meta, msg.node, msg.port, msg.vsn])
      break
    case 'dead':
      writeStruct(w, DEAD, [msg.from, msg.incarnation, msg.node])
      break
    case 'user':
      w.raw(msg.payload)
      break
    case 'pushPull':
      writeStruct(w, PUSH_PULL_HEADER, [msg.join, msg.nodes.length, msg.userState.length])
      for (const n of msg.nodes) {
        writeStruct(w, PUSH_NODE_STATE, [n.addr, n.incarnation, n.meta, n.name, n.port, n.state, n.vsn])
      }
      w.raw(msg.userState)
      break
    default:
      throw new WireError(`cannot encode message type ${String((msg as { type: unknown }).type)}`)
  }
  return w.finish()
}

/** The stream form of a user message: 08, msgpack {UserMsgLen}, payload. */
export function encodeUserStream(payload: Uint8Array): Buffer {
  const w = new MsgpackWriter(payload.length + 20)
  w.byte(MessageType.user)
  writeStruct(w, USER_MSG_HEADER, [payload.length])
  w.raw(payload)
  return w.finish()
}

/** 09 + msgpack {Algo: 0, Buf: lzw}: the compress wrapper around already-compressed bytes. */
export function encodeCompressWrapper(lzw: Uint8Array): Buffer {
  const w = new MsgpackWriter(lzw.length + 16)
  w.byte(MessageType.compress)
  writeStruct(w, COMPRESS, [0, lzw])
  return w.finish()
}

/** Reads the msgpack `compress` value after the 09 byte; returns the LZW bytes (Algo must be 0). */
export function readCompress(r: MsgpackReader): Uint8Array {
  const v = zeroValues(COMPRESS)
  r.struct(COMPRESS, v)
  if (v[0] !== 0) throw new WireError(`Cannot decompress unknown algorithm ${String(v[0])}`)
  return (v[1] as Uint8Array | null) ?? EMPTY
}

function bytesOrEmpty(v: unknown): Uint8Array {
  return (v as Uint8Array | null) ?? EMPTY
}

/**
 * Decodes the body of a struct message of type `type` (the type byte already consumed). On a stream,
 * 'user' is header + payload and 'pushPull' is available; on a packet, 'user' is the rest of the input.
 * Returns undefined for types that are not leaf messages.
 */
export function readBody(type: number, r: MsgpackReader, stream: boolean): Message | undefined {
  switch (type) {
    case MessageType.ping: {
      const v = zeroValues(PING)
      r.struct(PING, v)
      return { type: 'ping', seqNo: v[1] as number, node: v[0] as string }
    }
    case MessageType.indirectPing: {
      const v = zeroValues(INDIRECT)
      r.struct(INDIRECT, v)
      return {
        type: 'indirectPing',
        seqNo: v[3] as number,
        target: bytesOrEmpty(v[4]),
        port: v[2] as number,
        node: v[1] as string,
        nack: v[0] as boolean,
      }
    }
    case MessageType.ack: {
      const v = zeroValues(ACK)
      r.struct(ACK, v)
      return { type: 'ack', seqNo: v[1] as number, payload: v[0] as Uint8Array | null }
    }
    case MessageType.nack: {
      const v = zeroValues(NACK)
      r.struct(NACK, v)
      return { type: 'nack', seqNo: v[0] as number }
    }
    case MessageType.err: {
      const v = zeroValues(ERR)
      r.struct(ERR, v)
      return { type: 'err', error: v[0] as string }
    }
    case MessageType.suspect:
    case MessageType.dead: {
      const def = type === MessageType.suspect ? SUSPECT : DEAD
      const v = zeroValues(def)
      r.struct(def, v)
      const t = type === MessageType.suspect ? 'suspect' : 'dead'
      return { type: t, incarnation: v[1] as number, node: v[2] as string, from: v[0] as string }
    }
    case MessageType.alive: {
      const v = zeroValues(ALIVE)
      r.struct(ALIVE, v)
      return {
        type: 'alive',
        incarnation: v[1] as number,
        node: v[3] as string,
        addr: bytesOrEmpty(v[0]),
        port: v[4] as number,
        meta: v[2] as Uint8Array | null,
        vsn: bytesOrEmpty(v[5]),
      }
    }
    case MessageType.user: {
      if (!stream) return { type: 'user', payload: r.take(r.end - r.pos) }
      const v = zeroValues(USER_MSG_HEADER)
      r.struct(USER_MSG_HEADER, v)
      const len = v[0] as number
      if (len > r.maxLength) {
        throw new WireError(`user message of ${len} bytes is larger than limit`)
      }
      return { type: 'user', payload: r.take(len) }
    }
    case MessageType.pushPull:
      return stream ? readPushPull(r) : undefined
    default:
      return undefined
  }
}

function readPushPull(r: MsgpackReader): Message {
  const h = zeroValues(PUSH_PULL_HEADER)
  r.struct(PUSH_PULL_HEADER, h)
  const count = h[1] as number
  const userStateLen = h[2] as number
  // Every node state takes at least one byte, so a larger count can never be satisfied.
  if (count > MAX_STREAM_BYTES) throw new WireError(`push-pull header announces ${count} nodes`)
  if (userStateLen > MAX_STREAM_BYTES) {
    throw new WireError(`Remote node state is larger than limit (${userStateLen})`)
  }
  const nodes: PushNodeState[] = []
  for (let i = 0; i < count; i++) {
    const v = zeroValues(PUSH_NODE_STATE)
    r.struct(PUSH_NODE_STATE, v)
    nodes.push({
      name: v[3] as string,
      addr: bytesOrEmpty(v[0]),
      port: v[4] as number,
      meta: v[2] as Uint8Array | null,
      incarnation: v[1] as number,
      state: v[5] as number,
      vsn: bytesOrEmpty(v[6]),
    })
  }
  return { type: 'pushPull', join: h[0] as boolean, nodes, userState: r.take(userStateLen) }
}

/**
 * Decodes one complete leaf message (type byte first) of the kinds a UDP packet carries, plus 'err' and
 * 'pushPull' (stream bodies already read in full). Byte fields are views into `buf`. Throws WireError.
 */
export function decodeMessage(buf: Uint8Array): Message {
  if (buf.length === 0) throw new WireError('empty message')
  const r = new MsgpackReader(buf, 1)
  const msg = readBody(buf[0]!, r, buf[0] === MessageType.pushPull)
  if (msg === undefined) throw new WireError(`msg type (${buf[0]}) not supported`)
  return msg
}

/** 07, count, uint16 BE lengths, parts. Refuses more than 127 parts, empty parts and parts > 65535 bytes. */
export function encodeCompound(parts: readonly Uint8Array[]): Buffer {
  if (parts.length === 0) throw new WireError('a compound message needs at least one part')
  if (parts.length > 127) throw new WireError(`a compound message holds at most 127 parts, got ${parts.length}`)
  let total = 2 + 2 * parts.length
  for (const p of parts) {
    if (p.length === 0) throw new WireError('empty compound part')
    if (p.length > 0xffff) throw new WireError(`compound part of ${p.length} bytes exceeds 65535`)
    total += p.length
  }
  const out = Buffer.allocUnsafe(total)
  out[0] = MessageType.compound
  out[1] = parts.length
  let at = 2 + 2 * parts.length
  for (let i = 0; i < parts.length; i++) {
    const p = parts[i]!
    out.writeUInt16BE(p.length, 2 + 2 * i)
    out.set(p, at)
    at += p.length
  }
  return out
}

/**
 * Splits a compound message (type byte first). A part whose declared length runs past the end is
 * dropped with every later one (`truncated` counts them); earlier parts are kept. Trailing bytes are
 * ignored. Throws WireError when the header itself is cut short.
 */
export function decodeCompound(buf: Uint8Array): { parts: Uint8Array[]; truncated: number } {
  if (buf.length < 2) throw new WireError('missing compound length byte')
  const n = buf[1]!
  let at = 2 + 2 * n
  if (buf.length < at) throw new WireError('truncated len slice')
  const parts: Uint8Array[] = []
  for (let i = 0; i < n; i++) {
    const len = (buf[2 + 2 * i]! << 8) | buf[3 + 2 * i]!
    if (buf.length - at < len) return { parts, truncated: n - i }
    parts.push(buf.subarray(at, at + len))
    at += len
  }
  return { parts, truncated: 0 }
}
