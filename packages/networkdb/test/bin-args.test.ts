// cnm-gossip command line: accepted forms and every rejection (the executable maps UsageError to exit 2;
// bin.cluster.test.ts checks that on the built file).
import { describe, expect, it } from 'vitest'
import { UsageError, formatHostPort, parseGossipArgs } from '../src/diagnostic/gossip-args.js'

const KEY16 = Buffer.alloc(16, 7).toString('base64')
const KEY32 = Buffer.alloc(32, 9).toString('base64')

describe('parseGossipArgs', () => {
  it('parses a full command line', () => {
    const a = parseGossipArgs([
      '--name',
      'n1',
      '--bind',
      '127.0.0.1:0',
      '--advertise',
      '127.0.0.2:7000',
      '--join',
      '127.0.0.1:7946,localhost:8000,[::1]:7000,10.0.0.1',
      '--keys',
      `${KEY16},${KEY32}`,
      '--diag-port',
      '8081',
      '--networks',
      'net1,net2,net1',
      '--verbose',
    ])
    expect(a).toEqual({
      help: false,
      name: 'n1',
      bind: { addr: '127.0.0.1', port: 0 },
      advertise: { host: '127.0.0.2', port: 7000 },
      join: [
        { host: '127.0.0.1', port: 7946 },
        { host: 'localhost', port: 8000 },
        { host: '::1', port: 7000 },
        { host: '10.0.0.1', port: undefined },
      ],
      keys: [new Uint8Array(Buffer.alloc(16, 7)), new Uint8Array(Buffer.alloc(32, 9))],
      networks: ['net1', 'net2'],
      diagPort: 8081,
      diagHost: '127.0.0.1',
      verbose: true,
    })
  })

  it('defaults: no join, no keys, diagnostic port 0 on 127.0.0.1; IPv6 bind', () => {
    const a = parseGossipArgs(['--name=x', '--bind=[::1]:7946'])
    expect(a).toMatchObject({
      help: false,
      bind: { addr: '::1', port: 7946 },
      join: [],
      keys: [],
      networks: [],
      diagPort: 0,
      diagHost: '127.0.0.1',
      advertise: undefined,
    })
    expect(parseGossipArgs(['-h'])).toEqual({ help: true })
  })

  it.each([
    [['--bind', '127.0.0.1:0'], /--name is required/],
    [['--name', 'a'], /--bind is required/],
    [['--name', '', '--bind', '127.0.0.1:0'], /--name/],
    [['--name', 'a', '--bind', '127.0.0.1'], /has no port/],
    [['--name', 'a', '--bind', 'host:1'], /not an IP address/],
    [['--name', 'a', '--bind', '127.0.0.1:70000'], /out of range/],
    [['--name', 'a', '--bind', '127.0.0.1:x'], /not a number/],
    [['--name', 'a', '--bind', '0.0.0.0:7946'], /wildcard address/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--advertise', '0.0.0.0:1'], /not a routable/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--join', '127.0.0.1:1,,x:2'], /empty member/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--join', 'bad_host!:1'], /not HOST:PORT/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--keys', 'not-base64'], /key 1 is not valid base64/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--keys', Buffer.alloc(10).toString('base64')], /10 bytes/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--keys', `${KEY16},${KEY16}`], /twice/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--diag-port', '-1'], /--diag-port/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--networks', 'a,'], /empty network id/],
    [['--name', 'a', '--bind', '127.0.0.1:0', '--bogus'], /Unknown option '--bogus'/],
    [['--name', 'a', '--bind', '127.0.0.1:0', 'extra'], /positional/],
  ])('rejects %j', (argv, message) => {
    expect(() => parseGossipArgs(argv)).toThrow(UsageError)
    expect(() => parseGossipArgs(argv)).toThrow(message)
  })

  it('formats host:port with IPv6 brackets', () => {
    expect(formatHostPort('127.0.0.1', 1)).toBe('127.0.0.1:1')
    expect(formatHostPort('::1', 2)).toBe('[::1]:2')
  })
})
