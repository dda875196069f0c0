import dgram from 'node:dgram'
import dnsPacket from 'dns-packet'
import type { Answer, Question } from 'dns-packet'
import { afterEach, describe, expect, it } from 'vitest'
import { DnsResponderEngine } from '@cnm/osl'
import { NetworkRecords, SandboxRecords } from '../src/index.js'
import type { DnsRecordSource } from '../src/index.js'
import { dig, startResolver, udpQuery } from './helpers.js'

/** The CD header bit as dns-packet's `flags` field holds it. */
const CHECKING_DISABLED = 1 << 4
const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c()
})

function engine(): DnsResponderEngine {
  const e = new DnsResponderEngine()
  cleanups.push(() => e.close())
  return e
}

function records(): { net: NetworkRecords; recs: SandboxRecords } {
  const net = new NetworkRecords('net1')
  net.addName('web', '192.168.0.2')
  net.addName('web', 'fd00::2')
  net.addName('db', '192.168.0.3')
  for (let i = 1; i <= 40; i++) net.addName('many', `10.1.0.${i}`)
  net.addService('web', 'http', 'tcp', { target: 'web', port: 80, addresses: ['192.168.0.2', 'fd00::2'] })
  return { net, recs: new SandboxRecords([{ network: net }]) }
}

/** A query with the given id, flags, type and optional EDNS payload size. */
function query(name: string, type: string, id: number, flags: number, ednsSize?: number): Buffer {
  return dnsPacket.encode({
    type: 'query',
    id,
    flags,
    questions: [{ type, name } as Question],
    ...(ednsSize !== undefined
      ? { additionals: [{ type: 'OPT', name: '.', udpPayloadSize: ednsSize } as Answer] }
      : {}),
  })
}

describe('native fast path (osl DnsResponderEngine)', () => {
  it('gives byte-identical replies to the node:dgram path, first from JS then from its table', async () => {
    const { recs } = records()
    const js = await startResolver(recs, { searchDomains: ['example.com'] })
    cleanups.push(() => js.resolver.stop())
    const nat = await startResolver(recs, { searchDomains: ['example.com'] }, undefined, engine())
    cleanups.push(() => nat.resolver.stop())

    const names = [
      'web',
      'WeB',
      'db.net1',
      'web.example.com',
      '_http._tcp.web',
      '_ftp._tcp.web',
      '2.0.168.192.in-addr.arpa',
      'many',
    ]
    const types = ['A', 'AAAA', 'SRV', 'PTR', 'MX', 'ANY']
    const flagSets = [dnsPacket.RECURSION_DESIRED, 0, dnsPacket.RECURSION_DESIRED | CHECKING_DISABLED]
    let compared = 0
    let id = 1
    for (const name of names) {
      for (const type of types) {
        for (const flags of flagSets) {
          for (const edns of [undefined, 512, 1232, 4096]) {
            const q = query(name, type, id++ & 0xffff, flags, edns)
            const want = await udpQuery(js.port, q)
            const first = await udpQuery(nat.port, q) // JS answers and fills the table
            const second = await udpQuery(nat.port, q) // the table answers (when cacheable)
            expect(want, `${name} ${type}`).toBeDefined()
            const decoded = dnsPacket.decode(want as Buffer)
            const rotates =
              (decoded.answers?.length ?? 0) > 1 && (decoded.additionals ?? []).every((x) => x.type === 'OPT')
            if (rotates) {
              // rotated answers (a random start): same header and size; untruncated, the same set of records
              const truncated = ((want?.[2] as number) & 0x02) !== 0
              for (const got of [first, second]) {
                expect(got?.subarray(0, 12).toString('hex')).toBe(want?.subarray(0, 12).toString('hex'))
                expect(got?.length).toBe(want?.length)
                const sorted = (b: Buffer | undefined): unknown[] =>
                  dnsPacket
                    .decode(b as Buffer)
                    .answers?.map((a) => JSON.stringify(a))
                    .sort() ?? []
                if (!truncated) expect(sorted(got)).toEqual(sorted(want))
              }
            } else {
              expect(first?.toString('hex'), `${name} ${type} ${flags} ${edns} (JS)`).toBe(want?.toString('hex'))
              expect(second?.toString('hex'), `${name} ${type} ${flags} ${edns} (table)`).toBe(want?.toString('hex'))
            }
            compared++
          }
        }
      }
    }
    expect(compared).toBe(names.length * types.length * flagSets.length * 4)
    const s = nat.resolver.stats()
    expect(s.fastPathAnswered).toBeGreaterThan(300)
    expect(s.local).toBe(js.resolver.stats().local * 2)
    expect(s.queries).toBe(compared * 2)
    expect(s.errors).toBe(0)
  }, 60_000)

  it('drops native answers as soon as records change', async () => {
    const { net, recs } = records()
    const { resolver, port } = await startResolver(recs, {}, undefined, engine())
    cleanups.push(() => resolver.stop())
    const a = async (name: string): Promise<string[]> =>
      (await dig(['@127.0.0.1', '-p', String(port), name])).answer.map((x) => x.data)
    expect(await a('db')).toEqual(['192.168.0.3'])
    expect(await a('db')).toEqual(['192.168.0.3'])
    expect(resolver.stats().fastPathAnswered).toBe(1)
    net.removeName('db', '192.168.0.3')
    net.addName('db', '192.168.0.9')
    expect(await a('db')).toEqual(['192.168.0.9'])
    // attachment changes too
    const other = new NetworkRecords('net2')
    other.addName('cache', '10.9.0.1')
    expect(await a('cache')).toEqual([]) // not local, no upstream: SERVFAIL
    recs.setAttachments([{ network: net }, { network: other }])
    expect(await a('cache')).toEqual(['10.9.0.1'])
    expect(await a('cache')).toEqual(['10.9.0.1'])
    other.removeName('cache', '10.9.0.1')
    expect((await dig(['@127.0.0.1', '-p', String(port), 'cache'])).status).toBe('SERVFAIL')
    // the resolver stops listening: networks keep no listener of the stopped resolver
    await resolver.stop()
    expect((net as unknown as { listeners: Set<unknown> }).listeners.size).toBe(0)
    expect((other as unknown as { listeners: Set<unknown> }).listeners.size).toBe(0)
    expect(resolver.stats().fastPathAnswered).toBeGreaterThan(1)
    // its port is free again
    const s = dgram.createSocket('udp4')
    await new Promise<void>((resolve) => s.bind(port, '127.0.0.1', resolve))
    await new Promise<void>((resolve) => s.close(() => resolve()))
  })

  it('is not used for a record source without onChange (answers stay correct)', async () => {
    const { recs } = records()
    const plain: DnsRecordSource = {
      get generation() {
        return recs.generation
      },
      lookupName: (n) => recs.lookupName(n),
      lookupAddress: (a, v) => recs.lookupAddress(a, v),
      lookupService: (n, s, p) => recs.lookupService(n, s, p),
    }
    const { resolver, port } = await startResolver(plain, {}, undefined, engine())
    cleanups.push(() => resolver.stop())
    for (let i = 0; i < 3; i++) {
      expect((await dig(['@127.0.0.1', '-p', String(port), 'web'])).answer.map((x) => x.data)).toEqual(['192.168.0.2'])
    }
    expect(resolver.stats().fastPathAnswered).toBe(0)
    expect(resolver.addresses().udp?.port).toBe(port)
  })
})
