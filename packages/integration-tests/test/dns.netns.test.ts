import { afterEach, describe, expect, it, onTestFinished } from 'vitest'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { netnsAvailable } from '@cnm/test-utils'
import type { SandboxView } from '@cnm/cli'
import { CnmHarness, exec } from '../src/index.js'

// Service discovery through the real daemon (a child process) and `dig` run inside sandbox
// namespaces. A test-made namespace plays the host; forwarded names go to a test DNS server in a
// namespace of its own, reached through the host namespace (never a real outside server).
const UPSTREAM = '10.99.0.2'
const DEAD = '10.99.0.3' // inside the upstream veth's /24, nobody answers ARP for it: queries vanish

describe.skipIf(!netnsAvailable())('embedded DNS and sandbox files through the daemon', () => {
  let h: CnmHarness | undefined
  afterEach(async () => {
    await h?.cleanup()
    h = undefined
  })

  async function start(daemonArgs: string[] = ['--dns-upstream', UPSTREAM]): Promise<CnmHarness> {
    h = new CnmHarness({ daemonArgs })
    await h.start()
    return h
  }

  async function ok(args: string[]): Promise<string> {
    const r = await (h as CnmHarness).cli(args)
    expect(r.code, `cnm ${args.join(' ')}: ${r.stderr}`).toBe(0)
    return r.stdout
  }

  async function sandbox(args: string[]): Promise<SandboxView> {
    const out = await ok(['sandbox', 'create', '--format', 'json', ...args])
    return JSON.parse(out) as SandboxView
  }

  const ip = (sb: SandboxView, i = 0): string => (sb.endpoints[i]?.ipv4Address ?? '').replace(/\/\d+$/, '')

  it('answers A, AAAA, PTR and SRV for peers, case-insensitively, with and without the final dot, over UDP and TCP', async () => {
    const c = await start(['--dns-upstream', UPSTREAM, '--host-address', '192.0.2.1'])
    await c.upstreamDns({ 'outside.test': '198.51.100.7' })
    await ok(['network', 'create', '--ipv6', '--subnet', '10.126.1.0/24', '--subnet', 'fd00:126:1::/64', 'dual'])
    await ok(['network', 'create', '--subnet', '10.126.2.0/24', 'v4only'])
    const web = await sandbox([
      '--name',
      'web',
      '--network',
      'dual',
      '--ip',
      '10.126.1.10',
      '--alias',
      'www',
      '-p',
      '18100:8080/tcp',
      '-p',
      '0:5353/udp',
    ])
    const v6 = (web.endpoints[0]?.ipv6Address ?? '').replace(/\/\d+$/, '')
    expect(v6).toMatch(/^fd00:126:1::/)
    const client = await sandbox(['--name', 'client', '--network', 'dual'])
    const k = client.key

    for (const q of ['web', 'web.', 'WeB', 'WWW.', 'web.dual']) {
      const a = await c.dig(k, [q])
      expect(a.status, q).toBe('NOERROR')
      expect(a.answers, q).toEqual([[q.endsWith('.') ? q : `${q}.`, 'A', '10.126.1.10']])
      expect(a.flags).toEqual(expect.arrayContaining(['qr', 'rd', 'ra']))
    }
    const aaaa = await c.dig(k, ['AAAA', 'web'])
    expect(aaaa.answers).toEqual([['web.', 'AAAA', v6]])
    expect((await c.dig(k, ['-x', '10.126.1.10'])).answers).toEqual([['10.1.126.10.in-addr.arpa.', 'PTR', 'web.dual.']])
    const ptr6 = await c.dig(k, ['-x', v6])
    expect(ptr6.answers.map((x) => [x[1], x[2]])).toEqual([['PTR', 'web.dual.']])

    // SRV _<container port>._<proto>.<name>: the published ports, target and address in the additional section
    const srv = await c.dig(k, ['SRV', '_8080._tcp.web'])
    expect(srv.answers).toEqual([['_8080._tcp.web.', 'SRV', '0 0 8080 web.']])
    expect(srv.additional).toEqual(expect.arrayContaining([['web.', 'A', '10.126.1.10']]))
    expect((await c.dig(k, ['SRV', '_5353._udp.www'])).answers).toEqual([['_5353._udp.www.', 'SRV', '0 0 5353 web.']])
    // _host_<port>: the published host port at the node's address (--host-address)
    const hostSrv = await c.dig(k, ['SRV', '_host_8080._tcp.web'])
    expect(hostSrv.answers).toEqual([['_host_8080._tcp.web.', 'SRV', '0 0 18100 web.']])
    expect(hostSrv.additional).toEqual(expect.arrayContaining([['web.', 'A', '192.0.2.1']]))
    const noSrv = await c.dig(k, ['SRV', '_8080._udp.web'])
    expect(noSrv.status).toBe('NXDOMAIN')
    expect(noSrv.answers).toEqual([])

    // TCP
    const tcp = await c.dig(k, ['+tcp', 'web'])
    expect(tcp.answers).toEqual([['web.', 'A', '10.126.1.10']])
    const tcpSrv = await c.dig(k, ['+tcp', 'SRV', '_8080._tcp.web'])
    expect(tcpSrv.answers).toEqual([['_8080._tcp.web.', 'SRV', '0 0 8080 web.']])
    // repeated local names are answered by the native responder thread (built by `pnpm build`)
    const info = await c.client().info()
    expect(info.dns.fastPathAnswered).toBeGreaterThan(0)
    expect(info.dns.fastPathAnswered).toBeLessThanOrEqual(info.dns.local)

    // NODATA vs NXDOMAIN: an IPv4-only peer has no AAAA (not forwarded), MX of a local name is empty,
    // an unknown name is the upstream's NXDOMAIN
    const onlyV4 = await sandbox(['--name', 'four', '--network', 'v4only'])
    await ok(['network', 'connect', 'v4only', 'client'])
    const before = (await c.dig(k, ['AAAA', 'four'])).status
    expect(before).toBe('NOERROR')
    expect((await c.dig(k, ['AAAA', 'four'])).answers).toEqual([])
    expect((await c.dig(k, ['A', 'four'])).answers).toEqual([['four.', 'A', ip(onlyV4)]])
    const mx = await c.dig(k, ['MX', 'web'])
    expect([mx.status, mx.answers]).toEqual(['NOERROR', []])
    const nx = await c.dig(k, ['nosuch.test'])
    expect([nx.status, nx.answers]).toEqual(['NXDOMAIN', []])
    const nx2 = await c.dig(k, ['+tcp', 'nosuch-either.test'])
    expect(nx2.status).toBe('NXDOMAIN')

    // the same lookups through the sandbox's own resolv.conf (no @server), as a program would
    const viaConf = await c.cli([
      'exec',
      'client',
      '--',
      'sh',
      '-c',
      'dig +short web; dig +short +tcp www; getent ahostsv4 web | head -1; getent ahostsv6 web | head -1',
    ])
    expect(viaConf.code, viaConf.stderr).toBe(0)
    const lines = viaConf.stdout.split('\n')
    expect(lines.slice(0, 2)).toEqual(['10.126.1.10', '10.126.1.10'])
    expect(lines[2]).toMatch(/^10\.126\.1\.10\s+STREAM web$/)
    expect(lines[3]).toMatch(new RegExp(`^${v6}\\s+STREAM web$`))
  })

  it('EDNS0 sizes and truncation: a large answer is cut with TC over plain UDP and complete over TCP', async () => {
    const c = await start()
    await ok(['network', 'create', '--subnet', '10.126.3.0/22', 'big'])
    const client = await sandbox(['--name', 'asker', '--network', 'big'])
    // 40 sandboxes share the alias "pool": 40 A records (about 700 bytes) do not fit in 512
    const api = c.client()
    const all = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        api.createSandbox({ name: `p${i}`, networks: [{ network: 'big', aliases: ['pool'] }] }),
      ),
    )
    const want = all.map((s) => ip(s)).sort()
    const plain = await c.dig(client.key, ['+noedns', '+ignore', 'pool'])
    expect(plain.flags).toContain('tc')
    expect(plain.answers.length).toBeGreaterThan(0)
    expect(plain.answers.length).toBeLessThan(40)
    const edns = await c.dig(client.key, ['+bufsize=4096', 'pool'])
    expect(edns.flags).not.toContain('tc')
    expect(edns.answers.map((x) => x[2]).sort()).toEqual(want)
    const tcp = await c.dig(client.key, ['+tcp', 'pool'])
    expect(tcp.answers.map((x) => x[2]).sort()).toEqual(want)
    // dig's default retries a truncated answer over TCP on its own
    const auto = await c.dig(client.key, ['+noedns', 'pool'])
    expect(auto.answers).toHaveLength(40)
  })

  it('aliases appear on connect and go on disconnect; hosts files follow; search domains and ndots', async () => {
    const c = await start()
    const up = await c.upstreamDns({ 'outside.test': '198.51.100.7' })
    await ok(['network', 'create', '--subnet', '10.126.4.0/24', 'n1'])
    const asker = await sandbox([
      '--name',
      'asker',
      '--network',
      'n1',
      '--dns-search',
      'corp.example',
      '--dns-option',
      'ndots:1',
    ])
    await sandbox(['--name', 'svc', '--hostname', 'svchost', '--domainname', 'corp.example'])
    // not a local name yet: the user's ndots makes a single-label miss NODATA (not forwarded),
    // a dotted one goes to the upstream
    const miss = await c.dig(asker.key, ['api'])
    expect([miss.status, miss.answers]).toEqual(['NOERROR', []])
    expect((await c.dig(asker.key, ['api.n1'])).status).toBe('NXDOMAIN')
    expect(up.queries().some((l) => l.startsWith('query api.n1 '))).toBe(true)

    const ep = JSON.parse(
      await ok([
        'network',
        'connect',
        '--alias',
        'api',
        '--alias',
        'API2',
        '--ip',
        '10.126.4.20',
        '--format',
        'json',
        'n1',
        'svc',
      ]),
    ) as { ipv4Address: string }
    expect(ep.ipv4Address).toBe('10.126.4.20/24')
    for (const q of ['api', 'api2', 'svc', 'api.n1', 'api.corp.example']) {
      expect(
        (await c.dig(asker.key, [q])).answers.map((a) => a[2]),
        q,
      ).toEqual(['10.126.4.20'])
    }
    const svcView = JSON.parse(await ok(['sandbox', 'inspect', 'svc'])) as SandboxView[]
    const svc = svcView[0] as SandboxView
    expect(readFileSync(svc.hostsPath, 'utf8')).toBe(
      [
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        'fe00::0\tip6-localnet',
        'ff00::0\tip6-mcastprefix',
        'ff02::1\tip6-allnodes',
        'ff02::2\tip6-allrouters',
        '10.126.4.20\tsvchost.corp.example svchost',
        '',
      ].join('\n'),
    )

    // the search domain: a single-label name the user's ndots sends through the search list
    const viaSearch = await c.cli(['exec', 'asker', '--', 'sh', '-c', 'dig +short +search svc; cat /etc/resolv.conf'])
    expect(viaSearch.stdout).toBe('10.126.4.20\nsearch corp.example\nnameserver 127.0.0.11\noptions ndots:1\n')
    // ndots set by the user: an unknown single-label A query is NODATA, not forwarded
    const seen = up.queries().length
    const single = await c.dig(asker.key, ['nosuchhost'])
    expect([single.status, single.answers]).toEqual(['NOERROR', []])
    expect(up.queries()).toHaveLength(seen)

    await ok(['network', 'disconnect', 'n1', 'svc'])
    for (const q of ['api', 'svc']) expect((await c.dig(asker.key, [q])).answers, q).toEqual([])
    for (const q of ['api.n1', 'svc.n1']) expect((await c.dig(asker.key, [q])).status, q).toBe('NXDOMAIN')
    expect(readFileSync(svc.hostsPath, 'utf8')).not.toContain('10.126.4.20')
    expect(up.queries().some((l) => l.startsWith('query api '))).toBe(false)
  })

  it('writes hosts and resolv.conf as the spec says, keeps a user-edited resolv.conf, and cnm run mounts them', async () => {
    const c = await start()
    await ok(['network', 'create', '--subnet', '10.126.5.0/24', 'files'])
    const sb = await sandbox([
      '--name',
      'filed',
      '--hostname',
      'box',
      '--domainname',
      'example.com',
      '--network',
      'files',
      '--ip',
      '10.126.5.9',
      '--add-host',
      'db.local:10.1.2.3',
      '--add-host',
      'v6host:fd00::99',
      '--dns-search',
      'example.com',
      '--dns-search',
      'example.org',
    ])
    const hosts = [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
      '10.1.2.3\tdb.local',
      'fd00::99\tv6host',
      '10.126.5.9\tbox.example.com box',
      '',
    ].join('\n')
    expect(readFileSync(sb.hostsPath, 'utf8')).toBe(hosts)
    // user search domains: the upstream comes from the host's (here: --dns-upstream), the embedded resolver is listed
    const rc = 'search example.com example.org\nnameserver 127.0.0.11\noptions ndots:0\n'
    expect(readFileSync(sb.resolvConfPath, 'utf8')).toBe(rc)
    expect(sb.dns).toEqual(['127.0.0.11'])
    const inside = await c.cli(['exec', 'filed', '--', 'sh', '-c', 'cat /etc/hosts /etc/resolv.conf; hostname'])
    expect(inside.stdout).toBe(`${hosts}${rc}box\n`)

    // the user edits resolv.conf inside: a later join does not overwrite it
    await ok(['exec', 'filed', '--', 'sh', '-c', 'echo "nameserver 10.126.5.1" > /etc/resolv.conf'])
    await ok(['network', 'create', '--subnet', '10.126.6.0/24', 'files2'])
    await ok(['network', 'connect', '--ip', '10.126.6.9', 'files2', 'filed'])
    expect(readFileSync(sb.resolvConfPath, 'utf8')).toBe('nameserver 10.126.5.1\n')
    expect(readFileSync(sb.hostsPath, 'utf8')).toBe(hosts.replace('box\n', 'box\n10.126.6.9\tbox.example.com box\n'))

    // a sandbox without user networks: no embedded DNS, the host's servers (here --dns-upstream)
    const plain = await c.cli([
      'run',
      '--network',
      'none',
      '--',
      'sh',
      '-c',
      'cat /etc/resolv.conf; dig +time=1 +tries=1 @127.0.0.11 filed || echo no-resolver',
    ])
    expect(plain.stdout).toContain(`nameserver ${UPSTREAM}\n`)
    expect(plain.stdout).not.toContain('127.0.0.11\n')
    expect(plain.stdout).toContain('no-resolver')
    // bad ndots is refused before anything is made
    const bad = await c.cli(['sandbox', 'create', '--name', 'badndots', '--dns-option', 'ndots:-1'])
    expect(bad.code).toBe(1)
    expect(bad.stderr).toMatch(/invalid number for ndots/)
    expect((await c.client().listSandboxes()).map((s) => s.name)).toEqual(['filed'])
  })

  it('forwards unknown names to the upstream from inside the sandbox; a dead first upstream costs at most the hedge delay', async () => {
    // a hedge delay well above scheduling noise, so "waited for it" and "did not wait" are far apart
    const HEDGE = 250
    const c = await start(['--dns-upstream', DEAD, '--dns-upstream', UPSTREAM, '--dns-hedge-delay', String(HEDGE)])
    const up = await c.upstreamDns({ 'outside.test': '198.51.100.7', 'second.test': '198.51.100.8' })
    await ok(['network', 'create', '--subnet', '10.126.7.0/24', 'fw'])
    const sb = await sandbox(['--name', 'fwd', '--network', 'fw'])
    const first = await c.dig(sb.key, ['outside.test'])
    expect(first.answers).toEqual([['outside.test.', 'A', '198.51.100.7']])
    // the first query waited for the dead upstream for the hedge delay, and no longer
    expect(first.queryTimeMs).toBeGreaterThanOrEqual(HEDGE - 5)
    expect(first.queryTimeMs).toBeLessThan(HEDGE + 200)
    // it arrived masqueraded from the host namespace's side: sent from inside the sandbox, routed out
    expect(up.queries()).toContain('query outside.test 1 10.99.0.1')
    const tcp = await c.dig(sb.key, ['+tcp', 'second.test'])
    expect(tcp.answers).toEqual([['second.test.', 'A', '198.51.100.8']])
    for (let i = 0; i < 3; i++) expect((await c.dig(sb.key, [`n${i}.second.test`])).status).toBe('NXDOMAIN')
    // after a few unanswered queries the dead upstream is skipped: no hedge wait at all
    const later = await c.dig(sb.key, ['OUTSIDE.test.'])
    expect(later.answers).toEqual([['OUTSIDE.test.', 'A', '198.51.100.7']])
    expect(later.queryTimeMs).toBeLessThan(HEDGE / 2)

    // a per-sandbox --dns server replaces the daemon's upstreams for that sandbox's resolver
    const own = await sandbox(['--name', 'own', '--network', 'fw', '--dns', UPSTREAM])
    expect(readFileSync(own.resolvConfPath, 'utf8')).toBe('nameserver 127.0.0.11\noptions ndots:0\n')
    const viaOwn = await c.dig(own.key, ['second.test'])
    expect(viaOwn.answers).toEqual([['second.test.', 'A', '198.51.100.8']])
    expect(viaOwn.queryTimeMs).toBeLessThan(HEDGE / 2)
  })

  it("starts from the host's resolv.conf, filtered: loopback servers dropped from the files, used from the daemon's namespace", async () => {
    // 127.0.0.9: a host-loopback server (dropped from the sandboxes' files), listed after the test
    // upstream so that the forwarded query is answered before any hedge could reach it
    const dir = mkdtempSync(join(tmpdir(), 'cnm-rc-'))
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }))
    const hostFile = join(dir, 'resolv.conf')
    writeFileSync(
      hostFile,
      `# the host's file\nnameserver ${UPSTREAM}\nnameserver 127.0.0.9\nnameserver ::1\nsearch corp.example\noptions timeout:2 attempts:3\n`,
    )
    const c = await start(['--resolv-conf', hostFile])
    const up = await c.upstreamDns({ 'outside.test': '198.51.100.7' })
    await ok(['network', 'create', '--subnet', '10.126.9.0/24', 'rc'])
    const user = await sandbox(['--name', 'onuser', '--network', 'rc'])
    expect(readFileSync(user.resolvConfPath, 'utf8')).toBe(
      'search corp.example\nnameserver 127.0.0.11\noptions timeout:2 attempts:3 ndots:0\n',
    )
    const fwd = await c.dig(user.key, ['outside.test'])
    expect(fwd.answers).toEqual([['outside.test.', 'A', '198.51.100.7']])
    expect(up.queries()).toContain('query outside.test 1 10.99.0.1')
    // without a resolver (default bridge): the host's file without its loopback servers, the rest kept as it was
    const plain = await sandbox(['--name', 'onbridge', '--network', 'bridge'])
    expect(readFileSync(plain.resolvConfPath, 'utf8')).toBe(
      `# the host's file\nnameserver ${UPSTREAM}\nsearch corp.example\noptions timeout:2 attempts:3\n`,
    )
    expect(plain.dns).toEqual([UPSTREAM])
  })

  it('survives a fuzz run of 40,000 random and mutated packets sent to 127.0.0.11 from inside a sandbox', async () => {
    const c = await start()
    await c.upstreamDns({ 'outside.test': '198.51.100.7' })
    await ok(['network', 'create', '--subnet', '10.126.8.0/24', 'fz'])
    await sandbox(['--name', 'target', '--network', 'fz', '--ip', '10.126.8.10'])
    const att = await sandbox(['--name', 'attacker', '--network', 'fz'])
    const r = await exec('nsenter', [`--net=${att.key}`, '--', process.execPath, '-e', FUZZ, '40000'], {
      timeoutMs: 120_000,
    })
    expect(r.code, r.stderr).toBe(0)
    const report = JSON.parse(r.stdout.trim().split('\n').pop() as string) as {
      sent: number
      replies: number
      tcp: number
    }
    expect(report.sent).toBe(40_000)
    expect(report.tcp).toBeGreaterThan(0)
    // still answering, correctly, over both transports, local and forwarded
    expect((await c.dig(att.key, ['target'])).answers).toEqual([['target.', 'A', '10.126.8.10']])
    expect((await c.dig(att.key, ['+tcp', 'target'])).answers).toEqual([['target.', 'A', '10.126.8.10']])
    expect((await c.dig(att.key, ['outside.test'])).answers).toEqual([['outside.test.', 'A', '198.51.100.7']])
    const info = await c.client().info()
    // (the kernel may drop some datagrams when the socket buffer is full: most arrive)
    expect(info.dns.queries).toBeGreaterThan(20_000)
    expect(info.dns.errors).toBe(0)
    expect(c.daemon?.exitCode).toBe(null)
  })
})

/**
 * Fuzzer for `node -e` inside a sandbox: argv[1] packets to 127.0.0.11:53 over UDP, half random bytes,
 * half mutations of valid queries (bit flips, truncation, bogus counts, label and pointer loops, odd
 * EDNS), paced so the socket buffers do not simply drop them; plus a few hundred TCP connections
 * with garbage frames. Prints a JSON report as its last line.
 */
const FUZZ = `
const dgram = require('node:dgram'), net = require('node:net')
const N = Number(process.argv[1] || 40000)
let seed = 12345
const rnd = (n) => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
function name(s) { return Buffer.concat([...s.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)])), Buffer.from([0])]) }
function query(n, type, edns) {
  const h = Buffer.alloc(12); h.writeUInt16BE(rnd(65536), 0); h[2] = 1; h.writeUInt16BE(1, 4); if (edns) h.writeUInt16BE(1, 10)
  const q = Buffer.alloc(4); q.writeUInt16BE(type, 0); q.writeUInt16BE(1, 2)
  const opt = edns ? Buffer.from([0, 0, 41, 0x10, 0, 0, rnd(3), 0x80, 0, 0, 0]) : Buffer.alloc(0)
  return Buffer.concat([h, name(n), q, opt])
}
const names = ['target', 'attacker', 'outside.test', 'target.fz', '_80._tcp.target', 'x.y.z', 'TARGET']
const types = [1, 28, 12, 33, 15, 16, 255, 65, 0, 65535]
function mutate(b) {
  b = Buffer.from(b)
  switch (rnd(7)) {
    case 0: for (let i = 0; i < 1 + rnd(4); i++) b[rnd(b.length)] ^= 1 << rnd(8); return b
    case 1: return b.subarray(0, rnd(b.length))
    case 2: b.writeUInt16BE(rnd(65536), 4 + 2 * rnd(4)); return b
    case 3: b[12] = 0xc0; b[13] = 12; return b
    case 4: b[12] = 63; return Buffer.concat([b, Buffer.alloc(rnd(80), 0x41)])
    case 5: b[2] = rnd(256); b[3] = rnd(256); return b
    default: return Buffer.concat([b, Buffer.from(Array.from({ length: rnd(40) }, () => rnd(256)))])
  }
}
async function main() {
  const s = dgram.createSocket('udp4')
  let replies = 0
  s.on('message', () => { replies++ })
  s.on('error', () => {})
  await new Promise((r) => s.bind(0, r))
  let sent = 0
  while (sent < N) {
    const batch = []
    for (let i = 0; i < 200 && sent < N; i++, sent++) {
      const pkt = rnd(2) === 0
        ? Buffer.from(Array.from({ length: rnd(600) }, () => rnd(256)))
        : mutate(query(names[rnd(names.length)], types[rnd(types.length)], rnd(2) === 0))
      batch.push(new Promise((r) => s.send(pkt, 53, '127.0.0.11', () => r())))
    }
    await Promise.all(batch)
    await new Promise((r) => setTimeout(r, 2))
  }
  let tcp = 0
  for (let i = 0; i < 300; i++) {
    await new Promise((resolve) => {
      const c = net.connect(53, '127.0.0.11')
      c.on('connect', () => {
        tcp++
        const body = rnd(2) === 0 ? Buffer.from(Array.from({ length: rnd(300) }, () => rnd(256))) : mutate(query(names[rnd(names.length)], types[rnd(types.length)], true))
        const len = Buffer.alloc(2); len.writeUInt16BE(rnd(3) === 0 ? rnd(65536) : body.length)
        c.end(Buffer.concat([len, body]))
      })
      c.on('data', () => {})
      c.on('error', () => resolve())
      c.on('close', () => resolve())
      setTimeout(() => { c.destroy(); resolve() }, 300)
    })
  }
  await new Promise((r) => setTimeout(r, 300))
  s.close()
  console.log(JSON.stringify({ sent, replies, tcp }))
}
main().catch((e) => { console.error(e); process.exit(1) })
`
