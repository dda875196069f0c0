/** Loads the captured memberlist vectors (/work/shared/vectors/memberlist) and maps them to wire types. */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Message, PushNodeState } from '../../src/wire/index.js'

export const VECTOR_DIR = fileURLToPath(new URL('../../../../../shared/vectors/memberlist', import.meta.url))

/** A byte field as the vectors write it; `null` in its place means msgpack nil. */
export interface ByteField {
  hex: string
  len?: number
}
export type FieldValue = string | number | boolean | ByteField | null
export type Fields = Record<string, FieldValue>

export interface VStruct {
  msgpack_hex: string
  fields: Fields
}

/** One layer of a vector's `decoded.message` tree. */
export interface VNode {
  type: number
  name: string
  msgpack_hex?: string
  fields?: Fields
  // hasCrc
  crc32_be?: string
  covered_bytes?: number
  inner?: VNode
  // compress
  decompressed_hex?: string
  // compound
  count?: number
  lengths?: number[]
  parts?: VNode[]
  // user
  payload_hex?: string
  user_msg_hex?: string
  // stream messages
  bytes_hex?: string
  header?: VStruct
  nodes?: VStruct[]
  user_state_hex?: string
}

export interface VEncryption {
  version: number
  nonce_hex: string
  tag_hex: string
  ciphertext_len: number
  decrypted_with_key_index: number
  plaintext_hex: string
  frame_type?: number
  length_field?: number
  'header_hex (also the AAD)'?: string
}

export interface VCompress {
  msgpack_hex: string
  fields: { Algo: number; Buf: ByteField }
  decompressed_hex: string
}

export interface Vector {
  id: string
  file: string
  transport: 'udp' | 'tcp'
  encrypted: boolean
  hex: string
  length: number
  decoded: { message: VNode; encryption?: VEncryption; compress?: VCompress }
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
    throw new Error(
      `memberlist vectors not found at ${VECTOR_DIR}: the wire tests need /work/shared/vectors/memberlist`,
    )
  }
}

export function loadVectors(): Vector[] {
  requireDir()
  const files = readdirSync(VECTOR_DIR).filter((f) => f.endsWith('.json') && f !== 'lzw-go-reference.json')
  if (files.length === 0) throw new Error(`no vector JSON files in ${VECTOR_DIR}`)
  return files.sort().map((file) => ({ ...(JSON.parse(readFileSync(join(VECTOR_DIR, file), 'utf8')) as Vector), file }))
}

export function loadLzwCases(): LzwCase[] {
  requireDir()
  const doc = JSON.parse(readFileSync(join(VECTOR_DIR, 'lzw-go-reference.json'), 'utf8')) as { cases: LzwCase[] }
  return doc.cases
}

export const fromHex = (h: string): Buffer => Buffer.from(h, 'hex')
export const toHex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex')

/** `{hex}` → bytes, `null` → null (msgpack nil). */
export function bytesField(v: FieldValue | undefined): Uint8Array | null {
  if (v === null) return null
  if (typeof v !== 'object') throw new Error(`not a byte field: ${JSON.stringify(v)}`)
  return fromHex(v.hex)
}

function bytesOf(fl: Fields, k: string): Uint8Array {
  const b = bytesField(fl[k])
  if (b === null) throw new Error(`unexpected nil byte field ${k}`)
  return b
}

function num(fl: Fields, k: string): number {
  const v = fl[k]
  if (typeof v !== 'number') throw new Error(`field ${k} is not a number: ${JSON.stringify(v)}`)
  return v
}

function str(fl: Fields, k: string): string {
  const v = fl[k]
  if (typeof v !== 'string') throw new Error(`field ${k} is not a string: ${JSON.stringify(v)}`)
  return v
}

function bool(fl: Fields, k: string): boolean {
  const v = fl[k]
  if (typeof v !== 'boolean') throw new Error(`field ${k} is not a bool: ${JSON.stringify(v)}`)
  return v
}

export function need<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`vector node lacks ${what}`)
  return v
}

/** A decoded struct node of a vector → the Message the wire layer must produce. */
export function expectedMessage(node: VNode): Message {
  const fl = node.fields ?? {}
  switch (node.name) {
    case 'ping':
      return { type: 'ping', seqNo: num(fl, 'SeqNo'), node: str(fl, 'Node') }
    case 'indirectPing':
      return {
        type: 'indirectPing',
        seqNo: num(fl, 'SeqNo'),
        target: bytesOf(fl, 'Target'),
        port: num(fl, 'Port'),
        node: str(fl, 'Node'),
        nack: bool(fl, 'Nack'),
      }
    case 'ackResp':
      return { type: 'ack', seqNo: num(fl, 'SeqNo'), payload: bytesField(fl.Payload) }
    case 'nackResp':
      return { type: 'nack', seqNo: num(fl, 'SeqNo') }
    case 'err':
      return { type: 'err', error: str(fl, 'Error') }
    case 'suspect':
    case 'dead':
      return { type: node.name, incarnation: num(fl, 'Incarnation'), node: str(fl, 'Node'), from: str(fl, 'From') }
    case 'alive':
      return {
        type: 'alive',
        incarnation: num(fl, 'Incarnation'),
        node: str(fl, 'Node'),
        addr: bytesOf(fl, 'Addr'),
        port: num(fl, 'Port'),
        meta: bytesField(fl.Meta),
        vsn: bytesOf(fl, 'Vsn'),
      }
    case 'user':
      return { type: 'user', payload: fromHex(need(node.payload_hex ?? node.user_msg_hex, 'payload')) }
    case 'pushPull':
      return {
        type: 'pushPull',
        join: bool(need(node.header, 'header').fields, 'Join'),
        userState: fromHex(need(node.user_state_hex, 'user_state_hex')),
        nodes: need(node.nodes, 'nodes').map(({ fields: n }): PushNodeState => ({
          name: str(n, 'Name'),
          addr: bytesOf(n, 'Addr'),
          port: num(n, 'Port'),
          meta: bytesField(n.Meta),
          incarnation: num(n, 'Incarnation'),
          state: num(n, 'State'),
          vsn: bytesOf(n, 'Vsn'),
        })),
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
