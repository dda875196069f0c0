import { isIPv4 } from 'node:net'
import type { DnsRecordSource, ServiceProtocol } from '../record-source.js'
import {
  HEADER_BYTES,
  OPT_RR_BYTES,
  RCODE_NOERROR,
  RCODE_NXDOMAIN,
  RCODE_SERVFAIL,
  TYPE_A,
  TYPE_AAAA,
  TYPE_ANY,
  TYPE_PTR,
  TYPE_SRV,
  addressRecord,
  encodeName,
  ipv4Bytes,
  ipv6Bytes,
  namedAddressRecord,
  parseReverseName,
  ptrRecord,
  replyFlags,
  srvRecord,
  writeHeader,
  writeOpt,
} from './wire.js'
import type { ParsedQuery } from './wire.js'

/** The resolver's decision for one (name, type): a local reply, or forward upstream. */
export type Entry = LocalEntry | ForwardEntry

export interface ForwardEntry {
  readonly kind: 'forward'
}

export const FORWARD: ForwardEntry = Object.freeze({ kind: 'forward' })

/** A pre-encoded local reply. Records use a compression pointer to the question as owner. */
export interface LocalEntry {
  readonly kind: 'local'
  readonly rcode: number
  /** Answers followed by additionals, all of them. */
  readonly body: Buffer
  readonly ancount: number
  readonly arcount: number
  /** Per answer: the record, and the additional records that go with it (SRV targets). */
  readonly answers: readonly Buffer[]
  readonly extras: readonly (readonly Buffer[])[]
  /** Shuffle the answer order per reply (several addresses). */
  readonly rotate: boolean
  /** What the entry says, for tests and logs. */
  readonly what: 'answer' | 'nodata' | 'nxdomain' | 'servfail'
}

function local(rcode: number, what: LocalEntry['what'], answers: Buffer[] = [], extras: Buffer[][] = []): LocalEntry {
  const flatExtras = extras.flat()
  return {
    kind: 'local',
    rcode,
    body: Buffer.concat([...answers, ...flatExtras]),
    ancount: answers.length,
    arcount: flatExtras.length,
    answers,
    extras: extras.length === answers.length ? extras : answers.map(() => []),
    rotate: answers.length > 1 && flatExtras.length === 0,
    what,
  }
}

export const NODATA_ENTRY: LocalEntry = local(RCODE_NOERROR, 'nodata')
export const NXDOMAIN_ENTRY: LocalEntry = local(RCODE_NXDOMAIN, 'nxdomain')
export const SERVFAIL_ENTRY: LocalEntry = local(RCODE_SERVFAIL, 'servfail')

export interface ResolveConfig {
  readonly ttl: number
  /** Lower-case, no trailing dot. */
  readonly searchDomains: readonly string[]
  readonly ndotsSet: boolean
  /** Upstream servers exist: misses are forwarded (else SERVFAIL). */
  readonly proxy: boolean
}

/** Decides how to answer `name` (lower-case, no trailing dot) for `qtype`. May throw if the source throws. */
export function resolveLocal(src: DnsRecordSource, name: string, qtype: number, cfg: ResolveConfig): Entry {
  const direct = lookupOne(src, name, qtype, cfg)
  if (direct !== undefined) return direct
  for (const sd of cfg.searchDomains) {
    if (name.length > sd.length + 1 && name.endsWith(sd) && name.charCodeAt(name.length - sd.length - 1) === 0x2e) {
      const hit = lookupOne(src, name.slice(0, name.length - sd.length - 1), qtype, cfg)
      if (hit !== undefined) return hit
    }
  }
  // sandbox-dns.md §2.2 miss handling
  if ((qtype === TYPE_A || qtype === TYPE_AAAA) && cfg.ndotsSet && !name.includes('.')) return NODATA_ENTRY
  return cfg.proxy ? FORWARD : SERVFAIL_ENTRY
}

const PROTOCOLS: ReadonlySet<string> = new Set(['tcp', 'udp', 'sctp'])

function lookupOne(src: DnsRecordSource, name: string, qtype: number, cfg: ResolveConfig): LocalEntry | undefined {
  if (name.length === 0) return undefined
  if (name.endsWith('.arpa')) {
    const rev = parseReverseName(name)
    if (rev === undefined) return undefined
    const target = src.lookupAddress(rev.address, rev.version)
    if (target === undefined || target.length === 0) return undefined
    if (qtype !== TYPE_PTR && qtype !== TYPE_ANY) return NODATA_ENTRY
    return local(RCODE_NOERROR, 'answer', [ptrRecord(encodeName(target), cfg.ttl)])
  }
  if (name.charCodeAt(0) === 0x5f /* _ */) {
    const svc = splitService(name)
    if (svc !== undefined) {
      const recs = PROTOCOLS.has(svc.protocol)
        ? src.lookupService(svc.name, svc.service, svc.protocol as ServiceProtocol)
        : undefined
      if (recs !== undefined && recs.length > 0) {
        if (qtype !== TYPE_SRV && qtype !== TYPE_ANY) return NODATA_ENTRY
        const answers: Buffer[] = []
        const extras: Buffer[][] = []
        for (const r of recs) {
          const target = encodeName(r.target)
          answers.push(srvRecord(r.priority ?? 0, r.weight ?? 0, r.port, target, cfg.ttl))
          const group: Buffer[] = []
          for (const a of r.addresses) {
            const bytes = addressBytes(a)
            if (bytes !== undefined) group.push(namedAddressRecord(target, bytes, cfg.ttl))
          }
          extras.push(group)
        }
        return local(RCODE_NOERROR, 'answer', answers, extras)
      }
      // `_x._proto.<local name>` without such a service: that name does not exist (we own <local name>)
      if (src.lookupName(svc.name) !== undefined) return NXDOMAIN_ENTRY
      return undefined
    }
  }
  const rec = src.lookupName(name)
  if (rec === undefined) return undefined
  let list: readonly string[]
  if (qtype === TYPE_A) list = rec.ipv4
  else if (qtype === TYPE_AAAA) list = rec.ipv6
  else if (qtype === TYPE_ANY) list = [...rec.ipv4, ...rec.ipv6]
  else return NODATA_ENTRY
  const answers: Buffer[] = []
  const seen = new Set<string>()
  for (const a of list) {
    if (seen.has(a)) continue // duplicates (two service ids on one VIP) are returned once
    seen.add(a)
    const bytes = addressBytes(a)
    if (bytes !== undefined) answers.push(addressRecord(bytes, cfg.ttl))
  }
  if (answers.length === 0) return NODATA_ENTRY
  return local(RCODE_NOERROR, 'answer', answers)
}

function addressBytes(a: string): Uint8Array | undefined {
  if (isIPv4(a)) return ipv4Bytes(a)
  if (a.includes(':')) return ipv6Bytes(a.split('%')[0] as string)
  return undefined
}

/** `_http._tcp.web.net` → { service: 'http', protocol: 'tcp', name: 'web.net' }. */
export function splitService(name: string): { service: string; protocol: string; name: string } | undefined {
  const d1 = name.indexOf('.')
  if (d1 < 2 || name.charCodeAt(d1 + 1) !== 0x5f) return undefined
  const d2 = name.indexOf('.', d1 + 1)
  if (d2 < 0 || d2 === name.length - 1 || d2 - d1 < 3) return undefined
  return { service: name.slice(1, d1), protocol: name.slice(d1 + 2, d2), name: name.slice(d2 + 1) }
}

/**
 * Encodes the reply for a local entry. `limit` is the size the reply must fit; when it does not,
 * answers (with their additionals) are dropped from the end and, if `setTc`, TC is set.
 */
export function encodeLocal(
  msg: Uint8Array,
  q: ParsedQuery,
  e: LocalEntry,
  limit: number,
  setTc: boolean,
  ourUdpSize: number,
): Buffer {
  const qend = q.questionEnd
  const opt = q.edns ? OPT_RR_BYTES : 0
  const base = qend + opt
  if (!e.rotate && base + e.body.length <= limit) {
    const out = Buffer.allocUnsafe(base + e.body.length)
    writeHeader(out, q.id, replyFlags(q, e.rcode, false, false), 1, e.ancount, 0, e.arcount + (opt > 0 ? 1 : 0))
    for (let i = HEADER_BYTES; i < qend; i++) out[i] = msg[i] as number // question as the client spelled it
    out.set(e.body, qend)
    if (opt > 0) writeOpt(out, qend + e.body.length, ourUdpSize, e.rcode)
    return out
  }
  const n = e.answers.length
  const start = e.rotate ? Math.floor(Math.random() * n) : 0
  let size = base
  let count = 0
  let extraCount = 0
  for (; count < n; count++) {
    const i = (start + count) % n
    let s = (e.answers[i] as Buffer).length
    const ex = e.extras[i] as readonly Buffer[]
    for (const x of ex) s += x.length
    if (size + s > limit) break
    size += s
    extraCount += ex.length
  }
  const truncated = count < n
  const out = Buffer.allocUnsafe(size)
  writeHeader(out, q.id, replyFlags(q, e.rcode, truncated && setTc, false), 1, count, 0, extraCount + (opt > 0 ? 1 : 0))
  out.set(msg.subarray(HEADER_BYTES, qend), HEADER_BYTES)
  let o = qend
  for (let k = 0; k < count; k++) {
    const a = e.answers[(start + k) % n] as Buffer
    a.copy(out, o)
    o += a.length
  }
  for (let k = 0; k < count; k++) {
    for (const x of e.extras[(start + k) % n] as readonly Buffer[]) {
      x.copy(out, o)
      o += x.length
    }
  }
  if (opt > 0) writeOpt(out, o, ourUdpSize, e.rcode)
  return out
}
