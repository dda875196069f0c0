import dnsPacket from 'dns-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { NetworkRecords, Resolver, SandboxRecords, hostSocketFactory } from '../src/index.js'
import type { ForwardSocketFactory } from '../src/index.js'
import { capturingLogger } from '@cnm/test-utils'
import type { ResolverInit, UpstreamServer } from '../src/index.js'
import { TestUpstream, answerA, answerRcode, blackhole, dig, query, startResolver, udpQuery } from './helpers.js'
import type { UpstreamBehaviour } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function records(): SandboxRecords {
  const n = new NetworkRecords('net1')
  n.addName('local1', '192.168.0.1')
  return new SandboxRecords([{ network: n }])
}

async function upstream(behaviour: UpstreamBehaviour): Promise<TestUpstream> {
  const u = await new TestUpstream('127.0.0.1', behaviour).start()
  cleanups.push(() => u.stop())
  return u
}

async function start(
  init: ResolverInit,
  recs = records(),
): Promise<{ port: number; r: Awaited<ReturnType<typeof startResolver>>['resolver'] }> {
  const { resolver, port } = await startResolver(recs, init)
  cleanups.push(() => resolver.stop())
  return { port, r: resolver }
}

const at = (u: { port: number }): UpstreamServer => ({ address: '127.0.0.1', port: u.port })

describe('forwarding rules (sandbox-dns.md §2.3)', () => {
  it('SERVFAIL from the first server: exactly two upstream queries, the second answer is returned', async () => {
    const a = await upstream(answerRcode(2))
    const b = await upstream(answerA('10.0.0.42'))
    const { port } = await start({ upstreams: [at(a), at(b)] })
    const r = await dig(['@127.0.0.1', '-p', String(port), 'host.example'])
    expect(r.status).toBe('NOERROR')
    expect(r.answer.map((x) => x.data)).toEqual(['10.0.0.42'])
    expect(a.queries).toHaveLength(1)
    expect(b.queries).toHaveLength(1)
  })

  it('non-authoritative NXDOMAIN moves on; authoritative NXDOMAIN stops', async () => {
    const a = await upstream(answerRcode(3, false))
    const b = await upstream(answerA('10.0.0.43'))
    const { port } = await start({ upstreams: [at(a), at(b)] })
    expect((await dig(['@127.0.0.1', '-p', String(port), 'x.example'])).answer.map((x) => x.data)).toEqual([
      '10.0.0.43',
    ])
    expect([a.queries.length, b.queries.length]).toEqual([1, 1])

    const c = await upstream(answerRcode(3, true))
    const d = await upstream(answerA('10.0.0.44'))
    const second = await start({ upstreams: [at(c), at(d)] })
    expect((await dig(['@127.0.0.1', '-p', String(second.port), 'y.example'])).status).toBe('NXDOMAIN')
    expect([c.queries.length, d.queries.length]).toEqual([1, 0])
  })

  it('when no server gives an accepted reply the last reply held is relayed', async () => {
    const a = await upstream(answerRcode(5)) // REFUSED
    const b = await upstream(answerRcode(2)) // SERVFAIL
    const { port } = await start({ upstreams: [at(a), at(b)] })
    expect((await dig(['@127.0.0.1', '-p', String(port), 'z.example'])).status).toBe('SERVFAIL')
    expect([a.queries.length, b.queries.length]).toEqual([1, 1])
  })

  it('no reply at all within the forward timeout: nothing is sent (the client times out)', async () => {
    const hole = await blackhole()
    cleanups.push(hole.close)
    const { port, r } = await start({ upstreams: [{ address: '127.0.0.1', port: hole.port }], forwardTimeoutMs: 300 })
    expect(await udpQuery(port, query('quiet.example'), 800)).toBeUndefined()
    expect(hole.received()).toBe(1)
    expect(r.stats().unanswered).toBe(1)
  })

  it('forwards with a fresh random id, restores the client id and validates the question', async () => {
    const seen: number[] = []
    const a = await upstream((q) => {
      seen.push(q.id ?? -1)
      return answerA('10.0.0.50')(q, 'udp')
    })
    const { port } = await start({ upstreams: [at(a)] })
    for (let i = 0; i < 5; i++) {
      const reply = await udpQuery(port, query('id.example', 'A', { id: 1000 + i }))
      const p = dnsPacket.decode(reply as Buffer)
      expect(p.id).toBe(1000 + i)
      expect(p.answers?.map((x) => x.data)).toEqual(['10.0.0.50'])
    }
    expect(seen.filter((id, i) => id === 1000 + i).length).toBeLessThan(2)
  })

  it('ignores a reply whose question does not match and takes the next server', async () => {
    const liar = await upstream(() => ({
      flags: dnsPacket.RECURSION_AVAILABLE,
      questions: [{ type: 'A', name: 'evil.example' }],
      answers: [{ type: 'A', name: 'evil.example', ttl: 60, data: '6.6.6.6' }],
    }))
    const honest = await upstream(answerA('10.0.0.60'))
    const { port, r } = await start({ upstreams: [at(liar), at(honest)], hedgeDelayMs: 50 })
    const res = await dig(['@127.0.0.1', '-p', String(port), 'good.example'])
    expect(res.answer.map((x) => x.data)).toEqual(['10.0.0.60'])
    expect(r.stats().spoofed).toBe(1)
    expect(liar.queries).toHaveLength(1)
  })

  it('reports A/AAAA answers of accepted forwarded replies to the record source', async () => {
    const n = new NetworkRecords('net1')
    n.addName('c1', '10.0.0.70')
    const recs = new SandboxRecords([{ network: n }])
    const a = await upstream(answerA('10.0.0.70'))
    const { port } = await start({ upstreams: [at(a)] }, recs)
    expect((await dig(['@127.0.0.1', '-p', String(port), '-x', '10.0.0.70'])).answer.map((x) => x.data)).toEqual([
      'c1.net1.',
    ])
    await dig(['@127.0.0.1', '-p', String(port), 'external.example'])
    // the address is now marked externally resolved: its PTR is forwarded
    await dig(['@127.0.0.1', '-p', String(port), '-x', '10.0.0.70'])
    expect(a.queries.map((q) => q.name)).toEqual(['external.example', '70.0.0.10.in-addr.arpa'])
  })
})

describe('hedging and upstream health', () => {
  it('a dead first upstream costs at most the hedge delay, and is skipped once known dead', async () => {
    const hole = await blackhole()
    cleanups.push(hole.close)
    const b = await upstream(answerA('10.0.0.80'))
    const hedge = 60
    const { port, r } = await start({
      upstreams: [{ address: '127.0.0.1', port: hole.port }, at(b)],
      hedgeDelayMs: hedge,
      upstreamFailThreshold: 2,
      probeIntervalMs: 60_000,
    })
    const times: number[] = []
    for (let i = 0; i < 6; i++) {
      const t0 = performance.now()
      const reply = await udpQuery(port, query(`h${i}.example`), 2000)
      times.push(performance.now() - t0)
      expect(dnsPacket.decode(reply as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.0.80'])
    }
    // the first queries wait for the hedge delay (plus scheduling slack), never for a timeout
    for (const t of times.slice(0, 2)) expect(t).toBeLessThan(hedge + 60)
    expect(times[0]).toBeGreaterThanOrEqual(hedge - 5)
    // after 2 lost races the dead server is skipped: later queries go straight to the live one
    expect(hole.received()).toBe(2)
    for (const t of times.slice(2)) expect(t).toBeLessThan(hedge / 2)
    expect(r.upstreamHealth().map((h) => h.healthy)).toEqual([false, true])
    expect(r.stats().hedged).toBe(2)
  })

  it('a skipped upstream is probed and used again once it answers', async () => {
    const hole = await blackhole()
    const holePort = hole.port
    const b = await upstream(async (q) => {
      await new Promise((res) => setTimeout(res, 5))
      return answerA('10.0.0.91')(q, 'udp')
    })
    const { port, r } = await start({
      upstreams: [{ address: '127.0.0.1', port: holePort }, at(b)],
      hedgeDelayMs: 30,
      upstreamFailThreshold: 1,
      probeIntervalMs: 100,
    })
    await udpQuery(port, query('p1.example'), 2000)
    expect(r.upstreamHealth()[0]?.healthy).toBe(false)
    // the dead server comes back on the same port
    await hole.close()
    const revived = await new TestUpstream('127.0.0.1', answerA('10.0.0.90')).start(holePort, undefined, { tcp: false })
    cleanups.push(() => revived.stop())
    await new Promise((res) => setTimeout(res, 120))
    // next query: the probe copy goes to the revived server and (being faster) wins
    const reply = await udpQuery(port, query('p2.example'), 2000)
    expect(dnsPacket.decode(reply as Buffer).answers?.length).toBe(1)
    expect(revived.queries.map((q) => q.name)).toEqual(['p2.example'])
    expect(r.upstreamHealth()[0]?.healthy).toBe(true)
    expect(r.stats().probes).toBe(1)
    const again = await udpQuery(port, query('p3.example'), 2000)
    expect(dnsPacket.decode(again as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.0.90'])
  })

  it('a server refusing with ICMP port unreachable fails over at once, without waiting for the hedge', async () => {
    const hole = await blackhole()
    const closedPort = hole.port
    await hole.close() // nothing listens there now: the kernel answers port unreachable
    const b = await upstream(answerA('10.0.0.95'))
    const { port } = await start({ upstreams: [{ address: '127.0.0.1', port: closedPort }, at(b)], hedgeDelayMs: 1000 })
    const t0 = performance.now()
    const reply = await udpQuery(port, query('refused.example'), 3000)
    expect(performance.now() - t0).toBeLessThan(500)
    expect(dnsPacket.decode(reply as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.0.95'])
  })
})

describe('forwarding sockets', () => {
  it('a socket factory that hangs fails the waiting queries after the open timeout (logged), the next open works', async () => {
    const a = await upstream(answerA('10.0.2.1'))
    const host = hostSocketFactory()
    let calls = 0
    const factory: ForwardSocketFactory = {
      udpSocket: (server) => (++calls === 1 ? new Promise(() => undefined) : host.udpSocket(server)),
      tcpConnect: (server, signal) => host.tcpConnect(server, signal),
    }
    const logger = capturingLogger()
    const r = new Resolver(
      { upstreams: [at(a)], forwardTimeoutMs: 300 },
      { logger, records: records(), listen: { udp: { address: '127.0.0.1', port: 0 } }, sockets: factory },
    )
    cleanups.push(() => r.stop())
    const t0 = performance.now()
    expect(await r.handle(query('hang.example'))).toBeUndefined()
    expect(performance.now() - t0).toBeLessThan(1000)
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('opening a forwarding socket'))).toBe(
      true,
    )
    const ok = await r.handle(query('ok.example'))
    expect(dnsPacket.decode(ok as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.2.1'])
    expect(calls).toBe(2)
  })
})

describe('source-port rotation', () => {
  it('replaces the forwarding socket after socketMaxQueries without losing or delaying queries', async () => {
    const a = await upstream(answerA('10.0.3.1'))
    const { port, r } = await start({ upstreams: [at(a)], socketMaxQueries: 5 })
    for (let i = 0; i < 30; i++) {
      const reply = await udpQuery(port, query(`rot${i}.example`), 1000)
      expect(dnsPacket.decode(reply as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.3.1'])
    }
    expect(new Set(a.queries.map((q) => q.fromPort)).size).toBeGreaterThanOrEqual(4)
    expect(r.stats()).toMatchObject({ unanswered: 0, socketOpenFailures: 0 })
    expect(r.stats().socketOpens).toBeGreaterThanOrEqual(4)
  })

  it('a replacement open that hangs does not stall queries: the current socket keeps serving', async () => {
    const a = await upstream(answerA('10.0.3.2'))
    const host = hostSocketFactory()
    let calls = 0
    const factory: ForwardSocketFactory = {
      udpSocket: (server) => (++calls === 2 ? new Promise(() => undefined) : host.udpSocket(server)),
      tcpConnect: (server, signal) => host.tcpConnect(server, signal),
    }
    const r = new Resolver(
      { upstreams: [at(a)], socketMaxQueries: 3, forwardTimeoutMs: 400 },
      {
        logger: capturingLogger(),
        records: records(),
        listen: { udp: { address: '127.0.0.1', port: 0 } },
        sockets: factory,
      },
    )
    cleanups.push(() => r.stop())
    for (let i = 0; i < 12; i++) {
      const t0 = performance.now()
      const out = await r.handle(query(`keep${i}.example`))
      expect(dnsPacket.decode(out as Buffer).answers?.map((x) => x.data)).toEqual(['10.0.3.2'])
      expect(performance.now() - t0).toBeLessThan(200)
      await new Promise((res) => setTimeout(res, 40))
    }
    expect(r.stats().socketOpenFailures).toBe(1)
    expect(r.stats().unanswered).toBe(0)
  })
})

describe('concurrency cap', () => {
  for (const action of ['servfail', 'drop'] as const) {
    it(`beyond maxConcurrentForwards queries get ${action} and are not sent upstream`, async () => {
      const hole = await blackhole()
      cleanups.push(hole.close)
      const { port, r } = await start({
        upstreams: [{ address: '127.0.0.1', port: hole.port }],
        maxConcurrentForwards: 5,
        overloadAction: action,
        forwardTimeoutMs: 1500,
      })
      const replies = await Promise.all(
        Array.from({ length: 12 }, (_, i) => udpQuery(port, query(`cap${i}.example`), action === 'drop' ? 600 : 1000)),
      )
      const got = replies.filter((x) => x !== undefined).map((x) => dnsPacket.decode(x as Buffer).rcode)
      if (action === 'servfail') expect(got).toEqual(Array(7).fill('SERVFAIL'))
      else expect(got).toEqual([])
      expect(hole.received()).toBe(5)
      expect(r.stats().overloaded).toBe(7)
      // local names are still answered while the cap is reached
      expect((await dig(['@127.0.0.1', '-p', String(port), 'local1'])).answer.map((x) => x.data)).toEqual([
        '192.168.0.1',
      ])
    })
  }
})

describe('default cap (spec case 13)', () => {
  it('1025 concurrent forwarded queries to a stalled upstream: the 1025th is not sent', async () => {
    const hole = await blackhole()
    cleanups.push(hole.close)
    const r = new Resolver(
      { upstreams: [{ address: '127.0.0.1', port: hole.port }], forwardTimeoutMs: 500 },
      { logger: capturingLogger(), records: records(), listen: { udp: { address: '127.0.0.1', port: 0 } } },
    )
    cleanups.push(() => r.stop())
    const replies = await Promise.all(Array.from({ length: 1025 }, (_, i) => r.handle(query(`stall${i}.example`))))
    const servfails = replies.filter((x) => x !== undefined).map((x) => dnsPacket.decode(x as Buffer).rcode)
    expect(servfails).toEqual(['SERVFAIL'])
    expect(r.stats()).toMatchObject({ upstreamQueries: 1024, overloaded: 1, unanswered: 1024 })
  })
})

describe('TCP', () => {
  it('forwards TCP queries over TCP', async () => {
    const a = await upstream(answerA('10.0.1.1'))
    const { port } = await start({ upstreams: [at(a)] })
    const r = await dig(['@127.0.0.1', '-p', String(port), '+tcp', 'tcp.example'])
    expect(r.answer.map((x) => x.data)).toEqual(['10.0.1.1'])
    expect(a.queries.map((q) => q.transport)).toEqual(['tcp'])
  })

  it('relays a truncated upstream reply; the client retries over TCP and gets the whole answer', async () => {
    const big = (q: Parameters<UpstreamBehaviour>[0], transport: 'udp' | 'tcp'): ReturnType<UpstreamBehaviour> => {
      const name = q.questions?.[0]?.name ?? ''
      if (transport === 'udp')
        return { flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.TRUNCATED_RESPONSE, answers: [] }
      return {
        flags: dnsPacket.RECURSION_AVAILABLE,
        answers: Array.from({ length: 80 }, (_, i) => ({
          type: 'A',
          name,
          ttl: 60,
          data: `10.3.${i >> 8}.${i & 255}`,
        })),
      }
    }
    const a = await upstream(big)
    const { port } = await start({ upstreams: [at(a)] })
    const r = await dig(['@127.0.0.1', '-p', String(port), 'big.example'])
    expect(r.answer).toHaveLength(80)
    expect(a.queries.map((q) => q.transport)).toEqual(['udp', 'tcp'])
  })

  it('answers several pipelined queries on one connection and closes idle connections', async () => {
    const { port, r } = await start({ tcpIdleTimeoutMs: 200 })
    const net = await import('node:net')
    const sock = net.connect(port, '127.0.0.1')
    cleanups.push(async () => void sock.destroy())
    const frames = [
      query('local1', 'A', { id: 1 }),
      query('local1', 'AAAA', { id: 2 }),
      query('nope', 'A', { id: 3 }),
    ].map((m) => {
      const f = Buffer.alloc(m.length + 2)
      f.writeUInt16BE(m.length)
      m.copy(f, 2)
      return f
    })
    const replies: number[] = []
    let buf = Buffer.alloc(0)
    const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()))
    sock.on('data', (c: Buffer) => {
      buf = Buffer.concat([buf, c])
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        replies.push(dnsPacket.decode(buf.subarray(2, 2 + buf.readUInt16BE(0))).id ?? -1)
        buf = buf.subarray(2 + buf.readUInt16BE(0))
      }
    })
    // split the frames at odd places: framing must not depend on packet boundaries
    const all = Buffer.concat(frames)
    sock.write(all.subarray(0, 1))
    await new Promise((res) => setTimeout(res, 20))
    sock.write(all.subarray(1, 40))
    await new Promise((res) => setTimeout(res, 20))
    sock.write(all.subarray(40))
    await closed
    expect(replies.sort()).toEqual([1, 2, 3])
    expect(r.stats().tcpConnections).toBe(1)
  })
})
