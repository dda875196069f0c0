import { mkdir, readFile, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { formatIp, type AbortOptions, type ComponentLogger, type Logger } from '@cnm/types'
import type { Controller, NetworkInfo, SandboxInfo } from '@cnm/controller'
import { openSocketInNetns } from '@cnm/osl'
import { iptables } from '@cnm/iptables'
import {
  DnsFiles,
  EMBEDDED_DNS_ADDRESS,
  buildResolvConf,
  embeddedResolvConf,
  filterResolvConf,
  getNameservers,
  hashResolvConf,
  hostsLine,
  hostsNames,
  DEFAULT_HOSTS_RECORDS,
  DEFAULT_IPV4_NAMESERVERS,
  DEFAULT_IPV6_NAMESERVERS,
  parseResolvConf,
  startSandboxResolver,
  type DnsFastPath,
  type DnsRecordSource,
  type HostsRecord,
  type ResolverStats,
  type SandboxResolver,
  type UpstreamServer,
} from '@cnm/resolver'
import type { ContainerRecord, ContainerRecords } from './containers.js'
import { FreshNamespaceNat } from './internal/fresh-nat.js'

/** Driver option that marks the default bridge network (drivers.md §3.7). */
export const DEFAULT_BRIDGE_OPTION = 'com.docker.network.bridge.default_bridge'

/** True for the default bridge network (Docker's `bridge` on docker0): no embedded DNS, legacy links. */
export function isDefaultBridge(n: Pick<NetworkInfo, 'driverOptions'>): boolean {
  return n.driverOptions[DEFAULT_BRIDGE_OPTION] === 'true'
}

/**
 * True when names on this network are served by the embedded DNS (sandbox-dns.md §2.1): user networks.
 * Not the default bridge, not the null/host networks, not docker_gwbridge or ingress.
 */
export function isDnsNetwork(n: Pick<NetworkInfo, 'driverOptions' | 'type' | 'name' | 'ingress'>): boolean {
  return !isDefaultBridge(n) && n.type !== 'null' && n.type !== 'host' && n.name !== 'docker_gwbridge' && !n.ingress
}

/** The host's DNS configuration as the daemon sees it (resolved once at start). */
export interface HostDns {
  /** Content of the host's resolv.conf (or synthesised from `--dns-upstream`). */
  readonly content: string
  /** Where the embedded resolvers forward by default (127.x flagged hostLoopback). */
  readonly upstreams: readonly UpstreamServer[]
  /** Never add the public fallback nameservers (a test namespace that plays the host has no way out). */
  readonly noFallback: boolean
}

export interface SandboxDnsInit {
  /** Directory holding `<sandbox name>/hosts`, `resolv.conf` and `resolv.conf.hash`. */
  dir: string
  /** Start the embedded DNS resolver (127.0.0.11) in sandboxes on user networks. */
  embeddedDns: boolean
  hostDns: HostDns
  /** The resolvers' hedge delay (ms). @default the resolver's */
  hedgeDelayMs?: number
}

/** What the resolv.conf of a sandbox holds, and what its resolver needs. */
interface ResolvPlan {
  content: string
  upstreams: readonly UpstreamServer[]
  searchDomains: readonly string[]
  ndotsSet: boolean
}

interface ResolverEntry {
  readonly sid: string
  readonly promise: Promise<SandboxResolver | undefined>
}

/**
 * The per-sandbox DNS side of the daemon: `/etc/hosts` and `/etc/resolv.conf` files (generated from
 * the controller's state and the daemon's container records, rewritten in place so bind mounts see
 * every change), and the embedded resolver of each sandbox on a user network. All resolvers live in
 * this process and read the controller's records through `dnsRecordSource`.
 */
export class SandboxDns {
  readonly #init: SandboxDnsInit
  readonly #ctl: Controller
  readonly #records: ContainerRecords
  readonly #logger: ComponentLogger
  readonly #log: Logger
  readonly #files: DnsFiles
  readonly #resolvers = new Map<string, ResolverEntry>()
  readonly #refreshing = new Map<string, Promise<void>>()
  /** Resolvers already stopped, whose counters still count in `stats()`. */
  readonly #retired: ResolverStats[] = []
  /** The native DNS fast path shared by every resolver (osl's DnsResponderEngine), if any. */
  readonly #fastPath: DnsFastPath | undefined
  /** Bumped on the daemon's own changes (links, container records): part of every view's generation. */
  #localGeneration = 0
  /** `onChange` listeners of the record sources, called on the daemon's own changes. */
  readonly #changeListeners = new Set<() => void>()

  constructor(
    init: SandboxDnsInit,
    ctl: Controller,
    records: ContainerRecords,
    logger: ComponentLogger,
    fastPath?: DnsFastPath,
  ) {
    this.#init = init
    this.#ctl = ctl
    this.#records = records
    this.#logger = logger
    this.#fastPath = fastPath
    this.#log = logger.forComponent('cnm:cli:dns')
    // in place: a file bind-mounted over /etc/hosts in a running command keeps its inode, so the
    // command sees every rewrite (links, aliases, new endpoints), as with Docker's files
    this.#files = new DnsFiles({ writeMode: 'in-place' }, { logger })
  }

  filesOf(name: string): { dir: string; hostsPath: string; resolvConfPath: string; hashPath: string } {
    const dir = join(this.#init.dir, name)
    return {
      dir,
      hostsPath: join(dir, 'hosts'),
      resolvConfPath: join(dir, 'resolv.conf'),
      hashPath: join(dir, 'resolv.conf.hash'),
    }
  }

  /** Nameservers the sandbox's resolv.conf lists (as planned now). */
  nameserversOf(rec: ContainerRecord, sb: SandboxInfo | undefined): string[] {
    return getNameservers(this.#plan(rec, sb !== undefined && this.#wantsResolver(sb), this.#hasIPv6(sb)).content)
  }

  // ------------------------------------------------------------ classification

  #network(nid: string): NetworkInfo | undefined {
    try {
      return this.#ctl.network(nid)
    } catch {
      return undefined
    }
  }

  /** True when one of the sandbox's joined endpoints is on a user network (sandbox-dns.md §2.1). */
  #wantsResolver(sb: SandboxInfo): boolean {
    if (!this.#init.embeddedDns || sb.useDefaultSandbox) return false
    return this.#ctl.endpoints({ sandboxId: sb.id }).some((e) => {
      const n = this.#network(e.networkId)
      return n !== undefined && !e.disableResolution && isDnsNetwork(n)
    })
  }

  #hasIPv6(sb: SandboxInfo | undefined): boolean {
    if (sb === undefined) return false
    return this.#ctl
      .endpoints({ sandboxId: sb.id })
      .some((e) => e.addressIPv6 !== undefined || this.#network(e.networkId)?.enableIPv6 === true)
  }

  // ------------------------------------------------------------ file contents

  /** sandbox-dns.md §5.3 and §2.4. Throws InvalidNdotsError for a bad `ndots` option. */
  #plan(rec: ContainerRecord, resolver: boolean, ipv6: boolean): ResolvPlan {
    const host = this.#init.hostDns
    const userDns = rec.dns.length > 0 || rec.dnsSearch.length > 0 || rec.dnsOptions.length > 0
    let base: string
    let external: readonly UpstreamServer[]
    if (userDns) {
      const parsed = parseResolvConf(host.content)
      base = buildResolvConf({
        nameservers: rec.dns.length > 0 ? rec.dns : parsed.nameservers,
        search: rec.dnsSearch.length > 0 ? rec.dnsSearch : parsed.search,
        options: rec.dnsOptions.length > 0 ? rec.dnsOptions : parsed.options,
      })
      // 127.x here is the sandbox's own loopback, not the host's
      external = getNameservers(base, 'ipv4').map((address) => ({ address }))
    } else {
      base = this.#filter(host.content, true)
      external = host.upstreams
    }
    if (resolver) {
      const rc = embeddedResolvConf(base, { recorded: external, address: EMBEDDED_DNS_ADDRESS })
      return { content: rc.content, upstreams: rc.upstreams, searchDomains: rc.searchDomains, ndotsSet: rc.ndotsSet }
    }
    const content = userDns ? base : this.#filter(base, ipv6)
    return { content, upstreams: external, searchDomains: [], ndotsSet: false }
  }

  /** filterResolvConf, without the public fallback servers when the daemon plays in a test namespace. */
  #filter(content: string, ipv6: boolean): string {
    const f = filterResolvConf(content, ipv6).content
    if (!this.#init.hostDns.noFallback) return f
    // keep the filtering, drop the appended fallback lines
    const fallback = `\n${[...DEFAULT_IPV4_NAMESERVERS, ...(ipv6 ? DEFAULT_IPV6_NAMESERVERS : [])].map((d) => `nameserver ${d}`).join('\n')}`
    return f.endsWith(fallback) &&
      getNameservers(content.replace(fallback, '')).every((n) => n.startsWith('127.') || n === '::1')
      ? f.slice(0, -fallback.length)
      : f
  }

  /** Link lines: `<target ip>\t<alias> <target hostname> <target name>` (sandbox-dns.md §4.2, Docker's order). */
  #linkRecords(rec: ContainerRecord): HostsRecord[] {
    const out: HostsRecord[] = []
    for (const l of rec.links) {
      const target = this.#records.get(l.name)
      const hostname = target?.hostname ?? l.name
      const names = [l.alias, hostname, l.name].filter((n, i, a) => a.indexOf(n) === i).join(' ')
      for (const e of this.#ctl.endpoints({ containerId: l.name })) {
        const n = this.#network(e.networkId)
        if (n === undefined || !isDefaultBridge(n)) continue
        if (e.address !== undefined) out.push({ ip: formatIp(e.address.ip), hosts: names })
        if (e.addressIPv6 !== undefined) out.push({ ip: formatIp(e.addressIPv6.ip), hosts: names })
      }
    }
    return out
  }

  /** sandbox-dns.md §4.1/§4.2: default block, extra hosts, link records, then one line per own address. */
  #hosts(rec: ContainerRecord, sb: SandboxInfo): string {
    const lines: HostsRecord[] = [...DEFAULT_HOSTS_RECORDS]
    for (const h of rec.extraHosts) lines.push({ ip: h.ip, hosts: h.name })
    lines.push(...this.#linkRecords(rec))
    const hostname = sb.hostname ?? rec.hostname
    if (hostname !== undefined && hostname !== '') {
      const names = hostsNames(hostname, sb.domainname ?? rec.domainname)
      const byId = new Map(this.#ctl.endpoints({ sandboxId: sb.id }).map((e) => [e.id as string, e]))
      for (const eid of sb.endpoints) {
        const e = byId.get(eid)
        if (e === undefined || this.#network(e.networkId)?.name === 'docker_gwbridge') continue
        if (e.address !== undefined) lines.push({ ip: formatIp(e.address.ip), hosts: names })
        if (e.addressIPv6 !== undefined) lines.push({ ip: formatIp(e.addressIPv6.ip), hosts: names })
      }
    }
    return lines.map(hostsLine).join('')
  }

  /** Writes resolv.conf unless the user edited it (its hash no longer matches what we wrote last). */
  async #writeResolvConf(name: string, content: string, options?: AbortOptions): Promise<void> {
    const f = this.filesOf(name)
    const [current, stored] = await Promise.all([readOptional(f.resolvConfPath), readOptional(f.hashPath)])
    if (current === content) return
    if (current !== undefined && stored !== undefined && hashResolvConf(current) !== stored.trim()) {
      this.#log('resolv.conf of %s was edited: left as it is', name)
      return
    }
    await this.#files.writeFiles(
      [
        { path: f.resolvConfPath, content },
        { path: f.hashPath, content: hashResolvConf(content), mode: 'rename' },
      ],
      options,
    )
  }

  async #writeHosts(name: string, content: string, options?: AbortOptions): Promise<void> {
    const f = this.filesOf(name)
    if ((await readOptional(f.hostsPath)) === content) return
    await this.#files.writeFile(f.hostsPath, content, options)
  }

  /** Checks a record's DNS options (InvalidNdotsError) before anything is created. */
  validate(rec: ContainerRecord): void {
    this.#plan(rec, this.#init.embeddedDns, false)
  }

  // ------------------------------------------------------------ lifecycle

  /**
   * A sandbox of `rec` exists (created, started, or found at daemon start): writes its files and
   * starts its resolver if it needs one now or `expectResolver` says its endpoints will need one.
   * `fresh`: the namespace was just created (its nat table is empty).
   */
  async ready(
    rec: ContainerRecord,
    sb: SandboxInfo,
    options: AbortOptions & { fresh?: boolean; expectResolver?: boolean } = {},
  ): Promise<void> {
    await mkdir(this.filesOf(rec.name).dir, { recursive: true, mode: 0o755 })
    const want =
      options.expectResolver === true ? this.#init.embeddedDns && !sb.useDefaultSandbox : this.#wantsResolver(sb)
    if (want) this.#ensureResolver(rec, sb, options.fresh === true, options)
    await this.refresh(rec.name, options)
    await this.#resolvers.get(rec.name)?.promise
  }

  /**
   * Rewrites the files of `name` (a running sandbox) from the current state and starts its resolver
   * when a user network was joined. A stopped or unknown name is skipped.
   */
  async refresh(name: string, options?: AbortOptions): Promise<void> {
    // one refresh at a time per sandbox, each computing its files when it runs: the last write is
    // always made from the latest state, whatever order concurrent requests finish in
    const prev = this.#refreshing.get(name) ?? Promise.resolve()
    const next = prev.then(
      () => this.#refreshNow(name, options),
      () => this.#refreshNow(name, options),
    )
    const tail = next.then(
      () => undefined,
      () => undefined,
    )
    this.#refreshing.set(name, tail)
    void tail.then(() => {
      if (this.#refreshing.get(name) === tail) this.#refreshing.delete(name)
    })
    await next
  }

  async #refreshNow(name: string, options?: AbortOptions): Promise<void> {
    const rec = this.#records.get(name)
    const sb = this.#ctl.sandboxByContainer(name)
    if (rec === undefined || sb === undefined) return
    const want = this.#wantsResolver(sb) || this.#resolvers.has(name)
    if (want) this.#ensureResolver(rec, sb, false, options)
    // links or container records may have changed: cached answers (the native table too) are dropped
    this.#changed()
    await mkdir(this.filesOf(name).dir, { recursive: true, mode: 0o755 })
    await this.#writeHosts(name, this.#hosts(rec, sb), options)
    await this.#writeResolvConf(name, this.#plan(rec, want, this.#hasIPv6(sb)).content, options)
  }

  /** Refreshes `name` and every running sandbox that links to it (parent updates, [S3]). */
  async refreshWithLinkers(name: string, options?: AbortOptions): Promise<void> {
    await this.refresh(name, options)
    for (const r of this.#records.linkersOf(name)) if (r.name !== name) await this.refresh(r.name, options)
  }

  #ensureResolver(rec: ContainerRecord, sb: SandboxInfo, fresh: boolean, options?: AbortOptions): void {
    const cur = this.#resolvers.get(rec.name)
    if (cur !== undefined && cur.sid === sb.id) return
    if (cur !== undefined) {
      // a resolver of an earlier sandbox of this name that nobody stopped: its namespace is gone
      void cur.promise
        .then((r) => r?.stop())
        .catch((err: unknown) => this.#log.error('stopping the old resolver of %s: %o', rec.name, err))
    }
    const plan = this.#plan(rec, true, false)
    const promise = this.#startResolver(sb, plan, fresh, options)
    this.#resolvers.set(rec.name, { sid: sb.id, promise })
  }

  async #startResolver(
    sb: SandboxInfo,
    plan: ResolvPlan,
    fresh: boolean,
    options?: AbortOptions,
  ): Promise<SandboxResolver | undefined> {
    try {
      return await startSandboxResolver(
        {
          upstreams: plan.upstreams,
          searchDomains: plan.searchDomains,
          ndotsSet: plan.ndotsSet,
          ...(this.#init.hedgeDelayMs !== undefined && { hedgeDelayMs: this.#init.hedgeDelayMs }),
          // the namespace is deleted with the sandbox, and its rules with it
          removeRulesOnStop: false,
        },
        {
          logger: this.#logger,
          records: this.recordSource(sb.id),
          netns: sb.key,
          openSocket: openSocketInNetns,
          // not connectSocket: TCP queries are forwarded over UDP from the namespace (forwarding over TCP
          // through osl's connectSocketInNetns failed the hedged-forwarding e2e test now and then)
          ...(this.#fastPath !== undefined && { fastPath: this.#fastPath }),
          nat: fresh
            ? new FreshNamespaceNat(sb.key, this.#logger)
            : iptables({ netns: sb.key, family: 4 }, { logger: this.#logger }),
        },
        options,
      )
    } catch (err) {
      // a sandbox without DNS still works by address; say why names do not resolve
      this.#log.error('embedded DNS for sandbox %s not started: %s', sb.id, (err as Error).message)
      return undefined
    }
  }

  /**
   * The resolver's view of a sandbox: the controller's records without the names of the default
   * bridge network (there only legacy links resolve, through hosts files: drivers.md §3.7).
   */
  recordSource(sid: string): DnsRecordSource {
    const inner = this.#ctl.dnsRecordSource(sid)
    const ctl = this.#ctl
    // the controller's generation plus the daemon's own: both only grow, so the sum changes with either
    const generation = (): number => inner.generation + this.#localGeneration
    const listeners = this.#changeListeners
    let cachedGen = -1
    let bridgeIps = new Set<string>()
    let userNets: string[] = []
    const refresh = (): void => {
      const g = generation()
      if (cachedGen === g) return
      cachedGen = g
      const nets = new Map(ctl.networks().map((n) => [n.id as string, n]))
      bridgeIps = new Set()
      for (const e of ctl.endpoints()) {
        const n = nets.get(e.networkId)
        if (n === undefined || !isDefaultBridge(n)) continue
        if (e.address !== undefined) bridgeIps.add(formatIp(e.address.ip))
        if (e.addressIPv6 !== undefined) bridgeIps.add(formatIp(e.addressIPv6.ip))
      }
      userNets = []
      const sb = ctl.sandboxes().find((s) => s.id === sid)
      for (const eid of sb?.endpoints ?? []) {
        const e = ctl.endpoints({ sandboxId: sid }).find((x) => x.id === eid)
        const n = e === undefined ? undefined : nets.get(e.networkId)
        if (n !== undefined && isDnsNetwork(n) && !userNets.includes(n.name)) userNets.push(n.name)
      }
    }
    const strip = (r: { ipv4: readonly string[]; ipv6: readonly string[] } | undefined) => {
      if (r === undefined) return undefined
      const ipv4 = r.ipv4.filter((a) => !bridgeIps.has(a))
      const ipv6 = r.ipv6.filter((a) => !bridgeIps.has(a))
      if (ipv4.length === 0 && ipv6.length === 0 && r.ipv4.length + r.ipv6.length > 0) return undefined
      return ipv4.length === r.ipv4.length && ipv6.length === r.ipv6.length ? r : { ipv4, ipv6 }
    }
    return {
      get generation(): number {
        return generation()
      },
      /**
       * Every controller event bumps its generation (records changed, endpoints joined or left, networks,
       * sandboxes), and so does the daemon's own change: the listener runs synchronously on each, so the
       * resolver's cache and the native fast path's table are emptied at once.
       */
      onChange(listener) {
        let active = true
        const call = (): void => {
          if (active) listener()
        }
        const offCtl = ctl.subscribe(call)
        listeners.add(call)
        return () => {
          active = false
          offCtl()
          listeners.delete(call)
        }
      },
      lookupName(name) {
        refresh()
        const r = inner.lookupName(name)
        if (r === undefined || bridgeIps.size === 0) return r
        const s = strip(r)
        if (s !== undefined) return s
        // the first hit was on the default bridge: the same name may live on a user network
        for (const net of userNets) {
          const alt = strip(inner.lookupName(`${name}.${net.toLowerCase()}`))
          if (alt !== undefined) return alt
        }
        return undefined
      },
      lookupAddress(address, version) {
        refresh()
        return bridgeIps.has(address) ? undefined : inner.lookupAddress(address, version)
      },
      lookupService(name, service, protocol) {
        refresh()
        const r = inner.lookupService(name, service, protocol)
        if (r === undefined || bridgeIps.size === 0) return r
        return r.filter((s) => !s.addresses.some((a) => bridgeIps.has(a)))
      },
    }
  }

  /** The daemon changed something answers may depend on: bumps the generation and tells the listeners. */
  #changed(): void {
    this.#localGeneration++
    for (const l of [...this.#changeListeners]) {
      try {
        l()
      } catch (err) {
        this.#log.error('DNS change listener failed: %o', err)
      }
    }
  }

  /** Before the namespace of `name` goes (stop, remove): stops its resolver. */
  async going(name: string): Promise<void> {
    const r = this.#resolvers.get(name)
    this.#resolvers.delete(name)
    const res = await r?.promise
    if (res === undefined) return
    this.#retired.push(res.resolver.stats())
    if (this.#retired.length > 64) {
      const total = sumStats(this.#retired)
      this.#retired.length = 0
      this.#retired.push(total)
    }
    await res.stop()
  }

  /** `name` was removed: deletes its files. */
  async gone(name: string): Promise<void> {
    await rm(this.filesOf(name).dir, { recursive: true, force: true })
  }

  /** Deletes file directories of names the daemon no longer knows. */
  async prune(known: ReadonlySet<string>): Promise<void> {
    let names: string[] = []
    try {
      names = await readdir(this.#init.dir)
    } catch {
      return
    }
    for (const n of names) if (!known.has(n)) await rm(join(this.#init.dir, n), { recursive: true, force: true })
  }

  /** Stops every resolver (daemon shutdown); the files stay for the next start. */
  async stopAll(): Promise<void> {
    for (const name of [...this.#resolvers.keys()]) await this.going(name)
  }

  /** Number of running resolvers and their counters summed (with those already stopped). */
  async stats(): Promise<{ resolvers: number; totals: ResolverStats | undefined }> {
    const live: ResolverStats[] = []
    for (const r of this.#resolvers.values()) {
      const res = await r.promise
      if (res !== undefined) live.push(res.resolver.stats())
    }
    const all = [...this.#retired, ...live]
    return { resolvers: live.length, totals: all.length === 0 ? undefined : sumStats(all) }
  }
}

async function readOptional(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch {
    return undefined
  }
}

function sumStats(list: readonly ResolverStats[]): ResolverStats {
  const out: Record<string, number> = {}
  for (const s of list) {
    for (const [k, v] of Object.entries(s)) {
      if (typeof v !== 'number') continue
      out[k] = k.startsWith('max') ? Math.max(out[k] ?? 0, v) : (out[k] ?? 0) + v
    }
  }
  return out as unknown as ResolverStats
}
