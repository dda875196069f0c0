import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { netnsAvailable } from '@cnm/test-utils'
import { CnmHarness, TCP_CLIENT, TCP_SERVER } from '../src/index.js'

// End to end through the `cnm` CLI and the daemon (a child process) on the real kernel; a test-made
// namespace plays the host. Traffic stays inside namespaces these tests create.
describe.skipIf(!netnsAvailable())('cnm daemon + CLI end to end', () => {
  let h: CnmHarness
  beforeEach(async () => {
    h = new CnmHarness()
    await h.start()
  })
  afterEach(async () => {
    await h.cleanup()
  })

  const node = process.execPath
  const server = (net: string, name: string, ip: string, extra: string[] = []) =>
    h.background(
      ['run', '--network', net, '--name', name, '--ip', ip, ...extra, '--', node, '-e', TCP_SERVER, '8080'],
      /listening/,
    )
  const clientRun = (net: string, target: string, port = '8080', ms = '3000') =>
    h.cli(['run', '--network', net, '--', node, '-e', TCP_CLIENT, target, port, ms])

  it('two sandboxes on one network exchange TCP; the server sandbox goes when its command ends', async () => {
    const created = await h.cli(['network', 'create', '--subnet', '10.123.1.0/24', 'front'])
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout.trim()).toMatch(/^[0-9a-f]{64}$/)
    const srv = await server('front', 'web', '10.123.1.10')

    const ls = await h.cli(['sandbox', 'ls', '--format', 'json'])
    const sbs = JSON.parse(ls.stdout) as Array<{ name: string; endpoints: Array<{ ipv4Address: string }> }>
    expect(sbs.map((s) => [s.name, s.endpoints[0]?.ipv4Address])).toEqual([['web', '10.123.1.10/24']])

    const r = await clientRun('front', '10.123.1.10')
    expect(r.code, r.stderr).toBe(0)
    expect(r.stdout).toBe('hello from web\necho ping\n')

    // the embedded resolver answers the server's name and alias, through the bind-mounted resolv.conf too
    const dns = await h.cli([
      'run',
      '--network',
      'front',
      '--',
      'sh',
      '-c',
      'dig +short +time=2 +tries=1 @127.0.0.11 web; getent hosts web',
    ])
    expect(dns.code, dns.stderr).toBe(0)
    expect(dns.stdout).toMatch(/^10\.123\.1\.10\n10\.123\.1\.10\s+web/)

    // the client's sandbox is gone, the server's stays while it runs
    expect((await h.client().listSandboxes()).map((s) => s.name)).toEqual(['web'])
    srv.child.kill('SIGTERM') // forwarded to the server by `cnm run`
    expect(await srv.exit).toBe(0)
    expect(await h.client().listSandboxes()).toEqual([])
    expect(await h.hostVeths()).toEqual([])
    expect(h.netnsFiles()).toEqual([])
  })

  it('cnm run returns the command exit code and sets up hosts, resolv.conf, hostname and routes', async () => {
    await h.cli(['network', 'create', '--subnet', '10.123.2.0/24', 'n'])
    const r = await h.cli([
      'run',
      '--network',
      'n',
      '--name',
      'probe',
      '--ip',
      '10.123.2.7',
      '--',
      'sh',
      '-c',
      'hostname; ip -4 -o addr show dev eth0; ip route show default; grep probe /etc/hosts; cat /etc/resolv.conf; exit 7',
    ])
    expect(r.code, r.stderr).toBe(7)
    expect(r.stdout).toContain('probe\n')
    expect(r.stdout).toMatch(/eth0\s+inet 10\.123\.2\.7\/24/)
    expect(r.stdout).toContain('default via 10.123.2.1 dev eth0')
    expect(r.stdout).toMatch(/10\.123\.2\.7\tprobe/)
    expect(r.stdout).toContain('nameserver 127.0.0.11')
    expect(await h.client().listSandboxes()).toEqual([])
    const killed = await h.cli(['run', '--network', 'n', '--', 'sh', '-c', 'kill -TERM $$'])
    expect(killed.code).toBe(128 + 15)
  })

  it('two networks cannot reach each other', async () => {
    await h.cli(['network', 'create', '--subnet', '10.123.3.0/24', 'red'])
    await h.cli(['network', 'create', '--subnet', '10.123.4.0/24', 'blue'])
    await server('red', 'redsrv', '10.123.3.10')
    // control: from the same network it answers
    const same = await clientRun('red', '10.123.3.10')
    expect(same.code, same.stderr).toBe(0)
    const cross = await clientRun('blue', '10.123.3.10', '8080', '1500')
    expect(cross.code).not.toBe(0)
    expect(cross.stdout).toBe('')
  })

  it('an internal network has no route out', async () => {
    await h.cli(['network', 'create', '--subnet', '10.123.5.0/24', 'outside'])
    const c = await h.cli(['network', 'create', '--internal', '--subnet', '10.123.6.0/24', 'vault'])
    expect(c.code, c.stderr).toBe(0)
    const inspect = JSON.parse((await h.cli(['network', 'inspect', 'vault'])).stdout) as Array<{ internal: boolean }>
    expect(inspect[0]?.internal).toBe(true)
    await server('outside', 'outsrv', '10.123.5.10')
    const routes = await h.cli([
      'run',
      '--network',
      'vault',
      '--',
      'sh',
      '-c',
      'ip route; ip route get 10.123.5.10 || echo unreachable',
    ])
    expect(routes.code, routes.stderr).toBe(0)
    expect(routes.stdout).not.toContain('default')
    expect(routes.stdout).toContain('unreachable')
    const out = await clientRun('vault', '10.123.5.10', '8080', '1500')
    expect(out.code).not.toBe(0)
    // the same server answers from a non-internal network
    expect((await clientRun('outside', '10.123.5.10')).code).toBe(0)
    // and internal sandboxes still talk among themselves
    await server('vault', 'vaultsrv', '10.123.6.10')
    expect((await clientRun('vault', '10.123.6.10')).stdout).toBe('hello from vaultsrv\necho ping\n')
  })

  it('a published port answers on the host; no firewall rule per container without ports', async () => {
    await h.cli(['network', 'create', '--subnet', '10.123.7.0/24', 'pub'])
    const base = await h.hostRules()
    const quiet = await server('pub', 'quiet', '10.123.7.9')
    expect(await h.hostRules()).toEqual(base)
    await server('pub', 'web', '10.123.7.10', ['-p', '18080:8080/tcp'])
    const rules = await h.hostRules()
    expect(rules.length).toBeGreaterThan(base.length)
    expect(rules.join('\n')).toContain('--to-destination 10.123.7.10:8080')
    const insp = JSON.parse((await h.cli(['sandbox', 'inspect', 'web'])).stdout) as Array<{
      endpoints: Array<{ ports: unknown[] }>
    }>
    expect(insp[0]?.endpoints[0]?.ports).toEqual([
      { proto: 'tcp', containerPort: 8080, hostIp: '0.0.0.0', hostPort: 18080 },
    ])
    const viaLoopback = await h.inHost(process.execPath, ['-e', TCP_CLIENT, '127.0.0.1', '18080'])
    expect(viaLoopback.code, viaLoopback.stderr).toBe(0)
    expect(viaLoopback.stdout).toBe('hello from web\necho ping\n')
    // the same port cannot be published twice
    const busy = await h.cli(['run', '--network', 'pub', '-p', '18080:8080', '--', 'true'])
    expect(busy.code).toBe(125)
    expect(busy.stderr).toMatch(/already allocated/)
    quiet.child.kill('SIGTERM')
    await quiet.exit
  })

  it('a restarted daemon still serves what it built', async () => {
    await h.cli(['network', 'create', '--subnet', '10.123.8.0/24', 'keep'])
    await server('keep', 'srv', '10.123.8.10', ['-p', '18081:8080'])
    const sb = await h.cli(['sandbox', 'create', '--name', 'idle', '--network', 'keep', '--ip', '10.123.8.20'])
    expect(sb.code, sb.stderr).toBe(0)
    const before = await h.client().listSandboxes()

    for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
      await h.stopDaemon(signal)
      await h.startDaemon()
      const after = await h.client().listSandboxes()
      expect(after).toEqual(before)
      expect((await h.cli(['network', 'ls', '--format', 'json'])).stdout).toContain('"name": "keep"')
      const r = await clientRun('keep', '10.123.8.10')
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toBe('hello from srv\necho ping\n')
      const p = await h.inHost(process.execPath, ['-e', TCP_CLIENT, '127.0.0.1', '18081'])
      expect(p.stdout).toBe('hello from srv\necho ping\n')
      // a new address never repeats one in use
      const fresh = await h.cli(['run', '--network', 'keep', '--', 'sh', '-c', 'echo $CNM_IPV4'])
      expect(['10.123.8.10', '10.123.8.20']).not.toContain(fresh.stdout.trim())
    }
    // a pair made in place by the previous process is destroyed on leave, not moved back to the host
    const veths = async (): Promise<number> =>
      (await h.inHost('ip', ['-o', 'link', 'show', 'type', 'veth'])).stdout.split('\n').filter(Boolean).length
    const joined = await veths()
    const stop = await h.cli(['sandbox', 'stop', 'idle'])
    expect(stop.code, stop.stderr).toBe(0)
    expect(await veths()).toBe(joined - 1)
    const start = await h.cli(['sandbox', 'start', 'idle'])
    expect(start.code, start.stderr).toBe(0)
    expect(await veths()).toBe(joined)
    const rm = await h.cli(['sandbox', 'rm', 'idle'])
    expect(rm.code, rm.stderr).toBe(0)
    expect(h.netnsFiles()).toHaveLength(1)
  })
})
