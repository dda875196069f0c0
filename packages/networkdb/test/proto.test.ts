import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import {
  MessageType,
  decodeBulkSync,
  decodeCompound,
  decodeGossip,
  decodeNetworkEvent,
  decodeNetworkPushPull,
  decodeNodeEvent,
  decodeTableEvent,
  encodeBulkSync,
  encodeCompound,
  encodeGossip,
  encodeNetworkEvent,
  encodeNetworkPushPull,
  encodeNodeEvent,
  encodeTableEvent,
} from '../src/proto.js'
import type { TableEventMsg } from '../src/proto.js'

const here = dirname(fileURLToPath(import.meta.url))
const VECTORS = join(here, '../../../../shared/vectors/networkdb')
if (!existsSync(VECTORS)) throw new Error(`networkdb vectors missing: expected them at ${VECTORS}`)

interface Vector {
  id: string
  hex: string
  decoded: Record<string, unknown>
}

const files = readdirSync(VECTORS).filter((f) => f.endsWith('.json'))
const vectors: Vector[] = files.map((f) => JSON.parse(readFileSync(join(VECTORS, f), 'utf8')) as Vector)

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')
const unhex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'))

const TABLE_TYPES: Record<string, number> = { CREATE: 1, UPDATE: 2, DELETE: 3 }
const EVENT_TYPES: Record<string, number> = { JOIN: 1, LEAVE: 2 }

interface RecordedTableEvent {
  type: string
  l_time: number
  node_name: string
  network_id: string
  table_name: string
  key: string
  value_hex?: string
  residual_reap_time?: number
}

function expectTableEvent(got: TableEventMsg, want: RecordedTableEvent): void {
  expect(got.type).toBe(TABLE_TYPES[want.type])
  expect(got.ltime).toBe(BigInt(want.l_time))
  expect(got.nodeName).toBe(want.node_name)
  expect(got.networkId).toBe(want.network_id)
  expect(got.tableName).toBe(want.table_name)
  expect(got.key).toBe(want.key)
  if (want.value_hex !== undefined) expect(hex(got.value)).toBe(want.value_hex)
  expect(got.residualReapTime).toBe(want.residual_reap_time ?? 0)
}

/** Decodes a GossipMessage{TABLE_EVENT} part and checks it against the recorded JSON; returns the re-encoding. */
function checkTablePart(part: Uint8Array, want: { data: RecordedTableEvent; data_hex?: string }): Uint8Array {
  const g = decodeGossip(part)
  expect(g.type).toBe(MessageType.TABLE_EVENT)
  if (want.data_hex !== undefined) expect(hex(g.data)).toBe(want.data_hex)
  const te = decodeTableEvent(g.data)
  expectTableEvent(te, want.data)
  return encodeGossip(MessageType.TABLE_EVENT, encodeTableEvent(te))
}

function checkCompound(
  data: Uint8Array,
  recorded: { messages: { data: RecordedTableEvent; data_hex?: string }[] },
): Uint8Array {
  const c = decodeCompound(data)
  expect(c.messages).toHaveLength(recorded.messages.length)
  const parts = c.messages.map((p, i) => checkTablePart(p, recorded.messages[i] as { data: RecordedTableEvent }))
  return encodeCompound(parts)
}

describe('networkdb golden vectors', () => {
  it('are all present', () => {
    expect(vectors.length).toBeGreaterThanOrEqual(16)
  })

  for (const v of vectors) {
    it(`${v.id}: decodes to the recorded values and re-encodes byte for byte`, () => {
      const bytes = unhex(v.hex)
      const g = decodeGossip(bytes)
      const gm = v.decoded.GossipMessage as { type_number: number; data_hex?: string }
      expect(g.type).toBe(gm.type_number)
      let inner: Uint8Array
      switch (g.type) {
        case MessageType.TABLE_EVENT: {
          const te = decodeTableEvent(g.data)
          expectTableEvent(te, v.decoded.TableEvent as RecordedTableEvent)
          inner = encodeTableEvent(te)
          break
        }
        case MessageType.NODE_EVENT: {
          const ne = decodeNodeEvent(g.data)
          const want = v.decoded.NodeEvent as { type: string; l_time: number; node_name: string }
          expect(ne).toEqual({ type: EVENT_TYPES[want.type], ltime: BigInt(want.l_time), nodeName: want.node_name })
          inner = encodeNodeEvent(ne)
          break
        }
        case MessageType.NETWORK_EVENT: {
          const ne = decodeNetworkEvent(g.data)
          const want = v.decoded.NetworkEvent as { type: string; l_time: number; node_name: string; network_id: string }
          expect(ne).toEqual({
            type: EVENT_TYPES[want.type],
            ltime: BigInt(want.l_time),
            nodeName: want.node_name,
            networkId: want.network_id,
          })
          inner = encodeNetworkEvent(ne)
          break
        }
        case MessageType.PUSH_PULL: {
          const pp = decodeNetworkPushPull(g.data)
          const want = v.decoded.NetworkPushPull as {
            l_time: number
            node_name: string
            networks?: { network_id: string; l_time: number; node_name: string; leaving?: boolean }[]
          }
          expect(pp).toEqual({
            ltime: BigInt(want.l_time),
            nodeName: want.node_name,
            networks: (want.networks ?? []).map((n) => ({
              networkId: n.network_id,
              ltime: BigInt(n.l_time),
              nodeName: n.node_name,
              leaving: n.leaving ?? false,
            })),
          })
          inner = encodeNetworkPushPull(pp)
          break
        }
        case MessageType.COMPOUND: {
          inner = checkCompound(g.data, v.decoded.CompoundMessage as { messages: { data: RecordedTableEvent }[] })
          break
        }
        case MessageType.BULK_SYNC: {
          const bs = decodeBulkSync(g.data)
          const want = v.decoded.BulkSyncMessage as {
            l_time?: number
            unsolicited?: boolean
            node_name: string
            networks: string[]
            payload_hex?: string
            payload: { type: string; data: { messages: { data: RecordedTableEvent }[] } }
          }
          expect(bs.ltime).toBe(BigInt(want.l_time ?? 0))
          expect(bs.unsolicited).toBe(want.unsolicited ?? false)
          expect(bs.nodeName).toBe(want.node_name)
          expect(bs.networks).toEqual(want.networks)
          if (want.payload_hex !== undefined) expect(hex(bs.payload)).toBe(want.payload_hex)
          const pg = decodeGossip(bs.payload)
          expect(pg.type).toBe(MessageType.COMPOUND)
          const payload = encodeGossip(MessageType.COMPOUND, checkCompound(pg.data, want.payload.data))
          expect(hex(payload)).toBe(hex(bs.payload))
          inner = encodeBulkSync({ ...bs, payload })
          break
        }
        default:
          throw new Error(`vector ${v.id}: unexpected type ${g.type}`)
      }
      if (gm.data_hex !== undefined) expect(hex(inner)).toBe(gm.data_hex)
      expect(hex(encodeGossip(g.type, inner))).toBe(v.hex)
    })
  }
})

describe('proto3 rules', () => {
  it('skips an unknown field 99 in a TableEvent', () => {
    const base = unhex('080110011a056e6f64653122046e6574312a0474626c3132046b6579313a0976616c75652d6f6e65')
    // field 99, wire type 2 (tag varint 0x9a 0x06), 3 bytes; and field 99 as a varint (0x98 0x06)
    const extra = unhex('9a0603616263' + '980601')
    const withUnknown = new Uint8Array([...base, ...extra])
    const te = decodeTableEvent(withUnknown)
    expect(te.key).toBe('key1')
    expect(Buffer.from(te.value).toString()).toBe('value-one')
    expect(hex(encodeTableEvent(te))).toBe(hex(base))
  })

  it('leaves zero and empty fields out', () => {
    const te = encodeTableEvent({
      type: 1,
      ltime: 0n,
      nodeName: '',
      networkId: 'n',
      tableName: '',
      key: 'k',
      value: new Uint8Array(0),
      residualReapTime: 0,
    })
    expect(hex(te)).toBe('0801' + '22016e' + '32016b')
    expect(hex(encodeGossip(MessageType.COMPOUND, new Uint8Array(0)))).toBe('0805')
    expect(
      hex(encodeBulkSync({ ltime: 0n, unsolicited: false, nodeName: 'a', networks: [], payload: new Uint8Array(0) })),
    ).toBe('1a0161')
  })

  it('round-trips uint64 Lamport times beyond 2^53', () => {
    const big = (1n << 64n) - 1n
    const ne = decodeNodeEvent(encodeNodeEvent({ type: 1, ltime: big, nodeName: 'x' }))
    expect(ne.ltime).toBe(big)
    const mid = (1n << 60n) + 12345n
    expect(decodeNodeEvent(encodeNodeEvent({ type: 2, ltime: mid, nodeName: 'x' })).ltime).toBe(mid)
  })

  it('throws on truncated input (callers drop it)', () => {
    expect(() => decodeTableEvent(unhex('0a05'))).toThrow()
  })
})
