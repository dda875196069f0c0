import { describe, expect, it } from 'vitest'
import { formatIp } from '@cnm/types'
import { harness } from './fixtures/harness.js'
import type { ControllerEvent } from '../src/index.js'

describe('service-discovery records', () => {
  it('a sandbox resolves names and aliases of joined endpoints on its networks only', async () => {
    const { ctl } = await harness()
    await ctl.createNetwork({ name: 'front', type: 'bridge' })
    await ctl.createNetwork({ name: 'back', type: 'bridge' })
    const web = await ctl.createSandbox({ containerId: 'web' })
    const db = await ctl.createSandbox({ containerId: 'db' })
    const other = await ctl.createSandbox({ containerId: 'other' })
    const webFront = await ctl.connect(web.id, 'front', { name: 'web', aliases: ['www'] })
    const webBack = await ctl.connect(web.id, 'back', { name: 'web' })
    const dbBack = await ctl.connect(db.id, 'back', { name: 'db', aliases: ['postgres'] })
    await ctl.connect(other.id, 'front', { name: 'anon', anonymous: true, aliases: ['shy'] })
    await ctl.createEndpoint('back', { name: 'idle' }) // not joined: no record

    expect(ctl.resolveName(web.id, 'postgres')?.ipv4).toEqual([dbBack.address!.ip])
    expect(ctl.resolveName(web.id, 'DB.')?.ipv4).toEqual([dbBack.address!.ip])
    expect(ctl.resolveName(db.id, 'web')?.ipv4).toEqual([webBack.address!.ip])
    expect(ctl.resolveName(db.id, 'www')).toBeUndefined() // alias lives on 'front'
    expect(ctl.resolveName(web.id, 'web')?.ipv4.map(formatIp).sort()).toEqual(
      [webFront.address!.ip, webBack.address!.ip].map(formatIp).sort(),
    )
    expect(ctl.resolveName(web.id, 'anon')).toBeUndefined()
    expect(ctl.resolveName(web.id, 'shy')?.ipv4).toHaveLength(1)
    expect(ctl.resolveName(web.id, 'idle')).toBeUndefined()
    expect(ctl.resolveName(other.id, 'db')).toBeUndefined()
    expect(ctl.resolveAddress(web.id, formatIp(dbBack.address!.ip))).toEqual(['db', 'postgres'])
    expect(
      ctl
        .sandboxRecords(db.id)
        .map((r) => r.names[0])
        .sort(),
    ).toEqual(['db', 'web'])

    await ctl.leave(db.id, dbBack.id)
    expect(ctl.resolveName(web.id, 'db')).toBeUndefined()
  })
})

describe('events', () => {
  it('subscribe and the async iterator see lifecycle events in order; unsubscribe stops delivery', async () => {
    const { ctl } = await harness()
    const seen: ControllerEvent[] = []
    const off = ctl.subscribe((e) => seen.push(e))
    const ac = new AbortController()
    const iterated: string[] = []
    const consumer = (async () => {
      for await (const e of ctl.events({ signal: ac.signal })) iterated.push(e.type)
    })()

    const n = await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const ep = await ctl.connect(sb.id, n.id, { name: 'c' })
    await ctl.leave(sb.id, ep.id)
    await ctl.deleteEndpoint(ep.id)
    await ctl.deleteSandbox(sb.id)
    off()
    await ctl.deleteNetwork(n.id)
    ac.abort()
    await consumer

    const types = seen.map((e) => e.type)
    expect(types).toEqual([
      'network-created',
      'sandbox-created',
      'endpoint-created',
      'endpoint-joined',
      'records-changed',
      'gateway-changed',
      'endpoint-left',
      'records-changed',
      'gateway-changed',
      'endpoint-deleted',
      'sandbox-deleted',
    ])
    expect(iterated).toEqual([...types, 'network-deleted'])
    expect(seen[3]).toMatchObject({
      type: 'endpoint-joined',
      networkId: n.id,
      endpointId: ep.id,
      sandboxId: sb.id,
      containerId: 'c',
    })
  })

  it('a throwing listener is logged and does not break the operation; stop ends iterators', async () => {
    const { ctl, logger } = await harness()
    ctl.subscribe(() => {
      throw new Error('listener bug')
    })
    const it = ctl.events()[Symbol.asyncIterator]()
    await ctl.createNetwork({ name: 'n', type: 'bridge' })
    expect((await it.next()).value).toMatchObject({ type: 'network-created' })
    expect(logger.lines.some((l) => l.level === 'error' && l.message.includes('event listener failed'))).toBe(true)
    const pending = it.next()
    await ctl.stop()
    expect(await pending).toEqual({ done: true, value: undefined })
  })
})

describe('dnsRecordSource (the resolver-facing view)', () => {
  it('answers names, name.network forms, PTRs and [S3] SRV records, with a changing generation', async () => {
    const { ctl } = await harness({})
    await ctl.createNetwork({ name: 'front', type: 'bridge', ipam: { v4: [{ pool: '10.1.0.0/24' }] } })
    await ctl.createNetwork({ name: 'back', type: 'bridge', ipam: { v4: [{ pool: '10.2.0.0/24' }] } })
    const web = await ctl.createSandbox({
      containerId: 'web',
      portBindings: [
        { proto: 'tcp', containerPort: 80, hostPort: 8080, hostPortEnd: 8080 },
        { proto: 'udp', containerPort: 53, hostPort: 0, hostPortEnd: 0 },
      ],
    })
    const client = await ctl.createSandbox({ containerId: 'client' })
    await ctl.connect(web.id, 'front', { name: 'web', aliases: ['www'] }, { priority: 1 })
    await ctl.connect(web.id, 'back', { name: 'web' })
    await ctl.connect(client.id, 'front', { name: 'client' })
    await ctl.connect(client.id, 'back', { name: 'client' })

    const src = ctl.dnsRecordSource(client.id)
    const g0 = src.generation
    // the client's endpoint order is back, front (equal priority: network name ascending): first hit wins
    expect(ctl.sandbox(client.id).endpoints.map((e) => ctl.endpoint(e).networkName)).toEqual(['back', 'front'])
    expect(src.lookupName('web')).toEqual({ ipv4: ['10.2.0.2'], ipv6: [] })
    expect(src.lookupName('web.front')).toEqual({ ipv4: ['10.1.0.2'], ipv6: [] })
    expect(src.lookupName('WEB.back.')).toEqual({ ipv4: ['10.2.0.2'], ipv6: [] })
    expect(src.lookupName('www.front')).toEqual({ ipv4: ['10.1.0.2'], ipv6: [] })
    expect(src.lookupName('www.back')).toBeUndefined()
    expect(src.lookupName('nothing')).toBeUndefined()
    expect(src.lookupAddress('10.2.0.2', 4)).toBe('web.back')
    expect(src.lookupAddress('10.9.9.9', 4)).toBeUndefined()
    expect(src.lookupService('web', '80', 'tcp')).toEqual([{ target: 'web', port: 80, addresses: ['10.2.0.2'] }])
    expect(src.lookupService('web', '80', 'udp')).toBeUndefined()
    expect(src.lookupService('www', '53', 'udp')).toEqual([{ target: 'web', port: 53, addresses: ['10.1.0.2'] }])
    // the published port, on the gateway endpoint, bound to all addresses → needs hostAddress
    expect(src.lookupService('web', 'host_80', 'tcp')).toBeUndefined()

    const ep = ctl.endpointByName('front', 'web')!
    await ctl.leave(web.id, ep.id)
    expect(src.generation).not.toBe(g0)
    expect(src.lookupName('www')).toBeUndefined()
    expect(src.lookupName('web.front')).toBeUndefined()
    expect(src.lookupName('web')).toEqual({ ipv4: ['10.2.0.2'], ipv6: [] })
  })

  it('_host_ SRV records use the published host port and hostAddress, identical after stop/start ([S3])', async () => {
    const { memoryStore } = await import('@cnm/datastore')
    const { MemoryDriver } = await import('@cnm/driverapi/testing')
    const { defaultIpam } = await import('@cnm/ipam')
    const { createController } = await import('../src/index.js')
    const { FakeOsLayer } = await import('./fixtures/harness.js')
    const { noopLogger } = await import('@cnm/types')
    const logger = noopLogger()
    const store = memoryStore()
    const ctl = createController({ hostAddress: '192.0.2.10' })({
      logger,
      store,
      osLayer: new FakeOsLayer(),
      drivers: { bridge: new MemoryDriver({ type: 'bridge' }) },
      ipams: { default: defaultIpam()({ logger }) },
    })
    await ctl.start()
    await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const pb = [{ proto: 'tcp' as const, containerPort: 80, hostPort: 0, hostPortEnd: 0 }]
    const sb = await ctl.createSandbox({ containerId: 'web', portBindings: pb })
    const ep = await ctl.connect(sb.id, 'n', { name: 'web' })
    const first = ctl.dnsRecordSource(sb.id).lookupService('web', 'host_80', 'tcp')
    expect(first).toHaveLength(1)
    expect(first![0]!.addresses).toEqual(['192.0.2.10'])
    expect(first![0]!.port).toBeGreaterThan(0)
    await ctl.deleteSandbox(sb.id, { endpoints: 'leave' })
    const sb2 = await ctl.createSandbox({ containerId: 'web', portBindings: pb })
    await ctl.join(sb2.id, ep.id)
    expect(ctl.dnsRecordSource(sb2.id).lookupService('web', 'host_80', 'tcp')).toEqual(first)
    await ctl.stop()
  })
})
