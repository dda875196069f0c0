import type { IncomingMessage, ServerResponse } from 'node:http'
import { BadRequestError, BodyTooLargeError, MethodNotAllowedError, RouteNotFoundError } from '../errors.js'

export type Params = Readonly<Record<string, string>>

export interface RouteContext {
  readonly req: IncomingMessage
  readonly res: ServerResponse
  readonly params: Params
  readonly query: URLSearchParams
  /** Aborted when the client goes away or the daemon stops. */
  readonly signal: AbortSignal
  /** Aborted when the daemon stops (ends streams such as /events). */
  readonly shutdown: AbortSignal
  /** The parsed JSON body (`undefined` when the request has none). */
  body(): Promise<unknown>
}

/** What a handler returns: a status and a JSON-able body, or `undefined` when it wrote the response itself. */
export type RouteResult = { status: number; body?: unknown } | undefined
export type Handler = (ctx: RouteContext) => Promise<RouteResult>

interface Route {
  readonly method: string
  readonly parts: readonly string[]
  readonly handler: Handler
}

/** A minimal router: `/networks/:id/connect` style patterns, exact segments otherwise. */
export class Router {
  readonly #routes: Route[] = []

  add(method: string, pattern: string, handler: Handler): this {
    this.#routes.push({ method, parts: pattern.split('/').filter((p) => p !== ''), handler })
    return this
  }

  /** The handler and params for a request, or throws RouteNotFoundError / MethodNotAllowedError. */
  match(method: string, path: string): { handler: Handler; params: Params } {
    let segs: string[]
    try {
      segs = path
        .split('/')
        .filter((p) => p !== '')
        .map((s) => decodeURIComponent(s))
    } catch (cause) {
      throw new BadRequestError(`malformed path ${path}`, { cause })
    }
    const allow: string[] = []
    for (const r of this.#routes) {
      if (r.parts.length !== segs.length) continue
      const params: Record<string, string> = {}
      let hit = true
      for (let i = 0; i < segs.length; i++) {
        const p = r.parts[i] as string
        const s = segs[i] as string
        if (p.startsWith(':')) params[p.slice(1)] = s
        else if (p !== s) {
          hit = false
          break
        }
      }
      if (!hit) continue
      if (r.method === method || (method === 'HEAD' && r.method === 'GET')) return { handler: r.handler, params }
      allow.push(r.method)
    }
    if (allow.length > 0) throw new MethodNotAllowedError(method, path, allow)
    throw new RouteNotFoundError(method, path)
  }
}

/** Reads and parses a JSON body (empty → undefined). Malformed JSON or a wrong content type → BadRequestError. */
export async function readJsonBody(req: IncomingMessage, limitBytes: number): Promise<unknown> {
  const chunks: Buffer[] = []
  let size = 0
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > limitBytes) throw new BodyTooLargeError(limitBytes)
    chunks.push(chunk)
  }
  const text = Buffer.concat(chunks).toString('utf8')
  if (text.trim() === '') return undefined
  const type = req.headers['content-type']
  if (type !== undefined && !/^application\/json\b/i.test(type)) {
    throw new BadRequestError(`unsupported content type ${JSON.stringify(type)}: send application/json`)
  }
  try {
    return JSON.parse(text) as unknown
  } catch (cause) {
    throw new BadRequestError(`malformed JSON body: ${(cause as Error).message}`, { cause })
  }
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  if (res.headersSent) {
    res.end()
    return
  }
  if (status === 204 || body === undefined) {
    res.writeHead(status, headers)
    res.end()
    return
  }
  const text = JSON.stringify(body) + '\n'
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers })
  res.end(text)
}
