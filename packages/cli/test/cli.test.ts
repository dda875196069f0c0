import { describe, expect, it } from 'vitest'
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import {
  BadRequestError,
  DEFAULT_BRIDGE_OPTION,
  EXIT,
  isDefaultBridge,
  isDnsNetwork,
  parseLinks,
  connectSchema,
  createNetworkSchema,
  createSandboxSchema,
  exitCodeOf,
  main,
  parseBody,
  parseHost,
  sandboxArgv,
  type SandboxView,
} from '../src/index.js'
import { Router } from '../src/internal/http.js'
import { networksTable } from '../src/format.js'

function io(): { out: string[]; err: string[]; io: Parameters<typeof main>[1] } {
  const out: string[] = []
  const err: string[] = []
  return { out, err, io: { stdout: (s) => out.push(s), stderr: (s) => err.push(s), env: {} } }
}

describe('request schemas', () => {
  it('accept a full network request', () => {
    const b = parseBody(createNetworkSchema, {
      name: 'n1',
      driver: 'bridge',
      internal: true,
      options: { 'com.docker.network.bridge.name': 'br0' },
      ipam: { config: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1', ipRange: '10.1.0.128/25' }] },
    })
    expect(b.ipam?.config?.[0]?.subnet).toBe('10.1.0.0/24')
  })

  it.each([
    [{ name: 'n', colour: 'red' }, /unknown field "colour"/],
    [
      { name: 'n', ipam: { config: [{ subnet: '10.0.0.0/33' }] } },
      /ipam\.config\.0\.subnet: subnet is not a valid CIDR/,
    ],
    [{ name: 'n', ipam: { config: [{ gateway: '10.0.0.1' }] } }, /need a subnet/],
    [{ name: '' }, /network name must not be empty/],
    [{ name: 'a/b' }, /network name may contain only/],
    [{ name: 'n', internal: 1 }, /internal/],
    [[1, 2], /invalid request/],
  ])('reject %j', (body, message) => {
    expect(() => parseBody(createNetworkSchema, body)).toThrow(BadRequestError)
    expect(() => parseBody(createNetworkSchema, body)).toThrow(message)
  })

  it('check port bindings and addresses of connect and sandbox requests', () => {
    expect(
      parseBody(connectSchema, { sandbox: 's', portBindings: ['8080:80/tcp', { containerPort: 53, proto: 'udp' }] })
        .portBindings,
    ).toHaveLength(2)
    expect(() => parseBody(connectSchema, { sandbox: 's', portBindings: ['70000:80'] })).toThrow(/port binding/)
    expect(() => parseBody(connectSchema, { sandbox: 's', ipv4Address: '10.0.0.300' })).toThrow(
      /ipv4Address is not a valid IP/,
    )
    expect(() => parseBody(createSandboxSchema, { networks: [{ network: 'n', mtu: 1 }] })).toThrow(
      /unknown field "networks\.0\.mtu"/,
    )
  })
})

describe('links and network kinds', () => {
  it('parse name[:alias] links (a leading slash as Docker writes them)', () => {
    expect(parseLinks(['db:database', '/web', 'cache:cache'])).toEqual([
      { name: 'db', alias: 'database' },
      { name: 'web', alias: 'web' },
      { name: 'cache', alias: 'cache' },
    ])
    expect(parseBody(createSandboxSchema, { links: ['db:database', '/web'] }).links).toEqual(['db:database', '/web'])
    for (const bad of ['a:b:c', ':x', 'db:', 'd b']) {
      expect(() => parseBody(createSandboxSchema, { links: [bad] }), bad).toThrow(/link must look like name\[:alias\]/)
    }
  })
  it('tell the default bridge and the networks without DNS names', () => {
    const n = (type: string, name: string, options: Record<string, string> = {}) => ({
      type,
      name,
      driverOptions: options,
      ingress: false,
    })
    expect(isDefaultBridge(n('bridge', 'bridge', { [DEFAULT_BRIDGE_OPTION]: 'true' }))).toBe(true)
    expect(isDefaultBridge(n('bridge', 'bridge'))).toBe(false)
    expect(isDnsNetwork(n('bridge', 'front'))).toBe(true)
    expect(isDnsNetwork(n('bridge', 'bridge', { [DEFAULT_BRIDGE_OPTION]: 'true' }))).toBe(false)
    expect(isDnsNetwork(n('null', 'none'))).toBe(false)
    expect(isDnsNetwork(n('host', 'host'))).toBe(false)
    expect(isDnsNetwork(n('bridge', 'docker_gwbridge'))).toBe(false)
    expect(isDnsNetwork({ ...n('bridge', 'ingress'), ingress: true })).toBe(false)
  })
})

describe('router', () => {
  const noop = async (): Promise<undefined> => undefined
  const r = new Router().add('GET', '/networks/:id', noop).add('POST', '/networks/:id/connect', noop)
  it('matches patterns and decodes params', () => {
    expect(r.match('GET', '/networks/a%20b').params).toEqual({ id: 'a b' })
    expect(r.match('HEAD', '/networks/x').params).toEqual({ id: 'x' })
  })
  it('tells a wrong method (405) from an unknown path (404)', () => {
    expect(() => r.match('DELETE', '/networks/x')).toThrow(
      expect.objectContaining({ code: 'ERR_CLI_METHOD_NOT_ALLOWED', allow: ['GET'] }),
    )
    expect(() => r.match('GET', '/nope')).toThrow(
      expect.objectContaining({ code: 'ERR_CLI_ROUTE_NOT_FOUND', kind: 'not-found' }),
    )
  })
})

describe('client helpers', () => {
  it('parse daemon addresses', () => {
    expect(parseHost('/run/cnm/cnm.sock')).toEqual({ socketPath: '/run/cnm/cnm.sock' })
    expect(parseHost('unix:///tmp/x.sock')).toEqual({ socketPath: '/tmp/x.sock' })
    expect(parseHost('tcp://127.0.0.1:2375')).toEqual({ host: '127.0.0.1', port: 2375 })
    expect(() => parseHost('relative.sock')).toThrow(/absolute socket path/)
  })
  it('compute shell-style exit codes', () => {
    expect(exitCodeOf(3, null)).toBe(3)
    expect(exitCodeOf(null, 'SIGKILL')).toBe(137)
    expect(exitCodeOf(null, 'SIGTERM')).toBe(143)
  })
  it('build the in-sandbox argv', () => {
    const sb = {
      key: '/run/cnm/netns/abc',
      hostsPath: '/h',
      resolvConfPath: '/r',
      name: 'web',
      hostname: 'web',
    } as SandboxView
    expect(sandboxArgv(sb, ['echo', 'hi'], false)).toEqual(['nsenter', '--net=/run/cnm/netns/abc', '--', 'echo', 'hi'])
    const full = sandboxArgv(sb, ['echo', 'hi'], true)
    expect(full.slice(0, 6)).toEqual(['nsenter', '--net=/run/cnm/netns/abc', '--', 'unshare', '--mount', '--uts'])
    expect(full.slice(-5)).toEqual(['/h', '/r', 'web', 'echo', 'hi'])
  })
  it('render tables', () => {
    const t = networksTable([
      {
        id: 'a'.repeat(64),
        name: 'front',
        driver: 'bridge',
        scope: 'local',
        created: '',
        internal: false,
        enableIPv6: false,
        attachable: false,
        options: {},
        labels: {},
        ipam: { driver: 'default', options: {}, config: [{ subnet: '10.1.0.0/24', gateway: '10.1.0.1' }] },
        endpointCount: 2,
      },
    ])
    expect(t.split('\n')[0]).toMatch(/^NETWORK ID\s+NAME\s+DRIVER\s+SUBNET\s+GATEWAY\s+INTERNAL\s+ENDPOINTS$/)
    expect(t.split('\n')[1]).toMatch(/^aaaaaaaaaaaa\s+front\s+bridge\s+10\.1\.0\.0\/24\s+10\.1\.0\.1\s+no\s+2$/)
  })
})

describe('command line without a daemon', () => {
  it('usage errors exit 2', async () => {
    for (const argv of [
      ['frobnicate'],
      ['network', 'create'],
      ['network', 'ls', '--format', 'yaml'],
      ['run', '--network', 'n'],
    ]) {
      const t = io()
      expect(await main(argv, t.io), argv.join(' ')).toBe(EXIT.usage)
      expect(t.err.join('')).not.toBe('')
    }
    const t = io()
    expect(await main(['network', 'create', '--gateway', '10.0.0.1', 'n', '--host', '/nonexistent.sock'], t.io)).toBe(
      EXIT.usage,
    )
    expect(t.err.join('')).toMatch(/every --gateway needs a --subnet/)
  })
  it('an unreachable daemon exits 3 (and 3 for cnm run too)', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'cnm-cli-')), 'none.sock')
    const t = io()
    expect(await main(['--host', sock, 'network', 'ls'], t.io)).toBe(EXIT.unreachable)
    expect(t.err.join('')).toMatch(/cannot connect to the cnm daemon/)
    expect(await main(['--host', sock, 'run', '--', 'true'], io().io)).toBe(EXIT.unreachable)
  })
  it('new flags check their values before anything happens', async () => {
    const cases: Array<[string[], RegExp]> = [
      [['run', '--add-host', 'nocolon', '--', 'true'], /--add-host must be name:ip/],
      [['sandbox', 'create', '--add-host', 'x:'], /--add-host must be name:ip/],
      [['daemon', '--dns-hedge-delay', 'soon'], /--dns-hedge-delay must be a number/],
      [['daemon', '--bip', '10.0.0.0'], /bip must be an IPv4 address with a prefix length/],
      [['daemon', '--bridge', 'a-name-longer-than-15'], /bridge must be an interface name/],
      [['daemon', '--dns-hedge-delay', '0'], /dnsHedgeDelayMs must be an integer between 1 and 10000/],
      [['daemon', '--host-address', 'nowhere'], /hostAddress is not an IP address/],
    ]
    for (const [argv, message] of cases) {
      const t = io()
      expect(await main(argv, t.io), argv.join(' ')).toBe(EXIT.usage)
      expect(t.err.join(''), argv.join(' ')).toMatch(message)
    }
  })
  it('exec and the sandbox lifecycle commands need a daemon (exit 3) and their arguments (exit 2)', async () => {
    const sock = join(mkdtempSync(join(tmpdir(), 'cnm-cli-')), 'none.sock')
    for (const argv of [
      ['sandbox', 'stop', 'x'],
      ['sandbox', 'start', 'x'],
      ['sandbox', 'restart', 'x'],
      ['exec', 'x', '--', 'true'],
      ['events'],
      ['info'],
    ]) {
      expect(await main(['--host', sock, ...argv], io().io), argv.join(' ')).toBe(EXIT.unreachable)
    }
    for (const argv of [
      ['sandbox', 'stop'],
      ['exec', 'x'],
    ])
      expect(await main(argv, io().io), argv.join(' ')).toBe(EXIT.usage)
  })
  it('help and version exit 0', async () => {
    const t = io()
    expect(await main(['--help'], t.io)).toBe(0)
    expect(t.out.join('')).toMatch(/Usage: cnm/)
    expect(await main(['--version'], io().io)).toBe(0)
  })
})
