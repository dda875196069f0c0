import { describe, expect, it } from 'vitest'
import {
  decodeCompound,
  decodeMessage,
  encodeCompound,
  encodeMessage,
  encodeUserStream,
  MessageType,
  WireError,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { fromHex, normalize, toHex } from './fixtures-wire/vectors.js'

const VSN = Uint8Array.from([1, 5, 2, 0, 0, 0])
const ADDR = Uint8Array.from([127, 0, 0, 1])

/** msgpack raw string (fixstr / raw16) of ASCII text. */
function s(text: string): string {
  const b = Buffer.from(text)
  const head = b.length < 32 ? (0xa0 | b.length).toString(16) : `da${b.length.toString(16).padStart(4, '0')}`
  return head + b.toString('hex')
}

describe('MessageType', () => {
  it('numbers the types as memberlist does', () => {
    expect(MessageType).toEqual({
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
    })
  })
})

describe('encoding (go-msgpack rules)', () => {
  it('sorts keys by byte value and writes every field', () => {
    const hex = toHex(
      encodeMessage({ type: 'indirectPing', seqNo: 19, target: ADDR, port: 17942, node: 'node2', nack: false }),
    )
    expect(hex).toBe(
      `0185${s('Nack')}c2${s('Node')}${s('node2')}${s('Port')}cd4616${s('SeqNo')}13${s('Target')}a47f000001`,
    )
  })

  it('uses the smallest unsigned integer form', () => {
    const seq = (n: number) => toHex(encodeMessage({ type: 'nack', seqNo: n })).slice(2 + 2 + 12)
    expect(seq(0)).toBe('00')
    expect(seq(127)).toBe('7f')
    expect(seq(128)).toBe('cc80')
    expect(seq(255)).toBe('ccff')
    expect(seq(256)).toBe('cd0100')
    expect(seq(65535)).toBe('cdffff')
    expect(seq(65536)).toBe('ce00010000')
    expect(seq(0xffffffff)).toBe('ceffffffff')
  })

  it('refuses integers that are negative, not integers or too large for their Go field', () => {
    expect(() => encodeMessage({ type: 'nack', seqNo: -1 })).toThrow(WireError)
    expect(() => encodeMessage({ type: 'nack', seqNo: 1.5 })).toThrow(WireError)
    expect(() => encodeMessage({ type: 'nack', seqNo: 2 ** 32 })).toThrow(/SeqNo/)
    expect(() =>
      encodeMessage({ type: 'indirectPing', seqNo: 1, target: ADDR, port: 65536, node: '', nack: false }),
    ).toThrow(/Port/)
  })

  it('writes strings and byte slices in the raw family only (a0|n, da, db; never d9 or bin)', () => {
    const err = (text: string) => toHex(encodeMessage({ type: 'err', error: text }))
    expect(err('x'.repeat(31)).slice(0, 18)).toBe(`0d81${s('Error')}bf`)
    expect(err('x'.repeat(32)).slice(0, 22)).toBe(`0d81${s('Error')}da0020`)
    expect(err('x'.repeat(255)).slice(0, 22)).toBe(`0d81${s('Error')}da00ff`)
    expect(err('x'.repeat(70000)).slice(0, 26)).toBe(`0d81${s('Error')}db00011170`)
    const ack = (p: Uint8Array | null) => toHex(encodeMessage({ type: 'ack', seqNo: 1, payload: p }))
    expect(ack(null)).toBe(`0282${s('Payload')}c0${s('SeqNo')}01`)
    expect(ack(new Uint8Array(0))).toBe(`0282${s('Payload')}a0${s('SeqNo')}01`)
    expect(ack(new Uint8Array(40)).slice(0, 26)).toBe(`0282${s('Payload')}da0028`)
  })

  it('encodes UTF-8 names by byte length', () => {
    const hex = toHex(encodeMessage({ type: 'ping', seqNo: 1, node: 'nœud' }))
    expect(hex).toBe(`0082${s('Node')}a5${Buffer.from('nœud').toString('hex')}${s('SeqNo')}01`)
  })

  it('encodes nil and empty Meta differently', () => {
    const alive = (meta: Uint8Array | null): Message => ({
      type: 'alive',
      incarnation: 1,
      node: 'n',
      addr: ADDR,
      port: 7946,
      meta,
      vsn: VSN,
    })
    expect(toHex(encodeMessage(alive(null)))).toContain(`${s('Meta')}c0`)
    expect(toHex(encodeMessage(alive(new Uint8Array(0))))).toContain(`${s('Meta')}a0`)
  })

  it('user: UDP form is 08 + raw payload, stream form adds the UserMsgLen header', () => {
    const p = Uint8Array.from([1, 2, 3])
    expect(toHex(encodeMessage({ type: 'user', payload: p }))).toBe('08010203')
    expect(toHex(encodeUserStream(p))).toBe(`0881${s('UserMsgLen')}03010203`)
  })

  it('pushPull: header, node states back to back, raw user state; more than 15 fields never occur', () => {
    const msg: Message = {
      type: 'pushPull',
      join: false,
      nodes: [
        { name: 'a', addr: ADDR, port: 1, meta: null, incarnation: 3, state: 2, vsn: VSN },
        { name: 'b', addr: ADDR, port: 300, meta: new Uint8Array(0), incarnation: 70000, state: 0, vsn: VSN },
      ],
      userState: Uint8Array.from([9, 9]),
    }
    const hex = toHex(encodeMessage(msg))
    expect(hex.startsWith(`0683${s('Join')}c2${s('Nodes')}02${s('UserStateLen')}02`)).toBe(true)
    expect(hex.endsWith('0909')).toBe(true)
    expect(normalize(decodeMessage(fromHex(hex)))).toEqual(normalize(msg))
  })
})

describe('round trips', () => {
  const samples: Message[] = [
    { type: 'ping', seqNo: 0xffffffff, node: '' },
    { type: 'ping', seqNo: 1, node: 'nœud-ü' },
    { type: 'ping', seqNo: 2, node: 'ノード'.repeat(10) },
    {
      type: 'indirectPing',
      seqNo: 5,
      target: Uint8Array.from(Array(16).fill(0xfe)),
      port: 65535,
      node: 'x',
      nack: true,
    },
    { type: 'ack', seqNo: 77, payload: Uint8Array.from([1, 2]) },
    { type: 'nack', seqNo: 1 },
    { type: 'err', error: 'boom' },
    { type: 'suspect', incarnation: 9, node: 'n', from: 'm' },
    { type: 'dead', incarnation: 9, node: 'n', from: '' },
    {
      type: 'alive',
      incarnation: 2 ** 31,
      node: 'z'.repeat(40),
      addr: ADDR,
      port: 0,
      meta: new Uint8Array(512),
      vsn: VSN,
    },
    { type: 'user', payload: Uint8Array.from([0, 1, 2, 3]) },
    { type: 'user', payload: new Uint8Array(0) },
  ]
  it.each(samples.map((m) => [`${m.type}`, m] as const))('%s', (_t, m) => {
    expect(normalize(decodeMessage(encodeMessage(m)))).toEqual(normalize(m))
  })
})

describe('lenient decoding (what a Go peer accepts)', () => {
  it('accepts keys in any order and skips unknown keys of any type', () => {
    const unknown = [
      `${s('X')}81a16193c0c3cb3ff0000000000000`, // map of array of nil, true, float64
      `${s('Y')}d60100000000`, // fixext4
      `${s('Z')}c70300010203`, // ext8
      `${s('W')}dc0002c2c2`, // array16
      `${s('V')}c40201ff`, // bin8
    ]
    const hex = `0087${unknown.join('')}${s('SeqNo')}05${s('Node')}${s('abc')}`
    expect(decodeMessage(fromHex(hex))).toEqual({ type: 'ping', seqNo: 5, node: 'abc' })
  })

  it('leaves missing fields at zero values (nil bytes, empty strings, 0, false)', () => {
    expect(decodeMessage(fromHex('0080'))).toEqual({ type: 'ping', seqNo: 0, node: '' })
    expect(normalize(decodeMessage(fromHex('0480')))).toEqual({
      type: 'alive',
      incarnation: 0,
      node: '',
      addr: { hex: '' },
      port: 0,
      meta: null,
      vsn: { hex: '' },
    })
    expect(decodeMessage(fromHex('02c0'))).toEqual({ type: 'ack', seqNo: 0, payload: null })
  })

  it('accepts a struct as an array in Go declaration order', () => {
    // ping{SeqNo, Node}
    expect(decodeMessage(fromHex(`0092cd1093${s('node1')}`))).toEqual({ type: 'ping', seqNo: 4243, node: 'node1' })
    // indirectPingReq{SeqNo, Target, Port, Node, Nack} with an extra trailing element
    expect(normalize(decodeMessage(fromHex(`0196${'07'}a47f000001cd1f90${s('t')}01c0`)))).toEqual({
      type: 'indirectPing',
      seqNo: 7,
      target: { hex: '7f000001' },
      port: 8080,
      node: 't',
      nack: true,
    })
  })

  it('accepts str8/str16/str32 and nil for strings, but not bin', () => {
    const ping = (nodeHex: string) => decodeMessage(fromHex(`0082${s('Node')}${nodeHex}${s('SeqNo')}01`))
    expect(ping('d903616263')).toEqual({ type: 'ping', seqNo: 1, node: 'abc' })
    expect(ping('da0003616263')).toEqual({ type: 'ping', seqNo: 1, node: 'abc' })
    expect(ping('db00000003616263')).toEqual({ type: 'ping', seqNo: 1, node: 'abc' })
    expect(ping('c0')).toEqual({ type: 'ping', seqNo: 1, node: '' })
    expect(() => ping('c403616263')).toThrow(WireError)
    expect(() => ping('01')).toThrow(WireError)
  })

  it('accepts the str and bin families and nil for byte fields', () => {
    const ack = (p: string) =>
      (decodeMessage(fromHex(`0282${s('Payload')}${p}${s('SeqNo')}01`)) as { payload: Uint8Array | null }).payload
    for (const p of [
      'a2abcd',
      'd902abcd',
      'da0002abcd',
      'db00000002abcd',
      'c402abcd',
      'c50002abcd',
      'c600000002abcd',
    ]) {
      expect(toHex(ack(p)!)).toBe('abcd')
    }
    expect(ack('c0')).toBeNull()
    expect(toHex(ack('a0')!)).toBe('')
    expect(() => ack('92')).toThrow(WireError)
  })

  it('accepts every integer form and refuses negatives and overflow', () => {
    const seq = (v: string) => (decodeMessage(fromHex(`0b81${s('SeqNo')}${v}`)) as { seqNo: number }).seqNo
    expect(seq('05')).toBe(5)
    expect(seq('cc05')).toBe(5)
    expect(seq('cd0005')).toBe(5)
    expect(seq('ce00000005')).toBe(5)
    expect(seq('cf0000000000000005')).toBe(5)
    expect(seq('d005')).toBe(5)
    expect(seq('d10005')).toBe(5)
    expect(seq('d200000005')).toBe(5)
    expect(seq('d30000000000000005')).toBe(5)
    expect(seq('ceffffffff')).toBe(0xffffffff)
    expect(() => seq('ff')).toThrow(WireError)
    expect(() => seq('d0ff')).toThrow(WireError)
    expect(() => seq('cf0000000100000000')).toThrow(WireError)
    expect(() => seq('cb3ff0000000000000')).toThrow(WireError)
    const port = (v: string) => (decodeMessage(fromHex(`0181${s('Port')}${v}`)) as { port: number }).port
    expect(port('cdffff')).toBe(65535)
    expect(() => port('ce00010000')).toThrow(/overflows/)
  })

  it('accepts c2/c3 and fixint 0/1 as bools', () => {
    const nack = (v: string) => (decodeMessage(fromHex(`0181${s('Nack')}${v}`)) as { nack: boolean }).nack
    expect(nack('c3')).toBe(true)
    expect(nack('01')).toBe(true)
    expect(nack('c2')).toBe(false)
    expect(nack('00')).toBe(false)
    expect(() => nack('02')).toThrow(WireError)
  })

  it('matches keys case-sensitively', () => {
    expect(decodeMessage(fromHex(`0b81${s('seqno')}05`))).toEqual({ type: 'nack', seqNo: 0 })
  })

  it('accepts map16 headers and ignores trailing bytes', () => {
    expect(decodeMessage(fromHex(`0bde0001${s('SeqNo')}09ffff`))).toEqual({ type: 'nack', seqNo: 9 })
  })

  it('throws WireError on truncation and on types that are not leaf messages', () => {
    const good = encodeMessage({ type: 'alive', incarnation: 1, node: 'n', addr: ADDR, port: 1, meta: null, vsn: VSN })
    for (let n = 0; n < good.length; n++) expect(() => decodeMessage(good.subarray(0, n))).toThrow(WireError)
    for (const t of [7, 9, 10, 12, 14, 255]) expect(() => decodeMessage(Uint8Array.from([t, 0x80]))).toThrow(WireError)
  })
})

describe('compound', () => {
  const part = (i: number) => encodeMessage({ type: 'nack', seqNo: i })

  it('encodes count, uint16 BE lengths and the parts', () => {
    const a = part(1)
    const b = Uint8Array.from([8, 0xaa])
    expect(toHex(encodeCompound([a, b]))).toBe(`0702${a.length.toString(16).padStart(4, '0')}0002${toHex(a)}08aa`)
  })

  it('accepts 127 parts and refuses 128, an empty list, an empty part and a part over 65535 bytes', () => {
    const parts = Array.from({ length: 128 }, (_, i) => part(i))
    const c = encodeCompound(parts.slice(0, 127))
    expect(c[1]).toBe(127)
    expect(decodeCompound(c).parts.length).toBe(127)
    expect(() => encodeCompound(parts)).toThrow(WireError)
    expect(() => encodeCompound([])).toThrow(WireError)
    expect(() => encodeCompound([part(1), new Uint8Array(0)])).toThrow(/empty/)
    expect(() => encodeCompound([new Uint8Array(65536).fill(8)])).toThrow(WireError)
  })

  it('drops a part whose length runs past the end and every later one, keeping the earlier ones', () => {
    const c = encodeCompound([part(1), part(2), part(3)])
    const cut = c.subarray(0, c.length - part(3).length - 1)
    const { parts, truncated } = decodeCompound(cut)
    expect(parts.map((p) => decodeMessage(p))).toEqual([{ type: 'nack', seqNo: 1 }])
    expect(truncated).toBe(2)
    expect(decodeCompound(c.subarray(0, 2 + 6)).parts).toEqual([])
  })

  it('ignores trailing bytes and refuses a cut header', () => {
    const c = Buffer.concat([encodeCompound([part(1)]), Buffer.from([1, 2, 3])])
    expect(decodeCompound(c)).toEqual({ parts: [part(1)], truncated: 0 })
    expect(() => decodeCompound(Uint8Array.from([7]))).toThrow(WireError)
    expect(() => decodeCompound(Uint8Array.from([7, 2, 0, 1]))).toThrow(WireError)
  })
})
