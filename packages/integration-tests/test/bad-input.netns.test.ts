import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { netnsAvailable } from '@cnm/test-utils'
import { ApiResponseError, type CnmClient } from '@cnm/cli'
import { CnmHarness } from '../src/index.js'

// Every route and CLI command rejects bad input with a clear message, the matching HTTP status (or
// exit code) and no state change: the API's view, the host namespace's links and firewall, and the
// sandbox namespaces are compared before and after each rejected request.
describe.skipIf(!netnsAvailable())('bad input is rejected without a state change', () => {
  let h: CnmHarness
  let c: CnmClient
  beforeAll(async () => {
    h = new CnmHarness()
    await h.start()
    c = h.client()
    await c.createNetwork({ name: 'good', ipam: { config: [{ subnet: '10.125.0.0/24' }] } })
    await c.createSandbox({ name: 'sb1', networks: [{ network: 'good', portBindings: ['19000:80'] }] })
    await c.createSandbox({ name: 'sb2' })
  })
  afterAll(async () => {
    await h.cleanup()
  })

  async function snapshot(): Promise<unknown> {
    const { stdout: links } = await h.inHost('ip', ['-o', 'link'])
    return {
      networks: await c.listNetworks(),
      sandboxes: await c.listSandboxes(),
      links: links.split('\n').map((l) => l.replace(/^\d+: /, '').split(' ')[0]),
      rules: await h.hostRules(),
      netns: h.netnsFiles(),
    }
  }

  async function raw(
    method: string,
    path: string,
    body?: string,
    contentType = 'application/json',
  ): Promise<{ status: number; json: { message: string; code: string; kind: string } }> {
    const http = await import('node:http')
    return await new Promise((resolve, reject) => {
      const req = http.request(
        {
          socketPath: h.socket,
          method,
          path,
          headers: body === undefined ? {} : { 'content-type': contentType, 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          let t = ''
          res.on('data', (d: Buffer) => (t += d.toString()))
          res.on('end', () =>
            resolve({
              status: res.statusCode ?? 0,
              json: JSON.parse(t) as { message: string; code: string; kind: string },
            }),
          )
        },
      )
      req.on('error', reject)
      req.end(body)
    })
  }

  const cases: Array<[what: string, method: string, path: string, body: unknown, status: number, message: RegExp]> = [
    ['unknown network (inspect)', 'GET', '/networks/nope', undefined, 404, /network nope not found/],
    ['unknown network (delete)', 'DELETE', '/networks/nope', undefined, 404, /not found/],
    ['unknown network (connect)', 'POST', '/networks/nope/connect', { sandbox: 'sb2' }, 404, /network nope not found/],
    [
      'unknown network (sandbox create)',
      'POST',
      '/sandboxes',
      { name: 'x1', networks: [{ network: 'nope' }] },
      404,
      /network nope not found/,
    ],
    [
      'unknown sandbox (connect)',
      'POST',
      '/networks/good/connect',
      { sandbox: 'ghost' },
      404,
      /no such sandbox: ghost/,
    ],
    ['unknown sandbox (delete)', 'DELETE', '/sandboxes/ghost', undefined, 404, /no such sandbox/],
    ['not connected (disconnect)', 'POST', '/networks/good/disconnect', { sandbox: 'sb2' }, 404, /not connected/],
    [
      'overlapping subnet',
      'POST',
      '/networks',
      { name: 'ov', ipam: { config: [{ subnet: '10.125.0.128/25' }] } },
      403,
      /overlaps/,
    ],
    [
      'bad CIDR',
      'POST',
      '/networks',
      { name: 'bad', ipam: { config: [{ subnet: '10.125.300.0/24' }] } },
      400,
      /not a valid CIDR/,
    ],
    [
      'bad prefix length',
      'POST',
      '/networks',
      { name: 'bad', ipam: { config: [{ subnet: '10.1.0.0/33' }] } },
      400,
      /not a valid CIDR/,
    ],
    [
      'gateway outside subnet',
      'POST',
      '/networks',
      { name: 'gw', ipam: { config: [{ subnet: '10.126.0.0/24', gateway: '10.127.0.1' }] } },
      400,
      /gateway|subnet|pool/i,
    ],
    ['duplicate network name', 'POST', '/networks', { name: 'good' }, 409, /already exists/],
    ['unknown driver', 'POST', '/networks', { name: 'dd', driver: 'warp' }, 404, /driver/],
    [
      'duplicate endpoint name',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', name: 'sb1' },
      403,
      /already exists/,
    ],
    [
      'address in use',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', ipv4Address: '10.125.0.2' },
      403,
      /in use|allocated|unavailable/i,
    ],
    [
      'address outside the subnet',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', ipv4Address: '10.99.0.2' },
      400,
      /./,
    ],
    [
      'busy host port',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', portBindings: ['19000:80'] },
      409,
      /already allocated/,
    ],
    [
      'busy host port (sandbox create)',
      'POST',
      '/sandboxes',
      { name: 'x2', networks: [{ network: 'good', portBindings: ['19000:81'] }] },
      409,
      /already allocated/,
    ],
    [
      'bad port binding',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', portBindings: ['99999:80'] },
      400,
      /port binding/,
    ],
    ['unknown field (network)', 'POST', '/networks', { name: 'uf', colour: 'red' }, 400, /unknown field "colour"/],
    [
      'unknown nested field',
      'POST',
      '/networks',
      { name: 'uf', ipam: { config: [{ subnet: '10.128.0.0/24', size: 3 }] } },
      400,
      /unknown field "ipam.config.0.size"/,
    ],
    [
      'unknown field (connect)',
      'POST',
      '/networks/good/connect',
      { sandbox: 'sb2', mtu: 9000 },
      400,
      /unknown field "mtu"/,
    ],
    [
      'unknown field (sandbox)',
      'POST',
      '/sandboxes',
      { name: 'x3', privileged: true },
      400,
      /unknown field "privileged"/,
    ],
    ['wrong type', 'POST', '/networks', { name: 'wt', internal: 'yes' }, 400, /internal/],
    ['missing name', 'POST', '/networks', {}, 400, /name/],
    ['bad name', 'POST', '/networks', { name: 'a b' }, 400, /network name/],
    ['bad sandbox name', 'POST', '/sandboxes', { name: '-x' }, 400, /sandbox name/],
    ['duplicate sandbox name', 'POST', '/sandboxes', { name: 'sb1' }, 403, /already has sandbox/],
    ['network still in use', 'DELETE', '/networks/good', undefined, 403, /active endpoints/],
    ['body on a GET', 'GET', '/networks', { x: 1 }, 400, /no request body/],
    ['unknown query parameter', 'GET', '/sandboxes?all=1', undefined, 400, /unknown query parameter/],
    ['unknown route', 'GET', '/containers', undefined, 404, /page not found/],
    ['wrong method', 'PUT', '/networks', undefined, 405, /not allowed/],
  ]

  it.each(cases)('%s → %s %s answers %#', async (_what, method, path, body, status, message) => {
    const before = await snapshot()
    const r = await raw(method, path, body === undefined ? undefined : JSON.stringify(body))
    expect(r.status).toBe(status)
    expect(r.json.message).toMatch(message)
    expect(r.json.code).toMatch(/^ERR_/)
    expect(typeof r.json.kind).toBe('string')
    expect(await snapshot()).toEqual(before)
  })

  it.each([
    ['malformed JSON', '{"name": "x",', 'application/json', /malformed JSON/],
    ['not JSON at all', 'name=x', 'application/json', /malformed JSON/],
    ['JSON of the wrong shape', '[1,2]', 'application/json', /invalid request/],
    ['wrong content type', '{"name":"x"}', 'text/plain', /content type/],
  ])('%s is a 400', async (_what, body, type, message) => {
    const before = await snapshot()
    for (const path of ['/networks', '/sandboxes', '/networks/good/connect', '/networks/good/disconnect']) {
      const r = await raw('POST', path, body, type)
      expect(r.status, path).toBe(400)
      expect(r.json.message).toMatch(message)
    }
    expect(await snapshot()).toEqual(before)
  })

  it('the client reports status, kind and code', async () => {
    const err = await c.inspectNetwork('nope').catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiResponseError)
    expect(err).toMatchObject({ status: 404, kind: 'not-found', code: 'ERR_CONTROLLER_NETWORK_NOT_FOUND' })
  })

  it('CLI commands reject bad input with a message and a stable exit code, and change nothing', async () => {
    const before = await snapshot()
    const cli: Array<[args: string[], code: number, stderr: RegExp]> = [
      [
        ['network', 'inspect', 'nope'],
        1,
        /Error response from daemon: network nope not found \[ERR_CONTROLLER_NETWORK_NOT_FOUND\]/,
      ],
      [['network', 'rm', 'nope'], 1, /not found/],
      [['network', 'create', '--subnet', '10.125.0.0/25', 'ov'], 1, /overlaps/],
      [['network', 'create', '--subnet', '300.0.0.0/8', 'bad'], 1, /not a valid CIDR/],
      [['network', 'create', '--gateway', '10.1.1.1', 'nosubnet'], 2, /needs a --subnet/],
      [['network', 'create', '-o', 'novalue', 'x'], 2, /key=value/],
      [['network', 'create'], 2, /missing required argument/],
      [['network', 'ls', '--format', 'yaml'], 2, /Allowed choices are table, json/],
      [['network', 'connect', 'good', 'ghost'], 1, /no such sandbox/],
      [
        ['network', 'connect', '--alias', 'sb1', '--ip', '10.125.0.2', 'good', 'sb2'],
        1,
        /in use|allocated|unavailable/i,
      ],
      [['network', 'connect', '-p', '19000:80', 'good', 'sb2'], 1, /already allocated/],
      [['network', 'disconnect', 'good', 'sb2'], 1, /not connected/],
      [['sandbox', 'inspect', 'ghost'], 1, /no such sandbox/],
      [['sandbox', 'rm', 'ghost'], 1, /no such sandbox/],
      [['sandbox', 'create', '--name', 'sb1'], 1, /already has sandbox/],
      [['sandbox', 'create', '--ip', '10.125.0.9'], 2, /need --network/],
      [['run', '--network', 'nope', '--', 'true'], 125, /network nope not found/],
      [['run', '--network', 'good', '-p', '19000:80', '--', 'true'], 125, /already allocated/],
      [['run', '--network', 'good'], 2, /missing required argument/],
      [['frobnicate'], 2, /unknown command/],
      [['network', 'ls', '--bogus'], 2, /unknown option/],
    ]
    for (const [args, code, stderr] of cli) {
      const r = await h.cli(args)
      expect(r.code, `cnm ${args.join(' ')}: ${r.stderr}`).toBe(code)
      expect(r.stderr, `cnm ${args.join(' ')}`).toMatch(stderr)
    }
    expect(await snapshot()).toEqual(before)
  })

  it('an unreachable daemon is exit code 3', async () => {
    const r = await h.cli(['--host', `${h.dir}/no.sock`, 'network', 'ls'])
    expect(r.code).toBe(3)
    expect(r.stderr).toMatch(/cannot connect to the cnm daemon/)
  })
})
