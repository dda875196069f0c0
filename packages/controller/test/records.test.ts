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
    expect(ctl.resolveName(web.id, 'web')?.ipv4.map(formatIp).sort()).toEqual([webFront.address!.ip, webBack.address!.ip].map(formatIp).sort())
    expect(ctl.resolveName(web.id, 'anon')).toBeUndefined()
    expect(ctl.resolveName(web.id, 'shy')?.ipv4).toHaveLength(1)
    expect(ctl.resolveName(web.id, 'idle')).toBeUndefined()
    expect(ctl.resolveName(other.id, 'db')).toBeUndefined()
    expect(ctl.resolveAddress(web.id, formatIp(dbBack.address!.ip))).toEqual(['db', 'postgres'])
    expect(ctl.sandboxRecords(db.id).map((r) => r.names[0]).sort()).toEqual(['db', 'web'])

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
    expect(seen[3]).toMatchObject({ type: 'endpoint-joined', networkId: n.id, endpointId: ep.id, sandboxId: sb.id, containerId: 'c' })
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
