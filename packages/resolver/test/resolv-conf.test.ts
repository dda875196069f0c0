import { describe, expect, it } from 'vitest'
import {
  InvalidNdotsError,
  buildResolvConf,
  embeddedResolvConf,
  filterResolvConf,
  getNameservers,
  hashResolvConf,
  hostResolvConfPath,
  hostUpstreams,
  nameserversAsCidr,
  parseResolvConf,
} from '../src/index.js'

const ns0 = 'nameserver 10.16.60.14\nnameserver 10.16.60.21\n'

describe('resolv.conf parsing and building (§5.1)', () => {
  it('parses nameservers (v4, v6 with zone), the last search and options lines, comments anywhere', () => {
    const c =
      '# generated\nsearch a.example b.example\nnameserver 1.1.1.1 # primary\nnameserver fe80::1%eth0\n' +
      'nameserver bogus\nsearch c.example\noptions ndots:2 timeout:1\noptions rotate\n#nameserver 9.9.9.9\n'
    expect(parseResolvConf(c)).toEqual({
      nameservers: ['1.1.1.1', 'fe80::1%eth0'],
      search: ['c.example'],
      options: ['rotate'],
    })
    expect(getNameservers(c, 'ipv4')).toEqual(['1.1.1.1'])
    expect(getNameservers(c, 'ipv6')).toEqual(['fe80::1%eth0'])
    expect(nameserversAsCidr(c)).toEqual(['1.1.1.1/32', 'fe80::1/128'])
  })

  it('builds search, nameservers, options; search "." and empty lists are omitted', () => {
    expect(buildResolvConf({ nameservers: ['1.1.1.1', '::1'], search: ['x.example'], options: ['ndots:1'] })).toBe(
      'search x.example\nnameserver 1.1.1.1\nnameserver ::1\noptions ndots:1\n',
    )
    expect(buildResolvConf({ nameservers: ['1.1.1.1'], search: ['.'] })).toBe('nameserver 1.1.1.1\n')
    expect(hashResolvConf('abc')).toBe('sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
  })

  it('picks the systemd-resolved file when the only nameserver is the stub', () => {
    expect(hostResolvConfPath('nameserver 127.0.0.53\noptions edns0\n')).toBe('/run/systemd/resolve/resolv.conf')
    expect(hostResolvConfPath('nameserver 127.0.0.53\nnameserver 1.1.1.1\n')).toBe('/etc/resolv.conf')
    expect(hostResolvConfPath(undefined)).toBe('/etc/resolv.conf')
  })

  it('host upstreams: IPv4 servers, 127.x flagged host-loopback', () => {
    expect(hostUpstreams('nameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::1\n')).toEqual([
      { address: '127.0.0.53', hostLoopback: true },
      { address: '10.0.0.2' },
    ])
  })
})

describe('filter (§5.2, libnetwork filter table)', () => {
  const cases: Array<[string, boolean, string]> = [
    [ns0, false, ns0],
    ['nameserver 10.16.60.14\nnameserver 10.16.60.21\nnameserver 127.0.0.1\n', false, ns0],
    ['nameserver 10.16.60.14\nnameserver 127.0.0.1\nnameserver 10.16.60.21\n', false, ns0],
    ['nameserver 127.0.1.1\nnameserver 10.16.60.14\nnameserver 10.16.60.21\n', false, ns0],
    ['nameserver ::1\nnameserver 10.16.60.14\nnameserver 127.0.2.1\nnameserver 10.16.60.21\n', false, ns0],
    ['nameserver 10.16.60.14\nnameserver ::1\nnameserver 10.16.60.21\nnameserver ::1', false, ns0],
    ['nameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\nnameserver ::1', false, ns0],
    ['nameserver fe80::1%eth0\nnameserver 10.16.60.14\nnameserver 10.16.60.21\n', false, ns0],
    [
      'search example.com\nnameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\nnameserver ::1',
      true,
      'search example.com\nnameserver 10.16.60.14\nnameserver 2002:dead:beef::1\nnameserver 10.16.60.21\n',
    ],
    ['nameserver 127.0.1.1\n', false, '\nnameserver 8.8.8.8\nnameserver 8.8.4.4'],
    [
      'nameserver ::1\nnameserver 127.0.1.1\n',
      true,
      '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844',
    ],
    [
      '# keep me\nsearch a.example\nnameserver 127.0.0.53\noptions edns0 trust-ad\n',
      false,
      '# keep me\nsearch a.example\noptions edns0 trust-ad\n\nnameserver 8.8.8.8\nnameserver 8.8.4.4',
    ],
  ]
  it.each(cases)('%j (ipv6=%s)', (input, v6, expected) => {
    const out = filterResolvConf(input, v6)
    expect(out.content).toBe(expected)
    expect(out.hash).toBe(hashResolvConf(expected))
  })
})

describe('embedded resolver resolv.conf (§2.4)', () => {
  it('nameserver 127.0.0.11 + the IPv6 servers + search + options + ndots:0; upstreams from the IPv4 servers', () => {
    const rc = embeddedResolvConf('search s.example\nnameserver 10.0.0.2\nnameserver fd00::53\noptions timeout:2\n')
    expect(rc.content).toBe('search s.example\nnameserver 127.0.0.11\nnameserver fd00::53\noptions timeout:2 ndots:0\n')
    expect(rc.upstreams).toEqual([{ address: '10.0.0.2' }])
    expect(rc.ndotsSet).toBe(false)
    expect(rc.searchDomains).toEqual(['s.example'])
  })

  it('recorded servers win over the file; the user ndots stays alone and is remembered', () => {
    const rc = embeddedResolvConf('nameserver 10.0.0.2\noptions ndots:5\n', {
      recorded: [{ address: '127.0.0.53', hostLoopback: true }],
    })
    expect(rc.content).toBe('nameserver 127.0.0.11\noptions ndots:5\n')
    expect(rc.upstreams).toEqual([{ address: '127.0.0.53', hostLoopback: true }])
    expect(rc.ndotsSet).toBe(true)
  })

  it('ndots:foobar and ndots:-1 are errors', () => {
    expect(() => embeddedResolvConf('options ndots:foobar\n')).toThrow(InvalidNdotsError)
    expect(() => embeddedResolvConf('options ndots:-1\n')).toThrow(/invalid number for ndots option/)
  })
})
