// Diagnostic HTTP server for one networkdb node, compatible with the one Docker starts on
// `network-diagnostic-port` (moby libnetwork/diagnostic/server.go + types.go, and
// libnetwork/networkdb/networkdbdiagnostic.go; read on moby master, 2025), so scripts written for
// Docker's port work unchanged. What we reproduce:
//  - Paths: /join?members=a,b  /joinnetwork?nid=  /leavenetwork?nid=  /createentry /updateentry
//    (tname, nid, key, value)  /deleteentry /getentry (tname, nid, key)  /gettable?tname=&nid=
//    /clusterpeers  /networkpeers?nid=  /networkstats?nid=  /help  /ready, and `/` for anything else
//    ("not implemented"). Any HTTP method; a urlencoded POST body counts as parameters, as in Go.
//  - Parameters are read like Go's ParseForm: a parameter given without a value (`?key`) is present and
//    empty; only the first value counts. `unsafe` (present, any value) means values are raw bytes instead
//    of standard base64, both on input (create/update) and on output (getentry/gettable). `json` switches
//    to JSON, `json=pretty` to indented JSON.
//  - Every reply has status 200, including errors, exactly like Docker. Text replies are
//    `<message>[\n<details>]`: `OK`, `OK\nOK` (/ready), `OK\n<one path per line>` (/help),
//    `FAIL\nError: <error>`, `missing parameter\nUsage: <path>?<params>`, `not implemented\nUsage: URL
//    path: <path> no method implemented check /help\n`, tables as `total entries: N\n` then
//    ``i) k:`key` -> v:`value` owner:`owner` `` lines, peers as `i) name -> ip`, stats as
//    `entries: N, qlen: N`. JSON replies are `{"message": ..., "details": ...}` with details
//    `{usage}`, `{error}`, `{info}`, `{size, entries}` (entries null when empty) of `{key, value, owner}`
//    or of peers, and `{entries, QueueLen}`. Docker's peer JSON key really is `-=name` and its stats key
//    `QueueLen` (struct tag typos); we emit those keys and also `name` and `qlen`.
//  - The error texts of Docker's networkdb (already exists / does not exist / deleted and pending garbage
//    collection / could not find network ... while trying to leave), base64 errors as Go words them
//    (`illegal base64 data at input byte N`), join failures as `/join error in the DB join <err>`.
//    networkstats of a network this node is not in answers entries -1, qlen -1. A peer whose address is
//    unknown is listed as `orphan-<name>` with ip `invalid IP` (text) / "" (JSON).
// Differences: /getentry fills `owner` (Docker leaves it empty); /help and /gettable are sorted (Go map
// order is random); `/stackdump` (goroutine dump) does not exist; the cnm-only `/stats` returns
// db.stats() in the same envelope (bigints as decimal strings).
import { createServer } from 'node:http'
import type { IncomingMessage, Server, ServerResponse } from 'node:http'
import { isIP } from 'node:net'
import type { AddressInfo } from 'node:net'
import { AbortError, InvalidArgumentError, UnavailableError, isCnmError, noopLogger } from '@cnm/types'
import type { Logger } from '@cnm/types'
import type { NetworkDB, NetworkDBStats } from '../types.js'
import { decodeGoBase64 } from './go-base64.js'
import { cleanPath, parseForm, parseTarget } from './form.js'
import type { FormValues } from './form.js'
import { fail, info, networkStats, ok, peerEntry, renderReply, table, tableEntry, wrongCommand } from './result.js'
import type { Details, EntryValue, OutputFormat, Peer, Reply } from './result.js'

export interface DiagnosticServerOptions {
  /** Address to listen on. @default '127.0.0.1' */
  host?: string
  /** TCP port; 0 picks a free one (read it from the result). */
  port: number
  /** Audit log of the commands received. @default no logging */
  logger?: Logger
  /** Closes the server when aborted. */
  signal?: AbortSignal
}

export interface DiagnosticServer {
  /** `http://<host>:<port>` */
  readonly url: string
  readonly port: number
  /** Stops listening and closes connections (idle ones at once, busy ones after at most 1 s). Idempotent. */
  close(): Promise<void>
  [Symbol.asyncDispose](): Promise<void>
}

const MISSING_PARAMETER = 'missing parameter'
const FORCE_CLOSE_AFTER_MS = 1000

interface RequestContext {
  readonly db: NetworkDB
  readonly path: string
  readonly form: FormValues
  readonly unsafe: boolean
  readonly signal: AbortSignal
  readonly log: Logger
}

type Handler = (ctx: RequestContext) => Reply | Promise<Reply>

function param(form: FormValues, name: string): string | undefined {
  return form.get(name)?.[0]
}

/** All named parameters, or undefined when one is missing (Docker checks presence, not emptiness). */
function params<const N extends readonly string[]>(form: FormValues, names: N): { [K in keyof N]: string } | undefined {
  const out: string[] = []
  for (const n of names) {
    const v = param(form, n)
    if (v === undefined) return undefined
    out.push(v)
  }
  return out as { [K in keyof N]: string }
}

/** Read through a call so TypeScript does not keep an earlier narrowing of `aborted`. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

function kindOf(err: unknown): string | undefined {
  return isCnmError(err) ? err.kind : undefined
}

/** Decodes a `value` parameter: raw bytes with `unsafe`, else Go-strict base64. */
function decodeValue(value: string, unsafe: boolean): Uint8Array {
  return unsafe ? Buffer.from(value, 'utf8') : decodeGoBase64(value)
}

function encodeValue(value: Uint8Array, unsafe: boolean): EntryValue {
  return unsafe
    ? { raw: value }
    : { base64: Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64') }
}

function toPeer(p: { name: string; ip: string }): Peer {
  const known = p.ip !== '' && isIP(p.ip) !== 0
  return known ? { name: p.name, ip: p.ip } : { name: `orphan-${p.name}`, ip: '' }
}

/** JSON-safe copy: bigints become decimal strings. */
function jsonSafe(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v))) as unknown
}

function statsDetails(stats: NetworkDBStats): Details {
  const safe = jsonSafe(stats) as Record<string, unknown>
  return {
    text: () =>
      Object.entries(safe).map(
        ([k, v]) => `${k}: ${typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v)}\n`,
      ),
    json: () => safe,
  }
}

const entryUsage = (path: string): string => `${path}?tname=table_name&nid=network_id&key=k&value=v`
const keyUsage = (path: string): string => `${path}?tname=table_name&nid=network_id&key=k`

/** createentry / updateentry share everything but the call and its error text. */
function writeEntry(op: 'create' | 'update'): Handler {
  return (ctx) => {
    const p = params(ctx.form, ['tname', 'nid', 'key', 'value'] as const)
    if (p === undefined) return wrongCommand(MISSING_PARAMETER, entryUsage(ctx.path))
    const [tname, nid, key, raw] = p
    let value: Uint8Array
    try {
      value = decodeValue(raw, ctx.unsafe)
    } catch (err) {
      return fail(errorText(err))
    }
    try {
      if (op === 'create') ctx.db.createEntry(tname, nid, key, value)
      else ctx.db.updateEntry(tname, nid, key, value)
    } catch (err) {
      if (op === 'create' && kindOf(err) === 'conflict') {
        return fail(`cannot create entry in table ${tname} with network id ${nid} and key ${key}, already exists`)
      }
      if (op === 'update' && kindOf(err) === 'not-found') {
        return fail(
          `cannot update entry as the entry in table ${tname} with network id ${nid} and key ${key} does not exist`,
        )
      }
      return fail(errorText(err))
    }
    ctx.log('%s entry %s/%s/%s', op === 'create' ? 'created' : 'updated', tname, nid, key)
    return ok()
  }
}

const HANDLERS: ReadonlyMap<string, Handler> = new Map<string, Handler>([
  [
    '/join',
    async (ctx) => {
      const members = param(ctx.form, 'members')
      if (members === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?members=ip1,ip2,...`)
      try {
        await ctx.db.join(members.split(','), { signal: ctx.signal })
      } catch (err) {
        return fail(`${ctx.path} error in the DB join ${errorText(err)}`)
      }
      ctx.log('joined cluster through %s', members)
      return ok()
    },
  ],
  [
    '/joinnetwork',
    async (ctx) => {
      const nid = param(ctx.form, 'nid')
      if (nid === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?nid=network_id`)
      try {
        await ctx.db.joinNetwork(nid, { signal: ctx.signal })
      } catch (err) {
        return fail(errorText(err))
      }
      ctx.log('joined network %s', nid)
      return ok()
    },
  ],
  [
    '/leavenetwork',
    (ctx) => {
      const nid = param(ctx.form, 'nid')
      if (nid === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?nid=network_id`)
      try {
        ctx.db.leaveNetwork(nid)
      } catch (err) {
        if (kindOf(err) === 'not-found') return fail(`could not find network ${nid} while trying to leave`)
        return fail(errorText(err))
      }
      ctx.log('left network %s', nid)
      return ok()
    },
  ],
  ['/createentry', writeEntry('create')],
  ['/updateentry', writeEntry('update')],
  [
    '/deleteentry',
    (ctx) => {
      const p = params(ctx.form, ['tname', 'nid', 'key'] as const)
      if (p === undefined) return wrongCommand(MISSING_PARAMETER, keyUsage(ctx.path))
      const [tname, nid, key] = p
      try {
        ctx.db.deleteEntry(tname, nid, key)
      } catch (err) {
        if (kindOf(err) === 'not-found') {
          return fail(
            `cannot delete entry ${tname} with network id ${nid} and key ${key} does not exist or is already being deleted`,
          )
        }
        return fail(errorText(err))
      }
      ctx.log('deleted entry %s/%s/%s', tname, nid, key)
      return ok()
    },
  ],
  [
    '/getentry',
    (ctx) => {
      const p = params(ctx.form, ['tname', 'nid', 'key'] as const)
      if (p === undefined) return wrongCommand(MISSING_PARAMETER, keyUsage(ctx.path))
      const [tname, nid, key] = p
      let value: Uint8Array
      try {
        value = ctx.db.getEntry(tname, nid, key)
      } catch (err) {
        if (kindOf(err) !== 'not-found') return fail(errorText(err))
        if (ctx.db.getEntryInfo(tname, nid, key)?.deleting === true) {
          return fail(`entry in table ${tname} network id ${nid} and key ${key} deleted and pending garbage collection`)
        }
        return fail(`could not get entry in table ${tname} with network id ${nid} and key ${key}`)
      }
      const owner = ctx.db.getEntryInfo(tname, nid, key)?.owner ?? ''
      return ok(tableEntry(0, { key, value: encodeValue(value, ctx.unsafe), owner }))
    },
  ],
  [
    '/gettable',
    (ctx) => {
      const p = params(ctx.form, ['tname', 'nid'] as const)
      if (p === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?tname=table_name&nid=network_id`)
      const [tname, nid] = p
      const entries = [...ctx.db.getTableByNetwork(tname, nid)].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      return ok(
        table(
          entries.map(([key, e], i) => tableEntry(i, { key, value: encodeValue(e.value, ctx.unsafe), owner: e.owner })),
        ),
      )
    },
  ],
  ['/clusterpeers', (ctx) => ok(table(ctx.db.clusterPeers().map((p, i) => peerEntry(i, toPeer(p)))))],
  [
    '/networkpeers',
    (ctx) => {
      const nid = param(ctx.form, 'nid')
      if (nid === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?nid=test`)
      return ok(table(ctx.db.peers(nid).map((p, i) => peerEntry(i, toPeer(p)))))
    },
  ],
  [
    '/networkstats',
    (ctx) => {
      const nid = param(ctx.form, 'nid')
      if (nid === undefined) return wrongCommand(MISSING_PARAMETER, `${ctx.path}?nid=test`)
      const n = ctx.db.stats().networks.find((s) => s.networkId === nid)
      return ok(networkStats(n?.entries ?? -1, n?.queueLength ?? -1))
    },
  ],
  ['/stats', (ctx) => ok(statsDetails(ctx.db.stats()))],
  ['/ready', () => ok(info('OK'))],
])

/** Every registered path, as /help lists them. */
export const DIAGNOSTIC_PATHS: readonly string[] = Object.freeze(['/', '/help', ...HANDLERS.keys()].sort())

function notImplemented(path: string): Reply {
  return wrongCommand('not implemented', `URL path: ${path} no method implemented check /help\n`)
}

function outputFormat(form: FormValues): OutputFormat {
  const json = form.get('json')
  if (json === undefined) return 'text'
  return json[0] === 'pretty' ? 'json-pretty' : 'json'
}

function send(res: ServerResponse, reply: Reply, format: OutputFormat): void {
  if (res.destroyed || res.headersSent) return
  const body = renderReply(reply, format)
  res.writeHead(200, {
    'content-type': format === 'text' ? 'text/plain; charset=utf-8' : 'application/json',
    'content-length': body.length,
  })
  res.end(body)
}

function validateOptions(opts: DiagnosticServerOptions): void {
  if (!Number.isInteger(opts.port) || opts.port < 0 || opts.port > 65535) {
    throw new InvalidArgumentError(`diagnostic server: port must be an integer in 0..65535, got ${String(opts.port)}`, {
      code: 'ERR_NETWORKDB_DIAGNOSTIC_OPTIONS',
    })
  }
  if (opts.host !== undefined && opts.host.trim() === '') {
    throw new InvalidArgumentError('diagnostic server: host must not be empty', {
      code: 'ERR_NETWORKDB_DIAGNOSTIC_OPTIONS',
    })
  }
}

/**
 * Starts a Docker-compatible diagnostic HTTP server for `db`. Resolves once it listens.
 * Throws InvalidArgumentError (bad options), UnavailableError `ERR_NETWORKDB_DIAGNOSTIC_LISTEN` (cannot
 * listen, e.g. port in use) or AbortError (signal aborted before it was up).
 */
export async function startDiagnosticServer(db: NetworkDB, opts: DiagnosticServerOptions): Promise<DiagnosticServer> {
  validateOptions(opts)
  if (opts.signal?.aborted === true) throw new AbortError(undefined, { cause: opts.signal.reason })
  const host = opts.host ?? '127.0.0.1'
  const log = opts.logger ?? noopLogger().forComponent('cnm:networkdb:diagnostic')
  const lifetime = new AbortController()

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const target = parseTarget(req.url ?? '/')
    if (target === undefined) {
      res.writeHead(400, { 'content-type': 'text/plain; charset=utf-8', connection: 'close' })
      res.end('400 Bad Request')
      return
    }
    const clean = cleanPath(target.path)
    if (clean !== target.path) {
      // Go's ServeMux answers an unclean path with a redirect to the clean one.
      const location = target.rawQuery === '' ? clean : `${clean}?${target.rawQuery}`
      res.writeHead(301, { location, 'content-type': 'text/html; charset=utf-8' })
      res.end(
        `<a href="${location.replace(/&/g, '&amp;').replace(/"/g, '&#34;').replace(/</g, '&lt;')}">Moved Permanently</a>.\n\n`,
      )
      return
    }
    const form = await parseForm(req, target.rawQuery, lifetime.signal)
    const format = outputFormat(form)
    const ctx: RequestContext = {
      db,
      path: target.path,
      form,
      unsafe: form.has('unsafe'),
      signal: lifetime.signal,
      log,
    }
    log.trace('diagnostic %s %s from %s', req.method, req.url, req.socket.remoteAddress)
    let reply: Reply
    try {
      if (target.path === '/help') reply = ok(info(DIAGNOSTIC_PATHS.map((p) => `${p}\n`).join('')))
      else reply = (await HANDLERS.get(target.path)?.(ctx)) ?? notImplemented(target.path)
    } catch (err) {
      // Handlers turn expected failures into FAIL replies; this is for the unexpected ones.
      log.error('diagnostic %s failed: %s', target.path, errorText(err))
      reply = fail(errorText(err))
    }
    send(res, reply, format)
  }

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error('diagnostic request %s failed: %s', req.url, errorText(err))
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        res.end('500 Internal Server Error')
      } else {
        res.destroy()
      }
    })
  })

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => {
      server.off('listening', onListening)
      reject(
        new UnavailableError(`diagnostic server: cannot listen on ${host}:${opts.port}: ${err.message}`, {
          code: 'ERR_NETWORKDB_DIAGNOSTIC_LISTEN',
          cause: err,
        }),
      )
    }
    const onListening = (): void => {
      server.off('error', onError)
      resolve()
    }
    server.once('error', onError)
    server.once('listening', onListening)
    server.listen({ host, port: opts.port })
  })
  server.on('error', (err) => log.error('diagnostic server error: %s', err.message))

  const port = (server.address() as AddressInfo).port
  const url = `http://${isIP(host) === 6 ? `[${host}]` : host}:${port}`
  log('diagnostic server listening on %s', url)

  let closing: Promise<void> | undefined
  const onAbort = (): void => void close()
  function close(): Promise<void> {
    closing ??= new Promise<void>((resolve) => {
      opts.signal?.removeEventListener('abort', onAbort)
      lifetime.abort(new AbortError('diagnostic server closed'))
      const force = setTimeout(() => server.closeAllConnections(), FORCE_CLOSE_AFTER_MS)
      force.unref()
      server.close(() => {
        clearTimeout(force)
        log('diagnostic server on %s closed', url)
        resolve()
      })
      server.closeIdleConnections()
    })
    return closing
  }
  opts.signal?.addEventListener('abort', onAbort, { once: true })
  if (isAborted(opts.signal)) {
    // Aborted while it was binding: do not hand out a server that is already closing.
    await close()
    throw new AbortError(undefined, { cause: opts.signal?.reason })
  }

  return { url, port, close, [Symbol.asyncDispose]: close }
}
