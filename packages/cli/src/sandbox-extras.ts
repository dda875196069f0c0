import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { formatIp, type AbortOptions, type ComponentLogger, type Logger } from '@cnm/types'
import type { Controller, SandboxInfo } from '@cnm/controller'
import { openSocketInNetns } from '@cnm/osl'
import { iptables } from '@cnm/iptables'
import { EMBEDDED_DNS_ADDRESS, startSandboxResolver, type SandboxResolver, type UpstreamServer } from '@cnm/resolver'
import { removeDir, writeFileAtomicSync, type SandboxExtras } from './service.js'
import { FreshNamespaceNat } from './internal/fresh-nat.js'

export interface SandboxExtrasInit {
  /** Directory holding `<sandbox id>/hosts` and `<sandbox id>/resolv.conf`. */
  dir: string
  /** Start the embedded DNS resolver (127.0.0.11) in every sandbox. */
  embeddedDns: boolean
  /** Where the embedded resolver forwards names it does not know (and the nameservers without it). */
  upstreams: readonly UpstreamServer[]
}

/**
 * Per-sandbox extras the daemon owns: `/etc/hosts` and `/etc/resolv.conf` files for `cnm run` to
 * bind-mount, and the embedded DNS resolver fed by the controller's DnsRecordSource.
 */
export class SandboxFiles implements SandboxExtras {
  readonly #init: SandboxExtrasInit
  readonly #ctl: Controller
  readonly #logger: ComponentLogger
  readonly #log: Logger
  readonly #resolvers = new Map<string, Promise<SandboxResolver | undefined>>()

  constructor(init: SandboxExtrasInit, ctl: Controller, logger: ComponentLogger) {
    this.#init = init
    this.#ctl = ctl
    this.#logger = logger
    this.#log = logger.forComponent('cnm:cli:sandbox')
  }

  filesOf(sid: string): { hostsPath: string; resolvConfPath: string; dns: string[] } {
    const dir = join(this.#init.dir, sid)
    let dns: string[]
    if (this.#init.embeddedDns) dns = [EMBEDDED_DNS_ADDRESS]
    else {
      let servers: readonly string[] = []
      try {
        servers = this.#ctl.sandbox(sid).dnsServers
      } catch {
        servers = []
      }
      dns = servers.length > 0 ? [...servers] : this.#init.upstreams.map((u) => u.address)
    }
    return { hostsPath: join(dir, 'hosts'), resolvConfPath: join(dir, 'resolv.conf'), dns }
  }

  #hosts(sb: SandboxInfo): string {
    const lines = [
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'ff00::0\tip6-mcastprefix',
      'ff02::1\tip6-allnodes',
      'ff02::2\tip6-allrouters',
    ]
    const names: string[] = []
    if (sb.hostname !== undefined && sb.hostname !== '') {
      if (sb.domainname !== undefined && sb.domainname !== '') names.push(`${sb.hostname}.${sb.domainname}`)
      names.push(sb.hostname)
    }
    if (names.length > 0) {
      for (const e of this.#ctl.endpoints({ sandboxId: sb.id })) {
        if (e.address !== undefined) lines.push(`${formatIp(e.address.ip)}\t${names.join(' ')}`)
        if (e.addressIPv6 !== undefined) lines.push(`${formatIp(e.addressIPv6.ip)}\t${names.join(' ')}`)
      }
    }
    for (const h of sb.extraHosts) lines.push(`${h.ip}\t${h.name}`)
    return lines.join('\n') + '\n'
  }

  #resolvConf(sb: SandboxInfo): string {
    const lines = this.filesOf(sb.id).dns.map((d) => `nameserver ${d}`)
    if (sb.dnsSearch.length > 0) lines.push(`search ${sb.dnsSearch.join(' ')}`)
    const opts = [...sb.dnsOptions]
    if (this.#init.embeddedDns && !opts.some((o) => o.startsWith('ndots:'))) opts.push('ndots:0')
    if (opts.length > 0) lines.push(`options ${opts.join(' ')}`)
    return lines.join('\n') + '\n'
  }

  // Two small files: written synchronously (well under a millisecond) rather than queued behind
  // whatever occupies libuv's thread pool.
  #write(sb: SandboxInfo): void {
    const f = this.filesOf(sb.id)
    mkdirSync(join(this.#init.dir, sb.id), { recursive: true, mode: 0o755 })
    writeFileAtomicSync(f.hostsPath, this.#hosts(sb))
    writeFileAtomicSync(f.resolvConfPath, this.#resolvConf(sb))
  }

  async #startResolver(sb: SandboxInfo, fresh: boolean, options?: AbortOptions): Promise<SandboxResolver | undefined> {
    if (!this.#init.embeddedDns || sb.useDefaultSandbox) return undefined
    try {
      return await startSandboxResolver(
        {
          upstreams: this.#init.upstreams,
          searchDomains: sb.dnsSearch,
          ndotsSet: sb.dnsOptions.some((o) => o.startsWith('ndots:')),
          // the namespace is deleted with the sandbox, and its rules with it
          removeRulesOnStop: false,
        },
        {
          logger: this.#logger,
          records: this.#ctl.dnsRecordSource(sb.id),
          netns: sb.key,
          openSocket: openSocketInNetns,
          nat: fresh ? new FreshNamespaceNat(sb.key, this.#logger) : iptables({ netns: sb.key, family: 4 }, { logger: this.#logger }),
        },
        options,
      )
    } catch (err) {
      // a sandbox without DNS still works by address; say why names do not resolve
      this.#log.error('embedded DNS for sandbox %s not started: %s', sb.id, (err as Error).message)
      return undefined
    }
  }

  async sandboxReady(sb: SandboxInfo, options?: AbortOptions & { fresh?: boolean }): Promise<void> {
    if (!this.#resolvers.has(sb.id)) {
      const r = this.#startResolver(sb, options?.fresh === true, options)
      this.#resolvers.set(sb.id, r)
    }
    this.#write(sb)
    await this.#resolvers.get(sb.id)
  }

  async sandboxChanged(sb: SandboxInfo): Promise<void> {
    this.#write(sb)
  }

  async sandboxGoing(sid: string): Promise<void> {
    const r = this.#resolvers.get(sid)
    this.#resolvers.delete(sid)
    const res = await r
    await res?.stop()
  }

  async sandboxGone(sid: string): Promise<void> {
    await removeDir(join(this.#init.dir, sid))
  }

  /** Stops every resolver (daemon shutdown); the files stay for the next start. */
  async stopAll(): Promise<void> {
    const all = [...this.#resolvers.keys()]
    for (const sid of all) await this.sandboxGoing(sid)
  }
}
