import { describe, expect, it } from 'vitest'
import { memoryStore, type Store } from '@cnm/datastore'
import { InternalError, formatCidr, formatPrefix } from '@cnm/types'
import { harness, storeKeys } from './fixtures/harness.js'

/** A store that fails writes of keys matching `when` (store error injection). */
function failingStore(inner: Store, when: (key: string) => boolean): Store {
  const boom = (key: string): never => {
    throw new InternalError(`injected store failure on ${key}`)
  }
  return {
    get: (k, o) => inner.get(k, o),
    put: async (k, v, o) => (when(k) ? boom(k) : inner.put(k, v, o)),
    create: async (k, v, o) => (when(k) ? boom(k) : inner.create(k, v, o)),
    update: async (k, v, i, o) => (when(k) ? boom(k) : inner.update(k, v, i, o)),
    delete: (k, o) => inner.delete(k, o),
    deleteIf: (k, i, o) => inner.deleteIf(k, i, o),
    list: (p, o) => inner.list(p, o),
    watch: (k, o) => inner.watch(k, o),
    close: () => inner.close(),
  }
}

describe('README §11 case 13: a failure mid-creation leaves nothing behind', () => {
  it('IPAM exhausted: the endpoint fails unavailable; no record, no driver endpoint, count unchanged', async () => {
    const { ctl, store, driver } = await harness()
    const n = await ctl.createNetwork({ name: 'tiny', type: 'bridge', ipam: { v4: [{ pool: '10.99.0.0/30' }] } })
    const e1 = await ctl.createEndpoint(n.id, { name: 'e1' })
    expect(formatCidr(e1.address!)).toBe('10.99.0.2/30')
    const before = await storeKeys(store)
    await expect(ctl.createEndpoint(n.id, { name: 'e2' })).rejects.toMatchObject({
      code: 'ERR_CONTROLLER_NO_ADDRESS',
      kind: 'unavailable',
    })
    expect(await storeKeys(store)).toEqual(before)
    expect(driver.state.networks.get(n.id)!.endpoints.size).toBe(1)
    expect(ctl.network(n.id).endpointCount).toBe(1)
  })

  it('driver createNetwork error: pool, gateway and aux released, nothing stored', async () => {
    const { ctl, store, driver } = await harness({
      driverInit: { fail: (c) => (c.method === 'createNetwork' ? new Error('kernel says no') : undefined) },
    })
    const before = await storeKeys(store)
    const err = await ctl
      .createNetwork({
        name: 'n',
        type: 'bridge',
        ipam: { v4: [{ pool: '10.50.0.0/24', auxAddresses: { r: '10.50.0.9' } }] },
      })
      .catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'ERR_CONTROLLER_INTERNAL', kind: 'internal' })
    expect(await storeKeys(store)).toEqual(before)
    expect(driver.state.networks.size).toBe(0)
    expect(ctl.networks()).toEqual([])
    // the pool is free: the same explicit pool, gateway and aux address can be requested again
    const h2 = await harness({ store })
    const ok = await h2.ctl.createNetwork({
      name: 'n',
      type: 'bridge',
      ipam: { v4: [{ pool: '10.50.0.0/24', auxAddresses: { r: '10.50.0.9' } }] },
    })
    expect(formatPrefix(ok.ipam.v4[0]!.pool)).toBe('10.50.0.0/24')
  })

  it('store error while persisting the network: driver network deleted, IPAM released', async () => {
    const inner = memoryStore()
    const store = failingStore(inner, (k) => k.includes('/network/') && !k.includes('/ipam/'))
    const { ctl, driver, ipam } = await harness({ store })
    await expect(
      ctl.createNetwork({ name: 'n', type: 'bridge', ipam: { v4: [{ pool: '10.51.0.0/24' }] } }),
    ).rejects.toMatchObject({ kind: 'internal' })
    expect(driver.state.networks.size).toBe(0)
    expect(await storeKeys(inner, 'docker/network/v1.0/network/')).toEqual([])
    expect(await storeKeys(inner, 'docker/network/v1.0/endpoint_count/')).toEqual([])
    const again = await ipam.requestPool({ addressSpace: 'LocalDefault', pool: '10.51.0.0/24' })
    expect(formatPrefix(again.pool)).toBe('10.51.0.0/24')
  })

  it('driver createEndpoint error: the address is released and the next endpoint gets it', async () => {
    let failNext = true
    const { ctl, store, driver } = await harness({
      driverInit: {
        fail: (c) => {
          if (c.method !== 'createEndpoint' || !failNext) return undefined
          failNext = false
          return new Error('veth failed')
        },
      },
    })
    const n = await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const before = await storeKeys(store)
    await expect(ctl.createEndpoint(n.id, { name: 'e1' })).rejects.toMatchObject({ kind: 'internal' })
    expect(await storeKeys(store)).toEqual(before)
    expect(driver.state.networks.get(n.id)!.endpoints.size).toBe(0)
    const e = await ctl.createEndpoint(n.id, { name: 'e1' })
    expect(formatCidr(e.address!)).toBe('172.17.0.2/16')
  })

  it('store error while persisting the endpoint: driver endpoint deleted, address released', async () => {
    const inner = memoryStore()
    let fail = false
    const store = failingStore(inner, (k) => fail && k.includes('/endpoint/'))
    const { ctl, driver } = await harness({ store })
    const n = await ctl.createNetwork({ name: 'n', type: 'bridge' })
    fail = true
    await expect(ctl.createEndpoint(n.id, { name: 'e1' })).rejects.toMatchObject({ kind: 'internal' })
    fail = false
    expect(driver.state.networks.get(n.id)!.endpoints.size).toBe(0)
    expect(ctl.network(n.id).endpointCount).toBe(0)
    expect(formatCidr((await ctl.createEndpoint(n.id, { name: 'e1' })).address!)).toBe('172.17.0.2/16')
  })

  it('join failure (interface move fails): the driver leaves, nothing joined, sandbox unchanged', async () => {
    const { ctl, os, driver } = await harness()
    await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const ep = await ctl.createEndpoint('n', { name: 'e' })
    os.fail = (op) => (op === 'addInterface' ? new Error('netlink EBUSY') : undefined)
    await expect(ctl.join(sb.id, ep.id)).rejects.toMatchObject({ kind: 'internal' })
    os.fail = undefined
    expect(ctl.endpoint(ep.id).sandboxId).toBeUndefined()
    expect(ctl.sandbox(sb.id).endpoints).toEqual([])
    expect(driver.state.networks.get(ep.networkId)!.endpoints.get(ep.id)!.sandboxKey).toBeUndefined()
    await ctl.join(sb.id, ep.id)
  })

  it('join failure while programming external connectivity: everything rolled back', async () => {
    const { ctl, os, driver } = await harness({
      driverInit: { fail: (c) => (c.method === 'programExternalConnectivity' ? new Error('nat failed') : undefined) },
    })
    await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const ep = await ctl.createEndpoint('n', { name: 'e' })
    await expect(ctl.join(sb.id, ep.id)).rejects.toMatchObject({ kind: 'internal' })
    expect(ctl.sandbox(sb.id)).toMatchObject({ endpoints: [] })
    expect(ctl.sandbox(sb.id).gatewayEndpoint).toBeUndefined()
    expect(os.sandboxes.get(sb.key)!.interfaces.size).toBe(0)
    expect(driver.state.networks.get(ep.networkId)!.endpoints.get(ep.id)!.sandboxKey).toBeUndefined()
  })

  it('connect failing in join deletes the endpoint it created', async () => {
    const { ctl, os } = await harness()
    await ctl.createNetwork({ name: 'n', type: 'bridge' })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    os.fail = (op) => (op === 'addInterface' ? new Error('no') : undefined)
    await expect(ctl.connect(sb.id, 'n', { name: 'e' })).rejects.toBeDefined()
    expect(ctl.endpoints()).toEqual([])
  })

  it('sandbox namespace creation failure stores nothing', async () => {
    const { ctl, os, store } = await harness()
    os.fail = (op) => (op === 'createSandbox' ? new Error('mount failed') : undefined)
    const before = await storeKeys(store)
    await expect(ctl.createSandbox({ containerId: 'c' })).rejects.toMatchObject({ kind: 'internal' })
    expect(await storeKeys(store)).toEqual(before)
    expect(ctl.sandboxes()).toEqual([])
  })
})
