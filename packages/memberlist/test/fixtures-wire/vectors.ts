/** Loads the captured memberlist vectors (/work/shared/vectors/memberlist) and maps them to wire types. */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Message, PushNodeState } from '../../src/wire/index.js'

export const VECTOR_DIR = fileURLToPath(new URL('../../../../../shared/vectors/memberlist', import.meta.url))

type Json = any // eslint-disable-line @typescript-eslint/no-explicit-any

export interface Vector {
  id: string
  file: string
  transport: 'udp' | 'tcp'
  encrypted: boolean
  hex: string
  length: number
  decoded: Json
  keys?: { index: number; hex: string }[]
  notes?: string[]
}

export interface LzwCase {
  name: string
  input_hex: string
  lzw_hex: string
  input_len: number
  lzw_len: number
}

function requireDir(): void {
  if (!existsSync(VECTOR_DIR)) {
    throw new Error(`memberlist vectors not found at ${VECTOR_DIR}: the wire tests need /work/shared/vectors/memberlist`)
  }
}

export function loadVectors(): Vector[] {
  requireDir()
  const files = readdirSync(VECTOR_DIR).filter((f) => f.endsWith('.json') && f !== 'lzw-go-reference.json')
  if (files.length === 0) throw new Error(`no vector JSON files in ${VECTOR_DIR}`)
  return files.sort().map((file) => ({ ...JSON.parse(readFileSync(join(VECTOR_DIR, file), 'utf8')), file }))
}

export function loadLzwCases(): LzwCase[] {
  requireDir()
  const doc = JSON.parse(readFileSync(join(VECTOR_DIR, 'lzw-go-reference.json'), 'utf8'))
  return doc.cases as LzwCase[]
}

export const fromHex = (h: string): Buffer => Buffer.from(h, 'hex')
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** `{hex}` → bytes, `null` → null (msgpack nil). */
export function bytesField(v: Json): Uint8Array | null {
  if (v === null) return null
  if (typeof v !== 'object' || typeof v.hex !== 'string') throw new Error(`not a byte field: ${JSON.stringify(v)}`)
  return fromHex(v.hex)
}

function nonNull(v: Uint8Array | null): Uint8Array {
  if (v === null) throw new Error('unexpected nil byte field')
  return v
}

/** A decoded struct node of a vector → the Message the wire layer must produce. */
export function expectedMessage(node: Json): Message {
  const fl = node.fields
  switch (node.name) {
    case 'ping':
      return { type: 'ping', seqNo: fl.SeqNo, node: fl.Node }
    case 'indirectPing':
      return {
        type: 'indirectPing',
        seqNo: fl.SeqNo,
        target: nonNull(bytesField(fl.Target)),
        port: fl.Port,
        node: fl.Node,
        nack: fl.Nack,
      }
    case 'ackResp':
      return { type: 'ack', seqNo: fl.SeqNo, payload: bytesField(fl.Payload) }
    case 'nackResp':
      return { type: 'nack', seqNo: fl.SeqNo }
    case 'err':
      return { type: 'err', error: fl.Error }
    case 'suspect':
    case 'dead':
      return { type: node.name, incarnation: fl.Incarnation, node: fl.Node, from: fl.From }
    case 'alive':
      return {
        type: 'alive',
        incarnation: fl.Incarnation,
        node: fl.Node,
        addr: nonNull(bytesField(fl.Addr)),
        port: fl.Port,
        meta: bytesField(fl.Meta),
        vsn: nonNull(bytesField(fl.Vsn)),
      }
    case 'user':
      return { type: 'user', payload: fromHex(node.payload_hex ?? node.user_msg_hex) }
    case 'pushPull':
      return {
        type: 'pushPull',
        join: node.header.fields.Join,
        userState: fromHex(node.user_state_hex),
        nodes: node.nodes.map(
          (n: Json): PushNodeState => ({
            name: n.fields.Name,
            addr: nonNull(bytesField(n.fields.Addr)),
            port: n.fields.Port,
            meta: bytesField(n.fields.Meta),
            incarnation: n.fields.Incarnation,
            state: n.fields.State,
            vsn: nonNull(bytesField(n.fields.Vsn)),
          }),
        ),
      }
    default:
      throw new Error(`unknown vector message ${node.name}`)
  }
}

/** Byte fields → `{hex}` (null stays null) so that comparisons see nil vs empty and exact bytes. */
export function normalize(v: unknown): unknown {
  if (v === null) return null
  if (v instanceof Uint8Array) return { hex: toHex(v) }
  if (Array.isArray(v)) return v.map(normalize)
  if (typeof v === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, x] of Object.entries(v as object)) out[k] = normalize(x)
    return out
  }
  return v
}
