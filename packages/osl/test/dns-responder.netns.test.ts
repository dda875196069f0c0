import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsFixture, netnsAvailable } from '@cnm/test-utils'
import { DnsResponderEngine, InvalidOptionError, OslClosedError, openSocketInNetns } from '../src/index.js'
import type { DnsResponder } from '../src/index.js'

/** `web` A query, id 0x1234, RD set; `opt` appends an EDNS0 OPT (version `ver`, payload `size`). */
function query(name: string, qtype = 1, opt?: { size: number; ver?: number }, id = 0x1234): Buffer {
  const labels = name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)])
  const head = [id >> 8, id & 0xff, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, opt ? 1 : 0]
  const q = [...labels, 0, qtype >> 8, qtype & 0xff, 0, 1]
  const o = opt ? [0, 0, 41, opt.size >> 8, opt.size & 0xff, 0, opt.ver ?? 0, 0, 0, 0, 0] : []
  return Buffer.from([...head, ...q, ...o])
}

const A_WEB = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 2, 0x58, 0, 4, 10, 0, 0, 7])
const wire = (name: string): Buffer =>
  Buffer.from([...name.split('.').flatMap((l) => [l.length, ...Buffer.from(l)]), 0])

async function ask(port: number, msg: Buffer, timeoutMs = 1000): Promise<Buffer | undefined> {
  const c = dgram.createSocket('udp4')
  try {
    return await new Promise<Buffer | undefined>((resolve) => {
      const t = setTimeout(() => resolve(undefined), timeoutMs)
      c.on('message', (m) => {
        clearTimeout(t)
        resolve(m)
      })
      c.send(msg, port, '127.0.0.1')
    })
  } finally {
    c.close()
  }
}

describe.skipIf(!netnsAvailable())('DnsResponderEngine (native DNS fast path)', () => {
  const fx = new NetnsFixture('dnsr')
  const engines: DnsResponderEngine[] = []
  afterEach(async () => {
    for (const e of engines.splice(0)) e.close()
    await fx.cleanup()
  })

  it('answers table hits natively (id, flags, client spelling, OPT) and hands everything else to onMiss', async () => {
    const eng = new DnsResponderEngine()
    engines.push(eng)
    const misses: Array<{ msg: Buffer; address: string; port: number }> = []
    // onMiss may run before attach() resolves, so `r` is read as undefined there rather than in a TDZ.
    let r: DnsResponder | undefined
    // eslint-disable-next-line prefer-const
    r = await eng.attach({
      bind: { address: '127.0.0.1', port: 0 },
      maxUdpReplyBytes: 600,
      onMiss: (msg, address, port) => {
        misses.push({ msg, address, port })
        r?.send(Buffer.concat([msg.subarray(0, 2), Buffer.from([0x81, 0x83, 0, 0, 0, 0, 0, 0, 0, 0])]), address, port)
      },
    })
    expect(r.address).toBe('127.0.0.1')
    expect(r.family).toBe(4)
    expect(r.setAnswer(wire('web'), 1, { rcode: 0, ancount: 1, arcount: 0, body: A_WEB })).toBe(true)

    const q = query('WeB')
    const out = await ask(r.port, q)
    expect(out?.toString('hex')).toBe(
      Buffer.concat([Buffer.from([0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0]), q.subarray(12), A_WEB]).toString(
        'hex',
      ),
    )
    // EDNS: our OPT (udp 1232) in the additional section
    const qe = query('web', 1, { size: 4096 })
    const oute = await ask(r.port, qe)
    expect(oute?.readUInt16BE(10)).toBe(1)
    expect(oute?.subarray(-11).toString('hex')).toBe('00002904d0000000000000')
    expect(misses).toHaveLength(0)

    // a miss: other name, other type, EDNS version 1, a response, another opcode
    for (const m of [query('db'), query('web', 28), query('web', 1, { size: 1232, ver: 1 })]) {
      const reply = await ask(r.port, m)
      expect(reply?.[3]).toBe(0x83) // from the JS side
    }
    const resp = Buffer.from(q)
    resp[2] = 0x81
    const notify = Buffer.from(q)
    notify[2] = 0x21
    for (const m of [resp, notify]) await ask(r.port, m, 200)
    expect(misses).toHaveLength(5)
    expect(misses[0]?.address).toBe('127.0.0.1')
    expect(misses[0]?.msg.subarray(12, 15).toString('latin1')).toBe('\u0002db')

    // an answer larger than the client's limit is JS's to truncate
    const big = Buffer.concat(Array.from({ length: 40 }, () => A_WEB))
    expect(r.setAnswer(wire('many'), 1, { rcode: 0, ancount: 40, arcount: 0, body: big })).toBe(true)
    expect((await ask(r.port, query('many')))?.[3]).toBe(0x83)
    // with EDNS the limit is min(client size, maxUdpReplyBytes 600): 672 bytes still do not fit
    expect((await ask(r.port, query('many', 1, { size: 4096 })))?.[3]).toBe(0x83)
    expect((await ask(r.port, query('many', 1, { size: 700 })))?.[3]).toBe(0x83)
    expect(misses).toHaveLength(8)
    expect(r.stats()).toMatchObject({ answered: 2, missed: 8, dropped: 0, entries: 2 })
  })

  it('rotates answers, clears the table, counts, and closes its sockets', async () => {
    const eng = new DnsResponderEngine()
    engines.push(eng)
    const r = await eng.attach({ bind: { address: '127.0.0.1', port: 0 }, onMiss: () => undefined, maxEntries: 2 })
    const recs = [1, 2, 3].map((i) => Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 0, 0, i]))
    const offs = Uint16Array.from([0, 16, 32, 48])
    expect(
      r.setAnswer(wire('rr'), 1, { rcode: 0, ancount: 3, arcount: 0, body: Buffer.concat(recs), rotateOffsets: offs }),
    ).toBe(true)
    const firsts = new Set<number>()
    for (let i = 0; i < 30; i++) {
      const out = await ask(r.port, query('rr'))
      expect(out?.readUInt16BE(6)).toBe(3)
      const tail = out?.subarray(-48) ?? Buffer.alloc(0)
      const order = [0, 1, 2].map((k) => tail[k * 16 + 15])
      expect([...order].sort()).toEqual([1, 2, 3])
      firsts.add(order[0] as number)
    }
    expect(firsts.size).toBeGreaterThan(1)
    expect(() =>
      r.setAnswer(wire('x'), 1, { rcode: 0, ancount: 1, arcount: 1, body: A_WEB, rotateOffsets: offs }),
    ).toThrow(InvalidOptionError)
    // NXDOMAIN entries work too; the table holds maxEntries
    expect(r.setAnswer(wire('gone'), 1, { rcode: 3, ancount: 0, arcount: 0, body: Buffer.alloc(0) })).toBe(true)
    expect((await ask(r.port, query('gone')))?.[3]).toBe(0x83)
    expect(r.setAnswer(wire('third'), 1, { rcode: 3, ancount: 0, arcount: 0, body: Buffer.alloc(0) })).toBe(false)
    r.clearAnswers()
    expect(await ask(r.port, query('gone'), 200)).toBeUndefined() // now a miss, and onMiss does not answer
    const st = r.stats()
    expect(st).toMatchObject({ answered: 31, missed: 1, dropped: 0, entries: 0, rejectedEntries: 1 })
    expect(st.received).toBe(32)
    const port = r.port
    r.close()
    expect(r.stats()).toMatchObject({ received: 32, answered: 31, entries: 0 }) // kept after close
    expect(r.send(Buffer.from('x'), '127.0.0.1', 9)).toBe(false)
    // the socket is closed: the port can be bound again
    const again = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => again.bind(port, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => again.close(() => resolve()))
    eng.close()
    await expect(
      eng.attach({ bind: { address: '127.0.0.1', port: 0 }, onMiss: () => undefined }),
    ).rejects.toBeInstanceOf(OslClosedError)
  })

  it('runs its worker as a real-time thread when asked (root), and validates its options', async () => {
    expect(() => new DnsResponderEngine({ realtimePriority: 100 })).toThrow(InvalidOptionError)
    expect(() => new DnsResponderEngine({ threads: 0 })).toThrow(InvalidOptionError)
    const eng = new DnsResponderEngine({ realtimePriority: 10 })
    engines.push(eng)
    const r = await eng.attach({ bind: { address: '127.0.0.1', port: 0 }, onMiss: () => undefined })
    r.setAnswer(wire('web'), 1, { rcode: 0, ancount: 1, arcount: 0, body: A_WEB })
    expect((await ask(r.port, query('web')))?.subarray(-4).toString('hex')).toBe('0a000007')
    // the worker thread runs SCHED_FIFO (policy 1 in /proc/<pid>/task/<tid>/sched)
    const { readdirSync, readFileSync } = await import('node:fs')
    const policies = readdirSync('/proc/self/task').map(
      (t) => /policy\s*:\s*(\d+)/.exec(readFileSync(`/proc/self/task/${t}/sched`, 'utf8'))?.[1],
    )
    expect(policies).toContain('1')
  })

  it('serves reusePort sockets inside a namespace on two threads', async () => {
    const ns = await fx.add('rp')
    const a = await openSocketInNetns(ns, { type: 'udp4', address: '127.0.0.11', port: 0, reusePort: true })
    const b = await openSocketInNetns(ns, { type: 'udp4', address: '127.0.0.11', port: a.port, reusePort: true })
    const eng = new DnsResponderEngine({ threads: 2 })
    engines.push(eng)
    const r = await eng.attach({ fds: [a.fd, b.fd], onMiss: () => undefined })
    expect(r.port).toBe(a.port)
    r.setAnswer(wire('web'), 1, { rcode: 0, ancount: 1, arcount: 0, body: A_WEB })
    // 64 clients (64 source ports, spread over both sockets by the kernel)
    const script = `
      const dgram = require('dgram'); let n = 0;
      const q = Buffer.from('${query('web').toString('hex')}', 'hex');
      for (let i = 0; i < 64; i++) {
        const c = dgram.createSocket('udp4');
        c.on('message', (m) => { c.close(); if (m.readUInt16BE(6) === 1 && ++n === 64) { process.stdout.write('64'); process.exit(0) } });
        c.send(q, ${a.port}, '127.0.0.11');
      }
      setTimeout(() => process.exit(3), 5000).unref();`
    const out = await new Promise<string>((resolve, reject) => {
      const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
        stdio: ['ignore', 'pipe', 'pipe'],
      })
      let s = ''
      child.stdout.on('data', (d: Buffer) => (s += d.toString()))
      child.on('close', (code) => (code === 0 ? resolve(s) : reject(new Error(`client exited ${code}`))))
    })
    expect(out).toBe('64')
    expect(r.stats()).toMatchObject({ received: 64, answered: 64, missed: 0 })
    // closing the engine closes its responders; their counters stay readable
    eng.close()
    expect(r.stats()).toMatchObject({ received: 64, answered: 64, entries: 0 })
    expect(r.send(Buffer.from('x'), '127.0.0.11', 9)).toBe(false)
  })
})
