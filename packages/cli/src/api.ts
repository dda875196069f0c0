import type { Controller } from '@cnm/controller'
import { Router, type RouteContext } from './internal/http.js'
import { BadRequestError } from './errors.js'
import { connectSchema, createNetworkSchema, createSandboxSchema, disconnectSchema, parseBody } from './schemas.js'
import type { CnmService } from './service.js'

/** `GET /info`: what the daemon holds and what it costs. */
export interface DaemonStats {
  sandboxes: { running: number; stopped: number }
  networks: number
  endpoints: number
  /** Embedded resolvers running, and their counters summed (including resolvers already stopped). */
  dns: {
    resolvers: number
    queries: number
    local: number
    fastPathAnswered: number
    forwarded: number
    dropped: number
    rejected: number
    servfail: number
    errors: number
  }
  /** process.memoryUsage() of the daemon. */
  memory: {
    rssBytes: number
    heapUsedBytes: number
    heapTotalBytes: number
    externalBytes: number
    arrayBuffersBytes: number
  }
  pid: number
  uptimeMs: number
}

/** The API version this daemon serves (`GET /version`). */
export const API_VERSION = '1.0'

/** Every route of the daemon's HTTP API, in the order the README lists them. */
export const ROUTES: ReadonlyArray<readonly [method: string, path: string, what: string]> = [
  ['GET', '/_ping', 'liveness: `OK`'],
  ['GET', '/version', 'daemon and API version, drivers, host namespace'],
  ['GET', '/networks', 'list networks'],
  ['POST', '/networks', 'create a network'],
  ['GET', '/networks/:id', 'inspect a network (with its endpoints)'],
  ['DELETE', '/networks/:id', 'remove a network'],
  ['POST', '/networks/:id/connect', 'connect a sandbox (create + join an endpoint)'],
  ['POST', '/networks/:id/disconnect', 'disconnect a sandbox (leave + delete its endpoint)'],
  ['GET', '/sandboxes', 'list sandboxes'],
  ['POST', '/sandboxes', 'create a sandbox, optionally connected to networks'],
  ['GET', '/sandboxes/:id', 'inspect a sandbox'],
  ['DELETE', '/sandboxes/:id', 'remove a sandbox and its endpoints'],
  ['POST', '/sandboxes/:id/stop', 'stop a sandbox: endpoints leave, keeping addresses and host ports'],
  ['POST', '/sandboxes/:id/start', 'start a stopped sandbox: same addresses and host ports'],
  [
    'GET',
    '/info',
    'counts, memory of the daemon, embedded DNS counters (`?gc=1` collects garbage first when possible)',
  ],
  ['GET', '/events', 'controller events as newline-delimited JSON (streaming)'],
]

/** Rejects a body on routes that take none, and query parameters a route does not know. */
function noBody(body: unknown): void {
  if (body !== undefined) throw new BadRequestError('this route takes no request body')
}

function onlyQuery(q: URLSearchParams, allowed: readonly string[]): void {
  for (const k of q.keys()) {
    if (!allowed.includes(k)) throw new BadRequestError(`unknown query parameter ${JSON.stringify(k)}`)
  }
}

export interface ApiInfo {
  /** Counts, memory and DNS counters for `GET /info`. */
  stats: () => Promise<DaemonStats>
  version: string
  hostNetns: string | undefined
  root: string
  execRoot: string
}

/** Builds the router that maps the routes above onto the service. */
export function buildRouter(service: CnmService, ctl: Controller, info: ApiInfo): Router {
  const r = new Router()
  const plain = async (ctx: RouteContext): Promise<void> => {
    onlyQuery(ctx.query, [])
    noBody(await ctx.body())
  }
  r.add('GET', '/_ping', async (ctx) => {
    await plain(ctx)
    ctx.res.writeHead(200, { 'content-type': 'text/plain' })
    ctx.res.end('OK')
    return undefined
  })
  r.add('GET', '/version', async (ctx) => {
    await plain(ctx)
    return {
      status: 200,
      body: {
        version: info.version,
        apiVersion: API_VERSION,
        drivers: ctl.driverTypes(),
        ipams: ctl.ipamNames(),
        hostNetns: info.hostNetns ?? null,
        root: info.root,
        execRoot: info.execRoot,
        pid: process.pid,
      },
    }
  })
  r.add('GET', '/networks', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: service.listNetworks() }
  })
  r.add('POST', '/networks', async (ctx) => {
    onlyQuery(ctx.query, [])
    const body = parseBody(createNetworkSchema, await ctx.body())
    return { status: 201, body: await service.createNetwork(body, { signal: ctx.signal }) }
  })
  r.add('GET', '/networks/:id', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: await service.inspectNetwork(ctx.params['id'] as string, { signal: ctx.signal }) }
  })
  r.add('DELETE', '/networks/:id', async (ctx) => {
    await plain(ctx)
    await service.deleteNetwork(ctx.params['id'] as string, { signal: ctx.signal })
    return { status: 204 }
  })
  r.add('POST', '/networks/:id/connect', async (ctx) => {
    onlyQuery(ctx.query, [])
    const body = parseBody(connectSchema, await ctx.body())
    return { status: 201, body: await service.connect(ctx.params['id'] as string, body, { signal: ctx.signal }) }
  })
  r.add('POST', '/networks/:id/disconnect', async (ctx) => {
    onlyQuery(ctx.query, [])
    const body = parseBody(disconnectSchema, await ctx.body())
    await service.disconnect(ctx.params['id'] as string, body, { signal: ctx.signal })
    return { status: 204 }
  })
  r.add('GET', '/sandboxes', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: await service.listSandboxes({ signal: ctx.signal }) }
  })
  r.add('POST', '/sandboxes', async (ctx) => {
    onlyQuery(ctx.query, [])
    const body = parseBody(createSandboxSchema, (await ctx.body()) ?? {})
    return { status: 201, body: await service.createSandbox(body, { signal: ctx.signal }) }
  })
  r.add('GET', '/sandboxes/:id', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: await service.inspectSandbox(ctx.params['id'] as string, { signal: ctx.signal }) }
  })
  r.add('DELETE', '/sandboxes/:id', async (ctx) => {
    await plain(ctx)
    await service.deleteSandbox(ctx.params['id'] as string, { signal: ctx.signal })
    return { status: 204 }
  })
  r.add('POST', '/sandboxes/:id/stop', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: await service.stopSandbox(ctx.params['id'] as string, { signal: ctx.signal }) }
  })
  r.add('POST', '/sandboxes/:id/start', async (ctx) => {
    await plain(ctx)
    return { status: 200, body: await service.startSandbox(ctx.params['id'] as string, { signal: ctx.signal }) }
  })
  r.add('GET', '/info', async (ctx) => {
    onlyQuery(ctx.query, ['gc'])
    noBody(await ctx.body())
    const gc = (globalThis as { gc?: () => void }).gc
    const collected = ctx.query.get('gc') === '1' && gc !== undefined
    if (collected) gc()
    return { status: 200, body: { ...(await info.stats()), gcCollected: collected } }
  })
  r.add('GET', '/events', async (ctx) => {
    await plain(ctx)
    const { res } = ctx
    const signal = AbortSignal.any([ctx.signal, ctx.shutdown])
    res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-cache' })
    res.flushHeaders()
    try {
      for await (const e of ctl.events({ signal })) {
        res.write(JSON.stringify({ time: new Date().toISOString(), ...e }) + '\n')
      }
    } catch (err) {
      // the client went away or the daemon stops: the stream simply ends
      if (!signal.aborted) throw err
    }
    res.end()
    return undefined
  })
  return r
}
