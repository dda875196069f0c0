import dnsPacket from 'dns-packet'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import {
  InvalidResolverOptionError,
  NetworkRecords,
  Resolver,
  ResolverStoppedError,
  SandboxRecords,
} from '../src/index.js'
import type { DnsRecordSource } from '../src/index.js'
import { capturingLogger } from '@cnm/test-utils'
import { noopLogger } from '@cnm/types'
import { TestUpstream, answerA, answerRcode, dig, query, startResolver, udpQuery } from './helpers.js'
import type { UpstreamBehaviour } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function sandbox(): { net1: NetworkRecords; net2: NetworkRecords; records: SandboxRecords } {
  const net1 = new NetworkRecords('net1')
  const net2 = new NetworkRecords('net2')
  net1.addName('name1', '192.168.0.1')
  net1.addName('dual', '192.168.0.5')
  net1.addName('dual', 'fd00::5')
  net1.addName('web', '192.168.0.10')
  net1.addService('web', 'http', 'tcp', { target: 'web', port: 8080, addresses: ['192.168.0.10'] })
  net1.addService('web', 'host_http', 'tcp', { target: 'web', port: 32768, addresses: ['10.99.0.1'] })
  for (let i = 1; i <= 60; i++) net1.addName('many', `10.1.0.${i}`)
  for (let i = 1; i <= 5; i++) net1.addName('five', `10.2.0.${i}`)
  net2.addName('a.b', '172.20.0.7') // a dotted container name on network "c"-like tests below
  const netC = new NetworkRecords('c')
  netC.addName('a.b', '172.21.0.9')
  const records = new SandboxRecords([
    { network: net1, linkAliases: { db: 'name1' } },
    { network: net2 },
    { network: netC },
  ])
  return { net1, net2, records }
}

async function start(records: DnsRecordSource, init: ConstructorParameters<typeof Resolver>[0] = {}): Promise<number> {
  const { resolver, port } = await startResolver(records, init)
  cleanups.push(() => resolver.stop())
  return port
}

async function upstream(behaviour: UpstreamBehaviour): Promise<TestUpstream> {
  const u = await new TestUpstream('127.0.0.1', behaviour).start()
  cleanups.push(() => u.stop())
  return u
}

describe('local answers (dig)', () => {
  let port: number
  let up: TestUpstream
  let s: ReturnType<typeof sandbox>
  beforeEach(async () => {
    s = sandbox()
    up = await upstream(answerRcode(3, true))
    port = await start(s.records, { upstreams: [{ address: '127.0.0.1', port: up.port }] })
  })

  it('answers A case-insensitively, echoing the query spelling, TTL 600, RA set', async () => {
    const r = await dig(['@127.0.0.1', '-p', String(port), 'NaMe1'])
    expect(r.status).toBe('NOERROR')
    expect(r.flags).toEqual(expect.arrayContaining(['qr', 'rd', 'ra']))
    expect(r.flags).not.toContain('aa')
    expect(r.answer).toEqual([{ name: 'NaMe1.', ttl: 600, type: 'A', data: '192.168.0.1' }])
    const r2 = await dig(['@127.0.0.1', '-p', String(port), 'name1.'])
    expect(r2.answer.map((a) => a.data)).toEqual(['192.168.0.1'])
    expect(up.queries).toHaveLength(0)
  })

  it('answers AAAA and gives NODATA (not NXDOMAIN, not forwarded) for a type the name lacks', async () => {
    const v6 = await dig(['@127.0.0.1', '-p', String(port), 'dual', 'AAAA'])
    expect(v6.answer).toEqual([{ name: 'dual.', ttl: 600, type: 'AAAA', data: 'fd00::5' }])
    const nodata = await dig(['@127.0.0.1', '-p', String(port), 'name1', 'AAAA'])
    expect(nodata.status).toBe('NOERROR')
    expect(nodata.answer).toHaveLength(0)
    const mx = await dig(['@127.0.0.1', '-p', String(port), 'name1', 'MX'])
    expect(mx.status).toBe('NOERROR')
    expect(mx.answer).toHaveLength(0)
    const txt = await dig(['@127.0.0.1', '-p', String(port), 'name1', 'TXT'])
    expect(txt.status).toBe('NOERROR')
    expect(up.queries).toHaveLength(0)
  })

  it('forwards unknown names; the upstream NXDOMAIN is relayed', async () => {
    const r = await dig(['@127.0.0.1', '-p', String(port), 'nosuch.example'])
    expect(r.status).toBe('NXDOMAIN')
    expect(up.queries.map((q) => q.name)).toEqual(['nosuch.example'])
  })

  it('answers PTR for IPv4 and IPv6 container addresses, forwards unknown addresses', async () => {
    const r = await dig(['@127.0.0.1', '-p', String(port), '-x', '192.168.0.1'])
    expect(r.answer).toEqual([{ name: '1.0.168.192.in-addr.arpa.', ttl: 600, type: 'PTR', data: 'name1.net1.' }])
    const r6 = await dig(['@127.0.0.1', '-p', String(port), '-x', 'fd00::5'])
    expect(r6.answer.map((a) => a.data)).toEqual(['dual.net1.'])
    const upper = await dig(['@127.0.0.1', '-p', String(port), '1.0.168.192.IN-ADDR.ARPA', 'PTR'])
    expect(upper.answer.map((a) => a.data)).toEqual(['name1.net1.'])
    expect(up.queries).toHaveLength(0)
    const unknown = await dig(['@127.0.0.1', '-p', String(port), '-x', '192.168.0.99'])
    expect(unknown.status).toBe('NXDOMAIN')
    expect(up.queries.map((q) => q.name)).toEqual(['99.0.168.192.in-addr.arpa'])
  })

  it('answers SRV for published ports with the target address in the additional section', async () => {
    const r = await dig(['@127.0.0.1', '-p', String(port), '_http._tcp.web', 'SRV'])
    expect(r.status).toBe('NOERROR')
    expect(r.answer).toEqual([{ name: '_http._tcp.web.', ttl: 600, type: 'SRV', data: '0 0 8080 web.' }])
    expect(r.additional).toEqual([{ name: 'web.', ttl: 600, type: 'A', data: '192.168.0.10' }])
    const host = await dig(['@127.0.0.1', '-p', String(port), '_host_http._tcp.WEB.', 'SRV'])
    expect(host.answer.map((a) => a.data)).toEqual(['0 0 32768 web.'])
    expect(host.additional.map((a) => a.data)).toEqual(['10.99.0.1'])
    // an unsupported protocol under a local name: the name does not exist
    const icmp = await dig(['@127.0.0.1', '-p', String(port), '_http._icmp.web', 'SRV'])
    expect(icmp.status).toBe('NXDOMAIN')
    expect(icmp.answer).toHaveLength(0)
    // A for an SRV owner name: the name exists, no A data
    const a = await dig(['@127.0.0.1', '-p', String(port), '_http._tcp.web', 'A'])
    expect(a.status).toBe('NOERROR')
    expect(a.answer).toHaveLength(0)
    expect(up.queries).toHaveLength(0)
  })

  it('resolves name.network, dotted names on a network, and link aliases', async () => {
    const byNet = await dig(['@127.0.0.1', '-p', String(port), 'name1.net1'])
    expect(byNet.answer.map((a) => a.data)).toEqual(['192.168.0.1'])
    const dotted = await dig(['@127.0.0.1', '-p', String(port), 'a.b.c'])
    expect(dotted.answer.map((a) => a.data)).toEqual(['172.21.0.9'])
    const any = await dig(['@127.0.0.1', '-p', String(port), 'a.b'])
    expect(any.answer.map((a) => a.data)).toEqual(['172.20.0.7'])
    const alias = await dig(['@127.0.0.1', '-p', String(port), 'db'])
    expect(alias.answer.map((a) => a.data)).toEqual(['192.168.0.1'])
    expect(up.queries).toHaveLength(0)
  })

  it('truncates a large answer over UDP without EDNS to <= 512 bytes with TC; TCP gets it whole', async () => {
    const udp = await dig(['@127.0.0.1', '-p', String(port), '+noedns', '+ignore', 'many'])
    expect(udp.flags).toContain('tc')
    expect(udp.msgSize).toBeLessThanOrEqual(512)
    expect(udp.answer.length).toBeGreaterThan(0)
    expect(udp.answer.length).toBeLessThan(60)
    const retried = await dig(['@127.0.0.1', '-p', String(port), '+noedns', 'many'])
    expect(retried.answer).toHaveLength(60)
    expect(retried.flags).not.toContain('tc')
    const tcp = await dig(['@127.0.0.1', '-p', String(port), '+tcp', 'many'])
    expect(tcp.answer).toHaveLength(60)
    expect(new Set(tcp.answer.map((a) => a.data)).size).toBe(60)
  })

  it('honours the EDNS0 size, answers with an OPT record, and rejects EDNS versions > 0 with BADVERS', async () => {
    const small = await dig(['@127.0.0.1', '-p', String(port), '+bufsize=600', '+ignore', 'many'])
    expect(small.flags).toContain('tc')
    expect(small.msgSize).toBeLessThanOrEqual(600)
    expect(small.msgSize).toBeGreaterThan(512)
    const big = await dig(['@127.0.0.1', '-p', String(port), '+bufsize=4096', '+ignore', 'many'])
    expect(big.flags).not.toContain('tc')
    expect(big.answer).toHaveLength(60)
    expect(big.ednsUdp).toBe(1232)
    const plain = await dig(['@127.0.0.1', '-p', String(port), '+noedns', 'name1'])
    expect(plain.ednsUdp).toBeUndefined()
    const badvers = await dig(['@127.0.0.1', '-p', String(port), '+edns=1', '+noednsnegotiation', 'name1'])
    expect(badvers.status).toBe('BADVERS')
  })

  it('shuffles several addresses', async () => {
    const r = new Resolver(
      {},
      { logger: noopLogger(), records: s.records, listen: { udp: { address: '127.0.0.1', port: 0 } } },
    )
    cleanups.push(() => r.stop())
    const firsts = new Set<string>()
    for (let i = 0; i < 40; i++) {
      const p = dnsPacket.decode((await r.handle(query('five'))) as Buffer)
      const got = (p.answers ?? []).map((a) => String(a.data))
      expect([...got].sort()).toEqual(['10.2.0.1', '10.2.0.2', '10.2.0.3', '10.2.0.4', '10.2.0.5'])
      firsts.add(got[0] ?? '')
    }
    expect(firsts.size).toBeGreaterThan(1)
    const viaDig = await dig(['@127.0.0.1', '-p', String(port), 'five'])
    expect(viaDig.answer).toHaveLength(5)
  })

  it('sees record changes at once (generation)', async () => {
    expect((await dig(['@127.0.0.1', '-p', String(port), 'late'])).status).toBe('NXDOMAIN')
    s.net1.addName('late', '192.168.0.77')
    expect((await dig(['@127.0.0.1', '-p', String(port), 'late'])).answer.map((a) => a.data)).toEqual(['192.168.0.77'])
    s.net1.removeName('late', '192.168.0.77')
    expect((await dig(['@127.0.0.1', '-p', String(port), 'late'])).status).toBe('NXDOMAIN')
    expect(up.queries.filter((q) => q.name === 'late')).toHaveLength(2)
  })

  it('answers NOTIMP to other opcodes and forwards other classes', async () => {
    const r = await dig(['@127.0.0.1', '-p', String(port), '+opcode=status', 'name1'])
    expect(r.status).toBe('NOTIMP')
    const ch = await dig(['@127.0.0.1', '-p', String(port), '-c', 'CH', 'version.bind', 'TXT'])
    expect(ch.status).toBe('NXDOMAIN')
    expect(up.queries.map((q) => q.name)).toContain('version.bind')
  })
})

describe('resolver options', () => {
  it('answers <name>.<search domain> like <name>', async () => {
    const { records } = sandbox()
    const up = await upstream(answerRcode(3, true))
    const port = await start(records, {
      searchDomains: ['Example.COM.', 'corp.internal'],
      upstreams: [{ address: '127.0.0.1', port: up.port }],
    })
    const r = await dig(['@127.0.0.1', '-p', String(port), 'name1.example.com'])
    expect(r.answer).toEqual([{ name: 'name1.example.com.', ttl: 600, type: 'A', data: '192.168.0.1' }])
    const r2 = await dig(['@127.0.0.1', '-p', String(port), 'name1.corp.internal'])
    expect(r2.answer.map((a) => a.data)).toEqual(['192.168.0.1'])
    expect(up.queries).toHaveLength(0)
    expect((await dig(['@127.0.0.1', '-p', String(port), 'other.example.com'])).status).toBe('NXDOMAIN')
    expect(up.queries.map((q) => q.name)).toEqual(['other.example.com'])
  })

  it('with ndots set by the user answers single-label misses NODATA and forwards dotted ones', async () => {
    const { records } = sandbox()
    const up = await upstream(answerA('10.9.9.9'))
    const port = await start(records, { ndotsSet: true, upstreams: [{ address: '127.0.0.1', port: up.port }] })
    const single = await dig(['@127.0.0.1', '-p', String(port), 'foo'])
    expect(single.status).toBe('NOERROR')
    expect(single.answer).toHaveLength(0)
    expect(up.queries).toHaveLength(0)
    const dotted = await dig(['@127.0.0.1', '-p', String(port), 'foo.example'])
    expect(dotted.answer.map((a) => a.data)).toEqual(['10.9.9.9'])
    expect(up.queries.map((q) => q.name)).toEqual(['foo.example'])
  })

  it('without upstreams answers misses SERVFAIL (libnetwork without proxying)', async () => {
    const { records } = sandbox()
    const port = await start(records)
    expect((await dig(['@127.0.0.1', '-p', String(port), 'nonexistent', 'MX'])).status).toBe('SERVFAIL')
    expect((await dig(['@127.0.0.1', '-p', String(port), 'name1', 'MX'])).status).toBe('NOERROR')
  })

  it('SRV records are identical after a stop and a new start', async () => {
    const { records } = sandbox()
    const first = await startResolver(records)
    const a = await dig(['@127.0.0.1', '-p', String(first.port), '_http._tcp.web', 'SRV'])
    await first.resolver.stop()
    const second = await startResolver(records)
    cleanups.push(() => second.resolver.stop())
    const b = await dig(['@127.0.0.1', '-p', String(second.port), '_http._tcp.web', 'SRV'])
    expect(b.answer).toEqual(a.answer)
    expect(b.additional).toEqual(a.additional)
    expect(a.answer).toHaveLength(1)
  })

  it('validates options eagerly, naming the field', () => {
    const { records } = sandbox()
    const listen = { udp: { address: '127.0.0.1', port: 0 } }
    const mk = (init: object, l: object = listen): Resolver =>
      new Resolver(init as never, { logger: noopLogger(), records, listen: l as never })
    expect(() => mk({ hedgeDelayMs: 0 })).toThrow(/hedgeDelayMs/)
    expect(() => mk({ upstreams: [{ address: 'dns.google' }] })).toThrow(/upstreams\[0\]\.address/)
    expect(() => mk({ overloadAction: 'explode' })).toThrow(InvalidResolverOptionError)
    expect(() => mk({}, {})).toThrow(/components\.listen/)
    expect(() => mk({}, { udp: { address: 'x', port: 1 } })).toThrow(/components\.listen\.udp\.address/)
    expect(() => new Resolver({}, { logger: noopLogger(), records: {} as never, listen })).toThrow(/records/)
  })

  it('start/stop are idempotent; a stopped resolver refuses to start and to handle', async () => {
    const { records } = sandbox()
    const r = new Resolver({}, { logger: noopLogger(), records, listen: { udp: { address: '127.0.0.1', port: 0 } } })
    await r.stop() // never started: fine
    const r2 = new Resolver({}, { logger: noopLogger(), records, listen: { udp: { address: '127.0.0.1', port: 0 } } })
    await r2.start()
    await r2.start()
    expect(r2.addresses().udp?.port).toBeGreaterThan(0)
    await r2.stop()
    await r2.stop()
    await expect(r2.start()).rejects.toBeInstanceOf(ResolverStoppedError)
    await expect(r2.handle(query('name1'))).rejects.toBeInstanceOf(ResolverStoppedError)
  })

  it('a listener that cannot bind fails start with ResolverListenError and leaves nothing open', async () => {
    const { records } = sandbox()
    const { resolver: a, port } = await startResolver(records)
    cleanups.push(() => a.stop())
    const b = new Resolver(
      {},
      {
        logger: noopLogger(),
        records,
        listen: { udp: { address: '127.0.0.1', port: 0 }, tcp: { address: '127.0.0.1', port } },
      },
    )
    await expect(b.start()).rejects.toMatchObject({ code: 'ERR_RESOLVER_LISTEN' })
    expect(b.addresses()).toEqual({})
    await b.stop()
  })

  it('a record source that throws gives SERVFAIL and an error log, and the resolver keeps serving', async () => {
    const { records } = sandbox()
    let fail = true
    const flaky: DnsRecordSource = {
      get generation() {
        return records.generation
      },
      lookupName: (n) => {
        if (fail && n === 'boom') throw new Error('backend down')
        return records.lookupName(n)
      },
      lookupAddress: (a, v) => records.lookupAddress(a, v),
      lookupService: (n, s, p) => records.lookupService(n, s, p),
    }
    const logger = capturingLogger()
    const { resolver: r, port } = await startResolver(flaky, {}, logger)
    cleanups.push(() => r.stop())
    expect((await dig(['@127.0.0.1', '-p', String(port), 'boom'])).status).toBe('SERVFAIL')
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('record source failed'))).toBe(true)
    fail = false
    expect((await dig(['@127.0.0.1', '-p', String(port), 'name1'])).answer).toHaveLength(1)
  })

  it('handle() answers without sockets; replies keep the id and the question', async () => {
    const { records } = sandbox()
    const r = new Resolver({}, { logger: noopLogger(), records, listen: { udp: { address: '127.0.0.1', port: 0 } } })
    cleanups.push(() => r.stop())
    const q = query('Name1', 'A', { id: 4242 })
    const out = await r.handle(q)
    const p = dnsPacket.decode(out as Buffer)
    expect(p.id).toBe(4242)
    expect(p.questions).toEqual([{ name: 'Name1', type: 'A', class: 'IN' }])
    expect(p.answers?.map((a) => a.data)).toEqual(['192.168.0.1'])
    // a response is never answered; a message with no question gets no reply
    const resp = dnsPacket.encode({ type: 'response', id: 1, questions: [{ type: 'A', name: 'name1' }] })
    expect(await r.handle(resp)).toBeUndefined()
    expect(await r.handle(dnsPacket.encode({ type: 'query', id: 2, questions: [] }))).toBeUndefined()
    // garbage with a readable header: FORMERR with the id
    const junk = Buffer.from([0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x40, 0x41])
    const fe = dnsPacket.decode((await r.handle(junk)) as Buffer)
    expect(fe.id).toBe(0x1234)
    expect(fe.rcode).toBe('FORMERR')
    expect(r.stats()).toMatchObject({ dropped: 2, rejected: 1, local: 1 })
  })

  it('serves over UDP sockets the client sends from: replies go back to the sender', async () => {
    const { records } = sandbox()
    const port = await start(records)
    const reply = await udpQuery(port, query('web', 'A', { id: 7 }))
    expect(dnsPacket.decode(reply as Buffer).answers?.map((a) => a.data)).toEqual(['192.168.0.10'])
  })
})
