import { afterEach, describe, expect, it } from 'vitest'
import { existsSync, readFileSync } from 'node:fs'
import { netnsAvailable } from '@cnm/test-utils'
import type { DaemonEvent, SandboxView } from '@cnm/cli'
import { CnmHarness, TCP_CLIENT, TCP_SERVER } from '../src/index.js'

// Sandbox stop/start with stable addresses and host ports, the default bridge network with legacy
// links (hosts files rewritten when a link target changes), and the /events stream: the real daemon
// as a child process, a test-made namespace playing the host.

/** For `cnm run -- node -e`: prints "ready", then the current /etc/hosts between markers on each SIGUSR1. */
const PRINT_HOSTS = `
const fs = require('node:fs')
process.on('SIGUSR1', () => console.log('<<' + fs.readFileSync('/etc/hosts', 'utf8') + '>>'))
process.on('SIGTERM', () => process.exit(0))
console.log('ready')
setInterval(() => {}, 1000)
`

describe.skipIf(!netnsAvailable())('sandbox lifecycle, default bridge and links, events', () => {
  let h: CnmHarness | undefined
  afterEach(async () => {
    await h?.cleanup()
    h = undefined
  })

  async function start(daemonArgs: string[] = []): Promise<CnmHarness> {
    h = new CnmHarness({ daemonArgs })
    await h.start()
    return h
  }
  async function ok(args: string[]): Promise<string> {
    const r = await (h as CnmHarness).cli(args)
    expect(r.code, `cnm ${args.join(' ')}: ${r.stderr}`).toBe(0)
    return r.stdout
  }
  async function inspect(name: string): Promise<SandboxView> {
    return (JSON.parse(await ok(['sandbox', 'inspect', name])) as SandboxView[])[0] as SandboxView
  }
  async function sandbox(args: string[]): Promise<SandboxView> {
    return JSON.parse(await ok(['sandbox', 'create', '--format', 'json', ...args])) as SandboxView
  }
  const node = process.execPath

  it('a stopped and started sandbox keeps its address and published host ports until it is removed', async () => {
    const c = await start()
    await ok(['network', 'create', '--subnet', '10.127.1.0/24', 'st'])
    const web = await sandbox([
      '--name',
      'web',
      '--network',
      'st',
      '--ip',
      '10.127.1.10',
      '-p',
      '0:8080',
      '-p',
      '18110:8081',
    ])
    const ports = web.endpoints[0]?.ports ?? []
    const eph = ports.find((p) => p.containerPort === 8080)?.hostPort as number
    expect(eph).toBeGreaterThan(1024)
    expect(ports.find((p) => p.containerPort === 8081)?.hostPort).toBe(18110)
    const asker = await sandbox(['--name', 'asker', '--network', 'st'])
    const srvBefore = await c.dig(asker.key, ['SRV', '_8080._tcp.web'])
    expect(srvBefore.answers).toEqual([['_8080._tcp.web.', 'SRV', '0 0 8080 web.']])

    expect((await ok(['sandbox', 'stop', 'web'])).trim()).toBe('web')
    const stopped = await inspect('web')
    expect(stopped).toMatchObject({ state: 'stopped', id: '', key: '' })
    expect(stopped.endpoints.map((e) => [e.ipv4Address, e.ports])).toEqual([['10.127.1.10/24', ports]])
    expect(existsSync(web.key)).toBe(false)
    expect((await c.hostRules()).join('\n')).not.toContain('10.127.1.10')
    expect((await c.dig(asker.key, ['web'])).answers).toEqual([])
    // a stopped sandbox's address and ports are still its own
    const ipTaken = await c.cli(['sandbox', 'create', '--name', 'thief', '--network', 'st', '--ip', '10.127.1.10'])
    expect(ipTaken.code).toBe(1)
    expect(ipTaken.stderr).toMatch(/in use|allocated/i)
    const portTaken = await c.cli(['sandbox', 'create', '--name', 'thief2', '--network', 'st', '-p', '18110:9000'])
    expect(portTaken.code).toBe(1)
    expect(portTaken.stderr).toMatch(/already allocated/)
    const other = await sandbox(['--name', 'other', '--network', 'st', '-p', '0:8080'])
    expect(other.endpoints[0]?.ports[0]?.hostPort).not.toBe(eph)
    // a preferred address is honoured or the call fails
    const outside = await c.cli(['sandbox', 'create', '--name', 'far', '--network', 'st', '--ip', '10.200.0.5'])
    expect(outside.code).toBe(1)
    const exact = await sandbox(['--name', 'exact', '--network', 'st', '--ip', '10.127.1.77'])
    expect(exact.endpoints[0]?.ipv4Address).toBe('10.127.1.77/24')
    // connect needs a running sandbox
    const conn = await c.cli(['network', 'connect', 'st', 'web'])
    expect(conn.code).toBe(1)
    expect(conn.stderr).toMatch(/is stopped/)

    const started = JSON.parse(JSON.stringify(await c.client().startSandbox('web'))) as SandboxView
    expect(started.state).toBe('running')
    expect(started.endpoints.map((e) => [e.ipv4Address, e.ports])).toEqual([['10.127.1.10/24', ports]])
    expect(existsSync(started.key)).toBe(true)
    const srv = await c.background(['exec', 'web', '--', node, '-e', TCP_SERVER, '8080'], /listening/)
    const viaPort = await c.inHost(node, ['-e', TCP_CLIENT, '127.0.0.1', String(eph)])
    expect(viaPort.stdout, viaPort.stderr).toBe('hello from web\necho ping\n')
    expect((await c.dig(asker.key, ['web'])).answers).toEqual([['web.', 'A', '10.127.1.10']])
    expect((await c.dig(asker.key, ['SRV', '_8080._tcp.web'])).answers).toEqual(srvBefore.answers)
    srv.child.kill('SIGTERM')
    await srv.exit

    // and again after a daemon crash: the kept endpoints survive it
    await c.stopDaemon('SIGKILL')
    await c.startDaemon()
    await ok(['sandbox', 'restart', 'web'])
    const again = await inspect('web')
    expect(again.endpoints.map((e) => [e.ipv4Address, e.ports])).toEqual([['10.127.1.10/24', ports]])
    // names still resolve: the restarted daemon's resolvers (the asker's kept its namespace)
    expect((await c.dig(asker.key, ['web'])).answers).toEqual([['web.', 'A', '10.127.1.10']])
    expect((await c.dig(again.key, ['asker'])).answers).toEqual([
      ['asker.', 'A', (asker.endpoints[0]?.ipv4Address ?? '').replace(/\/\d+$/, '')],
    ])
    const table = await ok(['sandbox', 'ls'])
    expect(table.split('\n')[0]).toMatch(/^SANDBOX ID\s+NAME\s+STATE\s+NETWORKS/)
    await ok(['sandbox', 'stop', 'web'])
    await c.stopDaemon('SIGTERM')
    await c.startDaemon()
    expect((await inspect('web')).state).toBe('stopped')
    await ok(['sandbox', 'start', 'web'])
    expect((await inspect('web')).endpoints[0]?.ports).toEqual(ports)

    // cnm run --keep stops its sandbox instead of removing it; rm releases everything
    const kept = await c.cli([
      'run',
      '--keep',
      '--name',
      'kept',
      '--network',
      'st',
      '--ip',
      '10.127.1.50',
      '--',
      'true',
    ])
    expect(kept.code, kept.stderr).toBe(0)
    expect((await inspect('kept')).state).toBe('stopped')
    await ok(['sandbox', 'rm', 'kept', 'web'])
    await sandbox(['--name', 'reuse', '--network', 'st', '--ip', '10.127.1.10', '-p', '18110:8081'])
  })

  it('the default bridge: no DNS names there, legacy links through hosts files rewritten when the target changes', async () => {
    const c = await start(['--bip', '10.127.9.1/24'])
    const nets = JSON.parse(await ok(['network', 'ls', '--format', 'json'])) as Array<{
      name: string
      options: Record<string, string>
      ipam: { config: Array<{ subnet: string; gateway: string }> }
    }>
    const bridge = nets.find((n) => n.name === 'bridge')
    expect(bridge?.options['com.docker.network.bridge.default_bridge']).toBe('true')
    expect(bridge?.ipam.config).toEqual([{ subnet: '10.127.9.0/24', gateway: '10.127.9.1' }])
    const rm = await c.cli(['network', 'rm', 'bridge'])
    expect(rm.code).toBe(1)
    expect(rm.stderr).toMatch(/default bridge/)

    await sandbox(['--name', 'db', '--network', 'bridge', '--ip', '10.127.9.20', '--hostname', 'dbhost'])
    const app = await c.background(
      ['run', '--name', 'app', '--link', 'db:database', '--', node, '-e', PRINT_HOSTS],
      /ready/,
    )
    const appView = await inspect('app')
    expect(appView.endpoints.map((e) => e.network)).toEqual(['bridge']) // `cnm run` defaults to the default bridge
    expect(appView.links).toEqual(['db:database'])
    const seen = async (): Promise<string> => {
      const before = app.output().split('<<').length
      app.child.kill('SIGUSR1')
      for (let i = 0; i < 100 && app.output().split('<<').length === before; i++)
        await new Promise((r) => setTimeout(r, 20))
      const all = app.output()
      return all.slice(all.lastIndexOf('<<') + 2, all.lastIndexOf('>>'))
    }
    const appIp = (appView.endpoints[0]?.ipv4Address ?? '').replace(/\/\d+$/, '')
    const defaults =
      '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\nfe00::0\tip6-localnet\nff00::0\tip6-mcastprefix\nff02::1\tip6-allnodes\nff02::2\tip6-allrouters\n'
    const hostsWith = (dbIp: string | undefined): string =>
      `${defaults}${dbIp === undefined ? '' : `${dbIp}\tdatabase dbhost db\n`}${appIp}\tapp\n`
    expect(await seen()).toBe(hostsWith('10.127.9.20'))
    expect(readFileSync(appView.hostsPath, 'utf8')).toBe(hostsWith('10.127.9.20'))
    // the default bridge has no embedded DNS: the host's servers (none in a test namespace), no 127.0.0.11
    expect(appView.dns).toEqual([])
    expect(readFileSync(appView.resolvConfPath, 'utf8')).not.toContain('127.0.0.11')

    // the target changes address: the linking sandbox's hosts file follows, seen by the running command
    await ok(['sandbox', 'rm', 'db'])
    expect(await seen()).toBe(hostsWith(undefined))
    await sandbox(['--name', 'db', '--network', 'bridge', '--ip', '10.127.9.30', '--hostname', 'dbhost'])
    expect(await seen()).toBe(hostsWith('10.127.9.30'))
    await ok(['network', 'disconnect', 'bridge', 'db'])
    await ok(['network', 'connect', '--ip', '10.127.9.40', 'bridge', 'db'])
    expect(await seen()).toBe(hostsWith('10.127.9.40'))
    // a stopped target keeps its address, and so does the link
    await ok(['sandbox', 'stop', 'db'])
    expect(await seen()).toBe(hostsWith('10.127.9.40'))
    await ok(['sandbox', 'start', 'db'])
    expect(await seen()).toBe(hostsWith('10.127.9.40'))

    // names on the default bridge do not resolve through DNS, even for a sandbox also on a user network
    await ok(['network', 'create', '--subnet', '10.127.10.0/24', 'user'])
    await sandbox(['--name', 'peer', '--network', 'user', '--ip', '10.127.10.5'])
    const both = await sandbox(['--name', 'both', '--network', 'bridge'])
    await ok(['network', 'connect', 'user', 'both'])
    expect((await inspect('both')).dns).toEqual(['127.0.0.11'])
    expect((await c.dig(both.key, ['peer'])).answers).toEqual([['peer.', 'A', '10.127.10.5']])
    for (const q of ['db', 'app', 'db.bridge']) expect((await c.dig(both.key, [q])).answers, q).toEqual([])
    expect((await c.dig(both.key, ['-x', '10.127.9.40'])).answers).toEqual([])
    // the same name on both networks: only the user network's address is answered
    await sandbox(['--name', 'dbuser', '--network', 'user', '--ip', '10.127.10.6', '--alias', 'db'])
    expect((await c.dig(both.key, ['db'])).answers).toEqual([['db.', 'A', '10.127.10.6']])

    // what links and the default bridge refuse
    const linkUser = await c.cli(['sandbox', 'create', '--name', 'l1', '--network', 'user', '--link', 'db'])
    expect([linkUser.code, linkUser.stderr]).toEqual([1, expect.stringMatching(/only on the default bridge/)])
    const linkPeer = await c.cli(['sandbox', 'create', '--name', 'l2', '--network', 'bridge', '--link', 'peer:p'])
    expect([linkPeer.code, linkPeer.stderr]).toEqual([1, expect.stringMatching(/not on the default bridge/)])
    const linkNone = await c.cli(['sandbox', 'create', '--name', 'l3', '--network', 'bridge', '--link', 'ghost'])
    expect([linkNone.code, linkNone.stderr]).toEqual([1, expect.stringMatching(/could not get container for ghost/)])
    const alias = await c.cli(['sandbox', 'create', '--name', 'l4', '--network', 'bridge', '--alias', 'x'])
    expect([alias.code, alias.stderr]).toEqual([
      1,
      expect.stringMatching(/aliases are supported only on user-defined networks/),
    ])
    expect((await c.client().listSandboxes()).map((s) => s.name).sort()).toEqual([
      'app',
      'both',
      'db',
      'dbuser',
      'peer',
    ])

    app.child.kill('SIGTERM')
    expect(await app.exit).toBe(0)
  })

  it('streams controller events on /events (client and `cnm events`)', async () => {
    const c = await start()
    const api = c.client()
    const ac = new AbortController()
    const got: DaemonEvent[] = []
    const reading = (async () => {
      for await (const e of api.events({ signal: ac.signal })) got.push(e)
    })().then(
      () => undefined,
      (err: unknown) => err,
    )
    const cli = c.background(['events'], /"network-(created|deleted)"/)
    const cliState: { now: 'starting' | 'ready' | Error } = { now: 'starting' }
    void cli.then(
      () => (cliState.now = 'ready'),
      (err: unknown) => (cliState.now = err as Error),
    )
    // wait until both streams are subscribed: probe network events show up in each
    let probe = false
    for (let i = 0; cliState.now !== 'ready' || !got.some((e) => e['name'] === 'probe'); i++) {
      if (cliState.now instanceof Error) throw cliState.now
      expect(i).toBeLessThan(300)
      if (i % 10 === 0) {
        if (probe) await api.removeNetwork('probe')
        else await api.createNetwork({ name: 'probe', ipam: { config: [{ subnet: '10.127.20.0/24' }] } })
        probe = !probe
      }
      await new Promise((r) => setTimeout(r, 20))
    }
    const net = await api.createNetwork({ name: 'ev', ipam: { config: [{ subnet: '10.127.21.0/24' }] } })
    const sb = await api.createSandbox({ name: 's1', networks: [{ network: 'ev' }] })
    const eid = sb.endpoints[0]?.id
    await api.stopSandbox('s1')
    const restarted = await api.startSandbox('s1')
    await api.removeSandbox('s1')
    await api.removeNetwork('ev')
    for (let i = 0; i < 100 && !got.some((e) => e.type === 'network-deleted' && e['networkId'] === net.id); i++)
      await new Promise((r) => setTimeout(r, 20))
    const mine = got
      .filter((e) => e['networkId'] === net.id || e['containerId'] === 's1')
      .map((e) => [e.type, e['sandboxId'] ?? e['endpointId'] ?? e['name'] ?? ''])
    expect(mine).toEqual([
      ['network-created', 'ev'],
      ['sandbox-created', sb.id],
      ['endpoint-created', eid],
      ['endpoint-joined', sb.id],
      ['records-changed', ''],
      ['endpoint-left', sb.id],
      ['records-changed', ''],
      ['sandbox-deleted', sb.id],
      ['sandbox-created', restarted.id],
      ['endpoint-joined', restarted.id],
      ['records-changed', ''],
      ['endpoint-left', restarted.id],
      ['records-changed', ''],
      ['endpoint-deleted', eid],
      ['sandbox-deleted', restarted.id],
      ['network-deleted', 'ev'],
    ])
    for (const e of got) expect(Number.isNaN(Date.parse(e.time))).toBe(false)
    // `cnm events` printed them as JSON lines and ends on SIGTERM
    const printed = await cli
    printed.child.kill('SIGTERM')
    expect(await printed.exit).toBe(0)
    const lines = printed
      .output()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as DaemonEvent)
    expect(lines.map((e) => e.type)).toEqual(
      expect.arrayContaining([
        'network-created',
        'sandbox-created',
        'endpoint-joined',
        'sandbox-deleted',
        'network-deleted',
      ]),
    )
    // the stream ends when the daemon stops
    await c.stopDaemon('SIGTERM')
    expect(await reading).toBeUndefined()
    ac.abort()
  })
})
