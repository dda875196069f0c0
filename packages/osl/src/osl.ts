import { existsSync } from 'node:fs'
import { mkdir, readdir, unlink } from 'node:fs/promises'
import { isAbsolute, join } from 'node:path'
import { noopLogger, type AbortOptions, type Logger } from '@cnm/types'
import { BatchRunner, type NsTarget, type ToolPaths } from './batch.js'
import { InvalidOptionError, NamespaceExistsError, NamespaceNotFoundError, OslClosedError } from './errors.js'
import { countingExec, newStats, spawnExec, type ExecStats } from './exec.js'
import { loadNative, type NativeOps } from './native.js'
import { Netns, type OslContext } from './netns.js'
import { targetFromPath, targetFromRef, type NsResolver } from './plan.js'
import { ResidentIp } from './resident.js'
import { Sandbox } from './sandbox.js'
import { mapNativeError, netnsPath, openSocketWith, type NetnsSocket, type OpenSocketOptions } from './socket.js'
import { Transaction, type LineRunner } from './transaction.js'
import type { LinkInfo, NetnsRef, OslComponents, OslInit } from './types.js'
import { sysctlPath, sysctlValue, validateNamePrefix, validateNsName } from './validate.js'

/** Defaults of OslInit. */
export const DEFAULT_OSL_INIT = Object.freeze({
  netnsDir: '/run/netns',
  ipPath: 'ip',
  bridgePath: 'bridge',
  nsenterPath: 'nsenter',
  residentHost: true,
  nativeNetlink: true,
})

export interface CreateSandboxOptions extends AbortOptions {
  /**
   * `net.ipv6.conf.all.disable_ipv6 = 1` in the new namespace (libnetwork's default); IPv6 is enabled per
   * interface when it gets an IPv6 address. @default true
   */
  disableIpv6?: boolean
  /** Extra sysctls written inside the new namespace before it is returned. */
  sysctls?: Record<string, string | number>
  /** When the key exists: `replace` detaches the old namespace first (libnetwork), `error` throws. @default 'replace' */
  exist?: 'replace' | 'error'
}

export interface OpenSandboxOptions extends AbortOptions {
  /** Rebuild bookkeeping from the kernel (one launch). @default true */
  restore?: boolean
  /** In-sandbox name → host name, for restored interfaces that should move back on removal. */
  srcNames?: Record<string, string>
}

export interface GcOptions extends AbortOptions {
  /** Sandboxes (namespace files in netnsDir) whose key starts with this are deleted. */
  prefix: string
  /** Host-namespace links whose name starts with this are deleted. @default prefix */
  linkPrefix?: string
}

export interface GcResult {
  namespaces: string[]
  links: string[]
}

/**
 * The OS layer: sandboxes (network namespaces) and the host namespace's links, all through batched `ip`
 * launches and a native addon for what needs no process (namespace creation, sysctls, sockets).
 */
export class Osl {
  /** The namespace playing the host (OslInit.hostNetns). */
  readonly host: Netns
  /** Launch counters: `launches` (processes), `nativeCalls`, `residentCommands`. */
  readonly stats: ExecStats
  readonly netnsDir: string
  private readonly log: Logger
  private readonly ctx: OslContext
  private readonly nativeOverride: NativeOps | undefined
  private readonly nativePath: string | undefined
  private nativeLoaded: NativeOps | undefined
  private readonly resident: ResidentIp | undefined
  private closed = false

  constructor(init: OslInit = {}, components: OslComponents = {}) {
    const cfg = { ...DEFAULT_OSL_INIT, ...init }
    if (typeof cfg.netnsDir !== 'string' || !isAbsolute(cfg.netnsDir)) {
      throw new InvalidOptionError(`netnsDir: must be an absolute path, got ${JSON.stringify(cfg.netnsDir)}`)
    }
    for (const k of ['ipPath', 'bridgePath', 'nsenterPath'] as const) {
      if (typeof cfg[k] !== 'string' || cfg[k].length === 0)
        throw new InvalidOptionError(`${k}: must be a non-empty string`)
    }
    this.netnsDir = cfg.netnsDir.replace(/\/+$/, '')
    this.log = (components.logger ?? noopLogger()).forComponent('cnm:osl')
    this.stats = newStats()
    this.nativeOverride = components.native
    this.nativePath = init.nativeAddonPath
    const exec = countingExec(components.exec ?? spawnExec, this.stats)
    const paths: ToolPaths = { ip: cfg.ipPath, bridge: cfg.bridgePath, nsenter: cfg.nsenterPath }
    const runner = new BatchRunner(exec, paths, this.log)
    const hostTarget: NsTarget =
      init.hostNetns === undefined
        ? { label: 'host', path: undefined, ipName: undefined }
        : targetFromPath(netnsPath(init.hostNetns))
    const selfNs = `/proc/${process.pid}/ns/net`
    const resolver: NsResolver = {
      refArg: (ns) => ns.path ?? selfNs,
      target: (ref: NetnsRef) => targetFromRef(ref),
    }
    this.resident = cfg.residentHost ? new ResidentIp(paths, hostTarget, this.stats, this.log) : undefined
    const hostRunner: LineRunner = this.resident ?? runner
    const ctx: OslContext = {
      runner,
      hostRunner,
      host: hostTarget,
      stats: this.stats,
      log: this.log,
      resolver,
      native: () => this.native(),
      nativeNetlink: cfg.nativeNetlink,
      transaction: () => new Transaction(ctx),
      assertOpen: () => {
        if (this.closed) throw new OslClosedError()
      },
    }
    this.ctx = ctx
    this.host = new Netns(ctx, hostTarget)
  }

  private native(): NativeOps {
    if (this.nativeOverride !== undefined) return this.nativeOverride
    this.nativeLoaded ??= loadNative(this.nativePath)
    return this.nativeLoaded
  }

  /** A new transaction; queue with `tx.on(osl.host)…`, `tx.on(sandbox)…`, then `await tx.commit()`. */
  transaction(): Transaction {
    this.ctx.assertOpen()
    return this.ctx.transaction()
  }

  /** A handle for any namespace by name (/run/netns) or path; no check that it exists until used. */
  netns(ref: string): Netns {
    this.ctx.assertOpen()
    return new Netns(this.ctx, targetFromRef(ref))
  }

  /** The file of a sandbox key. */
  sandboxPath(key: string): string {
    return join(this.netnsDir, validateNsName(key))
  }

  /**
   * Creates a sandbox: a new network namespace bind-mounted at `<netnsDir>/<key>`, `lo` up, IPv6 disabled on
   * `all` (unless `disableIpv6: false`), extra sysctls — all in one native call, no process launch.
   */
  async createSandbox(key: string, options: CreateSandboxOptions = {}): Promise<Sandbox> {
    options.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const path = this.sandboxPath(key)
    // a kernel booted without IPv6 has no such knob (and nothing to disable)
    const disable = (options.disableIpv6 ?? true) && existsSync('/proc/sys/net/ipv6/conf/all/disable_ipv6')
    const sysctls = Object.entries(options.sysctls ?? {}).map(([k, v]) => [sysctlPath(k), sysctlValue(v, k)] as const)
    const keys = [...(disable ? ['net/ipv6/conf/all/disable_ipv6'] : []), ...sysctls.map(([k]) => k)]
    const values = [...(disable ? ['1'] : []), ...sysctls.map(([, v]) => v)]
    const native = this.native()
    try {
      await mkdir(this.netnsDir, { recursive: true })
    } catch (err) {
      // creating the namespace file below reports the real problem (ENOENT/EACCES) with its path
      this.log.trace('mkdir %s: %s', this.netnsDir, (err as Error).message)
    }
    const create = async (): Promise<void> => {
      this.stats.nativeCalls++
      await native.createNetns(path, 1, keys, values)
    }
    try {
      await create()
    } catch (err) {
      if ((err as { code?: string }).code !== 'EEXIST') throw mapNativeError(err, path, `create sandbox ${key}`)
      if (options.exist === 'error')
        throw new NamespaceExistsError(`sandbox ${key} already exists at ${path}`, { cause: err })
      this.log('sandbox %s exists: detaching the old namespace', key)
      await this.removeNetnsFile(path)
      try {
        await create()
      } catch (err2) {
        throw mapNativeError(err2, path, `create sandbox ${key}`)
      }
    }
    this.log('created sandbox %s', key)
    return this.sandboxHandle(key, path, disable)
  }

  /** Opens an existing sandbox; NamespaceNotFoundError when there is none. Restores bookkeeping by default. */
  async openSandbox(key: string, options: OpenSandboxOptions = {}): Promise<Sandbox> {
    options.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const path = this.sandboxPath(key)
    this.stats.nativeCalls++
    let disabled: string | undefined
    const probe = existsSync('/proc/sys/net/ipv6/conf/all/disable_ipv6')
      ? 'net/ipv6/conf/all/disable_ipv6'
      : 'net/ipv4/conf/all/forwarding'
    try {
      const [value] = await this.native().sysctl(path, [], [], [probe])
      disabled = probe.startsWith('net/ipv6') ? value : '0'
    } catch (err) {
      const mapped = mapNativeError(err, path, `open sandbox ${key}`)
      if (mapped instanceof NamespaceNotFoundError)
        throw new NamespaceNotFoundError(`sandbox ${key} not found at ${path}`, { cause: err })
      throw mapped
    }
    const sb = this.sandboxHandle(key, path, disabled === '1')
    if (options.restore !== false) await sb.restore(options.srcNames ?? {}, options)
    return sb
  }

  private sandboxHandle(key: string, path: string, ipv6Disabled: boolean): Sandbox {
    return new Sandbox(
      this.ctx,
      targetFromPath(path),
      { key, ipv6DisabledByDefault: ipv6Disabled, host: this.ctx.host },
      async (o) => await this.deleteSandbox(key, o),
    )
  }

  /** Deletes a sandbox's namespace (lazy unmount + unlink); NamespaceNotFoundError when absent. */
  async deleteSandbox(key: string, options: AbortOptions = {}): Promise<void> {
    options.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const path = this.sandboxPath(key)
    const found = await this.removeNetnsFile(path)
    if (!found) throw new NamespaceNotFoundError(`sandbox ${key} not found at ${path}`)
    this.log('deleted sandbox %s', key)
  }

  /** Unmounts and unlinks a namespace file; false when there was no file. */
  private async removeNetnsFile(path: string): Promise<boolean> {
    this.stats.nativeCalls++
    try {
      await this.native().unmount(path)
    } catch (err) {
      const code = (err as { code?: string }).code
      // EINVAL: a plain file left by a crash between create and mount; ENOENT: nothing there
      if (code !== 'EINVAL' && code !== 'ENOENT') throw mapNativeError(err, path, `unmount ${path}`)
    }
    try {
      await unlink(path)
      return true
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return false
      throw err
    }
  }

  /** Sandbox keys in netnsDir (optionally with a prefix). */
  async listSandboxes(options: { prefix?: string } & AbortOptions = {}): Promise<string[]> {
    options.signal?.throwIfAborted()
    const prefix = options.prefix === undefined ? '' : validateNamePrefix(options.prefix)
    let names: string[]
    try {
      names = await readdir(this.netnsDir)
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') return []
      throw err
    }
    return names.filter((n) => n.startsWith(prefix)).sort()
  }

  /**
   * Removes what a crashed run left: every sandbox whose key starts with `prefix` and every host link
   * whose name starts with `linkPrefix` (default: `prefix`). Two launches at most (list + delete links).
   */
  async gc(options: GcOptions): Promise<GcResult> {
    options.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const prefix = validateNamePrefix(options?.prefix)
    const linkPrefix = validateNamePrefix(options.linkPrefix ?? prefix, 'linkPrefix')
    // never the namespace playing the host, even when its name matches
    const namespaces = (await this.listSandboxes({ prefix })).filter((k) => this.sandboxPath(k) !== this.ctx.host.path)
    for (const key of namespaces) await this.removeNetnsFile(this.sandboxPath(key))
    const links = (await this.host.links(options))
      .map((l: LinkInfo) => l.ifname)
      .filter((n) => n.startsWith(linkPrefix))
    if (links.length > 0) {
      const out = await this.ctx.runner.run(
        'ip',
        this.ctx.host,
        links.map((l) => `link del dev ${l}`),
        { force: true },
      )
      for (const f of out.failures) {
        // a veth whose peer was deleted a moment before goes with it: not an error
        this.log.trace('gc: deleting %s: %s', links[f.index], f.message)
      }
    }
    if (namespaces.length + links.length > 0)
      this.log('gc %s: removed %d namespaces, %d links', prefix, namespaces.length, links.length)
    return { namespaces, links }
  }

  /** Opens a socket inside a namespace given by name (/run/netns) or path; see openSocketInNetns. */
  async openSocket(netns: string, opts: OpenSocketOptions): Promise<NetnsSocket> {
    this.ctx.assertOpen()
    this.stats.nativeCalls++
    return await openSocketWith(this.native(), netnsPath(netns), opts)
  }

  /** Stops the resident helper (if any). Idempotent; handles fail with OslClosedError afterwards. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    await this.resident?.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }
}

/** Two-stage factory: `osl(init)(components)`. */
export function osl(init: OslInit = {}): (components?: OslComponents) => Osl {
  return (components = {}) => new Osl(init, components)
}
