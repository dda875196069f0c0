/**
 * /etc/hosts content (sandbox-dns.md §4.1). Pure functions on strings; `DnsFiles` does the I/O.
 * A line is `<IP>\t<names>\n`.
 */

/** One hosts line: `ip` and its names (space-separated, e.g. `web.example.com web`). */
export interface HostsRecord {
  readonly hosts: string
  readonly ip: string
}

/** The block every hosts file starts with (after the optional own-address line). */
export const DEFAULT_HOSTS_RECORDS: readonly HostsRecord[] = Object.freeze([
  { ip: '127.0.0.1', hosts: 'localhost' },
  { ip: '::1', hosts: 'localhost ip6-localhost ip6-loopback' },
  { ip: 'fe00::0', hosts: 'ip6-localnet' },
  { ip: 'ff00::0', hosts: 'ip6-mcastprefix' },
  { ip: 'ff02::1', hosts: 'ip6-allnodes' },
  { ip: 'ff02::2', hosts: 'ip6-allrouters' },
])

export interface BuildHostsOptions {
  /** The sandbox's own address: when given, a first line for it. */
  ip?: string
  hostname?: string
  domainname?: string
  /** Extra records (`--add-host`, link aliases) after the default block. */
  extra?: readonly HostsRecord[]
}

/** `hostname.domainname shortname`, or just the hostname when it has no dot (sandbox-dns.md §4.1). */
export function hostsNames(hostname: string, domainname?: string): string {
  const fqdn = domainname !== undefined && domainname.length > 0 ? `${hostname}.${domainname}` : hostname
  const dot = fqdn.indexOf('.')
  if (dot > 0) return `${fqdn} ${fqdn.slice(0, dot)}`
  return hostname
}

export function hostsLine(r: HostsRecord): string {
  return `${r.ip}\t${r.hosts}\n`
}

/** The content `build` writes: own line (if `ip`), default block, extra records. */
export function buildHosts(options: BuildHostsOptions = {}): string {
  let out = ''
  if (options.ip !== undefined && options.ip.length > 0) {
    out += hostsLine({ ip: options.ip, hosts: hostsNames(options.hostname ?? '', options.domainname) })
  }
  for (const r of DEFAULT_HOSTS_RECORDS) out += hostsLine(r)
  for (const r of options.extra ?? []) out += hostsLine(r)
  return out
}

/** Appends records (the `add` operation on content). */
export function addHosts(content: string, records: readonly HostsRecord[]): string {
  if (records.length === 0) return content
  const sep = content.length > 0 && !content.endsWith('\n') ? '\n' : ''
  return content + sep + records.map(hostsLine).join('')
}

/**
 * Removes every line that ends with `\t<names>` of one of the records (the IP is not compared),
 * keeps `#` comment lines, drops empty lines.
 */
export function deleteHosts(content: string, records: readonly HostsRecord[]): string {
  if (records.length === 0) return content
  const suffixes = records.map((r) => `\t${r.hosts}`)
  let out = ''
  for (const line of content.split('\n')) {
    if (line.startsWith('#')) {
      out += `${line}\n`
      continue
    }
    if (line.trim().length === 0) continue
    if (suffixes.some((s) => line.endsWith(s))) continue
    out += `${line}\n`
  }
  return out
}

/**
 * Replaces the IP of every line whose names begin with exactly `hostname` followed by whitespace, a
 * dot or the end of the line (`web` matches `web` and `web.domain`, not `webserver`).
 */
export function updateHosts(content: string, ip: string, hostname: string): string {
  const escaped = hostname.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')
  const re = new RegExp(`^(\\S+)(\\t${escaped})(?=[\\s.]|$)`, 'gm')
  return content.replace(re, (_m, _ip: string, rest: string) => `${ip}${rest}`)
}
