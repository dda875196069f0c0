import { describe, expect, it } from 'vitest'
import {
  compressMessage,
  crc32,
  decodeCompound,
  decodeMessage,
  KeyringImpl,
  lzwDecompress,
  readStreamMessage,
  sealStreamFrame,
  unpackPacket,
  WireError,
  encryptPayload,
} from '../src/wire/index.js'
import { fromHex, loadVectors, need } from './fixtures-wire/vectors.js'
import type { VNode } from './fixtures-wire/vectors.js'

/** Deterministic PRNG (mulberry32) so that a failure is reproducible from its iteration number. */
function rng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const vectors = loadVectors()
const K = [Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex'), Buffer.from(Array.from({ length: 32 }, (_, i) => i))]
const keyring = new KeyringImpl(K)

/** Plaintext layers of every vector, so that mutations reach the inner decoders too. */
function seeds(transport: 'udp' | 'tcp'): Buffer[] {
  const out: Buffer[] = []
  const collect = (node: VNode | undefined, bytes: Buffer): void => {
    out.push(bytes)
    if (node?.name === 'hasCrc') collect(node.inner, bytes.subarray(5))
    else if (node?.name === 'compress' && node.decompressed_hex !== undefined)
      collect(node.inner, fromHex(node.decompressed_hex))
  }
  for (const v of vectors.filter((x) => x.transport === transport)) {
    out.push(fromHex(v.hex))
    const plain = v.encrypted ? fromHex(need(v.decoded.encryption, 'encryption').plaintext_hex) : fromHex(v.hex)
    if (transport === 'udp') collect(v.decoded.message, plain)
    else {
      out.push(plain)
      out.push(fromHex(need(v.decoded.compress, 'compress').decompressed_hex))
    }
  }
  return out
}

function mutate(src: Buffer, r: () => number, other: Buffer): Buffer {
  let b = Buffer.from(src)
  const n = 1 + Math.floor(r() * 4)
  for (let k = 0; k < n; k++) {
    const at = Math.floor(r() * Math.max(1, b.length))
    switch (Math.floor(r() * 8)) {
      case 0: // bit flip
        if (b.length > 0) b[at]! ^= 1 << Math.floor(r() * 8)
        break
      case 1: // random byte
        if (b.length > 0) b[at] = Math.floor(r() * 256)
        break
      case 2: // interesting byte (length and type heads)
        if (b.length > 0)
          b[at] = [0, 0x7f, 0x80, 0xff, 0xc0, 0xda, 0xdb, 0xde, 0xdf, 0xdc, 0xdd, 0xcf, 7, 9, 10, 12][
            Math.floor(r() * 16)
          ]!
        break
      case 3: // truncate
        b = b.subarray(0, at)
        break
      case 4: // delete a run
        b = Buffer.concat([b.subarray(0, at), b.subarray(at + 1 + Math.floor(r() * 8))])
        break
      case 5: // insert random bytes
        b = Buffer.concat([
          b.subarray(0, at),
          Buffer.from(Array.from({ length: 1 + Math.floor(r() * 8) }, () => Math.floor(r() * 256))),
          b.subarray(at),
        ])
        break
      case 6: // splice in part of another seed
        b = Buffer.concat([b.subarray(0, at), other.subarray(Math.floor(r() * other.length))])
        break
      default: // duplicate a run
        b = Buffer.concat([b.subarray(0, at + 8), b.subarray(at)])
    }
  }
  return b
}

/** Runs fn; only a WireError may come out. */
function onlyWireError(fn: () => unknown, what: string): void {
  try {
    fn()
  } catch (err) {
    if (!(err instanceof WireError)) {
      throw new Error(`${what}: threw ${(err as Error)?.name}: ${(err as Error)?.message}`, { cause: err })
    }
  }
}

function withCrc(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(5 + msg.length)
  out[0] = 12
  out.writeUInt32BE(crc32(msg), 1)
  out.set(msg, 5)
  return out
}

describe('fuzz: mutated vectors never throw anything but WireError and never hang', () => {
  it('UDP packets (4000 mutations, plain, re-wrapped in compress/CRC/encryption)', () => {
    const pool = seeds('udp')
    const r = rng(0x5eed)
    const started = Date.now()
    let decoded = 0
    for (let i = 0; i < 4000; i++) {
      const m = mutate(pool[Math.floor(r() * pool.length)]!, r, pool[Math.floor(r() * pool.length)]!)
      const what = `udp iteration ${i} (${m.toString('hex')})`
      onlyWireError(() => (decoded += unpackPacket(m, {}).messages.length), what)
      onlyWireError(() => unpackPacket(m, { keyring }), what)
      if (m.length > 0) {
        // Wrapping the mutation makes it pass the outer checks and reach the inner decoders.
        onlyWireError(() => unpackPacket(withCrc(compressMessage(m)), {}), what)
        onlyWireError(() => unpackPacket(encryptPayload(K[1]!, withCrc(m)), { keyring }), what)
      }
      onlyWireError(() => decodeMessage(m), what)
      onlyWireError(() => decodeCompound(m), what)
      onlyWireError(() => lzwDecompress(m, 1 << 20), what)
    }
    // The mutations are not all rejected: many still decode to messages.
    expect(decoded).toBeGreaterThan(500)
    expect(Date.now() - started).toBeLessThan(25_000)
  })

  it('TCP streams (3000 mutations, whole and in chunks, with and without keys)', () => {
    const pool = seeds('tcp')
    const r = rng(0xfeed)
    const started = Date.now()
    let complete = 0
    for (let i = 0; i < 3000; i++) {
      const m = mutate(pool[Math.floor(r() * pool.length)]!, r, pool[Math.floor(r() * pool.length)]!)
      const what = `tcp iteration ${i} (${m.toString('hex')})`
      for (const opts of [{}, { keyring }]) {
        onlyWireError(() => {
          const res = readStreamMessage(m, opts)
          if (res !== undefined) {
            complete++
            expect(res.consumed).toBeGreaterThan(0)
            expect(res.consumed).toBeLessThanOrEqual(m.length)
          }
        }, what)
      }
      if (m.length > 0) {
        onlyWireError(() => readStreamMessage(compressMessage(m), {}), what)
        onlyWireError(() => readStreamMessage(sealStreamFrame(K[0]!, m), { keyring }), what)
      }
      // Growing prefixes, as a socket delivers them: once complete, a longer prefix gives the same answer.
      const step = 1 + Math.floor(r() * 16)
      let done: number | undefined
      for (let n = step; n <= m.length && i % 10 === 0; n += step) {
        try {
          const res = readStreamMessage(m.subarray(0, n), {})
          if (res !== undefined) {
            if (done === undefined) done = res.consumed
            expect(res.consumed).toBe(done)
          } else expect(done).toBeUndefined()
        } catch (err) {
          if (!(err instanceof WireError)) throw new Error(`${what} prefix ${n}: ${(err as Error).message}`)
          break
        }
      }
    }
    expect(complete).toBeGreaterThan(100)
    expect(Date.now() - started).toBeLessThan(25_000)
  })

  it('random garbage of every length up to 300 bytes', () => {
    const r = rng(42)
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(Array.from({ length: Math.floor(r() * 300) }, () => Math.floor(r() * 256)))
      onlyWireError(() => unpackPacket(m, {}), `garbage ${i}`)
      onlyWireError(() => unpackPacket(m, { keyring }), `garbage ${i}`)
      onlyWireError(() => readStreamMessage(m, {}), `garbage ${i}`)
      onlyWireError(() => readStreamMessage(m, { keyring }), `garbage ${i}`)
    }
  })

  it('deeply nested msgpack does not exhaust the stack', () => {
    const deep = Buffer.concat([Buffer.from('0081a158', 'hex'), Buffer.alloc(60_000, 0x91), Buffer.from([0xc0])])
    expect(decodeMessage(deep)).toEqual({ type: 'ping', seqNo: 0, node: '' })
    const deepMaps = Buffer.concat([Buffer.from('0081a158', 'hex'), Buffer.from('81a1'.repeat(20_000) + '58', 'hex')])
    onlyWireError(() => decodeMessage(deepMaps), 'deep maps')
    let nested: Buffer = Buffer.from([11, 0x80])
    for (let i = 0; i < 3000; i++) {
      const head = Buffer.from([7, 1, 0, 0])
      head.writeUInt16BE(Math.min(nested.length, 0xffff), 2)
      nested = Buffer.concat([head, nested])
    }
    onlyWireError(() => unpackPacket(nested, {}), 'deep compounds')
  })
})
