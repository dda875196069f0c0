/**
 * The networkdb protobuf messages (proto3, package `networkdb`; spec/cluster.md §4), built with protobufjs
 * reflection. Encoding is canonical as gogo writes it: fields in ascending order, zero/empty values left out.
 * Lamport times are exposed as bigint.
 */
import protobuf from 'protobufjs'

export const MessageType = {
  INVALID: 0,
  NETWORK_EVENT: 1,
  TABLE_EVENT: 2,
  PUSH_PULL: 3,
  BULK_SYNC: 4,
  COMPOUND: 5,
  NODE_EVENT: 6,
} as const
export type MessageType = (typeof MessageType)[keyof typeof MessageType]

export const NodeEventType = { INVALID: 0, JOIN: 1, LEAVE: 2 } as const
export const NetworkEventType = { INVALID: 0, JOIN: 1, LEAVE: 2 } as const
export const TableEventType = { INVALID: 0, CREATE: 1, UPDATE: 2, DELETE: 3 } as const

export interface GossipMessage {
  type: number
  data: Uint8Array
}
export interface NodeEventMsg {
  type: number
  ltime: bigint
  nodeName: string
}
export interface NetworkEventMsg {
  type: number
  ltime: bigint
  nodeName: string
  networkId: string
}
export interface NetworkEntryMsg {
  networkId: string
  ltime: bigint
  nodeName: string
  leaving: boolean
}
export interface NetworkPushPullMsg {
  ltime: bigint
  networks: NetworkEntryMsg[]
  nodeName: string
}
export interface TableEventMsg {
  type: number
  ltime: bigint
  nodeName: string
  networkId: string
  tableName: string
  key: string
  value: Uint8Array
  /** Seconds. */
  residualReapTime: number
}
export interface BulkSyncMsg {
  ltime: bigint
  unsolicited: boolean
  nodeName: string
  networks: string[]
  payload: Uint8Array
}
export interface CompoundMsg {
  /** Each part is a full GossipMessage encoding. */
  messages: Uint8Array[]
}

const root = protobuf.Root.fromJSON({
  nested: {
    networkdb: {
      nested: {
        GossipMessage: {
          fields: { type: { type: 'int32', id: 1 }, data: { type: 'bytes', id: 2 } },
        },
        NodeEvent: {
          fields: {
            type: { type: 'int32', id: 1 },
            lTime: { type: 'uint64', id: 2 },
            nodeName: { type: 'string', id: 3 },
          },
        },
        NetworkEvent: {
          fields: {
            type: { type: 'int32', id: 1 },
            lTime: { type: 'uint64', id: 2 },
            nodeName: { type: 'string', id: 3 },
            networkId: { type: 'string', id: 4 },
          },
        },
        NetworkEntry: {
          fields: {
            networkId: { type: 'string', id: 1 },
            lTime: { type: 'uint64', id: 2 },
            nodeName: { type: 'string', id: 3 },
            leaving: { type: 'bool', id: 4 },
          },
        },
        NetworkPushPull: {
          fields: {
            lTime: { type: 'uint64', id: 1 },
            networks: { rule: 'repeated', type: 'NetworkEntry', id: 2 },
            nodeName: { type: 'string', id: 3 },
          },
        },
        TableEvent: {
          fields: {
            type: { type: 'int32', id: 1 },
            lTime: { type: 'uint64', id: 2 },
            nodeName: { type: 'string', id: 3 },
            networkId: { type: 'string', id: 4 },
            tableName: { type: 'string', id: 5 },
            key: { type: 'string', id: 6 },
            value: { type: 'bytes', id: 7 },
            residualReapTime: { type: 'int32', id: 8 },
          },
        },
        BulkSyncMessage: {
          fields: {
            lTime: { type: 'uint64', id: 1 },
            unsolicited: { type: 'bool', id: 2 },
            nodeName: { type: 'string', id: 3 },
            networks: { rule: 'repeated', type: 'string', id: 4 },
            payload: { type: 'bytes', id: 5 },
          },
        },
        CompoundMessage: {
          fields: { messages: { rule: 'repeated', type: 'SimpleMessage', id: 1 } },
          nested: { SimpleMessage: { fields: { Payload: { type: 'bytes', id: 1 } } } },
        },
      },
    },
  },
})

const T = {
  GossipMessage: root.lookupType('networkdb.GossipMessage'),
  NodeEvent: root.lookupType('networkdb.NodeEvent'),
  NetworkEvent: root.lookupType('networkdb.NetworkEvent'),
  NetworkPushPull: root.lookupType('networkdb.NetworkPushPull'),
  TableEvent: root.lookupType('networkdb.TableEvent'),
  BulkSyncMessage: root.lookupType('networkdb.BulkSyncMessage'),
  CompoundMessage: root.lookupType('networkdb.CompoundMessage'),
}

const MAX_U64 = (1n << 64n) - 1n

/** protobufjs takes any `{ low, high }` object for a 64-bit field (no Long library needed). */
function toLong(v: bigint): { low: number; high: number; unsigned: boolean } | number {
  if (v < 0n || v > MAX_U64) throw new RangeError(`uint64 out of range: ${v}`)
  if (v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v)
  return { low: Number(v & 0xffffffffn) | 0, high: Number(v >> 32n) | 0, unsigned: true }
}

/**
 * protobufjs without the `long` package decodes uint64 to a JS number, which is exact only up to 2^53.
 * Such values never occur in practice (they are Lamport times), but when one does, the field is read
 * again, exactly, from the wire.
 */
function fromLong(v: unknown, exact?: () => bigint | undefined): bigint {
  if (v === undefined || v === null) return 0n
  if (typeof v === 'number') {
    if (Number.isSafeInteger(v)) return BigInt(v)
    return exact?.() ?? BigInt(Math.trunc(v))
  }
  if (typeof v === 'bigint') return v
  const l = v as { low: number; high: number }
  return (BigInt(l.high >>> 0) << 32n) | BigInt(l.low >>> 0)
}

/** Only non-zero, non-empty fields: the canonical proto3 form gogo writes. */
function canonical(obj: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {}
  for (const [k, v] of Object.entries(obj)) {
    if (v === undefined || v === null || v === 0 || v === 0n || v === '' || v === false) continue
    if (v instanceof Uint8Array && v.length === 0) continue
    if (Array.isArray(v) && v.length === 0) continue
    out[k] = typeof v === 'bigint' ? toLong(v) : v
  }
  return out
}

function readVarint64(r: protobuf.Reader): bigint {
  let result = 0n
  let shift = 0n
  for (;;) {
    if (r.pos >= r.len) throw new RangeError('truncated varint')
    const b = r.buf[r.pos++] as number
    result |= BigInt(b & 0x7f) << shift
    if (b < 0x80) return BigInt.asUintN(64, result)
    shift += 7n
    if (shift > 63n) throw new RangeError('varint too long')
  }
}

/** The last varint value of `field` in `buf`, read as an exact uint64. */
function readU64Field(buf: Uint8Array, field: number): bigint | undefined {
  const r = protobuf.Reader.create(buf)
  let out: bigint | undefined
  while (r.pos < r.len) {
    const tag = r.uint32()
    if (tag >>> 3 === field && (tag & 7) === 0) out = readVarint64(r)
    else r.skipType(tag & 7)
  }
  return out
}

/** The raw bytes of each occurrence of length-delimited `field` in `buf`. */
function readBytesFields(buf: Uint8Array, field: number): Uint8Array[] {
  const r = protobuf.Reader.create(buf)
  const out: Uint8Array[] = []
  while (r.pos < r.len) {
    const tag = r.uint32()
    if (tag >>> 3 === field && (tag & 7) === 2) out.push(r.bytes())
    else r.skipType(tag & 7)
  }
  return out
}

const EMPTY = new Uint8Array(0)

function bytes(v: unknown): Uint8Array {
  return v instanceof Uint8Array ? v : EMPTY
}
function str(v: unknown): string {
  return typeof v === 'string' ? v : ''
}
function num(v: unknown): number {
  return typeof v === 'number' ? v : 0
}

function enc(type: protobuf.Type, obj: Record<string, unknown>): Uint8Array {
  return type.encode(canonical(obj)).finish()
}

function dec(type: protobuf.Type, buf: Uint8Array): Record<string, unknown> {
  return type.decode(buf) as unknown as Record<string, unknown>
}

export function encodeGossip(type: number, data: Uint8Array): Uint8Array {
  return enc(T.GossipMessage, { type, data })
}
export function decodeGossip(buf: Uint8Array): GossipMessage {
  const m = dec(T.GossipMessage, buf)
  return { type: num(m.type), data: bytes(m.data) }
}

export function encodeNodeEvent(e: NodeEventMsg): Uint8Array {
  return enc(T.NodeEvent, { type: e.type, lTime: e.ltime, nodeName: e.nodeName })
}
export function decodeNodeEvent(buf: Uint8Array): NodeEventMsg {
  const m = dec(T.NodeEvent, buf)
  return { type: num(m.type), ltime: fromLong(m.lTime, () => readU64Field(buf, 2)), nodeName: str(m.nodeName) }
}

export function encodeNetworkEvent(e: NetworkEventMsg): Uint8Array {
  return enc(T.NetworkEvent, { type: e.type, lTime: e.ltime, nodeName: e.nodeName, networkId: e.networkId })
}
export function decodeNetworkEvent(buf: Uint8Array): NetworkEventMsg {
  const m = dec(T.NetworkEvent, buf)
  return {
    type: num(m.type),
    ltime: fromLong(m.lTime, () => readU64Field(buf, 2)),
    nodeName: str(m.nodeName),
    networkId: str(m.networkId),
  }
}

export function encodeNetworkPushPull(e: NetworkPushPullMsg): Uint8Array {
  return enc(T.NetworkPushPull, {
    lTime: e.ltime,
    networks: e.networks.map((n) =>
      canonical({ networkId: n.networkId, lTime: n.ltime, nodeName: n.nodeName, leaving: n.leaving }),
    ),
    nodeName: e.nodeName,
  })
}
export function decodeNetworkPushPull(buf: Uint8Array): NetworkPushPullMsg {
  const m = dec(T.NetworkPushPull, buf)
  const networks = (Array.isArray(m.networks) ? m.networks : []) as Record<string, unknown>[]
  return {
    ltime: fromLong(m.lTime, () => readU64Field(buf, 1)),
    networks: networks.map((n, i) => ({
      networkId: str(n.networkId),
      ltime: fromLong(n.lTime, () => {
        const sub = readBytesFields(buf, 2)[i]
        return sub === undefined ? undefined : readU64Field(sub, 2)
      }),
      nodeName: str(n.nodeName),
      leaving: n.leaving === true,
    })),
    nodeName: str(m.nodeName),
  }
}

export function encodeTableEvent(e: TableEventMsg): Uint8Array {
  return enc(T.TableEvent, {
    type: e.type,
    lTime: e.ltime,
    nodeName: e.nodeName,
    networkId: e.networkId,
    tableName: e.tableName,
    key: e.key,
    value: e.value,
    residualReapTime: e.residualReapTime,
  })
}
export function decodeTableEvent(buf: Uint8Array): TableEventMsg {
  const m = dec(T.TableEvent, buf)
  return {
    type: num(m.type),
    ltime: fromLong(m.lTime, () => readU64Field(buf, 2)),
    nodeName: str(m.nodeName),
    networkId: str(m.networkId),
    tableName: str(m.tableName),
    key: str(m.key),
    value: bytes(m.value),
    residualReapTime: num(m.residualReapTime),
  }
}

export function encodeBulkSync(e: BulkSyncMsg): Uint8Array {
  return enc(T.BulkSyncMessage, {
    lTime: e.ltime,
    unsolicited: e.unsolicited,
    nodeName: e.nodeName,
    networks: e.networks,
    payload: e.payload,
  })
}
export function decodeBulkSync(buf: Uint8Array): BulkSyncMsg {
  const m = dec(T.BulkSyncMessage, buf)
  return {
    ltime: fromLong(m.lTime, () => readU64Field(buf, 1)),
    unsolicited: m.unsolicited === true,
    nodeName: str(m.nodeName),
    networks: (Array.isArray(m.networks) ? m.networks : []) as string[],
    payload: bytes(m.payload),
  }
}

export function encodeCompound(parts: readonly Uint8Array[]): Uint8Array {
  // An empty part would be written as an empty SimpleMessage (0a 00), exactly as gogo does for a nil Payload.
  return enc(T.CompoundMessage, { messages: parts.map((p) => canonical({ Payload: p })) })
}
export function decodeCompound(buf: Uint8Array): CompoundMsg {
  const m = dec(T.CompoundMessage, buf)
  const messages = (Array.isArray(m.messages) ? m.messages : []) as Record<string, unknown>[]
  return { messages: messages.map((s) => bytes(s.Payload)) }
}

/** Bytes a part adds to a CompoundMessage: a SimpleMessage (tag, length) holding Payload (tag, length, bytes). */
export function compoundPartSize(len: number): number {
  const inner = 1 + varintSize(len) + len
  return 1 + varintSize(inner) + inner
}

export function varintSize(n: number): number {
  let size = 1
  while (n >= 0x80) {
    n = Math.floor(n / 128)
    size++
  }
  return size
}

/** `GossipMessage{COMPOUND, CompoundMessage{parts}}` as handed to memberlist. */
export function makeCompound(parts: readonly Uint8Array[]): Uint8Array {
  return encodeGossip(MessageType.COMPOUND, encodeCompound(parts))
}

/** Size of `makeCompound(parts)` given the sum of `compoundPartSize` over the parts. */
export function compoundMessageSize(partsBytes: number): number {
  if (partsBytes === 0) return 2
  return 2 + 1 + varintSize(partsBytes) + partsBytes
}
