import { Buffer } from 'node:buffer'
import { InvalidSequenceError } from '../errors.js'
import { BigEngine } from './big-engine.js'
import type { DenseEngine } from './dense-engine.js'
import { NumEngine } from './num-engine.js'

export type Engine = NumEngine | DenseEngine | BigEngine

/** Largest handle served by the number engine: every ordinal and count is then an exact double. */
export const NUM_ENGINE_MAX_BITS = 2n ** 53n
export const MAX_BITS = 2n ** 64n - 1n

export function freshEngine(bits: bigint): Engine {
  return bits <= NUM_ENGINE_MAX_BITS ? NumEngine.fresh(Number(bits)) : BigEngine.fresh(bits)
}

/**
 * Decodes libnetwork's binary form: bits (u64) ‖ unselected (u64) ‖ { block (u32) ‖ count (u64) }*,
 * all big-endian. The sequence part must be a non-empty multiple of 12 bytes and its counts must add up
 * to ceil(bits / 32).
 */
export function decodeBinary(bytes: Uint8Array): Engine {
  if (!(bytes instanceof Uint8Array)) throw new InvalidSequenceError('bitseq payload must be a Uint8Array')
  if (bytes.length < 16) {
    throw new InvalidSequenceError(`cannot deserialize bitseq: ${bytes.length} bytes, need at least 16`)
  }
  const seqBytes = bytes.length - 16
  if (seqBytes % 12 !== 0 || seqBytes === 0) {
    throw new InvalidSequenceError(`cannot deserialize byte sequence of length ${seqBytes}`)
  }
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const bits = dv.getBigUint64(0)
  const unselected = dv.getBigUint64(8)
  const n = seqBytes / 12
  const nblocks = (bits + 31n) / 32n
  const blocks: number[] = new Array<number>(n)
  const counts: bigint[] = new Array<bigint>(n)
  let total = 0n
  for (let i = 0; i < n; i++) {
    const off = 16 + 12 * i
    blocks[i] = dv.getUint32(off)
    const c = dv.getBigUint64(off + 4)
    counts[i] = c
    total += c
  }
  if (total !== nblocks) {
    throw new InvalidSequenceError(`bitseq sequences cover ${total} blocks, ${bits} bits need ${nblocks}`)
  }
  if (bits <= NUM_ENGINE_MAX_BITS) {
    return NumEngine.fromPairs(Number(bits), Number(unselected), blocks, counts.map(Number))
  }
  return BigEngine.fromPairs(bits, unselected, blocks, counts)
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** The store value: JSON `{"id": "<id>", "sequence": "<base64 of the binary form>"}`, as libnetwork writes it. */
export function encodeStoreValue(id: string, engine: Engine): Uint8Array {
  const sequence = Buffer.from(engine.serialize()).toString('base64')
  return encoder.encode(JSON.stringify({ id, sequence }))
}

export function decodeStoreValue(value: Uint8Array): { id: string; engine: Engine } {
  let parsed: unknown
  try {
    parsed = JSON.parse(decoder.decode(value))
  } catch (err) {
    throw new InvalidSequenceError('bitseq store value is not valid JSON', { cause: err })
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new InvalidSequenceError('bitseq store value is not a JSON object')
  }
  const { id, sequence } = parsed as { id?: unknown; sequence?: unknown }
  if (typeof id !== 'string') throw new InvalidSequenceError('bitseq store value has no string "id"')
  if (typeof sequence !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(sequence) || sequence.length % 4 !== 0) {
    throw new InvalidSequenceError('bitseq store value has no base64 "sequence"')
  }
  const bytes = Buffer.from(sequence, 'base64')
  return { id, engine: decodeBinary(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)) }
}
