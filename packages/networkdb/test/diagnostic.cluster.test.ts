// The diagnostic server against real networkdb nodes on 127.0.0.1 (ephemeral ports, shortened timers):
// every command over HTTP, results checked on the other nodes, Docker's texts for bad input.
import { afterEach, describe, expect, it } from 'vitest'
import { createServer } from 'node:net'
import type { AddressInfo } from 'node:net'
import { isCnmError } from '@cnm/types'
import { createNetworkDB } from '../src/index.js'
import type { NetworkDB } from '../src/index.js'
import { startDiagnosticServer } from '../src/diagnostic/index.js'
import type { DiagnosticServer } from '../src/diagnostic/index.js'
import { rows, until, type Envelope } from './diagnostic-replies.js'

const FAST = {
  bindAddr: '127.0.0.1',
  bindPort: 0,
  gossipIntervalMs: 50,
  bulkSyncIntervalMs: 2_000,
  reapIntervalMs: 1_000,
  memberlist: {
    probeIntervalMs: 200,
    probeTimeoutMs: 100,
    gossipIntervalMs: 50,
    pushPullIntervalMs: 2_000,
    suspicionMult: 2,
  },
}

interface Node {
  readonly db: NetworkDB
  readonly diag: DiagnosticServer
  readonly name: string
  readonly gossip: string
}

const cleanups: (() => Promise<void>)[] = []

afterEach(async () => {
  const errors: unknown[] = []
  for (const c of cleanups.splice(0).reverse()) await c().catch((e: unknown) => errors.push(e))
  if (errors.length > 0) throw errors[0]
})

async function startNode(name: string): Promise<Node> {
  const db = await createNetworkDB({ ...FAST, nodeId: name })
  cleanups.push(() => db.close())
  const diag = await startDiagnosticServer(db, { port: 0 })
  cleanups.push(() => diag.close())
  return { db, diag, name, gossip: `${db.address.addr}:${db.address.port}` }
}

interface Res {
  readonly status: number
  readonly type: string
  readonly body: string
  readonly bytes: Buffer
}

async function get(n: Node, path: string, init?: RequestInit): Promise<Res> {
  const r = await fetch(`${n.diag.url}${path}`, { redirect: 'manual', ...init })
  const bytes = Buffer.from(await r.arrayBuffer())
  return { status: r.status, type: r.headers.get('content-type') ?? '', body: bytes.toString('utf8'), bytes }
}

async function getJson(n: Node, path: string): Promise<Envelope> {
  const r = await get(n, path)
  expect(r.status).toBe(200)
  expect(r.type).toBe('application/json')
  return JSON.parse(r.body) as Envelope
}

const b64 = (s: string): string => encodeURIComponent(Buffer.from(s).toString('base64'))

async function cluster(n: number, nid?: string): Promise<Node[]> {
  const nodes: Node[] = []
  for (let i = 0; i < n; i++) nodes.push(await startNode(`node-${i}`))
  const [first, ...rest] = nodes as [Node, ...Node[]]
  for (const node of rest) {
    const r = await get(node, `/join?members=${first.gossip}`)
    expect(r.body).toBe('OK')
  }
  await until('all nodes see each other', async () => {
    for (const node of nodes) {
      const j = await getJson(node, '/clusterpeers?json')
      if (j.details.size !== n) return undefined
    }
    return true
  })
  if (nid !== undefined) {
    for (const node of nodes) expect((await get(node, `/joinnetwork?nid=${nid}`)).body).toBe('OK')
    await until('network peers', async () => {
      for (const node of nodes)
        if ((await getJson(node, `/networkpeers?nid=${nid}&json`)).details.size !== n) return undefined
      return true
    })
  }
  return nodes
}

describe('diagnostic server on real nodes', () => {
  it('join, clusterpeers and networkpeers in text and JSON', async () => {
    const [a, b, c] = (await cluster(3, 'net1')) as [Node, Node, Node]
    const peers = await getJson(b, '/clusterpeers?json')
    expect(peers.message).toBe('OK')
    expect(peers.details.size).toBe(3)
    const names = rows(peers.details)
      .map((e) => e.name)
      .sort()
    expect(names).toEqual(['node-0', 'node-1', 'node-2'])
    for (const e of rows(peers.details)) {
      expect(e['-=name']).toBe(e.name)
      expect(e.ip).toBe('127.0.0.1')
    }
    const text = await get(c, '/clusterpeers')
    expect(text.type).toBe('text/plain; charset=utf-8')
    expect(text.body).toMatch(
      /^OK\ntotal entries: 3\n0\) node-\d -> 127\.0\.0\.1\n1\) node-\d -> 127\.0\.0\.1\n2\) node-\d -> 127\.0\.0\.1\n$/,
    )

    const np = await get(a, '/networkpeers?nid=net1')
    expect(np.body).toMatch(/^OK\ntotal entries: 3\n/)
    expect((await getJson(a, '/networkpeers?nid=other&json')).details).toEqual({ size: 0, entries: null })

    // leaving a network shows up in the other nodes' networkpeers
    expect((await get(c, '/leavenetwork?nid=net1')).body).toBe('OK')
    await until('node-2 gone from net1 on node-0', async () => {
      const j = await getJson(a, '/networkpeers?nid=net1&json')
      return j.details.size === 2 && !JSON.stringify(j).includes('node-2') ? true : undefined
    })
  })

  it('create on one node, read, update and delete seen on the others', async () => {
    const [a, b, c] = (await cluster(3, 'net1')) as [Node, Node, Node]
    expect((await get(a, `/createentry?tname=t1&nid=net1&key=k1&value=${b64('hello')}`)).body).toBe('OK')

    const seen = await until('k1 on node-1', async () => {
      const j = await getJson(b, '/gettable?tname=t1&nid=net1&json')
      return j.details.size === 1 ? j : undefined
    })
    expect(seen).toEqual({
      message: 'OK',
      details: { size: 1, entries: [{ key: 'k1', value: Buffer.from('hello').toString('base64'), owner: 'node-0' }] },
    })
    expect((await get(b, '/gettable?tname=t1&nid=net1')).body).toBe(
      `OK\ntotal entries: 1\n0) k:\`k1\` -> v:\`${Buffer.from('hello').toString('base64')}\` owner:\`node-0\`\n`,
    )
    expect((await get(c, '/getentry?tname=t1&nid=net1&key=k1&unsafe')).body).toMatch(
      /^OK\n0\) k:`k1` -> v:`hello` owner:`node-0`\n$/,
    )
    expect((await getJson(c, '/getentry?tname=t1&nid=net1&key=k1&json')).details).toEqual({
      key: 'k1',
      value: Buffer.from('hello').toString('base64'),
      owner: 'node-0',
    })

    // unsafe: the value is taken raw and returned raw
    expect((await get(a, '/createentry?unsafe&tname=t1&nid=net1&key=k2&value=plain%20text')).body).toBe('OK')
    await until('k2 on node-2', async () => {
      const r = await get(c, '/gettable?tname=t1&nid=net1&unsafe')
      return r.body.includes('k:`k2` -> v:`plain text` owner:`node-0`') ? true : undefined
    })

    expect((await get(a, `/updateentry?tname=t1&nid=net1&key=k1&value=${b64('world')}`)).body).toBe('OK')
    await until('update on node-1', async () => {
      const j = await getJson(b, '/getentry?tname=t1&nid=net1&key=k1&json&unsafe')
      return j.details.value === 'world' ? true : undefined
    })

    expect((await get(a, '/deleteentry?tname=t1&nid=net1&key=k1')).body).toBe('OK')
    await until('delete on node-1 and node-2', async () => {
      for (const n of [b, c]) {
        const j = await getJson(n, '/gettable?tname=t1&nid=net1&json')
        if (j.details.size !== 1 || rows(j.details)[0]?.key !== 'k2') return undefined
      }
      return true
    })
    expect((await get(a, '/getentry?tname=t1&nid=net1&key=k1')).body).toBe(
      'FAIL\nError: entry in table t1 network id net1 and key k1 deleted and pending garbage collection',
    )
    expect((await get(b, '/getentry?tname=t1&nid=net1&key=nope')).body).toBe(
      'FAIL\nError: could not get entry in table t1 with network id net1 and key nope',
    )

    // a tombstoned key may be created again
    expect((await get(a, `/createentry?tname=t1&nid=net1&key=k1&value=${b64('again')}`)).body).toBe('OK')
    await until('re-created k1 on node-2', async () => {
      const j = await getJson(c, '/getentry?tname=t1&nid=net1&key=k1&json&unsafe')
      return j.details.value === 'again' ? true : undefined
    })
  })

  it('networkstats counts entries; -1 for a network not joined', async () => {
    const [a] = (await cluster(2, 'net1')) as [Node, Node]
    for (let i = 0; i < 5; i++)
      expect((await get(a, `/createentry?tname=t&nid=net1&key=k${i}&value=${b64(String(i))}`)).body).toBe('OK')
    const s = await getJson(a, '/networkstats?nid=net1&json')
    expect(s.message).toBe('OK')
    expect(s.details.entries).toBe(5)
    expect(s.details.qlen).toBe(s.details.QueueLen)
    expect(s.details.qlen).toBeGreaterThanOrEqual(0)
    expect((await get(a, '/networkstats?nid=net1')).body).toMatch(/^OK\nentries: 5, qlen: \d+\n$/)
    expect((await get(a, '/networkstats?nid=nope')).body).toBe('OK\nentries: -1, qlen: -1\n')
  })

  it('answers bad or missing parameters with Docker texts and status 200', async () => {
    const [a] = (await cluster(1, 'net1')) as [Node]
    const missing: [string, string][] = [
      ['/join', '/join?members=ip1,ip2,...'],
      ['/joinnetwork', '/joinnetwork?nid=network_id'],
      ['/leavenetwork', '/leavenetwork?nid=network_id'],
      ['/createentry?tname=t&nid=n&key=k', '/createentry?tname=table_name&nid=network_id&key=k&value=v'],
      ['/updateentry?value=x', '/updateentry?tname=table_name&nid=network_id&key=k&value=v'],
      ['/deleteentry?tname=t&nid=n', '/deleteentry?tname=table_name&nid=network_id&key=k'],
      ['/getentry?nid=n&key=k', '/getentry?tname=table_name&nid=network_id&key=k'],
      ['/gettable?tname=t', '/gettable?tname=table_name&nid=network_id'],
      ['/networkpeers', '/networkpeers?nid=test'],
      ['/networkstats', '/networkstats?nid=test'],
    ]
    for (const [path, usage] of missing) {
      const r = await get(a, path)
      expect(r.status, path).toBe(200)
      expect(r.body, path).toBe(`missing parameter\nUsage: ${usage}`)
      const j = await getJson(a, `${path}${path.includes('?') ? '&' : '?'}json`)
      expect(j, path).toEqual({ message: 'missing parameter', details: { usage } })
    }

    expect((await get(a, '/createentry?tname=t&nid=net1&key=k&value=abc')).body).toBe(
      'FAIL\nError: illegal base64 data at input byte 0',
    )
    // an unencoded "+" in a query is a space, as in Go
    expect((await get(a, '/createentry?tname=t&nid=net1&key=k&value=ab+c')).body).toBe(
      'FAIL\nError: illegal base64 data at input byte 2',
    )
    expect((await get(a, `/createentry?tname=t&nid=net1&key=k&value=${b64('v')}`)).body).toBe('OK')
    expect((await get(a, `/createentry?tname=t&nid=net1&key=k&value=${b64('v')}`)).body).toBe(
      'FAIL\nError: cannot create entry in table t with network id net1 and key k, already exists',
    )
    expect(await getJson(a, `/createentry?tname=t&nid=net1&key=k&value=${b64('v')}&json`)).toEqual({
      message: 'FAIL',
      details: { error: 'cannot create entry in table t with network id net1 and key k, already exists' },
    })
    expect((await get(a, `/updateentry?tname=t&nid=net1&key=zz&value=${b64('v')}`)).body).toBe(
      'FAIL\nError: cannot update entry as the entry in table t with network id net1 and key zz does not exist',
    )
    expect((await get(a, '/deleteentry?tname=t&nid=net1&key=zz')).body).toBe(
      'FAIL\nError: cannot delete entry t with network id net1 and key zz does not exist or is already being deleted',
    )
    expect((await get(a, '/leavenetwork?nid=never')).body).toBe(
      'FAIL\nError: could not find network never while trying to leave',
    )
    expect((await get(a, '/join?members=127.0.0.1:1')).body).toMatch(/^FAIL\nError: \/join error in the DB join .+/)

    const unknown = await get(a, '/nope?json')
    expect(JSON.parse(unknown.body)).toEqual({
      message: 'not implemented',
      details: { usage: 'URL path: /nope no method implemented check /help\n' },
    })
    expect((await get(a, '/join/')).body).toBe(
      'not implemented\nUsage: URL path: /join/ no method implemented check /help\n',
    )
    const redirect = await get(a, '//help?json')
    expect(redirect.status).toBe(301)
    expect(redirect.type).toContain('text/html')
    expect((await fetch(`${a.diag.url}//help?x=1`, { redirect: 'manual' })).headers.get('location')).toBe('/help?x=1')
  })

  it('help, ready, pretty JSON, POST form bodies, HEAD and /stats', async () => {
    const [a] = (await cluster(1, 'net1')) as [Node]
    const help = await get(a, '/help')
    expect(help.body).toBe(
      'OK\n/\n/clusterpeers\n/createentry\n/deleteentry\n/getentry\n/gettable\n/help\n/join\n/joinnetwork\n/leavenetwork\n/networkpeers\n/networkstats\n/ready\n/stats\n/updateentry\n',
    )
    expect((await get(a, '/ready')).body).toBe('OK\nOK')
    expect((await get(a, '/ready?json=pretty')).body).toBe(
      '{\n  "message": "OK",\n  "details": {\n    "info": "OK"\n  }\n}',
    )

    const post = await get(a, '/createentry?json', {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `tname=t&nid=net1&key=p&value=${b64('posted')}`,
    })
    expect(JSON.parse(post.body)).toEqual({ message: 'OK', details: null })
    expect(Buffer.from(a.db.getEntry('t', 'net1', 'p')).toString()).toBe('posted')

    const head = await fetch(`${a.diag.url}/ready`, { method: 'HEAD' })
    expect(head.status).toBe(200)
    expect(await head.text()).toBe('')

    const stats = await getJson(a, '/stats?json')
    expect(stats.message).toBe('OK')
    expect(stats.details.nodeId).toBe('node-0')
    expect(typeof stats.details.networkClock).toBe('string')
    expect(typeof stats.details.tableClock).toBe('string')
    expect(BigInt(stats.details.tableClock)).toBeGreaterThanOrEqual(1n)
    expect(stats.details.networks.map((n: { networkId: string }) => n.networkId)).toContain('net1')
    expect((await get(a, '/stats')).body).toMatch(/^OK\nnodeId: node-0\n/)
  })

  it('close() stops the server; an aborted signal closes it; a busy port is UnavailableError', async () => {
    const db = await createNetworkDB({ ...FAST, nodeId: 'solo' })
    cleanups.push(() => db.close())
    const ac = new AbortController()
    const s1 = await startDiagnosticServer(db, { port: 0, signal: ac.signal })
    expect(s1.url).toBe(`http://127.0.0.1:${s1.port}`)
    expect((await fetch(`${s1.url}/ready`)).status).toBe(200)
    ac.abort()
    await s1.close()
    await expect(fetch(`${s1.url}/ready`)).rejects.toThrow()

    const blocker = createServer()
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r))
    cleanups.push(() => new Promise<void>((r) => blocker.close(() => r())))
    const busy = (blocker.address() as AddressInfo).port
    const err = await startDiagnosticServer(db, { port: busy }).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_NETWORKDB_DIAGNOSTIC_LISTEN')).toBe(true)
    await expect(startDiagnosticServer(db, { port: 70000 })).rejects.toThrow(/port must be an integer/)
    const pre = new AbortController()
    pre.abort()
    await expect(startDiagnosticServer(db, { port: 0, signal: pre.signal })).rejects.toSatisfy((e) =>
      isCnmError(e, 'ERR_ABORTED'),
    )

    const s2 = await startDiagnosticServer(db, { port: 0 })
    await s2.close()
    await s2.close() // idempotent
  })
})
