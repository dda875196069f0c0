import { describe, expect, it } from 'vitest'
import { isCnmError, noopLogger } from '@cnm/types'
import { KeyModifiedError } from '@cnm/datastore'
import { capturingLogger } from '@cnm/test-utils'
import {
  BridgeStateStore,
  DEFAULT_BRIDGE_NETWORK_OPTIONS,
  endpointKey,
  findNetworkConflict,
  networkKey,
  type BridgeEndpointRecord,
  type BridgeNetworkRecord,
} from '../src/index.js'
import { MemoryStore } from './fixtures/memory-store.js'

const NID = 'a'.repeat(64)
const EID = 'b'.repeat(64)
const log = noopLogger().forComponent('test')

function net(over: Partial<BridgeNetworkRecord> = {}): BridgeNetworkRecord {
  return {
    id: NID,
    bridgeName: 'br-aaaaaaaaaaaa',
    options: DEFAULT_BRIDGE_NETWORK_OPTIONS,
    ipv4: { subnet: '172.18.0.0/16', bridgeAddress: '172.18.0.1/16', gateway: '172.18.0.1' },
    ipv6: undefined,
    userCreatedBridge: false,
    createdAt: '2026-11-23T00:00:00.000Z',
    ...over,
  }
}

function ep(over: Partial<BridgeEndpointRecord> = {}): BridgeEndpointRecord {
  return {
    id: EID,
    networkId: NID,
    hostIfName: 'veth1234567',
    containerIfName: 'veth7654321',
    macAddress: '02:42:ac:12:00:02',
    ipv4: '172.18.0.2/16',
    ipv6: undefined,
    ipv6FromMac: false,
    sandboxKey: undefined,
    externalConnectivity: false,
    exposedPorts: [{ proto: 'tcp', port: 80 }],
    portBindings: [{ proto: 'tcp', containerPort: 80, hostPort: 0, hostIp: undefined, hostPortEnd: undefined }],
    portMappings: [{ proto: 'tcp', containerPort: 80, hostIp: '0.0.0.0', hostPort: 49153 }],
    ...over,
  }
}

describe('BridgeStateStore', () => {
  it('writes networks and endpoints under bridge/<nid>/ and bridge-endpoint/<eid>/', async () => {
    const store = new MemoryStore()
    const s = new BridgeStateStore(store, log)
    await s.saveNetwork(net())
    await s.saveEndpoint(ep())
    expect([...store.data.keys()].sort()).toEqual([
      `docker/network/v1.0/bridge-endpoint/${EID}/`,
      `docker/network/v1.0/bridge/${NID}/`,
    ])
    expect(networkKey(NID)).toBe(`docker/network/v1.0/bridge/${NID}/`)
    expect(endpointKey(EID)).toBe(`docker/network/v1.0/bridge-endpoint/${EID}/`)
    expect(store.json(networkKey(NID))).toMatchObject({ id: NID, bridgeName: 'br-aaaaaaaaaaaa' })
  })

  it('round-trips records through a second instance (restart)', async () => {
    const store = new MemoryStore()
    const first = new BridgeStateStore(store, log)
    const n = net({ ipv6: { subnet: 'fd00:1::/64', bridgeAddress: 'fd00:1::1/64', gateway: 'fd00:1::1' } })
    const e = ep({ sandboxKey: '/var/run/docker/netns/abc', externalConnectivity: true, ipv6: 'fd00:1::2/64' })
    await first.saveNetwork(n)
    await first.saveEndpoint(e)
    const loaded = await new BridgeStateStore(store, log).load()
    expect(loaded.networks).toEqual([JSON.parse(JSON.stringify(n))])
    expect(loaded.networks[0]?.options).toEqual(DEFAULT_BRIDGE_NETWORK_OPTIONS)
    expect(loaded.endpoints).toEqual([JSON.parse(JSON.stringify(e))])
    expect(loaded.corrupt).toEqual([])
  })

  it('updates with compare-and-swap and recovers from a stale index', async () => {
    const store = new MemoryStore()
    const s = new BridgeStateStore(store, log)
    await s.saveNetwork(net())
    // Someone (a previous incarnation) rewrote the key: our cached index is stale.
    await store.put(networkKey(NID), new TextEncoder().encode(JSON.stringify(net())))
    await s.saveNetwork(net({ bridgeName: 'br-other' }))
    expect(store.json(networkKey(NID))).toMatchObject({ bridgeName: 'br-other' })
    expect(store.calls.filter((c) => c.startsWith('update'))).toHaveLength(2)
  })

  it('gives up after repeated CAS failures with a typed store error', async () => {
    const store = new MemoryStore()
    const s = new BridgeStateStore(store, log)
    await s.saveNetwork(net())
    // Every update loses the race: the store keeps changing under us.
    store.update = async () => {
      throw new KeyModifiedError(networkKey(NID))
    }
    const err = await s.saveNetwork(net()).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_BRIDGE_STORE')).toBe(true)
    expect((err as Error).cause).toBeInstanceOf(KeyModifiedError)
  })

  it('wraps backend failures and does not retry non-retryable errors', async () => {
    const store = new MemoryStore()
    const s = new BridgeStateStore(store, log)
    store.failNext('create', new Error('disk full'))
    const err = await s.saveEndpoint(ep()).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_BRIDGE_STORE')).toBe(true)
    expect(store.data.size).toBe(0)
  })

  it('deletes with the cached index and tolerates a key that is already gone', async () => {
    const store = new MemoryStore()
    const s = new BridgeStateStore(store, log)
    await s.saveEndpoint(ep())
    await store.delete(endpointKey(EID))
    await s.deleteEndpoint(EID)
    await s.deleteNetwork(NID)
    expect(store.data.size).toBe(0)
  })

  it('skips and reports undecodable records', async () => {
    const store = new MemoryStore()
    const logger = capturingLogger()
    await store.put(networkKey('x'.repeat(64)), new TextEncoder().encode('{not json'))
    await store.put(endpointKey('y'.repeat(64)), new TextEncoder().encode(JSON.stringify({ id: 'y' })))
    const s = new BridgeStateStore(store, logger.forComponent('t'))
    const loaded = await s.load()
    expect(loaded.networks).toEqual([])
    expect(loaded.endpoints).toEqual([])
    expect(loaded.corrupt).toHaveLength(2)
    expect(logger.lines.filter((l) => l.level === 'error')).toHaveLength(2)
  })

  it('is a no-op without a store', async () => {
    const s = new BridgeStateStore(undefined, log)
    expect(s.persistent).toBe(false)
    await s.saveNetwork(net())
    expect(await s.load()).toEqual({ networks: [], endpoints: [], corrupt: [] })
  })
})

describe('findNetworkConflict', () => {
  const a = net()
  it('finds the same bridge name', () => {
    const c = findNetworkConflict(net({ id: 'c'.repeat(64), ipv4: { ...a.ipv4, subnet: '10.9.0.0/24' } }), [a])
    expect(c?.other.id).toBe(NID)
    expect(c?.reason).toContain('bridge device')
  })

  it('finds overlapping IPv4 subnets in both directions', () => {
    for (const subnet of ['172.18.5.0/24', '172.0.0.0/8', '172.18.0.0/16']) {
      const c = findNetworkConflict(
        net({ id: 'c'.repeat(64), bridgeName: 'br-c', ipv4: { subnet, bridgeAddress: undefined, gateway: undefined } }),
        [a],
      )
      expect(c?.reason).toContain('overlaps')
    }
  })

  it('finds overlapping IPv6 subnets only when both have one', () => {
    const v6 = { subnet: 'fd00::/64', bridgeAddress: 'fd00::1/64', gateway: 'fd00::1' }
    const other = net({ ipv6: v6 })
    const base = {
      id: 'c'.repeat(64),
      bridgeName: 'br-c',
      ipv4: { subnet: '10.0.0.0/24', bridgeAddress: undefined, gateway: undefined },
    }
    expect(findNetworkConflict(net({ ...base, ipv6: { ...v6, subnet: 'fd00::/48' } }), [other])?.reason).toContain(
      'IPv6',
    )
    expect(findNetworkConflict(net({ ...base, ipv6: { ...v6, subnet: 'fd01::/64' } }), [other])).toBeUndefined()
    expect(findNetworkConflict(net({ ...base, ipv6: undefined }), [other])).toBeUndefined()
  })

  it('ignores the network itself and accepts disjoint networks', () => {
    expect(findNetworkConflict(a, [a])).toBeUndefined()
    const b = net({
      id: 'c'.repeat(64),
      bridgeName: 'br-c',
      ipv4: { subnet: '172.19.0.0/16', bridgeAddress: undefined, gateway: undefined },
    })
    expect(findNetworkConflict(b, [a])).toBeUndefined()
  })
})
