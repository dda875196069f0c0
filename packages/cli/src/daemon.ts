import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { connect } from 'node:net'
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { chmod, readFile, rm, stat, unlink } from 'node:fs/promises'
import { readFileSync } from 'node:fs'
import { isAbsolute, join } from 'node:path'
import {
  formatIp,
  formatPrefix,
  isCnmError,
  noopLogger,
  parseCidr,
  tryParseIp,
  type ComponentLogger,
  type Logger,
} from '@cnm/types'
import { createController, toApiError, type Controller } from '@cnm/controller'
import { lmdbStore, type Store } from '@cnm/datastore'
import { defaultIpam, nullIpam } from '@cnm/ipam'
import { DnsResponderEngine, osl as makeOsl, type Osl } from '@cnm/osl'
import { BridgeStateStore, bridgeDriver, hostDriver, nullDriver } from '@cnm/drivers-bridge'
import { HOST_RESOLV_CONF, hostResolvConfPath, hostUpstreams, type UpstreamServer } from '@cnm/resolver'
import { buildRouter, type ApiInfo } from './api.js'
import { BodyTooLargeError, DaemonConfigError, DaemonStoppingError, MethodNotAllowedError } from './errors.js'
import { readJsonBody, sendJson, type Router } from './internal/http.js'
import { OslSandboxLayer } from './os-layer.js'
import { ContainerRecords } from './containers.js'
import { DEFAULT_BRIDGE_OPTION, SandboxDns, isDefaultBridge, type HostDns } from './sandbox-dns.js'
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
  /**
   * The host's resolv.conf: nameservers, search domains and options sandboxes start from (filtered as
   * sandbox-dns.md §5.2 says). Ignored with `dnsUpstreams`.
   * @default '/etc/resolv.conf' (the systemd-resolved file when that holds only 127.0.0.53); none with `hostNetns`
   */
  resolvConf?: string
  /** The embedded resolvers ask the next upstream when one has not answered after this long (ms). @default 75 */
  dnsHedgeDelayMs?: number
  /**
   * Answer cached local names of the embedded resolvers from a native worker thread (osl's
   * DnsResponderEngine, one per daemon). When the native addon is unavailable, the resolvers answer
   * from JavaScript. @default true
   */
  dnsFastPath?: boolean
  /**
   * 1..99 runs the fast path's worker SCHED_FIFO at that priority (lower tail latency on a busy host;
   * needs CAP_SYS_NICE). 0 = normal scheduling. @default 0
   */
  dnsRealtimePriority?: number
  /** This node's address, answered for `_host_<port>._<proto>.<name>` SRV records of ports published on all addresses. @default none */
  hostAddress?: string
  /** Create the default `bridge` network (Docker's docker0) at start when there is none. @default true */
  defaultBridge?: boolean
  /** Device of the default bridge network; created when missing. @default 'cnm0' */
  bridge?: string
  /** Gateway address and prefix of the default bridge (`--bip`, e.g. 172.17.0.1/16). @default the first free default pool */
  bip?: string
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
  dnsHedgeDelayMs: 75,
  dnsFastPath: true,
  dnsRealtimePriority: 0,
  defaultBridge: true,
  bridge: 'cnm0',
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
  readonly resolvConf: string | undefined
  readonly dnsHedgeDelayMs: number
  readonly dnsFastPath: boolean
  readonly dnsRealtimePriority: number
  readonly hostAddress: string | undefined
  readonly defaultBridge: boolean
  readonly bridge: string
  readonly bip: { pool: string; gateway: string } | undefined
  readonly chainPrefix: string
  readonly maxBodyBytes: number
}

function resolveConfig(init: DaemonInit): DaemonConfig {
  const root = init.root ?? DEFAULT_DAEMON_INIT.root
  const execRoot = init.execRoot ?? DEFAULT_DAEMON_INIT.execRoot
  for (const [k, v] of [
    ['root', root],
    ['execRoot', execRoot],
  ] as const) {
    if (typeof v !== 'string' || !isAbsolute(v))
      throw new DaemonConfigError(`${k} must be an absolute path, got ${JSON.stringify(v)}`)
  }
  const socket = init.socket ?? join(execRoot, 'cnm.sock')
  if (!isAbsolute(socket)) throw new DaemonConfigError(`socket must be an absolute path, got ${JSON.stringify(socket)}`)
  if (Buffer.byteLength(socket) > 107)
    throw new DaemonConfigError(`socket path too long for a unix socket (max 107 bytes): ${socket}`)
  if (init.hostNetns !== undefined && !/^[A-Za-z0-9_.-]{1,64}$/.test(init.hostNetns)) {
    throw new DaemonConfigError(`invalid host namespace name ${JSON.stringify(init.hostNetns)}`)
  }
  let tcp: DaemonConfig['tcp']
  if (init.tcp !== undefined) {
    const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:]+)):(\d{1,5})$/.exec(init.tcp)
    const port = Number(m?.[3])
    if (m === null || port < 1 || port > 65535)
      throw new DaemonConfigError(`--tcp must be host:port, got ${JSON.stringify(init.tcp)}`)
    tcp = { host: (m[1] ?? m[2]) as string, port }
  }
  const maxBodyBytes = init.maxBodyBytes ?? DEFAULT_DAEMON_INIT.maxBodyBytes
  if (!Number.isSafeInteger(maxBodyBytes) || maxBodyBytes < 1024)
    throw new DaemonConfigError('maxBodyBytes must be an integer >= 1024')
  for (const u of init.dnsUpstreams ?? []) {
    if (tryParseIp(u) === undefined)
      throw new DaemonConfigError(`DNS upstream is not an IP address: ${JSON.stringify(u)}`)
  }
  if (init.resolvConf !== undefined && !isAbsolute(init.resolvConf))
    throw new DaemonConfigError(`resolvConf must be an absolute path, got ${JSON.stringify(init.resolvConf)}`)
  const hedge = init.dnsHedgeDelayMs ?? DEFAULT_DAEMON_INIT.dnsHedgeDelayMs
  if (!Number.isSafeInteger(hedge) || hedge < 1 || hedge > 10_000)
    throw new DaemonConfigError('dnsHedgeDelayMs must be an integer between 1 and 10000')
  const rt = init.dnsRealtimePriority ?? DEFAULT_DAEMON_INIT.dnsRealtimePriority
  if (!Number.isSafeInteger(rt) || rt < 0 || rt > 99)
    throw new DaemonConfigError('dnsRealtimePriority must be an integer between 0 and 99')
  if (init.hostAddress !== undefined && tryParseIp(init.hostAddress) === undefined) {
    throw new DaemonConfigError(`hostAddress is not an IP address: ${JSON.stringify(init.hostAddress)}`)
  }
  const bridge = init.bridge ?? DEFAULT_DAEMON_INIT.bridge
  if (!/^[a-zA-Z0-9_.-]{1,15}$/.test(bridge))
    throw new DaemonConfigError(`bridge must be an interface name (1-15 characters), got ${JSON.stringify(bridge)}`)
  let bip: DaemonConfig['bip']
  if (init.bip !== undefined) {
    let cidr: ReturnType<typeof parseCidr> | undefined
    try {
      cidr = parseCidr(init.bip)
    } catch {
      cidr = undefined
    }
    if (cidr === undefined || cidr.ip.version !== 4)
      throw new DaemonConfigError(
        `bip must be an IPv4 address with a prefix length (e.g. 172.17.0.1/16), got ${JSON.stringify(init.bip)}`,
      )
    bip = { pool: formatPrefix(cidr.prefix), gateway: formatIp(cidr.ip) }
  }
  return {
    root,
    execRoot,
    socket,
    hostNetns: init.hostNetns,
    tcp,
    embeddedDns: init.embeddedDns ?? DEFAULT_DAEMON_INIT.embeddedDns,
    dnsUpstreams: init.dnsUpstreams,
    resolvConf: init.resolvConf,
    dnsHedgeDelayMs: hedge,
    dnsFastPath: init.dnsFastPath ?? DEFAULT_DAEMON_INIT.dnsFastPath,
    dnsRealtimePriority: rt,
    hostAddress: init.hostAddress,
    defaultBridge: init.defaultBridge ?? DEFAULT_DAEMON_INIT.defaultBridge,
    bridge,
    bip,
    chainPrefix: init.chainPrefix ?? DEFAULT_DAEMON_INIT.chainPrefix,
    maxBodyBytes,
  }
}

const execFileP = promisify(execFile)

/**
 * The host's DNS configuration for the sandboxes: `--dns-upstream` servers, else the host's
 * resolv.conf (sandbox-dns.md §5.1: the systemd-resolved file when the stub is the only server). A
 * daemon playing in a test namespace (`hostNetns`) reads no host file unless told to.
 */
function hostDnsOf(c: DaemonConfig, log: Logger): HostDns {
  if (c.dnsUpstreams !== undefined) {
    return {
      content: c.dnsUpstreams.map((u) => `nameserver ${u}\n`).join(''),
      upstreams: c.dnsUpstreams.map((address) =>
        address.startsWith('127.') ? { address, hostLoopback: true } : { address },
      ),
      noFallback: c.hostNetns !== undefined,
    }
  }
  if (c.hostNetns !== undefined && c.resolvConf === undefined) return { content: '', upstreams: [], noFallback: true }
  let path = c.resolvConf
  if (path === undefined) {
    let etc: string | undefined
    try {
      etc = readFileSync(HOST_RESOLV_CONF, 'utf8')
    } catch {
      etc = undefined
    }
    path = hostResolvConfPath(etc)
  }
  let content = ''
  try {
    content = readFileSync(path, 'utf8')
  } catch (err) {
    log('no %s (%s): sandboxes get the default nameservers', path, (err as Error).message)
  }
  const upstreams: UpstreamServer[] = hostUpstreams(content)
  return { content, upstreams, noFallback: c.hostNetns !== undefined }
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
  #bridge: { close(): Promise<void> } | undefined
  #ctl: Controller | undefined
  #dns: SandboxDns | undefined
  #dnsEngine: DnsResponderEngine | undefined
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
      this.#bridge = bridge
      const osLayer = new OslSandboxLayer(this.#osl)
      const ctl = createController({
        netnsRoot: netnsDir,
        gatewayBridge: false,
        ...(c.hostAddress !== undefined && { hostAddress: c.hostAddress }),
      })({
        logger,
        store,
        osLayer,
        drivers: { bridge, null: nullDriver()({ logger }), host: hostDriver()({ logger }) },
        // IPAM state in memory, rebuilt at start from the controller's records (requiresRequestReplay),
        // as moby does for local networks: an address allocated by a request the crash interrupted
        // cannot leak, because only recorded endpoints are replayed
        ipams: { default: defaultIpam()({ logger }), null: nullIpam()({ logger }) },
      })
      this.#ctl = ctl
      osLayer.srcNameLookup = async (key, dstName) => {
        const sb = ctl.sandboxes().find((s) => s.key === key)
        const ep =
          sb === undefined ? undefined : ctl.endpoints({ sandboxId: sb.id }).find((e) => e.interfaceName === dstName)
        if (ep === undefined) return undefined
        const st = await new BridgeStateStore(store, this.#log).load()
        const rec = st.endpoints.find((e) => e.id === ep.id)
        // a pair made inside the sandbox at join has no host-side name: it is destroyed on leave
        return rec === undefined || rec.vethInPlace === true ? undefined : rec.containerIfName
      }
      await ctl.start()
      const records = new ContainerRecords(store, this.#log)
      if (c.embeddedDns && c.dnsFastPath) {
        try {
          this.#dnsEngine = new DnsResponderEngine({ realtimePriority: c.dnsRealtimePriority }, { logger })
        } catch (err) {
          // the resolvers still answer, from JavaScript
          this.#log.error('DNS fast path not available: %s', (err as Error).message)
        }
      }
      const dns = new SandboxDns(
        {
          dir: join(c.execRoot, 'sandboxes'),
          embeddedDns: c.embeddedDns,
          hostDns: hostDnsOf(c, this.#log),
          hedgeDelayMs: c.dnsHedgeDelayMs,
        },
        ctl,
        records,
        logger,
        this.#dnsEngine,
      )
      this.#dns = dns
      const service = new CnmService(ctl, dns, records, logger, (key) => osLayer.removing(key))
      await service.recover()
      await this.#reapOrphanLinks(store, ctl, service.knownContainers())
      await this.#ensureDefaultBridge(ctl)
      await service.restoreDns()
      const started = performance.now()
      const info: ApiInfo = {
        version: VERSION,
        hostNetns: c.hostNetns,
        root: c.root,
        execRoot: c.execRoot,
        stats: async () => {
          const counts = service.counts()
          const d = await dns.stats()
          const m = process.memoryUsage()
          const t = d.totals
          return {
            sandboxes: counts,
            networks: ctl.networks().length,
            endpoints: ctl.endpoints().length,
            dns: {
              resolvers: d.resolvers,
              queries: t?.queries ?? 0,
              local: t?.local ?? 0,
              fastPathAnswered: t?.fastPathAnswered ?? 0,
              forwarded: t?.forwarded ?? 0,
              dropped: t?.dropped ?? 0,
              rejected: t?.rejected ?? 0,
              servfail: t?.servfail ?? 0,
              errors: t?.errors ?? 0,
            },
            memory: {
              rssBytes: m.rss,
              heapUsedBytes: m.heapUsed,
              heapTotalBytes: m.heapTotal,
              externalBytes: m.external,
              arrayBuffersBytes: m.arrayBuffers,
            },
            pid: process.pid,
            uptimeMs: Math.round(performance.now() - started),
          }
        },
      }
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
  async #reapOrphanLinks(store: Store, ctl: Controller, containers: ReadonlySet<string>): Promise<void> {
    const osl = this.#osl
    if (osl === undefined) return
    // the API leaves an endpoint unjoined only while its sandbox is stopped (connect = create + join,
    // disconnect = leave + delete): any other one is a connect the crash interrupted, so finish undoing it
    for (const e of ctl.endpoints()) {
      if (e.sandboxId !== undefined || (e.containerId !== undefined && containers.has(e.containerId))) continue
      this.#log('removing endpoint %s (%s): its connect was interrupted', e.name, e.id)
      await ctl
        .deleteEndpoint(e.id, { force: true })
        .catch((err: unknown) => this.#log.error('removing endpoint %s: %o', e.id, err))
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

  /**
   * The default bridge network (drivers.md §3.7, Docker's docker0), made once: network `bridge` on
   * device `bridge` (created when missing), IPAM from `bip` or the first free default pool. Never
   * removed; sandboxes on it get no embedded DNS and reach each other by legacy links.
   */
  async #ensureDefaultBridge(ctl: Controller): Promise<void> {
    const c = this.config
    const osl = this.#osl
    if (!c.defaultBridge || osl === undefined) return
    if (ctl.networks().some((n) => isDefaultBridge(n))) return
    if (ctl.networks().some((n) => n.name === 'bridge')) {
      this.#log('a network named bridge exists and is not the default bridge: no default bridge')
      return
    }
    let made = false
    if (c.bridge !== 'docker0' && (await osl.host.link(c.bridge)) === undefined) {
      await osl.host.createBridge({ name: c.bridge })
      made = true
    }
    try {
      await ctl.createNetwork({
        name: 'bridge',
        type: 'bridge',
        checkDuplicate: true,
        driverOptions: {
          [DEFAULT_BRIDGE_OPTION]: 'true',
          'com.docker.network.bridge.name': c.bridge,
          'com.docker.network.bridge.enable_icc': 'true',
          'com.docker.network.bridge.enable_ip_masquerade': 'true',
        },
        ...(c.bip !== undefined && { ipam: { v4: [{ pool: c.bip.pool, gateway: c.bip.gateway }] } }),
      })
      this.#log('created the default bridge network on %s', c.bridge)
    } catch (err) {
      if (made)
        await osl.host.deleteLink(c.bridge).catch((e: unknown) => this.#log.error('deleting %s: %o', c.bridge, e))
      throw err
    }
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
      if (status >= 500 && !isCnmError(err, 'ERR_CLI_DAEMON_STOPPING'))
        this.#log.error('%s %s failed: %o', req.method, req.url, err)
      // drain what the client still sends so it reads our answer
      if (!req.complete) req.resume()
      sendJson(
        res,
        status,
        { message: api.message, code: api.code, kind: api.kind },
        err instanceof MethodNotAllowedError ? { allow: err.allow.join(', ') } : {},
      )
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
    await this.#dns?.stopAll().catch((e: unknown) => this.#log.error('stopping resolvers: %o', e))
    // after the resolvers: each closed its responder; this ends the worker thread
    try {
      this.#dnsEngine?.close()
    } catch (e) {
      this.#log.error('closing the DNS fast path: %o', e)
    }
    this.#dnsEngine = undefined
    await this.#ctl?.stop().catch((e: unknown) => this.#log.error('stopping the controller: %o', e))
    // port holders and the firewall's resident helpers; rules, links and records stay for the next start
    await this.#bridge?.close().catch((e: unknown) => this.#log.error('closing the bridge driver: %o', e))
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
