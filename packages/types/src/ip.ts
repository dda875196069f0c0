import { Address4, Address6 } from 'ip-address'
import { InvalidArgumentError } from './errors.js'

export type IpVersion = 4 | 6

/** An IP address as a plain value: version and the address as an unsigned big integer. */
export interface IpAddr {
  readonly version: IpVersion
  readonly value: bigint
}

/** A canonical prefix: `network` has all host bits cleared. */
export interface IpPrefix {
  readonly version: IpVersion
  readonly network: bigint
  readonly bits: number
}

/** An address together with the prefix length it was written with (`10.0.0.5/24`). */
export interface IpCidr {
  readonly ip: IpAddr
  readonly prefix: IpPrefix
}

const width = (v: IpVersion): number => (v === 4 ? 32 : 128)

function invalid(what: string, input: unknown): InvalidArgumentError {
  return new InvalidArgumentError(`invalid ${what}: ${JSON.stringify(input)}`, { code: 'ERR_INVALID_IP' })
}

/** Parses a plain IPv4 or IPv6 address (no prefix, no zone). Throws InvalidArgumentError. */
export function parseIp(input: string): IpAddr {
  if (typeof input !== 'string' || input.includes('/') || input.includes('%')) throw invalid('IP address', input)
  const s = input.trim()
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s) && Address4.isValid(s)) {
    return { version: 4, value: new Address4(s).bigInt() }
  }
  if (s.includes(':') && Address6.isValid(s)) {
    return { version: 6, value: new Address6(s).bigInt() }
  }
  throw invalid('IP address', input)
}

/** Like parseIp but returns undefined instead of throwing. */
export function tryParseIp(input: string): IpAddr | undefined {
  try {
    return parseIp(input)
  } catch {
    return undefined
  }
}

/** Canonical text: dotted quad, or RFC 5952 compressed IPv6. */
export function formatIp(ip: IpAddr): string {
  if (ip.version === 4) return Address4.fromBigInt(ip.value).correctForm()
  return Address6.fromBigInt(ip.value).correctForm()
}

export function maskOf(version: IpVersion, bits: number): bigint {
  const w = BigInt(width(version))
  return ((1n << w) - 1n) ^ ((1n << (w - BigInt(bits))) - 1n)
}

/** Parses `addr/len` keeping the address as written. Throws InvalidArgumentError. */
export function parseCidr(input: string): IpCidr {
  if (typeof input !== 'string') throw invalid('CIDR', input)
  const parts = input.trim().split('/')
  if (parts.length !== 2 || !/^\d{1,3}$/.test(parts[1] ?? '')) throw invalid('CIDR', input)
  const ip = tryParseIp(parts[0] ?? '')
  if (ip === undefined) throw invalid('CIDR', input)
  const bits = Number(parts[1])
  if (bits > width(ip.version)) throw invalid('CIDR', input)
  return { ip, prefix: { version: ip.version, bits, network: ip.value & maskOf(ip.version, bits) } }
}

/** Parses a prefix and canonicalises it to its network address (`10.1.2.3/16` → `10.1.0.0/16`). */
export function parsePrefix(input: string): IpPrefix {
  return parseCidr(input).prefix
}

export function formatPrefix(p: IpPrefix): string {
  return `${formatIp({ version: p.version, value: p.network })}/${p.bits}`
}

export function formatCidr(c: IpCidr): string {
  return `${formatIp(c.ip)}/${c.prefix.bits}`
}

/** Number of addresses in the prefix (2^hostBits). */
export function prefixSize(p: IpPrefix): bigint {
  return 1n << BigInt(width(p.version) - p.bits)
}

export function hostBits(p: IpPrefix): number {
  return width(p.version) - p.bits
}

export function prefixContains(p: IpPrefix, ip: IpAddr): boolean {
  return p.version === ip.version && (ip.value & maskOf(p.version, p.bits)) === p.network
}

/** True when either prefix contains the other's network address. */
export function prefixOverlaps(a: IpPrefix, b: IpPrefix): boolean {
  if (a.version !== b.version) return false
  const bits = Math.min(a.bits, b.bits)
  const m = maskOf(a.version, bits)
  return (a.network & m) === (b.network & m)
}

/** The address at host ordinal `n` of the prefix. */
export function addressAt(p: IpPrefix, ordinal: bigint): IpAddr {
  if (ordinal < 0n || ordinal >= prefixSize(p)) throw invalid('ordinal', String(ordinal))
  return { version: p.version, value: p.network + ordinal }
}

/** Host ordinal of `ip` inside `p`, or undefined when it is outside. */
export function ordinalOf(p: IpPrefix, ip: IpAddr): bigint | undefined {
  return prefixContains(p, ip) ? ip.value - p.network : undefined
}

export function ipEquals(a: IpAddr, b: IpAddr): boolean {
  return a.version === b.version && a.value === b.value
}

export function prefixEquals(a: IpPrefix, b: IpPrefix): boolean {
  return a.version === b.version && a.bits === b.bits && a.network === b.network
}

export function isLinkLocalUnicast(ip: IpAddr): boolean {
  if (ip.version === 4) return ip.value >> 16n === 0xa9fen
  return ip.value >> 118n === 0x3fan
}

export function isGlobalUnicast(ip: IpAddr): boolean {
  if (ip.version === 4) {
    const first = Number(ip.value >> 24n)
    return ip.value !== 0n && ip.value !== 0xffffffffn && first !== 127 && first < 224 && !isLinkLocalUnicast(ip)
  }
  return ip.value !== 0n && ip.value !== 1n && ip.value >> 120n !== 0xffn && !isLinkLocalUnicast(ip)
}
