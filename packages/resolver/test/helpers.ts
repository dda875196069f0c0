import { execFile } from 'node:child_process'
import dgram from 'node:dgram'
import net from 'node:net'
import dnsPacket from 'dns-packet'
import type { Packet } from 'dns-packet'
import { noopLogger } from '@cnm/types'
import type { ComponentLogger } from '@cnm/types'
import { Resolver } from '../src/index.js'
import type { DnsFastPath, DnsRecordSource, ResolverInit } from '../src/index.js'

export interface DigRecord {
  name: string
  ttl: number
  type: string
  data: string
}

export interface DigResult {
  status: string
  flags: string[]
  answer: DigRecord[]
  additional: DigRecord[]
  /** EDNS udp size the server advertised (undefined when no OPT in the reply). */
  ednsUdp: number | undefined
  msgSize: number | undefined
  raw: string
}

/** Runs `dig` (1 try, 2 s) and parses its default text output. */
export async function dig(args: string[], options: { ns?: string } = {}): Promise<DigResult> {
  const base = ['+time=2', '+tries=1', '+nocookie', ...args]
  const [cmd, argv] = options.ns !== undefined ? ['ip', ['netns', 'exec', options.ns, 'dig', ...base]] : ['dig', base]
  const raw = await new Promise<string>((resolve, reject) => {
    execFile(cmd as string, argv as string[], { timeout: 15_000 }, (err, stdout, stderr) => {
      // dig exits 9 on "no reply" but still prints; keep its output for assertions
      if (err !== null && stdout.length === 0) reject(new Error(`dig ${args.join(' ')}: ${stderr || err.message}`))
      else resolve(stdout)
    })
  })
  return parseDig(raw)
}

export function parseDig(raw: string): DigResult {
  const res: DigResult = {
    status: 'NO-REPLY',
    flags: [],
    answer: [],
    additional: [],
    ednsUdp: undefined,
    msgSize: undefined,
    raw,
  }
  let section = ''
  for (const line of raw.split('\n')) {
    const st = /status: ([A-Z]+)/.exec(line)
    if (st !== null) res.status = st[1] as string
    const fl = /;; flags: ([a-z ]*);/.exec(line)
    if (fl !== null)
      res.flags = (fl[1] as string)
        .trim()
        .split(/\s+/)
        .filter((x) => x.length > 0)
    const ed = /; EDNS: version: \d+, flags:.*; udp: (\d+)/.exec(line)
    if (ed !== null) res.ednsUdp = Number(ed[1])
    const ms = /;; MSG SIZE\s+rcvd: (\d+)/.exec(line)
    if (ms !== null) res.msgSize = Number(ms[1])
    if (line.startsWith(';; ANSWER SECTION')) section = 'answer'
    else if (line.startsWith(';; ADDITIONAL SECTION')) section = 'additional'
    else if (line.startsWith(';; AUTHORITY SECTION') || line.startsWith(';; QUESTION SECTION')) section = ''
    else if (line.trim() === '') section = ''
    else if (!line.startsWith(';') && (section === 'answer' || section === 'additional')) {
      const m = /^(\S+)\s+(\d+)\s+IN\s+(\S+)\s+(.*)$/.exec(line)
      if (m !== null) {
        const rec = { name: m[1] as string, ttl: Number(m[2]), type: m[3] as string, data: (m[4] as string).trim() }
        if (section === 'answer') res.answer.push(rec)
        else res.additional.push(rec)
      }
    }
  }
  return res
}

export type UpstreamBehaviour = (q: Packet, transport: 'udp' | 'tcp') => Packet | 'drop' | Promise<Packet | 'drop'>

/** A scriptable DNS server for forwarding tests (UDP + TCP on one port). */
export class TestUpstream {
  readonly queries: Array<{
    name: string
    type: string
    transport: 'udp' | 'tcp'
    at: number
    from: string
    fromPort: number
  }> = []
  private udp!: dgram.Socket
  private tcp!: net.Server
  private readonly conns = new Set<net.Socket>()
  private stopped = false
  port = 0

  constructor(
    readonly address: string,
    public behaviour: UpstreamBehaviour,
  ) {}

  /**
   * Listens on 127.0.0.x:port (0 = any free UDP+TCP port pair), or on adopted descriptors (a bound
   * UDP and a listening TCP socket). `tcp: false` serves UDP only.
   */
  async start(
    port = 0,
    fds?: { udp: number; tcp: number; port: number },
    options: { tcp?: boolean } = {},
  ): Promise<this> {
    const withTcp = options.tcp !== false
    for (let attempt = 0; ; attempt++) {
      try {
        await this.listenOnce(port, fds, withTcp)
        return this
      } catch (err) {
        await this.stop().catch(() => undefined)
        this.stopped = false
        if (port !== 0 || fds !== undefined || attempt >= 20) throw err
      }
    }
  }

  private async listenOnce(
    port: number,
    fds: { udp: number; tcp: number; port: number } | undefined,
    withTcp: boolean,
  ): Promise<void> {
    this.udp = dgram.createSocket('udp4')
    this.udp.on('message', (msg, rinfo) => {
      void this.answer(msg, 'udp', rinfo.address, rinfo.port).then((out) => {
        if (out !== undefined && !this.stopped) this.udp.send(out, rinfo.port, rinfo.address)
      })
    })
    await new Promise<void>((resolve, reject) => {
      this.udp.once('error', reject)
      if (fds !== undefined) this.udp.bind({ fd: fds.udp }, resolve)
      else this.udp.bind(port, this.address, resolve)
    })
    this.port = fds?.port ?? this.udp.address().port
    this.tcp = net.createServer((sock) => {
      this.conns.add(sock)
      sock.on('close', () => this.conns.delete(sock))
      sock.on('error', () => undefined)
      let buf = Buffer.alloc(0)
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk])
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0))
          buf = buf.subarray(2 + msg.length)
          void this.answer(Buffer.from(msg), 'tcp', sock.remoteAddress ?? '', sock.remotePort ?? 0).then((out) => {
            if (out === undefined || sock.destroyed) return
            const frame = Buffer.alloc(out.length + 2)
            frame.writeUInt16BE(out.length)
            out.copy(frame, 2)
            sock.write(frame)
          })
        }
      })
    })
    if (!withTcp) return
    await new Promise<void>((resolve, reject) => {
      this.tcp.once('error', reject)
      if (fds !== undefined) this.tcp.listen({ fd: fds.tcp }, resolve)
      else this.tcp.listen(this.port, this.address, resolve)
    })
  }

  private async answer(
    msg: Buffer,
    transport: 'udp' | 'tcp',
    from: string,
    fromPort: number,
  ): Promise<Buffer | undefined> {
    let q: Packet
    try {
      q = dnsPacket.decode(msg)
    } catch {
      return undefined
    }
    const question = q.questions?.[0]
    this.queries.push({
      name: question?.name ?? '',
      type: question?.type ?? '',
      transport,
      at: Date.now(),
      from,
      fromPort,
    })
    const r = await this.behaviour(q, transport)
    if (r === 'drop') return undefined
    return dnsPacket.encode({ ...r, id: q.id ?? 0, type: 'response', questions: r.questions ?? q.questions ?? [] })
  }

  async stop(): Promise<void> {
    this.stopped = true
    for (const c of this.conns) c.destroy()
    await Promise.all([
      new Promise<void>((resolve) => {
        try {
          this.udp.close(() => resolve())
        } catch {
          resolve() // never bound or already closed
        }
      }),
      new Promise<void>((resolve) => (this.tcp.listening ? this.tcp.close(() => resolve()) : resolve())),
    ])
  }
}

/** NOERROR with one A record per question (name echoed), RA set. */
export function answerA(address: string, extra: Partial<Packet> = {}): UpstreamBehaviour {
  return (q) => ({
    flags: dnsPacket.RECURSION_AVAILABLE | dnsPacket.RECURSION_DESIRED,
    answers: (q.questions ?? [])
      .filter((x) => x.type === 'A')
      .map((x) => ({ type: 'A', name: x.name, ttl: 60, data: address })),
    ...extra,
  })
}

/** A reply with the given rcode (numeric, in the flags) and optionally AA. */
export function answerRcode(rcode: number, aa = false): UpstreamBehaviour {
  return () => ({ flags: dnsPacket.RECURSION_AVAILABLE | (aa ? dnsPacket.AUTHORITATIVE_ANSWER : 0) | rcode })
}

/** A UDP socket that swallows everything (a dead upstream). */
export async function blackhole(
  address = '127.0.0.1',
): Promise<{ port: number; received: () => number; close: () => Promise<void> }> {
  const sock = dgram.createSocket('udp4')
  let n = 0
  sock.on('message', () => n++)
  await new Promise<void>((resolve) => sock.bind(0, address, resolve))
  return {
    port: sock.address().port,
    received: () => n,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  }
}

/** Sends one UDP query and waits for the reply (or undefined after `timeoutMs`). */
export async function udpQuery(
  port: number,
  msg: Uint8Array,
  timeoutMs = 1000,
  address = '127.0.0.1',
): Promise<Buffer | undefined> {
  const sock = dgram.createSocket('udp4')
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs)
      sock.on('message', (m) => {
        clearTimeout(t)
        resolve(m)
      })
      sock.send(msg, port, address)
    })
  } finally {
    sock.close()
  }
}

export function query(name: string, type = 'A', extra: Partial<Packet> = {}): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id: Math.floor(Math.random() * 65536),
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name }],
    ...extra,
  })
}

/** Starts a resolver with UDP and TCP on the same 127.0.0.1 port (dig retries TCP on the UDP port). */
export async function startResolver(
  records: DnsRecordSource,
  init: ResolverInit = {},
  logger: ComponentLogger = noopLogger(),
  fastPath?: DnsFastPath,
): Promise<{ resolver: Resolver; port: number }> {
  for (let i = 0; i < 20; i++) {
    const probe = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve))
    const port = probe.address().port
    await new Promise<void>((resolve) => probe.close(() => resolve()))
    const r = new Resolver(init, {
      logger,
      records,
      listen: { udp: { address: '127.0.0.1', port }, tcp: { address: '127.0.0.1', port } },
      ...(fastPath !== undefined ? { fastPath } : {}),
    })
    try {
      await r.start()
      return { resolver: r, port }
    } catch {
      await r.stop()
    }
  }
  throw new Error('no free port pair')
}
