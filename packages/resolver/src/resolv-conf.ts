import { createHash } from 'node:crypto'
import { isIPv4, isIPv6 } from 'node:net'
import { InvalidNdotsError } from './errors.js'
import type { UpstreamServer } from './sockets.js'

/**
 * resolv.conf content (sandbox-dns.md §5, §2.4). Pure functions on strings; `DnsFiles` and
 * `SandboxDnsFiles` do the I/O.
 */

export const DEFAULT_IPV4_NAMESERVERS: readonly string[] = Object.freeze(['8.8.8.8', '8.8.4.4'])
export const DEFAULT_IPV6_NAMESERVERS: readonly string[] = Object.freeze([
  '2001:4860:4860::8888',
  '2001:4860:4860::8844',
])
export const HOST_RESOLV_CONF = '/etc/resolv.conf'
export const SYSTEMD_RESOLV_CONF = '/run/systemd/resolve/resolv.conf'

export interface ResolvConf {
  /** Nameserver addresses in file order (IPv6 may carry `%zone`). */
  readonly nameservers: readonly string[]
  /** Fields of the last `search` line. */
  readonly search: readonly string[]
  /** Fields of the last `options` line. */
  readonly options: readonly string[]
}

export type NameserverKind = 'all' | 'ipv4' | 'ipv6'

function stripComment(line: string): string {
  const i = line.indexOf('#')
  return i < 0 ? line : line.slice(0, i)
}

function isV6WithZone(s: string): boolean {
  const i = s.indexOf('%')
  return isIPv6(i < 0 ? s : s.slice(0, i)) && (i < 0 || i < s.length - 1)
}

/** Parses nameservers, the last `search` line and the last `options` line; `#` starts a comment anywhere. */
export function parseResolvConf(content: string): ResolvConf {
  const nameservers: string[] = []
  let search: string[] = []
  let options: string[] = []
  for (const raw of content.split('\n')) {
    const fields = stripComment(raw)
      .trim()
      .split(/\s+/)
      .filter((f) => f.length > 0)
    const key = fields[0]
    if (key === 'nameserver' && fields.length === 2) {
      const ns = fields[1] as string
      if (isIPv4(ns) || isV6WithZone(ns)) nameservers.push(ns)
    } else if (key === 'search') {
      search = fields.slice(1)
    } else if (key === 'options') {
      options = fields.slice(1)
    }
  }
  return { nameservers, search, options }
}

/** Nameservers of a kind. */
export function getNameservers(content: string, kind: NameserverKind = 'all'): string[] {
  const all = parseResolvConf(content).nameservers
  if (kind === 'all') return [...all]
  return all.filter((n) => (kind === 'ipv4' ? isIPv4(n) : !isIPv4(n)))
}

/** Nameservers as CIDRs: IPv4 `/32`, IPv6 (zone stripped) `/128`. */
export function nameserversAsCidr(content: string): string[] {
  return getNameservers(content).map((n) => (isIPv4(n) ? `${n}/32` : `${n.split('%')[0] as string}/128`))
}

/** `search a b\n` (omitted when empty or `.`), `nameserver X\n` each, `options a b\n` (omitted when empty). */
export function buildResolvConf(conf: {
  nameservers?: readonly string[]
  search?: readonly string[]
  options?: readonly string[]
}): string {
  let out = ''
  const search = conf.search ?? []
  if (search.length > 0 && !(search.length === 1 && search[0] === '.')) out += `search ${search.join(' ')}\n`
  for (const ns of conf.nameservers ?? []) out += `nameserver ${ns}\n`
  const options = conf.options ?? []
  if (options.length > 0) out += `options ${options.join(' ')}\n`
  return out
}

/** `sha256:<hex>` of the content. */
export function hashResolvConf(content: string | Uint8Array): string {
  return `sha256:${createHash('sha256').update(content).digest('hex')}`
}

const LOCALHOST_NS = /^nameserver\s+((127\.([0-9]{1,3}\.){2}[0-9]{1,3})|(::1)$)\s*\n*/gm
const IPV6_NS = /^nameserver\s+([0-9A-Fa-f]{0,4}:){2,7}([0-9A-Fa-f]{0,4})(%\w+)?\s*\n*/gm

/**
 * sandbox-dns.md §5.2: removes localhost nameservers (127.x, ::1), IPv6 ones when IPv6 is off, and
 * appends `\n` + the defaults when no nameserver is left. Everything else is kept byte for byte.
 */
export function filterResolvConf(content: string, ipv6Enabled: boolean): { content: string; hash: string } {
  let out = content.replace(LOCALHOST_NS, '')
  if (!ipv6Enabled) out = out.replace(IPV6_NS, '')
  if (getNameservers(out).length === 0) {
    const dns = [...DEFAULT_IPV4_NAMESERVERS, ...(ipv6Enabled ? DEFAULT_IPV6_NAMESERVERS : [])]
    out += `\n${dns.map((d) => `nameserver ${d}`).join('\n')}`
  }
  return { content: out, hash: hashResolvConf(out) }
}

/**
 * Which host file to read (sandbox-dns.md §5.1): the systemd-resolved one when /etc/resolv.conf's
 * only nameserver is the stub 127.0.0.53. Pass the content of /etc/resolv.conf (undefined if missing).
 */
export function hostResolvConfPath(etcResolvConf: string | undefined): string {
  if (etcResolvConf === undefined) return HOST_RESOLV_CONF
  const ns = getNameservers(etcResolvConf)
  return ns.length === 1 && ns[0] === '127.0.0.53' ? SYSTEMD_RESOLV_CONF : HOST_RESOLV_CONF
}

/** Upstreams for the resolver from a host file's IPv4 nameservers; 127.x are flagged host-loopback. */
export function hostUpstreams(hostContent: string): UpstreamServer[] {
  return getNameservers(hostContent, 'ipv4').map((address) =>
    address.startsWith('127.') ? { address, hostLoopback: true } : { address },
  )
}

/**
 * Parses `ndots:<n>` out of an options list: the value when present (`undefined` otherwise).
 * Throws InvalidNdotsError for a non-number or a negative number.
 */
export function ndotsOf(options: readonly string[]): number | undefined {
  let found: number | undefined
  for (const o of options) {
    if (!o.startsWith('ndots:')) continue
    const v = o.slice('ndots:'.length)
    if (!/^-?\d+$/.test(v) || Number(v) < 0) throw new InvalidNdotsError(`invalid number for ndots option: ${v}`)
    found = Number(v)
  }
  return found
}

export interface EmbeddedResolvConf {
  /** The file the sandbox gets: `nameserver 127.0.0.11` first. */
  readonly content: string
  /** Servers the embedded resolver forwards to. */
  readonly upstreams: readonly UpstreamServer[]
  /** The user set `ndots` (the resolver's `ndotsSet`). */
  readonly ndotsSet: boolean
  /** Search domains of the file (the resolver's `searchDomains`). */
  readonly searchDomains: readonly string[]
}

/**
 * sandbox-dns.md §2.4: the resolv.conf of a sandbox whose embedded resolver is active, from its
 * current file. `upstreams` = `recorded` when given and non-empty, else the file's IPv4 nameservers.
 * The IPv6 nameservers stay (they cannot be proxied); `ndots:0` is added unless the user set ndots.
 */
export function embeddedResolvConf(
  current: string,
  options: { address?: string; recorded?: readonly UpstreamServer[] } = {},
): EmbeddedResolvConf {
  const conf = parseResolvConf(current)
  const address = options.address ?? '127.0.0.11'
  const upstreams =
    options.recorded !== undefined && options.recorded.length > 0
      ? options.recorded
      : conf.nameservers.filter((n) => isIPv4(n) && n !== address).map((a) => ({ address: a }))
  const ndots = ndotsOf(conf.options)
  const ndotsSet = ndots !== undefined
  const opts = ndotsSet ? [...conf.options] : [...conf.options, 'ndots:0']
  const content = buildResolvConf({
    nameservers: [address, ...conf.nameservers.filter((n) => !isIPv4(n))],
    search: conf.search,
    options: opts,
  })
  return { content, upstreams, ndotsSet, searchDomains: conf.search.filter((s) => s !== '.') }
}
