import { randomBytes } from 'node:crypto'
import { chmod, open, readFile, rename, unlink, writeFile } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import type { AbortOptions, ComponentLogger, Logger } from '@cnm/types'
import { DnsFileError, InvalidResolverOptionError } from './errors.js'
import { addHosts, buildHosts, deleteHosts, hostsNames, updateHosts } from './hosts.js'
import type { BuildHostsOptions, HostsRecord } from './hosts.js'
import {
  buildResolvConf,
  embeddedResolvConf,
  filterResolvConf,
  getNameservers,
  hashResolvConf,
  hostUpstreams,
  parseResolvConf,
  HOST_RESOLV_CONF,
} from './resolv-conf.js'
import type { EmbeddedResolvConf } from './resolv-conf.js'
import type { UpstreamServer } from './sockets.js'

export interface DnsFilesInit {
  /**
   * How an existing file is replaced. `rename`: write a temporary file next to it and rename it over
   * the path (readers never see a partial file; a file bind-mounted into a running container keeps
   * showing the old inode). `in-place`: truncate and rewrite the same inode (bind mounts see the
   * update; a reader racing the write may see a partial file). New files are always created by rename.
   * @default 'rename'
   */
  writeMode?: 'rename' | 'in-place'
  /** Permission bits of written files. @default 0o644 */
  fileMode?: number
}

export interface DnsFilesComponents {
  logger: ComponentLogger
}

export const DEFAULT_DNS_FILES_INIT = Object.freeze({ writeMode: 'rename' as 'rename' | 'in-place', fileMode: 0o644 })

/**
 * hosts / resolv.conf file operations on paths given by the caller. Operations on one path are
 * serialised (one instance per daemon). Every fs failure becomes a `DnsFileError` naming the path.
 */
export class DnsFiles {
  private readonly config: typeof DEFAULT_DNS_FILES_INIT
  private readonly log: Logger
  private readonly queues = new Map<string, Promise<unknown>>()

  constructor(init: DnsFilesInit = {}, components: DnsFilesComponents) {
    const cfg = {
      ...DEFAULT_DNS_FILES_INIT,
      ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)),
    }
    if (cfg.writeMode !== 'rename' && cfg.writeMode !== 'in-place') {
      throw new InvalidResolverOptionError(`writeMode: must be 'rename' or 'in-place'`)
    }
    if (!Number.isInteger(cfg.fileMode) || cfg.fileMode < 0 || cfg.fileMode > 0o7777) {
      throw new InvalidResolverOptionError('fileMode: must be permission bits (0..0o7777)')
    }
    this.config = cfg
    this.log = components.logger.forComponent('cnm:resolver:files')
  }

  /** Writes a hosts file (sandbox-dns.md §4.1 `build`): own line, default block, extra records. */
  async buildHosts(path: string, options: BuildHostsOptions = {}, abort: AbortOptions = {}): Promise<void> {
    await this.run(path, abort, async () => this.write(path, buildHosts(options)))
  }

  /** Appends records; none → no-op. */
  async addHosts(path: string, records: readonly HostsRecord[], abort: AbortOptions = {}): Promise<void> {
    if (records.length === 0) return
    await this.run(path, abort, async () => this.write(path, addHosts((await this.read(path)) ?? '', records)))
  }

  /** Removes lines ending with the records' names (comments kept, empty lines dropped). */
  async deleteHosts(path: string, records: readonly HostsRecord[], abort: AbortOptions = {}): Promise<void> {
    if (records.length === 0) return
    await this.run(path, abort, async () => {
      const cur = await this.read(path)
      if (cur === undefined) return
      await this.write(path, deleteHosts(cur, records))
    })
  }

  /** Replaces the IP of the lines for `hostname` (links: a parent learns a child's new address). */
  async updateHosts(path: string, ip: string, hostname: string, abort: AbortOptions = {}): Promise<void> {
    await this.run(path, abort, async () => {
      const cur = await this.read(path)
      if (cur === undefined) return
      const next = updateHosts(cur, ip, hostname)
      if (next !== cur) await this.write(path, next)
    })
  }

  /** Reads a file; `undefined` when it does not exist. */
  async readFile(path: string, abort: AbortOptions = {}): Promise<string | undefined> {
    return await this.run(path, abort, async () => this.read(path))
  }

  /** Writes a file (atomically with the `rename` mode). */
  async writeFile(path: string, content: string, abort: AbortOptions = {}): Promise<void> {
    await this.run(path, abort, async () => this.write(path, content))
  }

  /** Writes several files, each atomically, in order (used for a file and its hash). */
  async writeFiles(
    files: ReadonlyArray<{ path: string; content: string; mode?: 'rename' | 'in-place' }>,
    abort: AbortOptions = {},
  ): Promise<void> {
    for (const f of files) await this.run(f.path, abort, async () => this.write(f.path, f.content, f.mode))
  }

  private async run<T>(path: string, abort: AbortOptions, fn: () => Promise<T>): Promise<T> {
    abort.signal?.throwIfAborted()
    if (typeof path !== 'string' || path.length === 0) throw new InvalidResolverOptionError('path: required')
    const prev = this.queues.get(path) ?? Promise.resolve()
    const next = prev.then(fn, fn)
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.queues.set(path, tail)
    void tail.then(() => {
      if (this.queues.get(path) === tail) this.queues.delete(path)
    })
    return await next
  }

  private async read(path: string): Promise<string | undefined> {
    try {
      return await readFile(path, 'utf8')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw new DnsFileError(`cannot read ${path}: ${(err as Error).message}`, path, { cause: err })
    }
  }

  private async write(path: string, content: string, mode = this.config.writeMode): Promise<void> {
    if (mode === 'in-place') {
      try {
        const fh = await open(path, 'r+')
        try {
          await fh.truncate(0)
          await fh.write(content, 0, 'utf8')
        } finally {
          await fh.close()
        }
        this.log.trace('rewrote %s in place', path)
        return
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
          throw new DnsFileError(`cannot write ${path}: ${(err as Error).message}`, path, { cause: err })
        }
        // a new file: create it by rename like the default mode
      }
    }
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
    try {
      await writeFile(tmp, content, { mode: this.config.fileMode })
      await chmod(tmp, this.config.fileMode)
      await rename(tmp, path)
      this.log.trace('wrote %s', path)
    } catch (err) {
      await unlink(tmp).catch(() => undefined)
      throw new DnsFileError(`cannot write ${path}: ${(err as Error).message}`, path, { cause: err })
    }
  }
}

/** Per-sandbox file configuration (libnetwork's sandbox options for hosts and DNS). */
export interface SandboxDnsFilesInit {
  hostsPath: string
  resolvConfPath: string
  /** @default `${resolvConfPath}.hash` */
  resolvConfHashPath?: string
  /** The host's hosts file; a host-network sandbox without extra hosts gets a copy. */
  originHostsPath?: string
  /** The host's resolv.conf (see `hostResolvConfPath`). @default '/etc/resolv.conf' */
  originResolvConfPath?: string
  /** Host-network sandbox (shares the host namespace). @default false */
  hostNetwork?: boolean
  hostname?: string
  domainname?: string
  /** `--add-host` records and the link aliases passed to the child. */
  extraHosts?: readonly HostsRecord[]
  /** User DNS servers / search domains / options (`--dns`, `--dns-search`, `--dns-option`). */
  dns?: readonly string[]
  dnsSearch?: readonly string[]
  dnsOptions?: readonly string[]
}

export interface SandboxDnsFilesComponents {
  files: DnsFiles
}

/** A link parent update: in the parent's hosts file, lines for `name` get `ip`. */
export interface ParentHostsUpdate {
  readonly hostsPath: string
  readonly name: string
  readonly ip: string
}

/**
 * The hosts and resolv.conf files of one sandbox through its life (sandbox-dns.md §4.2, §5.3, §2.4):
 * `setup()` at creation, `addEndpoint()` / `removeRecords()` / `updateResolvConf()` on join and leave,
 * `activateEmbeddedResolver()` when the resolver starts. State: the external servers and flags.
 */
export class SandboxDnsFiles {
  private readonly init: SandboxDnsFilesInit
  private readonly files: DnsFiles
  private readonly hashPath: string
  private external: UpstreamServer[] = []
  private copiedHosts = false

  constructor(init: SandboxDnsFilesInit, components: SandboxDnsFilesComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidResolverOptionError('init: must be an object')
    for (const k of ['hostsPath', 'resolvConfPath'] as const) {
      if (typeof init[k] !== 'string' || init[k].length === 0) throw new InvalidResolverOptionError(`${k}: required`)
    }
    this.init = { ...init }
    this.files = components.files
    this.hashPath = init.resolvConfHashPath ?? `${init.resolvConfPath}.hash`
  }

  /** Servers found at setup for the embedded resolver (IPv4; 127.x from the host flagged hostLoopback). */
  get externalServers(): readonly UpstreamServer[] {
    return this.external
  }

  /** The user gave DNS servers, search domains or options. */
  get userDns(): boolean {
    return (
      (this.init.dns?.length ?? 0) > 0 ||
      (this.init.dnsSearch?.length ?? 0) > 0 ||
      (this.init.dnsOptions?.length ?? 0) > 0
    )
  }

  /** Creates both files (and the hash file). */
  async setup(options: AbortOptions = {}): Promise<void> {
    await this.setupHosts(options)
    await this.setupResolvConf(options)
  }

  /** §4.2 creation: host network without extra hosts → copy of the origin file; else defaults + extra hosts. */
  async setupHosts(options: AbortOptions = {}): Promise<void> {
    const extra = this.init.extraHosts ?? []
    if (this.init.hostNetwork === true && extra.length === 0 && this.init.originHostsPath !== undefined) {
      const origin = (await this.files.readFile(this.init.originHostsPath, options)) ?? ''
      await this.files.writeFile(this.init.hostsPath, origin, options)
      this.copiedHosts = true
      return
    }
    await this.files.buildHosts(this.init.hostsPath, { extra }, options)
  }

  /**
   * §4.2 join: one line per address of the endpoint with `fqdn shortname` (or the hostname). Not for
   * a copied host hosts file; the caller skips ingress and docker_gwbridge endpoints.
   */
  async addEndpoint(addresses: { ipv4?: string; ipv6?: string }, options: AbortOptions = {}): Promise<HostsRecord[]> {
    if (this.copiedHosts) return []
    const names = hostsNames(this.init.hostname ?? '', this.init.domainname)
    const records: HostsRecord[] = []
    if (addresses.ipv4 !== undefined) records.push({ ip: addresses.ipv4, hosts: names })
    if (addresses.ipv6 !== undefined) records.push({ ip: addresses.ipv6, hosts: names })
    await this.files.addHosts(this.init.hostsPath, records, options)
    return records
  }

  /** §4.2 leave: deletes lines naming these records (e.g. the network's other service records). */
  async removeRecords(records: readonly HostsRecord[], options: AbortOptions = {}): Promise<void> {
    await this.files.deleteHosts(this.init.hostsPath, records, options)
  }

  /** §5.3 creation. Returns the servers the embedded resolver should forward to. */
  async setupResolvConf(options: AbortOptions = {}): Promise<readonly UpstreamServer[]> {
    const originPath = this.init.originResolvConfPath ?? HOST_RESOLV_CONF
    const host = await this.files.readFile(originPath, options)
    let content: string
    if (this.init.hostNetwork === true && !this.userDns) {
      content = host ?? ''
      this.external = []
    } else if (this.userDns) {
      const parsed = parseResolvConf(host ?? '')
      content = buildResolvConf({
        nameservers: this.init.dns !== undefined && this.init.dns.length > 0 ? this.init.dns : parsed.nameservers,
        search:
          this.init.dnsSearch !== undefined && this.init.dnsSearch.length > 0 ? this.init.dnsSearch : parsed.search,
        options:
          this.init.dnsOptions !== undefined && this.init.dnsOptions.length > 0 ? this.init.dnsOptions : parsed.options,
      })
      // 127.x here is the container's own loopback: not host-loopback
      this.external = getNameservers(content, 'ipv4').map((address) => ({ address }))
    } else {
      this.external = hostUpstreams(host ?? '')
      content = filterResolvConf(host ?? '', true).content
    }
    await this.files.writeFiles(
      [
        { path: this.init.resolvConfPath, content },
        { path: this.hashPath, content: hashResolvConf(content), mode: 'rename' },
      ],
      options,
    )
    return this.external
  }

  /**
   * §5.3 join (`updateDNS`): re-filters the file for the network's IPv6 support. Skipped for host
   * sandboxes, user DNS, and when the file's hash no longer matches (the user edited it, or the
   * embedded resolver rewrote it). Returns whether the file was rewritten.
   */
  async updateResolvConf(networkHasIPv6: boolean, options: AbortOptions = {}): Promise<boolean> {
    if (this.init.hostNetwork === true || this.userDns) return false
    const current = await this.files.readFile(this.init.resolvConfPath, options)
    const stored = await this.files.readFile(this.hashPath, options)
    if (current === undefined || stored === undefined || hashResolvConf(current) !== stored.trim()) return false
    const next = filterResolvConf(current, networkHasIPv6)
    await this.files.writeFiles(
      [
        { path: this.init.resolvConfPath, content: next.content },
        { path: this.hashPath, content: next.hash, mode: 'rename' },
      ],
      options,
    )
    return true
  }

  /**
   * §2.4 (`rebuildDNS`): rewrites the file for the embedded resolver (`nameserver 127.0.0.11`, the
   * IPv6 servers, search, options + `ndots:0`) and returns the resolver's settings. The hash file is
   * not updated, so later `updateResolvConf` calls leave the file alone. Throws InvalidNdotsError.
   */
  async activateEmbeddedResolver(options: AbortOptions & { address?: string } = {}): Promise<EmbeddedResolvConf> {
    const current = (await this.files.readFile(this.init.resolvConfPath, options)) ?? ''
    const rc = embeddedResolvConf(current, {
      recorded: this.external,
      ...(options.address !== undefined ? { address: options.address } : {}),
    })
    await this.files.writeFile(this.init.resolvConfPath, rc.content, options)
    return rc
  }
}

/** Links: rewrites, in each parent's hosts file, the IP of the lines for the child's name. */
export async function applyParentUpdates(
  files: DnsFiles,
  updates: readonly ParentHostsUpdate[],
  options: AbortOptions = {},
): Promise<void> {
  for (const u of updates) await files.updateHosts(u.hostsPath, u.ip, u.name, options)
}
