import { randomInt } from 'node:crypto'
import { fstatSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { iptables } from '@cnm/iptables'
import { DnsResponderEngine, connectSocketInNetns, openSocketInNetns } from '@cnm/osl'
import { NetnsFixture, netnsAvailable, nsExec, run } from '@cnm/test-utils'
import { noopLogger } from '@cnm/types'
import { NetworkRecords, SandboxRecords, netnsSocketFactory, startSandboxResolver } from '../src/index.js'
import type { SandboxResolver, SandboxResolverComponents } from '../src/index.js'
import { TestUpstream, answerA, dig } from './helpers.js'

describe.skipIf(!netnsAvailable())('resolver inside a sandbox namespace', () => {
  let fx: NetnsFixture
  const cleanups: Array<() => Promise<void>> = []
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c()
      } catch {
        // keep cleaning up
      }
    }
    await fx.cleanup()
  })

  /** sandbox ns + "upstream" ns joined by a veth pair; an upstream DNS server on <subnet>.1:53 inside it. */
  async function topology(): Promise<{ sb: string; up: string; upIp: string; sbIp: string; upstream: TestUpstream }> {
    fx = new NetnsFixture('rsv')
    const sb = await fx.add('sb')
    const up = await fx.add('up')
    const subnet = `10.${randomInt(200, 250)}.${randomInt(0, 255)}`
    const sbIp = `${subnet}.2`
    const upIp = `${subnet}.1`
    await run('ip', ['-n', sb, 'link', 'add', 'va', 'type', 'veth', 'peer', 'name', 'vb', 'netns', up])
    await run('ip', ['-n', sb, 'addr', 'add', `${sbIp}/24`, 'dev', 'va'])
    await run('ip', ['-n', up, 'addr', 'add', `${upIp}/24`, 'dev', 'vb'])
    await run('ip', ['-n', sb, 'link', 'set', 'va', 'up'])
    await run('ip', ['-n', up, 'link', 'set', 'vb', 'up'])
    const udp = await openSocketInNetns(up, { type: 'udp4', address: upIp, port: 53 })
    const tcp = await openSocketInNetns(up, { type: 'tcp4', address: upIp, port: 53 })
    const upstream = await new TestUpstream(upIp, answerA('10.77.0.1')).start(0, { udp: udp.fd, tcp: tcp.fd, port: 53 })
    cleanups.push(() => upstream.stop())
    return { sb, up, upIp, sbIp, upstream }
  }

  function records(name: string, ip: string): SandboxRecords {
    const n = new NetworkRecords('net1')
    n.addName(name, ip)
    n.addService(name, 'http', 'tcp', { target: name, port: 80, addresses: [ip] })
    return new SandboxRecords([{ network: n }])
  }

  async function place(
    sb: string,
    recs: SandboxRecords,
    upstreams: Array<{ address: string; port?: number; hostLoopback?: boolean }>,
    extra: Partial<SandboxResolverComponents> = {},
  ): Promise<SandboxResolver> {
    const nat = iptables({ netns: sb, family: 4 }, { logger: noopLogger() })
    const r = await startSandboxResolver(
      { upstreams },
      { logger: noopLogger(), records: recs, netns: sb, openSocket: openSocketInNetns, nat, ...extra },
    )
    cleanups.push(() => r.stop())
    return r
  }

  it('answers dig @127.0.0.11 inside the namespace (UDP and TCP) and forwards from inside it', async () => {
    const { sb, upIp, sbIp, upstream } = await topology()
    const r = await place(sb, records('web', '192.168.50.2'), [{ address: upIp }])
    expect(r.udpPort).not.toBe(53)
    expect(r.tcpPort).not.toBe(53)

    const a = await dig(['@127.0.0.11', 'web'], { ns: sb })
    expect(a.answer).toEqual([{ name: 'web.', ttl: 600, type: 'A', data: '192.168.50.2' }])
    const t = await dig(['@127.0.0.11', '+tcp', 'WEB.'], { ns: sb })
    expect(t.answer.map((x) => x.data)).toEqual(['192.168.50.2'])
    const srv = await dig(['@127.0.0.11', '_http._tcp.web', 'SRV'], { ns: sb })
    expect(srv.answer.map((x) => x.data)).toEqual(['0 0 80 web.'])

    const f = await dig(['@127.0.0.11', 'host.example'], { ns: sb })
    expect(f.answer.map((x) => x.data)).toEqual(['10.77.0.1'])
    // the forwarded query left from inside the sandbox namespace (its veth address)
    expect(upstream.queries.map((q) => [q.name, q.from, q.transport])).toEqual([['host.example', sbIp, 'udp']])
    // without a connectSocket component, a TCP client query is forwarded over UDP from inside the namespace
    const ft = await dig(['@127.0.0.11', '+tcp', 'tcp.example'], { ns: sb })
    expect(ft.answer.map((x) => x.data)).toEqual(['10.77.0.1'])
    expect(upstream.queries.at(-1)).toMatchObject({ name: 'tcp.example', from: sbIp, transport: 'udp' })

    // the sandbox's own port 53 stays free
    const own = await openSocketInNetns(sb, { type: 'udp4', address: sbIp, port: 53 })
    const { closeSync } = await import('node:fs')
    closeSync(own.fd)

    const rules = await nsExec(sb, 'iptables', ['-t', 'nat', '-S'])
    expect(rules).toContain(`-A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT`)
    expect(rules).toContain(
      `-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:${r.udpPort}`,
    )
    expect(rules).toContain(
      `-A DOCKER_OUTPUT -d 127.0.0.11/32 -p tcp -m tcp --dport 53 -j DNAT --to-destination 127.0.0.11:${r.tcpPort}`,
    )
    expect(rules).toContain(
      `-A DOCKER_POSTROUTING -s 127.0.0.11/32 -p udp -m udp --sport ${r.udpPort} -j SNAT --to-source :53`,
    )

    await r.stop()
    const after = await nsExec(sb, 'iptables', ['-t', 'nat', '-S'])
    expect(after).not.toContain('DNAT')
    expect(after).not.toContain('SNAT')
    expect((await dig(['@127.0.0.11', 'web'], { ns: sb })).status).not.toBe('NOERROR')
  })

  it('one process serves several sandboxes, each with its own names; a host-loopback upstream is reached from the host namespace', async () => {
    const { sb, upIp } = await topology()
    const sb2 = await fx.add('sb2')
    const hostUp = await new TestUpstream('127.0.0.1', answerA('10.88.0.1')).start()
    cleanups.push(() => hostUp.stop())
    await place(sb, records('alpha', '192.168.60.2'), [{ address: upIp }])
    await place(sb2, records('beta', '192.168.61.2'), [{ address: '127.0.0.1', port: hostUp.port, hostLoopback: true }])
    expect((await dig(['@127.0.0.11', 'alpha'], { ns: sb })).answer.map((x) => x.data)).toEqual(['192.168.60.2'])
    expect((await dig(['@127.0.0.11', 'beta'], { ns: sb2 })).answer.map((x) => x.data)).toEqual(['192.168.61.2'])
    // beta is not a name of sb: forwarded to sb's upstream
    expect((await dig(['@127.0.0.11', 'beta'], { ns: sb })).answer.map((x) => x.data)).toEqual(['10.77.0.1'])
    // sb2 has no route anywhere, yet its host-loopback upstream answers (contacted from the host namespace)
    expect((await dig(['@127.0.0.11', 'x.example'], { ns: sb2 })).answer.map((x) => x.data)).toEqual(['10.88.0.1'])
    expect((await dig(['@127.0.0.11', '+tcp', 'y.example'], { ns: sb2 })).answer.map((x) => x.data)).toEqual([
      '10.88.0.1',
    ])
    expect(hostUp.queries.map((q) => [q.name, q.transport])).toEqual([
      ['x.example', 'udp'],
      ['y.example', 'tcp'],
    ])
  })

  it('forwards TCP queries over TCP from inside the namespace (connectSocket) and answers UDP through the native fast path', async () => {
    const { sb, upIp, sbIp, upstream } = await topology()
    const engine = new DnsResponderEngine()
    cleanups.push(async () => engine.close())
    const n = new NetworkRecords('net1')
    n.addName('web', '192.168.70.2')
    const recs = new SandboxRecords([{ network: n }])
    const r = await place(sb, recs, [{ address: upIp }], { connectSocket: connectSocketInNetns, fastPath: engine })

    const ft = await dig(['@127.0.0.11', '+tcp', 'tcp.example'], { ns: sb })
    expect(ft.answer.map((x) => x.data)).toEqual(['10.77.0.1'])
    expect(upstream.queries.map((q) => [q.name, q.from, q.transport])).toEqual([['tcp.example', sbIp, 'tcp']])
    // a UDP client query still goes over UDP
    expect((await dig(['@127.0.0.11', 'udp.example'], { ns: sb })).answer.map((x) => x.data)).toEqual(['10.77.0.1'])
    expect(upstream.queries.at(-1)).toMatchObject({ name: 'udp.example', transport: 'udp' })

    // local names: JS answers the first query, the native table the next ones, through the DNAT rules
    for (let i = 0; i < 3; i++) {
      expect((await dig(['@127.0.0.11', 'web'], { ns: sb })).answer.map((x) => x.data)).toEqual(['192.168.70.2'])
    }
    expect(r.resolver.stats().fastPathAnswered).toBe(2)
    n.removeName('web', '192.168.70.2')
    n.addName('web', '192.168.70.3')
    expect((await dig(['@127.0.0.11', 'web'], { ns: sb })).answer.map((x) => x.data)).toEqual(['192.168.70.3'])
    expect((await dig(['@127.0.0.11', '+tcp', 'web'], { ns: sb })).answer.map((x) => x.data)).toEqual(['192.168.70.3'])
    await r.stop()
    expect((await dig(['@127.0.0.11', 'web'], { ns: sb })).status).not.toBe('NOERROR')
  })

  it('netnsSocketFactory: a TCP connection that arrives after its abort is closed, never leaked', async () => {
    const { sb, upIp } = await topology()
    let late: number | undefined
    const slowConnect: typeof connectSocketInNetns = async (ns, opts) => {
      const s = await connectSocketInNetns(ns, opts)
      await new Promise((r) => setTimeout(r, 200))
      late = s.fd
      return s
    }
    const f = netnsSocketFactory({ netns: sb, openSocket: openSocketInNetns, connectSocket: slowConnect })
    const pending = f.tcpConnect({ address: upIp }, AbortSignal.timeout(50))
    expect(pending).toBeDefined()
    await expect(pending).rejects.toMatchObject({ code: 'ERR_ABORTED' })
    await new Promise((r) => setTimeout(r, 300))
    expect(late).toBeGreaterThan(2)
    expect(() => fstatSync(late as number)).toThrow(/EBADF/)
    // in time: a connected socket from inside the namespace
    const sock = await f.tcpConnect({ address: upIp }, AbortSignal.timeout(2000))
    expect(sock?.remoteAddress).toBe(upIp)
    sock?.destroy()
  })

  it('fails cleanly (ResolverNetnsError, nothing left behind) when the namespace does not exist', async () => {
    fx = new NetnsFixture('rsv')
    const nat = iptables({ netns: `${fx.prefix}-missing`, family: 4 }, { logger: noopLogger() })
    await expect(
      startSandboxResolver(
        {},
        {
          logger: noopLogger(),
          records: records('a', '10.0.0.1'),
          netns: `${fx.prefix}-missing`,
          openSocket: openSocketInNetns,
          nat,
        },
      ),
    ).rejects.toMatchObject({ code: 'ERR_RESOLVER_NETNS' })
  })
})
