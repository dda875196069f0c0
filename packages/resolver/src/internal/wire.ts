/**
 * Minimal DNS wire codec for the resolver's hot path (RFC 1035, RFC 6891).
 *
 * Queries are parsed in place into a reusable `ParsedQuery` (header, first question, EDNS OPT);
 * nothing else is decoded. Answers are built from pre-encoded resource records whose owner name
 * is a compression pointer to the question (offset 12), so the client's spelling is echoed.
 */

export const TYPE_A = 1
export const TYPE_NS = 2
export const TYPE_CNAME = 5
export const TYPE_SOA = 6
export const TYPE_PTR = 12
export const TYPE_MX = 15
export const TYPE_AAAA = 28
export const TYPE_SRV = 33
export const TYPE_OPT = 41
export const TYPE_ANY = 255
export const CLASS_IN = 1

export const RCODE_NOERROR = 0
export const RCODE_FORMERR = 1
export const RCODE_SERVFAIL = 2
export const RCODE_NXDOMAIN = 3
export const RCODE_NOTIMP = 4
export const RCODE_REFUSED = 5
/** Extended rcode (RFC 6891): upper 8 bits live in the OPT TTL. */
export const RCODE_BADVERS = 16

/** Result of `parseQuery`. */
export const PARSE_OK = 0
/** Not worth an answer (too short, a response, no question). */
export const PARSE_DROP = 1
/** Header readable, body malformed: answer FORMERR (header only, or with the question when it parsed). */
export const PARSE_FORMERR = 2
/** Opcode other than QUERY: answer NOTIMP. */
export const PARSE_NOTIMP = 3

export const MAX_NAME_WIRE = 255
export const HEADER_BYTES = 12
export const OPT_RR_BYTES = 11
export const MAX_TCP_MESSAGE = 65535

/** The parts of a query the resolver needs. One instance is reused for every message. */
export class ParsedQuery {
  id = 0
  /** Bytes 2..3 of the header. */
  flags = 0
  opcode = 0
  qdcount = 0
  qtype = 0
  qclass = 0
  /** Offset just past the question name's terminating zero (0 when the question did not parse). */
  nameEnd = 0
  /** Offset just past QCLASS of the first question (0 when the question did not parse). */
  questionEnd = 0
  /** Lower-cased wire form of the question name (latin1 string), the cache key. */
  key = ''
  edns = false
  ednsVersion = 0
  /** Requestor's UDP payload size (EDNS), 512 without EDNS. */
  udpSize = 512
}

/**
 * Parses header, first question and (if present) the EDNS OPT record. `scratch` must hold at least
 * 256 bytes; it receives the case-folded name.
 */
export function parseQuery(msg: Uint8Array, q: ParsedQuery, scratch: Buffer): number {
  const len = msg.length
  q.nameEnd = 0
  q.questionEnd = 0
  q.edns = false
  q.ednsVersion = 0
  q.udpSize = 512
  q.key = ''
  if (len < HEADER_BYTES) return PARSE_DROP
  const b2 = msg[2] as number
  if ((b2 & 0x80) !== 0) return PARSE_DROP // a response: never answer it (no loops)
  q.id = ((msg[0] as number) << 8) | (msg[1] as number)
  q.flags = (b2 << 8) | (msg[3] as number)
  q.opcode = (b2 >> 3) & 0x0f
  const qd = ((msg[4] as number) << 8) | (msg[5] as number)
  q.qdcount = qd
  if (qd === 0) return q.opcode === 0 ? PARSE_DROP : PARSE_NOTIMP
  // first question name: labels only (a pointer can only point backwards, into the header)
  let o = HEADER_BYTES
  let k = 0
  for (;;) {
    if (o >= len) return PARSE_FORMERR
    const l = msg[o] as number
    if (l === 0) {
      scratch[k++] = 0
      o++
      break
    }
    if (l > 63) return PARSE_FORMERR
    const end = o + 1 + l
    if (end > len || end - HEADER_BYTES >= MAX_NAME_WIRE) return PARSE_FORMERR
    scratch[k++] = l
    for (let i = o + 1; i < end; i++) {
      const c = msg[i] as number
      scratch[k++] = c >= 65 && c <= 90 ? c | 0x20 : c
    }
    o = end
  }
  if (o + 4 > len) return PARSE_FORMERR
  q.nameEnd = o
  q.qtype = ((msg[o] as number) << 8) | (msg[o + 1] as number)
  q.qclass = ((msg[o + 2] as number) << 8) | (msg[o + 3] as number)
  q.questionEnd = o + 4
  // latin1Slice: Buffer's own decoder without toString's argument handling (hot path)
  q.key = (scratch as Buffer & { latin1Slice(start: number, end: number): string }).latin1Slice(0, k)
  if (q.opcode !== 0) return PARSE_NOTIMP
  const an = ((msg[6] as number) << 8) | (msg[7] as number)
  const ns = ((msg[8] as number) << 8) | (msg[9] as number)
  const ar = ((msg[10] as number) << 8) | (msg[11] as number)
  if (ar === 0) return PARSE_OK
  // skip further questions, answers and authority records, then look for OPT among additionals
  let p = q.questionEnd
  for (let i = 1; i < qd; i++) {
    p = skipName(msg, p)
    if (p < 0 || p + 4 > len) return PARSE_FORMERR
    p += 4
  }
  for (let i = 0; i < an + ns; i++) {
    p = skipRecord(msg, p)
    if (p < 0) return PARSE_FORMERR
  }
  for (let i = 0; i < ar; i++) {
    const start = p
    p = skipName(msg, p)
    if (p < 0 || p + 10 > len) return PARSE_FORMERR
    const type = ((msg[p] as number) << 8) | (msg[p + 1] as number)
    const rdlen = ((msg[p + 8] as number) << 8) | (msg[p + 9] as number)
    if (p + 10 + rdlen > len) return PARSE_FORMERR
    if (type === TYPE_OPT) {
      // RFC 6891 §6.1.1: one OPT, owner name root
      if (q.edns || msg[start] !== 0 || p !== start + 1) return PARSE_FORMERR
      q.edns = true
      const size = ((msg[p + 2] as number) << 8) | (msg[p + 3] as number)
      q.udpSize = size < 512 ? 512 : size
      q.ednsVersion = msg[p + 5] as number
    }
    p += 10 + rdlen
  }
  return PARSE_OK
}

/** Offset just past a (possibly compressed) name at `o`, or -1 when malformed. */
export function skipName(msg: Uint8Array, o: number): number {
  const len = msg.length
  for (let n = 0; n < 128; n++) {
    if (o >= len) return -1
    const l = msg[o] as number
    if (l === 0) return o + 1
    if ((l & 0xc0) === 0xc0) return o + 2 <= len ? o + 2 : -1
    if (l > 63) return -1
    o += 1 + l
  }
  return -1
}

/** Offset just past a resource record at `o`, or -1 when malformed. */
export function skipRecord(msg: Uint8Array, o: number): number {
  const p = skipName(msg, o)
  if (p < 0 || p + 10 > msg.length) return -1
  const rdlen = ((msg[p + 8] as number) << 8) | (msg[p + 9] as number)
  const end = p + 10 + rdlen
  return end <= msg.length ? end : -1
}

/** Dotted lower-case form of the folded wire name in `key` (no trailing dot; '' for the root). Undefined when a label holds a dot or a byte outside printable ASCII. */
export function keyToName(key: string): string | undefined {
  let out = ''
  let i = 0
  for (;;) {
    const l = key.charCodeAt(i)
    if (l === 0 || Number.isNaN(l)) return out
    const label = key.slice(i + 1, i + 1 + l)
    for (let j = 0; j < label.length; j++) {
      const c = label.charCodeAt(j)
      if (c <= 0x20 || c >= 0x7f || c === 0x2e) return undefined
    }
    out = out.length === 0 ? label : `${out}.${label}`
    i += 1 + l
  }
}

/** Encodes a dotted name (trailing dot optional) in wire form; throws RangeError on bad labels. */
export function encodeName(name: string): Buffer {
  const trimmed = name.endsWith('.') ? name.slice(0, -1) : name
  if (trimmed.length === 0) return Buffer.from([0])
  const labels = trimmed.split('.')
  const parts: Buffer[] = []
  let total = 1
  for (const label of labels) {
    const b = Buffer.from(label, 'utf8')
    if (b.length === 0 || b.length > 63) throw new RangeError(`invalid DNS label in ${JSON.stringify(name)}`)
    parts.push(Buffer.from([b.length]), b)
    total += 1 + b.length
  }
  if (total > MAX_NAME_WIRE) throw new RangeError(`DNS name too long: ${JSON.stringify(name)}`)
  parts.push(Buffer.from([0]))
  return Buffer.concat(parts, total)
}

/** Header bytes 2..3 of a reply to `q`: QR, opcode, AA, TC, RD (copied), RA, CD (copied), rcode. */
export function replyFlags(q: ParsedQuery, rcode: number, tc: boolean, aa: boolean): number {
  return (
    0x8000 |
    (q.opcode << 11) |
    (aa ? 0x0400 : 0) |
    (tc ? 0x0200 : 0) |
    (q.flags & 0x0100) | // RD
    0x0080 | // RA
    (q.flags & 0x0010) | // CD
    (rcode & 0x0f)
  )
}

/** Writes the 12-byte header. */
export function writeHeader(
  out: Buffer,
  id: number,
  flags: number,
  qd: number,
  an: number,
  ns: number,
  ar: number,
): void {
  out[0] = id >> 8
  out[1] = id & 0xff
  out[2] = flags >> 8
  out[3] = flags & 0xff
  out[4] = qd >> 8
  out[5] = qd & 0xff
  out[6] = an >> 8
  out[7] = an & 0xff
  out[8] = ns >> 8
  out[9] = ns & 0xff
  out[10] = ar >> 8
  out[11] = ar & 0xff
}

/** Writes an OPT pseudo-record (root owner, our payload size, extended rcode bits) at `o`. */
export function writeOpt(out: Buffer, o: number, udpSize: number, rcode: number): number {
  out[o] = 0
  out[o + 1] = 0
  out[o + 2] = TYPE_OPT
  out[o + 3] = udpSize >> 8
  out[o + 4] = udpSize & 0xff
  out[o + 5] = (rcode >> 4) & 0xff
  out[o + 6] = 0 // version
  out[o + 7] = 0 // DO clear: no DNSSEC here
  out[o + 8] = 0
  out[o + 9] = 0
  out[o + 10] = 0
  return o + OPT_RR_BYTES
}

/**
 * A reply without records (errors, NODATA, NXDOMAIN): header, the question when it parsed,
 * OPT when the query had one.
 */
export function emptyReply(msg: Uint8Array, q: ParsedQuery, rcode: number, ourUdpSize: number): Buffer {
  const qlen = q.questionEnd > 0 ? q.questionEnd - HEADER_BYTES : 0
  const opt = q.edns ? OPT_RR_BYTES : 0
  const out = Buffer.allocUnsafe(HEADER_BYTES + qlen + opt)
  writeHeader(out, q.id, replyFlags(q, rcode, false, false), qlen > 0 ? 1 : 0, 0, 0, opt > 0 ? 1 : 0)
  if (qlen > 0) out.set(msg.subarray(HEADER_BYTES, q.questionEnd), HEADER_BYTES)
  if (opt > 0) writeOpt(out, HEADER_BYTES + qlen, ourUdpSize, rcode)
  return out
}

/** FORMERR for a message whose header is readable (id echoed, no question). */
export function formerrReply(msg: Uint8Array): Buffer {
  const out = Buffer.alloc(HEADER_BYTES)
  out[0] = msg[0] as number
  out[1] = msg[1] as number
  out[2] = 0x80 | ((msg[2] as number) & 0x79) // QR, opcode, RD
  out[3] = 0x80 | RCODE_FORMERR
  return out
}

function ttlBytes(out: Buffer, o: number, ttl: number): void {
  out.writeUInt32BE(ttl >>> 0, o)
}

/** An A or AAAA record whose owner is the question name. */
export function addressRecord(bytes: Uint8Array, ttl: number): Buffer {
  const v6 = bytes.length === 16
  const out = Buffer.allocUnsafe(12 + bytes.length)
  out[0] = 0xc0
  out[1] = 0x0c
  out.writeUInt16BE(v6 ? TYPE_AAAA : TYPE_A, 2)
  out.writeUInt16BE(CLASS_IN, 4)
  ttlBytes(out, 6, ttl)
  out.writeUInt16BE(bytes.length, 10)
  out.set(bytes, 12)
  return out
}

/** An A or AAAA record with an explicit (uncompressed) owner name. */
export function namedAddressRecord(owner: Buffer, bytes: Uint8Array, ttl: number): Buffer {
  const v6 = bytes.length === 16
  const out = Buffer.allocUnsafe(owner.length + 10 + bytes.length)
  owner.copy(out, 0)
  let o = owner.length
  out.writeUInt16BE(v6 ? TYPE_AAAA : TYPE_A, o)
  out.writeUInt16BE(CLASS_IN, o + 2)
  ttlBytes(out, o + 4, ttl)
  out.writeUInt16BE(bytes.length, o + 8)
  o += 10
  out.set(bytes, o)
  return out
}

/** A PTR record whose owner is the question name. */
export function ptrRecord(target: Buffer, ttl: number): Buffer {
  const out = Buffer.allocUnsafe(12 + target.length)
  out[0] = 0xc0
  out[1] = 0x0c
  out.writeUInt16BE(TYPE_PTR, 2)
  out.writeUInt16BE(CLASS_IN, 4)
  ttlBytes(out, 6, ttl)
  out.writeUInt16BE(target.length, 10)
  target.copy(out, 12)
  return out
}

/** An SRV record whose owner is the question name. */
export function srvRecord(priority: number, weight: number, port: number, target: Buffer, ttl: number): Buffer {
  const out = Buffer.allocUnsafe(18 + target.length)
  out[0] = 0xc0
  out[1] = 0x0c
  out.writeUInt16BE(TYPE_SRV, 2)
  out.writeUInt16BE(CLASS_IN, 4)
  ttlBytes(out, 6, ttl)
  out.writeUInt16BE(6 + target.length, 10)
  out.writeUInt16BE(priority, 12)
  out.writeUInt16BE(weight, 14)
  out.writeUInt16BE(port, 16)
  target.copy(out, 18)
  return out
}

/** IPv4 dotted quad → 4 bytes (caller validated). */
export function ipv4Bytes(ip: string): Uint8Array {
  const p = ip.split('.')
  return Uint8Array.of(Number(p[0]), Number(p[1]), Number(p[2]), Number(p[3]))
}

/** IPv6 text (no zone) → 16 bytes; undefined when malformed. Accepts an embedded IPv4 tail. */
export function ipv6Bytes(ip: string): Uint8Array | undefined {
  let s = ip
  const out = new Uint8Array(16)
  let tail: number[] = []
  const lastColon = s.lastIndexOf(':')
  if (s.includes('.', lastColon)) {
    const v4 = s.slice(lastColon + 1).split('.')
    if (v4.length !== 4) return undefined
    for (const x of v4) {
      if (!/^\d{1,3}$/.test(x) || Number(x) > 255) return undefined
    }
    tail = [(Number(v4[0]) << 8) | Number(v4[1]), (Number(v4[2]) << 8) | Number(v4[3])]
    s = s.slice(0, lastColon + 1) + '0:0'
  }
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const parse = (h: string): number[] | undefined => {
    if (h.length === 0) return []
    const groups = h.split(':')
    const r: number[] = []
    for (const g of groups) {
      if (!/^[0-9a-fA-F]{1,4}$/.test(g)) return undefined
      r.push(parseInt(g, 16))
    }
    return r
  }
  const head = parse(halves[0] as string)
  const rest = halves.length === 2 ? parse(halves[1] as string) : []
  if (head === undefined || rest === undefined) return undefined
  let groups: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - rest.length
    if (fill < 1) return undefined
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest]
  } else {
    groups = head
  }
  if (groups.length !== 8) return undefined
  if (tail.length === 2) {
    groups[6] = tail[0] as number
    groups[7] = tail[1] as number
  }
  for (let i = 0; i < 8; i++) {
    const g = groups[i] as number
    out[i * 2] = g >> 8
    out[i * 2 + 1] = g & 0xff
  }
  return out
}

/** Canonical (RFC 5952) text of 16 address bytes. */
export function formatIpv6(b: Uint8Array): string {
  const g: number[] = []
  for (let i = 0; i < 8; i++) g.push(((b[i * 2] as number) << 8) | (b[i * 2 + 1] as number))
  // longest run of zero groups (length >= 2), first one on ties
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && g[j] === 0) j++
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i
      bestLen = j - i
    }
    i = j
  }
  const hex = (x: number): string => x.toString(16)
  if (bestStart < 0) return g.map(hex).join(':')
  const left = g.slice(0, bestStart).map(hex).join(':')
  const right = g
    .slice(bestStart + bestLen)
    .map(hex)
    .join(':')
  return `${left}::${right}`
}

/**
 * The address a reverse name stands for (`4.3.2.1.in-addr.arpa` → 1.2.3.4, 32 nibbles + `ip6.arpa`
 * → IPv6), or undefined when the name is not a complete reverse name. `name` is lower-case, no
 * trailing dot.
 */
export function parseReverseName(name: string): { address: string; version: 4 | 6 } | undefined {
  if (name.endsWith('.in-addr.arpa')) {
    const parts = name.slice(0, -'.in-addr.arpa'.length).split('.')
    if (parts.length !== 4) return undefined
    for (const p of parts) {
      if (!/^\d{1,3}$/.test(p) || Number(p) > 255 || (p.length > 1 && p.startsWith('0'))) return undefined
    }
    return { address: parts.reverse().map(Number).join('.'), version: 4 }
  }
  if (name.endsWith('.ip6.arpa')) {
    const parts = name.slice(0, -'.ip6.arpa'.length).split('.')
    if (parts.length !== 32) return undefined
    const b = new Uint8Array(16)
    for (let i = 0; i < 32; i++) {
      const p = parts[31 - i] as string
      if (!/^[0-9a-f]$/.test(p)) return undefined
      const v = parseInt(p, 16)
      if (i % 2 === 0) b[i >> 1] = v << 4
      else b[i >> 1] = (b[i >> 1] as number) | v
    }
    return { address: formatIpv6(b), version: 6 }
  }
  return undefined
}

/** The reverse name of an address (`1.2.3.4` → `4.3.2.1.in-addr.arpa`); undefined when malformed. */
export function reverseName(ip: string): string | undefined {
  if (ip.includes(':')) {
    const b = ipv6Bytes(ip)
    if (b === undefined) return undefined
    const nibbles: string[] = []
    for (let i = 15; i >= 0; i--) {
      const x = b[i] as number
      nibbles.push((x & 0x0f).toString(16), (x >> 4).toString(16))
    }
    return `${nibbles.join('.')}.ip6.arpa`
  }
  const p = ip.split('.')
  if (p.length !== 4 || p.some((x) => !/^\d{1,3}$/.test(x) || Number(x) > 255)) return undefined
  return `${p.reverse().map(Number).join('.')}.in-addr.arpa`
}

/** True when bytes [12, end) of `a` and `b` are equal ignoring ASCII case (question sections). */
export function sameQuestion(a: Uint8Array, b: Uint8Array, end: number): boolean {
  if (a.length < end || b.length < end) return false
  for (let i = HEADER_BYTES; i < end; i++) {
    let x = a[i] as number
    let y = b[i] as number
    if (x === y) continue
    if (x >= 65 && x <= 90) x |= 0x20
    if (y >= 65 && y <= 90) y |= 0x20
    if (x !== y) return false
  }
  return true
}

/** A and AAAA addresses in the answer section of a reply (for `reportExternal`). */
export function answerAddresses(msg: Uint8Array): string[] {
  const out: string[] = []
  if (msg.length < HEADER_BYTES) return out
  const qd = ((msg[4] as number) << 8) | (msg[5] as number)
  const an = ((msg[6] as number) << 8) | (msg[7] as number)
  let p = HEADER_BYTES
  for (let i = 0; i < qd; i++) {
    p = skipName(msg, p)
    if (p < 0) return out
    p += 4
  }
  for (let i = 0; i < an; i++) {
    const n = skipName(msg, p)
    if (n < 0 || n + 10 > msg.length) return out
    const type = ((msg[n] as number) << 8) | (msg[n + 1] as number)
    const rdlen = ((msg[n + 8] as number) << 8) | (msg[n + 9] as number)
    const rd = n + 10
    if (rd + rdlen > msg.length) return out
    if (type === TYPE_A && rdlen === 4) out.push(`${msg[rd]}.${msg[rd + 1]}.${msg[rd + 2]}.${msg[rd + 3]}`)
    else if (type === TYPE_AAAA && rdlen === 16) out.push(formatIpv6(msg.subarray(rd, rd + 16)))
    p = rd + rdlen
  }
  return out
}
