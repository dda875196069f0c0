import { describe, expect, it } from 'vitest'
import { isCnmError, noopLogger, type EndpointId, type NetworkId } from '@cnm/types'
import { EndpointInterface, JoinInfoRecorder, generateId } from '@cnm/driverapi'
import { testIpamData } from '@cnm/driverapi/testing'
import { capturingLogger } from '@cnm/test-utils'
import { hostDriver, nullDriver, type HostDriver, type NullDriver } from '../src/index.js'

const config = {
  name: 'n',
  driverOptions: {},
  labels: {},
  enableIPv6: false,
  internal: false,
  attachable: false,
  ingress: false,
}
const epConfig = { name: 'e', driverOptions: {}, exposedPorts: [], portBindings: [], dnsServers: [] }
const sbConfig = { labels: {}, exposedPorts: [], portBindings: [] }

async function failure(p: Promise<unknown>): Promise<{ code: string; kind: string; maskable: boolean }> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  )
  expect(isCnmError(err), `expected a CnmError, got ${String(err)}`).toBe(true)
  return err as { code: string; kind: string; maskable: boolean }
}

for (const [type, make] of [
  ['null', () => nullDriver()({ logger: noopLogger() })],
  ['host', () => hostDriver()({ logger: noopLogger() })],
] as const) {
  describe(`${type} driver (drivers.md §1.6)`, () => {
    const fresh = (): NullDriver | HostDriver => make()

    it('is a local/local driver of its type', () => {
      const d = fresh()
      expect(d.type).toBe(type)
      expect(d.capability).toEqual({ dataScope: 'local', connectivityScope: 'local' })
    })

    it('allows exactly one network; a second one (or the same id) is forbidden', async () => {
      const d = fresh()
      const nid = generateId() as NetworkId
      await d.createNetwork(nid, config, [], [])
      const dup = await failure(d.createNetwork(nid, config, [], []))
      expect(dup.kind).toBe('forbidden')
      const second = await failure(
        d.createNetwork(generateId() as NetworkId, config, [testIpamData('10.1.0.0/24')], []),
      )
      expect(second.kind).toBe('forbidden')
      expect(second.code).toBe('ERR_BRIDGE_SINGLE_NETWORK')
    })

    it('cannot delete its network (forbidden); an unknown id is a maskable not-found', async () => {
      const d = fresh()
      const nid = generateId() as NetworkId
      await d.createNetwork(nid, config, [], [])
      const err = await failure(d.deleteNetwork(nid))
      expect(err.code).toBe('ERR_BRIDGE_UNDELETABLE_NETWORK')
      expect(err.kind).toBe('forbidden')
      const unknown = await failure(d.deleteNetwork(generateId() as NetworkId))
      expect(unknown.kind).toBe('not-found')
      expect(unknown.maskable).toBe(true)
    })

    it('endpoints, join, leave and external connectivity are bookkeeping only', async () => {
      const d = fresh()
      const nid = generateId() as NetworkId
      const eid = generateId() as EndpointId
      await d.createNetwork(nid, config, [], [])
      const iface = new EndpointInterface()
      await d.createEndpoint(nid, eid, iface, epConfig)
      expect(iface.snapshot()).toEqual({})
      expect((await failure(d.createEndpoint(nid, eid, new EndpointInterface(), epConfig))).kind).toBe('forbidden')
      const ji = new JoinInfoRecorder()
      await d.join(nid, eid, '/var/run/docker/netns/default', ji, sbConfig)
      expect(ji.result()).toEqual({ staticRoutes: [], disableGatewayService: false, tableEntries: [] })
      await d.programExternalConnectivity(nid, eid, sbConfig)
      expect(await d.endpointOperInfo(nid, eid)).toEqual({})
      await d.revokeExternalConnectivity(nid, eid)
      await d.leave(nid, eid)
      await d.deleteEndpoint(nid, eid)
      expect((await failure(d.endpointOperInfo(nid, eid))).kind).toBe('not-found')
      expect((await failure(d.deleteEndpoint(nid, eid))).kind).toBe('not-found')
    })

    it('rejects endpoint calls on an unknown network with not-found', async () => {
      const d = fresh()
      const nid = generateId() as NetworkId
      const eid = generateId() as EndpointId
      expect((await failure(d.createEndpoint(nid, eid, new EndpointInterface(), epConfig))).kind).toBe('not-found')
      expect((await failure(d.join(nid, eid, 'k', new JoinInfoRecorder(), sbConfig))).kind).toBe('not-found')
      expect((await failure(d.leave(nid, eid))).kind).toBe('not-found')
    })

    it('honours an aborted signal with an AbortError', async () => {
      const d = fresh()
      const ac = new AbortController()
      ac.abort()
      const err = await failure(d.createNetwork(generateId() as NetworkId, config, [], [], { signal: ac.signal }))
      expect(err.kind).toBe('aborted')
    })

    it('restore re-learns the network and its endpoints', async () => {
      const logger = capturingLogger()
      const d = type === 'null' ? nullDriver()({ logger }) : hostDriver()({ logger })
      const nid = generateId() as NetworkId
      const eid = generateId() as EndpointId
      await d.restore([{ id: nid, config, ipv4Data: [], ipv6Data: [], endpoints: [{ id: eid, config: epConfig }] }])
      expect(await d.endpointOperInfo(nid, eid)).toEqual({})
      expect((await failure(d.createNetwork(generateId() as NetworkId, config, [], []))).kind).toBe('forbidden')
      expect(logger.lines.some((l) => l.message.startsWith('restored network'))).toBe(true)
      await d.restore([])
      expect((await failure(d.endpointOperInfo(nid, eid))).kind).toBe('not-found')
    })
  })
}
