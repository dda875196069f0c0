// Unit tests of the diagnostic server's pure parts: Go-compatible base64 and form parsing, and the
// reply shapes of Docker's diagnostic types. The server itself runs against real nodes in
// diagnostic.cluster.test.ts.
import { describe, expect, it } from 'vitest'
import { Base64InputError, decodeGoBase64 } from '../src/diagnostic/go-base64.js'
import { cleanPath, goUnescape, parseGoQuery, parseTarget } from '../src/diagnostic/form.js'
import {
  fail,
  info,
  networkStats,
  ok,
  peerEntry,
  renderReply,
  table,
  tableEntry,
  wrongCommand,
} from '../src/diagnostic/result.js'
import { DIAGNOSTIC_PATHS } from '../src/diagnostic/server.js'

const text = (b: Buffer): string => b.toString('utf8')

describe('decodeGoBase64 (Go base64.StdEncoding.DecodeString)', () => {
  it('decodes padded base64, ignoring CR and LF', () => {
    expect(Buffer.from(decodeGoBase64('aGVsbG8=')).toString()).toBe('hello')
    expect(Buffer.from(decodeGoBase64('aG==')).toString()).toBe('h')
    expect(Buffer.from(decodeGoBase64('aGVs\r\nbG8=\n')).toString()).toBe('hello')
    expect(decodeGoBase64('')).toEqual(new Uint8Array(0))
  })

  it('round-trips random bytes of every length mod 3', () => {
    for (let len = 0; len < 40; len++) {
      const bytes = new Uint8Array(len).map((_, i) => (i * 97 + len * 13) & 0xff)
      expect(decodeGoBase64(Buffer.from(bytes).toString('base64'))).toEqual(bytes)
    }
  })

  it.each([
    ['aGVsbG8', 4], // unpadded tail: offset of the incomplete quantum
    ['a', 0],
    ['ab!c', 2], // bad character
    ['a===', 1], // padding after one symbol
    ['aG=', 3], // second "=" missing at the end
    ['aG=x', 2], // second "=" wrong
    ['aGVsbG8=x', 8], // data after the padding
    ['aGVs bG8=', 4], // a space (what an unencoded "+" becomes in a query) is illegal
  ])('rejects %j at input byte %i', (input, offset) => {
    const err = (() => {
      try {
        decodeGoBase64(input)
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(Base64InputError)
    expect((err as Error).message).toBe(`illegal base64 data at input byte ${offset}`)
  })
})

describe('form parsing (Go url.ParseQuery / ServeMux)', () => {
  it('keeps every value in order; a bare key is present and empty', () => {
    const f = parseGoQuery('a=1&b&c=&a=2&&unsafe')
    expect(f.get('a')).toEqual(['1', '2'])
    expect(f.get('b')).toEqual([''])
    expect(f.get('c')).toEqual([''])
    expect(f.has('unsafe')).toBe(true)
    expect(f.has('d')).toBe(false)
  })

  it('drops pairs with a semicolon or a bad escape, decodes + and %XX', () => {
    const f = parseGoQuery('x=1;y=2&%zz=1&v=a+b%2Bc%3D&k=%E2%82%AC')
    expect(f.has('x')).toBe(false)
    expect(f.has('y')).toBe(false)
    expect(f.size).toBe(2)
    expect(f.get('v')).toEqual(['a b+c='])
    expect(f.get('k')).toEqual(['€'])
  })

  it('unescapes paths without turning + into a space', () => {
    expect(goUnescape('/a+b%2F', false)).toBe('/a+b/')
    expect(goUnescape('%4', false)).toBeUndefined()
    expect(parseTarget('/gettable?nid=n&tname=t')).toEqual({ path: '/gettable', rawQuery: 'nid=n&tname=t' })
    expect(parseTarget('http://h:1/ready?json')).toEqual({ path: '/ready', rawQuery: 'json' })
    expect(parseTarget('/%zz')).toBeUndefined()
  })

  it('cleans paths as ServeMux does before redirecting', () => {
    expect(cleanPath('/help')).toBe('/help')
    expect(cleanPath('//help')).toBe('/help')
    expect(cleanPath('/x/../help')).toBe('/help')
    expect(cleanPath('/join/')).toBe('/join/')
    expect(cleanPath('/a//b/')).toBe('/a/b/')
    expect(cleanPath('')).toBe('/')
  })
})

describe('reply shapes (libnetwork/diagnostic/types.go)', () => {
  it('OK without details is just OK; JSON details null', () => {
    expect(text(renderReply(ok(), 'text'))).toBe('OK')
    expect(text(renderReply(ok(), 'json'))).toBe('{"message":"OK","details":null}')
  })

  it('FAIL, usage and info forms', () => {
    expect(text(renderReply(fail('boom'), 'text'))).toBe('FAIL\nError: boom')
    expect(text(renderReply(fail('boom'), 'json'))).toBe('{"message":"FAIL","details":{"error":"boom"}}')
    const usage = wrongCommand('missing parameter', '/gettable?tname=table_name&nid=network_id')
    expect(text(renderReply(usage, 'text'))).toBe('missing parameter\nUsage: /gettable?tname=table_name&nid=network_id')
    // Go's encoder escapes & < > in strings
    expect(text(renderReply(usage, 'json'))).toBe(
      '{"message":"missing parameter","details":{"usage":"/gettable?tname=table_name\\u0026nid=network_id"}}',
    )
    expect(text(renderReply(ok(info('OK')), 'text'))).toBe('OK\nOK')
    expect(text(renderReply(ok(info('OK')), 'json-pretty'))).toBe(
      '{\n  "message": "OK",\n  "details": {\n    "info": "OK"\n  }\n}',
    )
  })

  it('tables of entries, raw values in unsafe mode', () => {
    const t = table([
      tableEntry(0, { key: 'k1', value: { base64: 'djE=' }, owner: 'node-a' }),
      tableEntry(1, { key: 'k2', value: { raw: new Uint8Array([0x76, 0xff]) }, owner: 'node-b' }),
    ])
    const body = renderReply(ok(t), 'text')
    expect(body).toEqual(
      Buffer.concat([
        Buffer.from('OK\ntotal entries: 2\n0) k:`k1` -> v:`djE=` owner:`node-a`\n1) k:`k2` -> v:`v'),
        Buffer.from([0xff]),
        Buffer.from('` owner:`node-b`\n'),
      ]),
    )
    expect(JSON.parse(text(renderReply(ok(t), 'json')))).toEqual({
      message: 'OK',
      details: {
        size: 2,
        entries: [
          { key: 'k1', value: 'djE=', owner: 'node-a' },
          { key: 'k2', value: 'v\ufffd', owner: 'node-b' },
        ],
      },
    })
    expect(text(renderReply(ok(table([])), 'json'))).toBe('{"message":"OK","details":{"size":0,"entries":null}}')
    expect(text(renderReply(ok(table([])), 'text'))).toBe('OK\ntotal entries: 0\n')
  })

  it('peers and network stats carry Docker keys and the intended ones', () => {
    const peers = table([peerEntry(0, { name: 'a', ip: '127.0.0.1' }), peerEntry(1, { name: 'orphan-b', ip: '' })])
    expect(text(renderReply(ok(peers), 'text'))).toBe(
      'OK\ntotal entries: 2\n0) a -> 127.0.0.1\n1) orphan-b -> invalid IP\n',
    )
    expect(
      (JSON.parse(text(renderReply(ok(peers), 'json'))) as { details: { entries: unknown } }).details.entries,
    ).toEqual([
      { '-=name': 'a', name: 'a', ip: '127.0.0.1' },
      { '-=name': 'orphan-b', name: 'orphan-b', ip: '' },
    ])
    expect(text(renderReply(ok(networkStats(3, -1)), 'text'))).toBe('OK\nentries: 3, qlen: -1\n')
    expect((JSON.parse(text(renderReply(ok(networkStats(3, 0)), 'json'))) as { details: unknown }).details).toEqual({
      entries: 3,
      QueueLen: 0,
      qlen: 0,
    })
  })

  it('registers Docker networkdb paths plus /stats', () => {
    expect(DIAGNOSTIC_PATHS).toEqual([
      '/',
      '/clusterpeers',
      '/createentry',
      '/deleteentry',
      '/getentry',
      '/gettable',
      '/help',
      '/join',
      '/joinnetwork',
      '/leavenetwork',
      '/networkpeers',
      '/networkstats',
      '/ready',
      '/stats',
      '/updateentry',
    ])
  })
})
