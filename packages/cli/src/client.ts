import { Agent, request, type IncomingMessage, type RequestOptions } from 'node:http'
import type { ErrorKind } from '@cnm/types'
import { ApiResponseError, DaemonUnreachableError, UsageError } from './errors.js'
import type { ConnectBody, CreateNetworkBody, CreateSandboxBody, DisconnectBody } from './schemas.js'
import type { EndpointView, NetworkView, SandboxView } from './service.js'
import type { DaemonStats } from './api.js'

/** Default socket of the daemon (`cnm daemon` without `--socket`). */
export const DEFAULT_SOCKET = '/run/cnm/cnm.sock'

export interface ClientInit {
  /**
   * Where the daemon listens: a unix socket path (`/run/cnm/cnm.sock`, `unix:///run/cnm/cnm.sock`)
   * or `tcp://host:port`. @default DEFAULT_SOCKET
   */
  host?: string
  /** Give up on a request after this long. @default 60000 */
  timeoutMs?: number
}

export interface VersionInfo {
  version: string
  apiVersion: string
  drivers: string[]
  ipams: string[]
  hostNetns: string | null
  root: string
  execRoot: string
  pid: number
}

export type {
  NetworkView,
  SandboxView,
  EndpointView,
  CreateNetworkBody,
  CreateSandboxBody,
  ConnectBody,
  DisconnectBody,
  DaemonStats,
}

/** Parses `--host`/`CNM_HOST` into request options. */
export function parseHost(host: string): { socketPath: string } | { host: string; port: number } {
  if (host.startsWith('tcp://')) {
    const u = new URL(host.replace(/^tcp:/, 'http:'))
    const port = Number(u.port)
    if (u.hostname === '' || !Number.isInteger(port) || port < 1)
      throw new UsageError(`bad daemon address ${host}: use tcp://host:port`)
    return { host: u.hostname.replace(/^\[|\]$/g, ''), port }
  }
  const path = host.startsWith('unix://') ? host.slice('unix://'.length) : host
  if (!path.startsWith('/'))
    throw new UsageError(`bad daemon address ${host}: use an absolute socket path, unix:///path or tcp://host:port`)
  return { socketPath: path }
}

/** A client of the cnm daemon's HTTP API. Errors are ApiResponseError (with status, kind, code) or DaemonUnreachableError. */
export class CnmClient {
  readonly host: string
  readonly #target: { socketPath: string } | { host: string; port: number }
  readonly #timeoutMs: number
  readonly #agent: Agent

  constructor(init: ClientInit = {}) {
    this.host = init.host ?? DEFAULT_SOCKET
    this.#target = parseHost(this.host)
    this.#timeoutMs = init.timeoutMs ?? 60_000
    this.#agent = new Agent({ keepAlive: true, maxSockets: 256 })
  }

  /** Closes idle keep-alive connections. */
  close(): void {
    this.#agent.destroy()
  }

  /** One request; resolves the parsed JSON answer (undefined for 204). */
  async request<T>(method: string, path: string, body?: unknown, options: { signal?: AbortSignal } = {}): Promise<T> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body)
    const opts: RequestOptions = {
      ...this.#target,
      agent: this.#agent,
      method,
      path,
      headers: {
        accept: 'application/json',
        ...(payload !== undefined && {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(payload),
        }),
      },
      signal: AbortSignal.any([
        AbortSignal.timeout(this.#timeoutMs),
        ...(options.signal === undefined ? [] : [options.signal]),
      ]),
    }
    return await new Promise<T>((resolve, reject) => {
      const req = request(opts, (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          const status = res.statusCode ?? 0
          let parsed: unknown
          if (text.trim() !== '' && (res.headers['content-type'] ?? '').includes('json')) {
            try {
              parsed = JSON.parse(text)
            } catch {
              parsed = undefined
            }
          } else if (text !== '') parsed = text
          if (status >= 200 && status < 300) {
            resolve(parsed as T)
            return
          }
          const e = (parsed ?? {}) as { message?: string; kind?: ErrorKind; code?: string }
          reject(
            new ApiResponseError(
              status,
              e.kind ?? 'internal',
              e.code ?? `HTTP_${status}`,
              e.message ?? (text.trim() || `HTTP ${status}`),
            ),
          )
        })
      })
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (['ENOENT', 'ECONNREFUSED', 'EACCES', 'ECONNRESET', 'EPIPE'].includes(err.code ?? '')) {
          reject(new DaemonUnreachableError(this.host, { cause: err }))
        } else reject(err)
      })
      req.end(payload)
    })
  }

  ping(): Promise<string> {
    return this.request('GET', '/_ping')
  }
  version(): Promise<VersionInfo> {
    return this.request('GET', '/version')
  }
  listNetworks(): Promise<NetworkView[]> {
    return this.request('GET', '/networks')
  }
  createNetwork(body: CreateNetworkBody): Promise<NetworkView> {
    return this.request('POST', '/networks', body)
  }
  inspectNetwork(ref: string): Promise<NetworkView> {
    return this.request('GET', `/networks/${encodeURIComponent(ref)}`)
  }
  async removeNetwork(ref: string): Promise<void> {
    await this.request('DELETE', `/networks/${encodeURIComponent(ref)}`)
  }
  connect(network: string, body: ConnectBody): Promise<EndpointView> {
    return this.request('POST', `/networks/${encodeURIComponent(network)}/connect`, body)
  }
  async disconnect(network: string, body: DisconnectBody): Promise<void> {
    await this.request('POST', `/networks/${encodeURIComponent(network)}/disconnect`, body)
  }
  listSandboxes(): Promise<SandboxView[]> {
    return this.request('GET', '/sandboxes')
  }
  createSandbox(body: CreateSandboxBody, options: { signal?: AbortSignal } = {}): Promise<SandboxView> {
    return this.request('POST', '/sandboxes', body, options)
  }
  inspectSandbox(ref: string): Promise<SandboxView> {
    return this.request('GET', `/sandboxes/${encodeURIComponent(ref)}`)
  }
  async removeSandbox(ref: string): Promise<void> {
    await this.request('DELETE', `/sandboxes/${encodeURIComponent(ref)}`)
  }
  /** Stops a sandbox: its endpoints leave but keep their addresses and host ports. */
  stopSandbox(ref: string): Promise<SandboxView> {
    return this.request('POST', `/sandboxes/${encodeURIComponent(ref)}/stop`)
  }
  /** Starts a stopped sandbox with the same addresses and host ports. */
  startSandbox(ref: string): Promise<SandboxView> {
    return this.request('POST', `/sandboxes/${encodeURIComponent(ref)}/start`)
  }
  /** Counts, memory and DNS counters of the daemon (`gc`: collect garbage first, when the daemon runs with --expose-gc). */
  info(options: { gc?: boolean } = {}): Promise<DaemonStats & { gcCollected: boolean }> {
    return this.request('GET', options.gc === true ? '/info?gc=1' : '/info')
  }

  /**
   * The daemon's event stream (`GET /events`, NDJSON): yields each event as it happens until the
   * signal aborts (the iteration then ends quietly) or the daemon stops.
   */
  async *events(options: { signal?: AbortSignal } = {}): AsyncGenerator<DaemonEvent> {
    const signal = options.signal
    const aborted = (): boolean => signal?.aborted === true
    if (aborted()) return
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(
        {
          ...this.#target,
          method: 'GET',
          path: '/events',
          headers: { accept: 'application/x-ndjson' },
          ...(signal !== undefined && { signal }),
        },
        resolve,
      )
      req.on('error', (err: NodeJS.ErrnoException) => {
        if (['ENOENT', 'ECONNREFUSED', 'EACCES'].includes(err.code ?? ''))
          reject(new DaemonUnreachableError(this.host, { cause: err }))
        else reject(err)
      })
      req.end()
    }).catch((err: unknown) => {
      if (aborted()) return undefined
      throw err
    })
    if (res === undefined) return
    if ((res.statusCode ?? 0) !== 200) {
      res.resume()
      throw new ApiResponseError(res.statusCode ?? 0, 'internal', `HTTP_${res.statusCode}`, 'event stream refused')
    }
    let buf = ''
    try {
      for await (const chunk of res as AsyncIterable<Buffer>) {
        buf += chunk.toString('utf8')
        let nl: number
        while ((nl = buf.indexOf('\n')) >= 0) {
          const line = buf.slice(0, nl)
          buf = buf.slice(nl + 1)
          if (line.trim() !== '') yield JSON.parse(line) as DaemonEvent
        }
      }
    } catch (err) {
      if (!aborted()) throw err
    } finally {
      res.destroy()
    }
  }
}

/** One event of `GET /events`: a controller event with its time. */
export interface DaemonEvent {
  time: string
  type: string
  [field: string]: unknown
}
