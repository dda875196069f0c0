import { describe, expect, it } from 'vitest'
import {
  PARSE_DROP,
  PARSE_FORMERR,
  PARSE_NOTIMP,
  PARSE_OK,
  ParsedQuery,
  formatIpv6,
  ipv6Bytes,
  keyToName,
  parseQuery,
  parseReverseName,
  reverseName,
} from '../src/internal/wire.js'
import { splitService } from '../src/internal/answers.js'
import { query } from './helpers.js'

const scratch = Buffer.alloc(256)
const parse = (b: Uint8Array): [number, ParsedQuery] => {
  const q = new ParsedQuery()
  return [parseQuery(b, q, scratch), q]
}

describe('wire: query parsing', () => {
  it('parses id, type, class, folded key and EDNS', () => {
    const [st, q] = parse(
      query('WeB.Net1', 'AAAA', { id: 77, additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 1400 }] }),
    )
    expect(st).toBe(PARSE_OK)
    expect([q.id, q.qtype, q.qclass, q.edns, q.udpSize, q.ednsVersion]).toEqual([77, 28, 1, true, 1400, 0])
    expect(keyToName(q.key)).toBe('web.net1')
    expect(q.questionEnd).toBe(12 + 10 + 4)
  })

  it('drops short messages, responses and questionless queries; NOTIMP for other opcodes', () => {
    expect(parse(Buffer.alloc(11))[0]).toBe(PARSE_DROP)
    const resp = query('a')
    resp[2] = (resp[2] as number) | 0x80
    expect(parse(resp)[0]).toBe(PARSE_DROP)
    const none = query('a')
    none.writeUInt16BE(0, 4)
    expect(parse(none)[0]).toBe(PARSE_DROP)
    const status = query('a')
    status[2] = ((status[2] as number) & 0x87) | (2 << 3)
    expect(parse(status)[0]).toBe(PARSE_NOTIMP)
  })

  it('FORMERR: pointer in the question, label > 63, name > 255, truncated question, two OPT records', () => {
    const ptr = Buffer.concat([query('a').subarray(0, 12), Buffer.from([0xc0, 0x0c, 0, 1, 0, 1])])
    expect(parse(ptr)[0]).toBe(PARSE_FORMERR)
    const long = Buffer.concat([
      query('a').subarray(0, 12),
      Buffer.from([64]),
      Buffer.alloc(64, 97),
      Buffer.from([0, 0, 1, 0, 1]),
    ])
    expect(parse(long)[0]).toBe(PARSE_FORMERR)
    const labels = Array.from({ length: 5 }, () => Buffer.concat([Buffer.from([60]), Buffer.alloc(60, 97)]))
    const huge = Buffer.concat([query('a').subarray(0, 12), ...labels, Buffer.from([0, 0, 1, 0, 1])])
    expect(parse(huge)[0]).toBe(PARSE_FORMERR)
    expect(parse(query('abc').subarray(0, 16))[0]).toBe(PARSE_FORMERR)
    const two = query('a', 'A', {
      additionals: [
        { type: 'OPT', name: '.', udpPayloadSize: 1400 },
        { type: 'OPT', name: '.', udpPayloadSize: 1400 },
      ],
    })
    expect(parse(two)[0]).toBe(PARSE_FORMERR)
  })

  it('keyToName refuses labels holding dots or control bytes', () => {
    expect(keyToName('\x03a.b\x00')).toBeUndefined()
    expect(keyToName('\x02a\x01\x00')).toBeUndefined()
    expect(keyToName('\x00')).toBe('')
  })
})

describe('wire: addresses and reverse names', () => {
  it('IPv6 text <-> bytes, canonical output (RFC 5952)', () => {
    for (const [input, canon] of [
      ['fd00::5', 'fd00::5'],
      ['2001:db8:0:0:1:0:0:1', '2001:db8::1:0:0:1'],
      ['::', '::'],
      ['::ffff:10.0.0.1', '::ffff:a00:1'],
      ['1:0:0:2:0:0:0:3', '1:0:0:2::3'],
    ]) {
      expect(formatIpv6(ipv6Bytes(input as string) as Uint8Array)).toBe(canon)
    }
    expect(ipv6Bytes('1:2:3')).toBeUndefined()
    expect(ipv6Bytes('1::2::3')).toBeUndefined()
  })

  it('reverse names round-trip and incomplete ones are rejected', () => {
    expect(reverseName('192.168.0.1')).toBe('1.0.168.192.in-addr.arpa')
    expect(parseReverseName('1.0.168.192.in-addr.arpa')).toEqual({ address: '192.168.0.1', version: 4 })
    expect(parseReverseName(reverseName('fd00::5') as string)).toEqual({ address: 'fd00::5', version: 6 })
    expect(parseReverseName('0.168.192.in-addr.arpa')).toBeUndefined()
    expect(parseReverseName('01.0.168.192.in-addr.arpa')).toBeUndefined()
    expect(parseReverseName('256.0.168.192.in-addr.arpa')).toBeUndefined()
    expect(parseReverseName('x.ip6.arpa')).toBeUndefined()
  })

  it('splits SRV owner names', () => {
    expect(splitService('_http._tcp.web.net1')).toEqual({ service: 'http', protocol: 'tcp', name: 'web.net1' })
    expect(splitService('_http.web')).toBeUndefined()
    expect(splitService('_http._tcp')).toBeUndefined()
  })
})
