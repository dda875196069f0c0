import dgram from 'node:dgram'
import net from 'node:net'
import dnsPacket from 'dns-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { DnsResponderEngine } from '@cnm/osl'
import { NetworkRecords, SandboxRecords } from '../src/index.js'
import { TestUpstream, answerA, dig, query, startResolver } from './helpers.js'

const cleanups: Array<() => Promise<void>> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

/** Deterministic PRNG (xorshift32) so a failure can be replayed with the printed seed. */
function rng(seed: number): () => number {
  let x = seed >>> 0 || 1
  return () => {
    x ^= x << 13
    x >>>= 0
    x ^= x >>> 17
    x ^= x << 5
    x >>>= 0
    return x / 0x100000000
  }
}

function seeds(): Buffer[] {
  const types = ['A', 'AAAA', 'PTR', 'SRV', 'MX', 'TXT', 'ANY', 'NS', 'SOA', 'CNAME']
  const names = [
    'web',
    'WeB.',
    'many',
    'db.net1',
    '_http._tcp.web',
    '2.0.168.192.in-addr.arpa',
    'x.example',
    'a.b.c.d.e.f',
    '',
  ]
  const out: Buffer[] = []
  for (const t of types) {
    for (const n of names) {
      out.push(query(n, t))
      out.push(query(n, t, { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: 4096 }] }))
    }
  }
  out.push(
    dnsPacket.encode({
      type: 'query',
      id: 9,
      questions: [
        { type: 'A', name: 'web' },
        { type: 'AAAA', name: 'web' },
      ],
    }),
  )
  out.push(
    dnsPacket.encode({
      type: 'query',
      id: 10,
      questions: [{ type: 'A', name: 'web' }],
      answers: [{ type: 'A', name: 'web', data: '1.2.3.4' }],
      authorities: [{ type: 'NS', name: 'web', data: 'ns.web' }],
      additionals: [
        { type: 'OPT', name: '.', udpPayloadSize: 1232 },
        { type: 'A', name: 'x', data: '5.6.7.8' },
      ],
    }),
  )
  return out
}

function mutate(r: () => number, base: Buffer): Buffer {
  const pick = (n: number): number => Math.floor(r() * n)
  let b = Buffer.from(base)
  const kind = pick(9)
  switch (kind) {
    case 0: // flip a few bits
      for (let i = 0, n = 1 + pick(8); i < n && b.length > 0; i++) {
        const at = pick(b.length)
        b[at] = (b[at] as number) ^ (1 << pick(8))
      }
      break
    case 1: // random bytes
      for (let i = 0, n = 1 + pick(6); i < n && b.length > 0; i++) b[pick(b.length)] = pick(256)
      break
    case 2: // truncate
      b = b.subarray(0, pick(b.length + 1))
      break
    case 3: // append garbage
      b = Buffer.concat([b, Buffer.from(Array.from({ length: 1 + pick(300) }, () => pick(256)))])
      break
    case 4: // inflate section counts
      if (b.length >= 12) b.writeUInt16BE(pick(65536), 4 + 2 * pick(4))
      break
    case 5: // compression pointer loop / forward pointer in the question
      if (b.length >= 14) {
        b[12] = 0xc0
        b[13] = pick(2) === 0 ? 12 : pick(256)
      }
      break
    case 6: // oversized label / name
      b = Buffer.concat([
        b.subarray(0, 12),
        Buffer.from([64 + pick(192)]),
        Buffer.alloc(pick(400), 0x61),
        b.subarray(12),
      ])
      break
    case 7: // opcode / flags noise (QR stays clear half the time)
      if (b.length >= 4) {
        b[2] = pick(256) & (pick(2) === 0 ? 0x7f : 0xff)
        b[3] = pick(256)
      }
      break
    default: // fully random packet
      b = Buffer.from(Array.from({ length: pick(700) }, () => pick(256)))
  }
  return b
}

describe.each(['node:dgram', 'native fast path'])('fuzz: random and mutated packets (UDP via %s)', (path) => {
  it('survives tens of thousands of bad packets (direct, UDP and TCP) and still answers correctly', async () => {
    let fastPath: DnsResponderEngine | undefined
    if (path === 'native fast path') {
      const engine = new DnsResponderEngine()
      cleanups.push(async () => engine.close())
      fastPath = engine
    }
    const n1 = new NetworkRecords('net1')
    n1.addName('web', '192.168.0.2')
    n1.addName('db', '192.168.0.3')
    for (let i = 1; i <= 60; i++) n1.addName('many', `10.1.0.${i}`)
    n1.addService('web', 'http', 'tcp', { target: 'web', port: 80, addresses: ['192.168.0.2'] })
    const recs = new SandboxRecords([{ network: n1 }])
    const up = await new TestUpstream('127.0.0.1', answerA('10.200.0.1')).start()
    cleanups.push(() => up.stop())
    const { resolver, port } = await startResolver(
      recs,
      {
        upstreams: [{ address: '127.0.0.1', port: up.port }],
        forwardTimeoutMs: 100,
        maxConcurrentForwards: 256,
      },
      undefined,
      fastPath,
    )
    cleanups.push(() => resolver.stop())

    const seed = Date.now() >>> 0
    const r = rng(seed)
    const base = seeds()
    const packet = (): Buffer => mutate(r, base[Math.floor(r() * base.length)] as Buffer)

    // 1) 30,000 through handle(): every reply must decode and carry the query id
    let replies = 0
    for (let batch = 0; batch < 30; batch++) {
      const msgs = Array.from({ length: 1000 }, packet)
      const outs = await Promise.all(msgs.map((m) => resolver.handle(m, { transport: r() < 0.2 ? 'tcp' : 'udp' })))
      outs.forEach((out, i) => {
        if (out === undefined) return
        replies++
        const m = msgs[i] as Buffer
        expect(out.readUInt16BE(0), `seed ${seed}`).toBe(m.readUInt16BE(0))
        expect(((out[2] as number) & 0x80) !== 0, `seed ${seed}: QR set`).toBe(true)
        expect(() => dnsPacket.decode(out), `seed ${seed}: reply decodes`).not.toThrow()
      })
    }
    expect(replies).toBeGreaterThan(1000)

    // 2) 10,000 over UDP as fast as the socket takes them
    const client = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => client.bind(0, '127.0.0.1', resolve))
    client.on('message', () => undefined)
    for (let i = 0; i < 10_000; i++) {
      client.send(packet(), port, '127.0.0.1')
      if (i % 25 === 0) await new Promise((res) => setImmediate(res))
    }
    // 3) TCP: garbage frames, a huge length prefix, half frames, abrupt closes
    for (let c = 0; c < 30; c++) {
      const sock = net.connect(port, '127.0.0.1')
      sock.on('error', () => undefined)
      await new Promise<void>((resolve) => sock.once('connect', () => resolve()))
      const chunks: Buffer[] = []
      for (let i = 0; i < 40; i++) {
        const m = packet()
        const len = Buffer.alloc(2)
        len.writeUInt16BE(r() < 0.1 ? 65535 : m.length)
        chunks.push(len, m)
      }
      sock.write(Buffer.concat(chunks))
      if (c % 2 === 0) sock.destroy()
      else sock.end()
    }
    await new Promise((res) => setTimeout(res, 600))
    client.close()

    // still answering correctly, over UDP and TCP, local and forwarded
    const a = await dig(['@127.0.0.1', '-p', String(port), 'WEB'])
    expect(a.answer).toEqual([{ name: 'WEB.', ttl: 600, type: 'A', data: '192.168.0.2' }])
    const t = await dig(['@127.0.0.1', '-p', String(port), '+tcp', 'many'])
    expect(t.answer).toHaveLength(60)
    const f = await dig(['@127.0.0.1', '-p', String(port), 'fwd.example'])
    expect(f.answer.map((x) => x.data)).toEqual(['10.200.0.1'])
    // the same answers again (the native path answers these from its table now)
    expect((await dig(['@127.0.0.1', '-p', String(port), 'wEb'])).answer.map((x) => x.data)).toEqual(['192.168.0.2'])
    const many = await dig(['@127.0.0.1', '-p', String(port), '+ignore', '+bufsize=512', 'many'])
    expect(many.flags).toContain('tc')
    expect(many.answer.length).toBeLessThan(60)
    const s = resolver.stats()
    if (fastPath !== undefined) expect(s.fastPathAnswered, `seed ${seed}`).toBeGreaterThan(0)
    else expect(s.fastPathAnswered).toBe(0)
    expect(s.errors, `seed ${seed}`).toBe(0)
    expect(s.queries).toBeGreaterThan(38_000) // a few UDP datagrams may be dropped by the kernel
    expect(s.rejected + s.dropped).toBeGreaterThan(10_000)
  }, 120_000)
})
