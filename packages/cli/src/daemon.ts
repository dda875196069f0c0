import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, readFile, rm, stat, unlink } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import { isCnmError, isLinkLocalUnicast, noopLogger, tryParseIp, type ComponentLogger, type Logger } from '@cnm/types'
import { createController, toApiError, type Controller } from '@cnm/controller'
import { lmdbStore, type Store } from '@cnm/datastore'
import { defaultIpam, nullIpam } from '@cnm/ipam'
import { osl as makeOsl, type Osl } from '@cnm/osl'
import { BridgeStateStore, bridgeDriver, hostDriver, nullDriver } from '@cnm/drivers-bridge'
import type { UpstreamServer } from '@cnm/resolver'
import { buildRouter, type ApiInfo } from './api.js'
import { BodyTooLargeError, DaemonConfigError, DaemonStoppingError, MethodNotAllowedError } from './errors.js'
import { readJsonBody, sendJson, type Router } from './internal/http.js'
import { OslSandboxLayer } from './os-layer.js'
import { SandboxFiles } from './sandbox-extras.js'
import { CnmService, ensureDir } from './service.js'
import { VERSION } from './version.js'

/** Options of `cnm daemon` (all optional; defaults in DEFAULT_DAEMON_INIT). */
export interface DaemonInit {
  /** State directory (the store). @default '/var/lib/cnm' */
  root?: string
  /** Runtime directory: the socket, sandbox namespaces (`netns/`), per-sandbox hosts/resolv.conf (`sandboxes/`). @default '/run/cnm' */
  execRoot?: string
  /** Unix socket of the API (mode 0600). @default '<execRoot>/cnm.sock' */
  socket?: string
  /**
   * Name of a network namespace (under /run/netns) that plays the host: bridges, host veth ends,
   * firewall rules and published ports live there. @default undefined (the daemon's own namespace)
   */
  hostNetns?: string
  /** Also serve the API on TCP `host:port` (no authentication: loopback only is wise). @default undefined (off) */
  tcp?: string
  /** Start the embedded DNS resolver (127.0.0.11) in each sandbox. @default true */
  embeddedDns?: boolean
  /**
   * Upstream DNS servers for names the embedded resolver does not know.
   * @default the nameservers of /etc/resolv.conf, or none with `hostNetns` (a test namespace has no way out)
   */
  dnsUpstreams?: readonly string[]
  /** Prefix of the daemon's firewall chains. @default 'CNM' */
  chainPrefix?: string
  /** Largest request body accepted. @default 1 MiB */
  maxBodyBytes?: number
}

export interface DaemonComponents {
  logger?: ComponentLogger
}

export const DEFAULT_DAEMON_INIT = Object.freeze({
  root: '/var/lib/cnm',
  execRoot: '/run/cnm',
  embeddedDns: true,
  chainPrefix: 'CNM',
  maxBodyBytes: 1024 * 1024,
})

interface DaemonConfig {
  readonly root: string
  readonly execRoot: string
  readonly socket: string
  readonly hostNetns: string | undefined
  readonly tcp: { host: string; port: number } | undefined
  readonly embeddedDns: boolean
  readonly dnsUpstreams: readonly string[] | undefined
  readonly chainPrefix: string
  readonly maxBodyBytes: number
}

function resolveConfig(init: DaemonInit): DaemonConfig {
  const root = init.root ?? DEFAULT_DAEMON_INIT.root
  const execRoot = init.execRoot ?? DEFAULT_DAEMON_INIT.execRoot
  for (const [k, v] of [['root', root], ['execRoot', execRoot]] as const) {
    if (typeof v !== 'string' || !isAbsolute(v)) throw new DaemonConfigError(`${k} must be an absolute path, got ${JSON.stringify(v)}`)
  }
  const socket = init.socket ?? join(execRoot, 'cnm.sock')
  if (!isAbsolute(socket)) throw new DaemonConfigError(`socket must be an absolute path, got ${JSON.stringify(socket)}`)
  if (Buffer.byteLength(socket) > 107) throw new DaemonConfigError(`socket path too long for a unix socket (max 107 bytes): ${socket}`)
  if (init.hostNetns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(init.hostNetns)) {
    throw new DaemonConfigError(`invalid host namespace name ${JSON.stringify(init.hostNetns)}`)
  }
  let tcp: DaemonConfig['tcp']
  if (init.tcp !== undefined) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(init.tcp)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535) throw new DaemonConfigError(`--tcp must be host:port, got ${JSON.stringify(init.tcp)}`)
    tcp = { host: (m[1] ?? m[2]) as string, port }
  }
  const maxBodyBytes = init.maxBodyBytes ?? DEFAULT_DAEMON_INIT.maxBodyBytes
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024) throw new DaemonConfigError('maxBodyBytes must be an integer >= 1024')
  for (const u of init.dnsUpstreams ?? []) {
    if (tryParseIp(u) === undefined) throw new DaemonConfigError(`DNS upstream is not an IP address: ${JSON.stringify(u)}`)
  }
  return {
    root,
    execRoot,
    socket,
    hostNetns: init.hostNetns,
    tcp,
    embeddedDns: init.embeddedDns ?? DEFAULT_DAEMON_INIT.embeddedDns,
    dnsUpstreams: init.dnsUpstreams,
    chainPrefix: init.chainPrefix ?? DEFAULT_DAEMON_INIT.chainPrefix,
    maxBodyBytes,
  }
}

const execFileP = promisify(execFile)

/** Nameservers of the host's /etc/resolv.conf (loopback ones are reached from the daemon's namespace). */
function hostUpstreams(log: Logger): UpstreamServer[] {
  let text = ''
  try {
    text = readFileSync('/etc/resolv.conf', 'utf8')
  } catch (err) {
    log('no /etc/resolv.conf (%s): the embedded DNS forwards nothing', (err as Error).message)
    return []
  }
  const out: UpstreamServer[] = []
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line)
    if (m === null) continue
    const ip = tryParseIp((m[1] as string).replace(/%.*$/, ''))
    if (ip === undefined || (ip.version === 6 && isLinkLocalUnicast(ip))) continue
    const loop = ip.version === 4 ? ip.value >> 24n === 127n : ip.value === 1n
    out.push({ address: m[1] as string, ...(loop && { hostLoopback: true }) })
  }
  return out
}

/**
 * Makes `dir` a shared mount point (bind-mounted on itself), as `ip netns add` does for /run/netns:
 * namespace files mounted in it later then propagate into mount namespaces made before (the OS layer's
 * resident `ip -n` helper runs in one), which otherwise see an empty file. Left mounted at stop, so
 * sandboxes survive a daemon restart.
 */
async function ensureSharedMount(dir: string): Promise<void> {
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  const line = info.split('\n').find((l) => l.split(' ')[4] === dir)
  if (line !== undefined && / shared:\d+/.test(line)) return
  if (line === undefined) await execFileP('mount', ['--bind', dir, dir])
  await execFileP('mount', ['--make-shared', dir])
}

/**
 * Removes a stopped daemon's runtime directory for good: detaches the sandbox namespaces and the
 * shared mount of `<execRoot>/netns`, then deletes the directory. For tests and `cnm demo`; a real
 * daemon keeps its exec root so sandboxes survive restarts.
 */
export async function removeExecRoot(execRoot: string): Promise<void> {
  const netnsDir = join(execRoot, 'netns')
  const info = await readFile('/proc/self/mountinfo', 'utf8')
  const mounted = info
    .split('\n')
    .map((l) => l.split(' ')[4])
    .filter((m): m is string => m !== undefined && (m === netnsDir || m.startsWith(`${netnsDir}/`)))
  // deepest first; a lazy unmount of a parent would also detach the rest
  for (const m of mounted.sort((a, b) => b.length - a.length)) {
    await execFileP('umount', ['-l', m]).catch(() => undefined)
  }
  await rm(execRoot, { recursive: true, force: true })
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path)
    return true
  } catch {
    return false
  }
}

/** True when something accepts connections on the unix socket. */
async function socketAlive(path: string): Promise<boolean> {
  return await new Promise((resolve) => {
    const s = connect(path)
    s.once('connect', () => {
      s.destroy()
      resolve(true)
    })
    s.once('error', () => resolve(false))
  })
}

/**
 * The cnm daemon: the controller with the bridge/null/host drivers and the default IPAM on an LMDB
 * store, sandboxes on @cnm/osl, per-sandbox DNS, and the JSON HTTP API on a unix socket (0600).
 */
export class Daemon {
  readonly config: DaemonConfig
  readonly #logger: ComponentLogger
  readonly #log: Logger
  #store: Store | undefined
  #osl: Osl | undefined
  #ctl: Controller | undefined
  #files: SandboxFiles | undefined
  #router: Router | undefined
  readonly #servers: Server[] = []
  readonly #inflight = new Set<Promise<void>>()
  readonly #stopping = new AbortController()
  #state: 'new' | 'starting' | 'running' | 'stopping' | 'stopped' = 'new'
  #tcpPort: number | undefined

  constructor(init: DaemonInit = {}, components: DaemonComponents = {}) {
    this.config = resolveConfig(init)
    this.#logger = components.logger ?? noopLogger()
    this.#log = this.#logger.forComponent('cnm:daemon')
  }

  /** The controller (after start). */
  get controller(): Controller {
    if (this.#ctl === undefined) throw new DaemonStoppingError()
    return this.#ctl
  }

  /** The TCP port actually bound (when `tcp` was given, port 0 picks one). */
  get tcpPort(): number | undefined {
    return this.#tcpPort
  }

  async start(): Promise<void> {
    if (this.#state !== 'new') return
    this.#state = 'starting'
    const c = this.config
    try {
      if (c.hostNetns !== undefined && !(await exists(`/run/netns/${c.hostNetns}`))) {
        throw new DaemonConfigError(`host namespace ${c.hostNetns} does not exist (/run/netns/${c.hostNetns})`)
      }
      if (await exists(c.socket)) {
        if (await socketAlive(c.socket)) throw new DaemonConfigError(`another daemon is listening on ${c.socket}`)
        await unlink(c.socket)
      }
      await ensureDir(c.root)
      await ensureDir(c.execRoot)
      const netnsDir = join(c.execRoot, 'netns')
      await ensureDir(netnsDir)
      await ensureSharedMount(netnsDir)
      const logger = this.#logger
      const store = lmdbStore({ path: join(c.root, 'store') }, { logger })
      this.#store = store
      this.#osl = makeOsl({ ...(c.hostNetns !== undefined && { hostNetns: c.hostNetns }), netnsDir })({ logger })
      const bridge = bridgeDriver({
        ...(c.hostNetns !== undefined && { hostNetns: c.hostNetns }),
        chainPrefix: c.chainPrefix,
        holdHostPorts: true,
      })({ logger, store, osl: this.#osl })
      const ctl = createController({ netnsRoot: netnsDir, gatewayBridge: false })({
        logger,
        store,
        osLayer: new OslSandboxLayer(this.#osl),
        drivers: { bridge, null: nullDriver()({ logger }), host: hostDriver()({ logger }) },
        // IPAM state in memory, rebuilt at start from the controller's records (requiresRequestReplay),
        // as moby does for local networks: an address allocated by a request the crash interrupted
        // cannot leak, because only recorded endpoints are replayed
        ipams: { default: defaultIpam()({ logger }), null: nullIpam()({ logger }) },
      })
      this.#ctl = ctl
      await ctl.start()
      await this.#reapOrphanLinks(store, ctl)
      const upstreams: UpstreamServer[] =
        c.dnsUpstreams !== undefined ? c.dnsUpstreams.map((address) => ({ address })) : c.hostNetns !== undefined ? [] : hostUpstreams(this.#log)
      this.#files = new SandboxFiles({ dir: join(c.execRoot, 'sandboxes'), embeddedDns: c.embeddedDns, upstreams }, ctl, logger)
      for (const sb of ctl.sandboxes()) await this.#files.sandboxReady(sb)
      const service = new CnmService(ctl, this.#files, logger)
      const info: ApiInfo = { version: VERSION, hostNetns: c.hostNetns, root: c.root, execRoot: c.execRoot }
      this.#router = buildRouter(service, ctl, info)
      await this.#listenUnix(c.socket)
      if (c.tcp !== undefined) await this.#listenTcp(c.tcp.host, c.tcp.port)
      this.#state = 'running'
      this.#log('listening on %s%s', c.socket, c.tcp === undefined ? '' : ` and tcp ${c.tcp.host}:${this.#tcpPort}`)
    } catch (err) {
      this.#state = 'running'
      await this.stop().catch((e: unknown) => this.#log.error('cleanup after a failed start: %o', e))
      throw err
    }
  }

  /**
   * A daemon killed in the middle of an attach can leave an endpoint that never joined, or a veth
   * pair whose endpoint was never recorded (the kernel step ran, the store write did not). After
   * recovery, remove such endpoints, then delete host veths enslaved to one of our bridges that no
   * known endpoint owns.
   */
  async #reapOrphanLinks(store: Store, ctl: Controller): Promise<void> {
    const osl = this.#osl
    if (osl === undefined) return
    // the API never leaves an endpoint unjoined (connect = create + join, disconnect = leave + delete):
    // one without a sandbox is a connect the crash interrupted, so finish undoing it
    for (const e of ctl.endpoints()) {
      if (e.sandboxId !== undefined) continue
      this.#log('removing endpoint %s (%s): its connect was interrupted', e.name, e.id)
      await ctl.deleteEndpoint(e.id, { force: true }).catch((err: unknown) => this.#log.error('removing endpoint %s: %o', e.id, err))
    }
    const st = await new BridgeStateStore(store, this.#log).load()
    const known = new Set<string>(ctl.endpoints().map((e) => e.id))
    const owned = new Set(st.endpoints.filter((e) => known.has(e.id)).map((e) => e.hostIfName))
    const bridges = new Set(st.networks.map((n) => n.bridgeName))
    const orphans = (await osl.host.links())
      .filter((l) => l.master !== undefined && bridges.has(l.master) && !owned.has(l.ifname) && !bridges.has(l.ifname))
      .map((l) => l.ifname)
    for (const name of orphans) {
      await osl.host.deleteLink(name).catch((err: unknown) => this.#log.error('deleting orphan link %s: %o', name, err))
    }
    if (orphans.length > 0) this.#log('deleted %d orphan links: %s', orphans.length, orphans.join(' '))
  }

  #server(): Server {
    const server = createServer((req, res) => {
      const p = this.#handle(req, res)
      this.#inflight.add(p)
      void p.finally(() => this.#inflight.delete(p))
    })
    server.keepAliveTimeout = 5000
    this.#servers.push(server)
    return server
  }

  async #listenUnix(path: string): Promise<void> {
    const server = this.#server()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(path, () => {
        server.off('error', reject)
        resolve()
      })
    })
    await chmod(path, 0o600)
  }

  async #listenTcp(host: string, port: number): Promise<void> {
    const server = this.#server()
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => {
        server.off('error', reject)
        resolve()
      })
    })
    const addr = server.address()
    this.#tcpPort = typeof addr === 'object' && addr !== null ? addr.port : port
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const ac = new AbortController()
    const onClose = (): void => {
      if (!res.writableFinished) ac.abort(new Error('client closed the connection'))
    }
    res.on('close', onClose)
    const signal = ac.signal
    const t0 = performance.now()
    let status = 500
    try {
      if (this.#state !== 'running' || this.#router === undefined) throw new DaemonStoppingError()
      const url = new URL(req.url ?? '/', 'http://cnm')
      const { handler, params } = this.#router.match(req.method ?? 'GET', url.pathname)
      let bodyP: Promise<unknown> | undefined
      const out = await handler({
        req,
        res,
        params,
        query: url.searchParams,
        signal,
        shutdown: this.#stopping.signal,
        body: async () => (bodyP ??= readJsonBody(req, this.config.maxBodyBytes)),
      })
      if (out !== undefined) {
        status = out.status
        sendJson(res, out.status, out.body)
      } else status = res.statusCode
    } catch (err) {
      const api = toApiError(err)
      status = err instanceof MethodNotAllowedError ? 405 : err instanceof BodyTooLargeError ? 413 : api.status
      if (status >= 500 && !isCnmError(err, 'ERR_CLI_DAEMON_STOPPING')) this.#log.error('%s %s failed: %o', req.method, req.url, err)
      // drain what the client still sends so it reads our answer
      if (!req.complete) req.resume()
      sendJson(res, status, { message: api.message, code: api.code, kind: api.kind }, err instanceof MethodNotAllowedError ? { allow: err.allow.join(', ') } : {})
    } finally {
      res.off('close', onClose)
      this.#log.trace('%s %s → %d (%s ms)', req.method, req.url, status, (performance.now() - t0).toFixed(1))
    }
  }

  /**
   * Graceful stop: stop accepting, end event streams, wait for requests in flight, stop the
   * resolvers and the controller, close the store. Namespaces, links and rules stay for the next start.
   */
  async stop(): Promise<void> {
    if (this.#state === 'stopped' || this.#state === 'stopping') return
    this.#state = 'stopping'
    for (const s of this.#servers) s.close()
    // event streams never finish on their own; other requests run to their end
    this.#stopping.abort(new DaemonStoppingError())
    await Promise.allSettled([...this.#inflight])
    for (const s of this.#servers) s.closeAllConnections()
    await this.#files?.stopAll().catch((e: unknown) => this.#log.error('stopping resolvers: %o', e))
    await this.#ctl?.stop().catch((e: unknown) => this.#log.error('stopping the controller: %o', e))
    await this.#osl?.close().catch((e: unknown) => this.#log.error('closing the OS layer: %o', e))
    await this.#store?.close().catch((e: unknown) => this.#log.error('closing the store: %o', e))
    await unlink(this.config.socket).catch(() => undefined)
    this.#state = 'stopped'
    this.#log('stopped')
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop()
  }
}

/** Two-stage factory: `daemon(init)(components)`; validates `init` at once. */
export function daemon(init: DaemonInit = {}): (components?: DaemonComponents) => Daemon {
  resolveConfig(init)
  return (components = {}) => new Daemon(init, components)
}
