import { describe, expect, it } from 'vitest'
import { buildBulkSyncMessages } from '../src/bulk-sync.js'
import {
  MessageType,
  decodeBulkSync,
  decodeCompound,
  decodeGossip,
  encodeGossip,
  encodeTableEvent,
} from '../src/proto.js'

const part = (i: number): Uint8Array =>
  encodeGossip(
    MessageType.TABLE_EVENT,
    encodeTableEvent({
      type: 1,
      ltime: BigInt(i + 1),
      nodeName: 'node1',
      networkId: 'net1',
      tableName: 'endpoint_table',
      key: `key-${i}`,
      value: new Uint8Array(100).fill(0x61),
      residualReapTime: 0,
    }),
  )

describe('bulk sync chunking', () => {
  it('one message with an empty compound when there is nothing to send', () => {
    const [only, ...rest] = buildBulkSyncMessages(
      { ltime: 8n, nodeName: 'node2', networks: ['net1'], unsolicited: true },
      [],
      1 << 20,
    )
    expect(rest).toHaveLength(0)
    // the captured Go message (vector bulk-sync-unsolicited-empty)
    expect(Buffer.from(only as Uint8Array).toString('hex')).toBe('08041215080810011a056e6f64653222046e6574312a020805')
  })

  it('splits into payloads within the limit; only the last carries unsolicited', () => {
    const parts = Array.from({ length: 1000 }, (_, i) => part(i))
    const msgs = buildBulkSyncMessages(
      { ltime: 5n, nodeName: 'node1', networks: ['net1'], unsolicited: true },
      parts,
      16 * 1024,
    )
    expect(msgs.length).toBeGreaterThan(5)
    const decoded = msgs.map((m) => {
      const g = decodeGossip(m)
      expect(g.type).toBe(MessageType.BULK_SYNC)
      return decodeBulkSync(g.data)
    })
    expect(decoded.map((d) => d.unsolicited)).toEqual([...Array(msgs.length - 1).fill(false), true])
    expect(decoded.map((d) => d.nodeName)).toEqual([...Array(msgs.length - 1).fill(''), 'node1'])
    let total = 0
    for (const d of decoded) {
      expect(d.payload.length).toBeLessThanOrEqual(16 * 1024)
      expect(d.networks).toEqual(['net1'])
      expect(d.ltime).toBe(5n)
      const c = decodeCompound(decodeGossip(d.payload).data)
      total += c.messages.length
    }
    expect(total).toBe(1000)
  })

  it('a solicited reply is solicited in every chunk', () => {
    const parts = Array.from({ length: 300 }, (_, i) => part(i))
    const msgs = buildBulkSyncMessages(
      { ltime: 5n, nodeName: 'n', networks: ['net1'], unsolicited: false },
      parts,
      4096,
    )
    expect(msgs.length).toBeGreaterThan(1)
    for (const m of msgs) expect(decodeBulkSync(decodeGossip(m).data).unsolicited).toBe(false)
  })
})
