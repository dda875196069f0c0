import { describe, expect, it } from 'vitest'
import { formatIp } from '@cnm/types'
import { harness, readJson } from './fixtures/harness.js'

describe('concurrency', () => {
  it('50 concurrent connects on one network never duplicate an address', async () => {
    const { ctl, store, driver, os } = await harness({ driverInit: { delayMs: 1 } })
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge', ipam: { v4: [{ pool: '10.40.0.0/24' }] } })
    const sandboxes = await Promise.all(
      Array.from({ length: 50 }, (_, i) => ctl.createSandbox({ containerId: `c${i}` })),
    )
    const eps = await Promise.all(sandboxes.map((sb, i) => ctl.connect(sb.id, n.id, { name: `c${i}` })))
    const addrs = eps.map((e) => formatIp(e.address!.ip))
    expect(new Set(addrs).size).toBe(50)
    expect(ctl.network(n.id).endpointCount).toBe(50)
    expect(await readJson(store, `docker/network/v1.0/endpoint_count/${n.id}/`)).toEqual({ count: 50 })
    expect(driver.state.networks.get(n.id)!.endpoints.size).toBe(50)
    for (const sb of sandboxes) expect(os.sandboxes.get(sb.key)!.interfaces.size).toBe(1)
    // 50 concurrent disconnects (leave + delete) free everything
    await Promise.all(eps.map((e, i) => ctl.disconnect(sandboxes[i]!.id, e.id)))
    expect(ctl.network(n.id).endpointCount).toBe(0)
    await ctl.deleteNetwork(n.id)
  })

  it('concurrent connects of one sandbox to many networks keep a consistent order and one gateway', async () => {
    const { ctl, os } = await harness({ driverInit: { delayMs: 1 } })
    const nets = await Promise.all(
      Array.from({ length: 8 }, (_, i) => ctl.createNetwork({ name: `net${i}`, type: 'bridge' })),
    )
    const sb = await ctl.createSandbox({ containerId: 'c' })
    await Promise.all(nets.map((n, i) => ctl.connect(sb.id, n.id, { name: 'c' }, { priority: i })))
    const info = ctl.sandbox(sb.id)
    expect(info.endpoints).toHaveLength(8)
    expect(ctl.endpoint(info.endpoints[0]!).networkName).toBe('net7')
    expect(info.gatewayEndpoint).toBe(info.endpoints[0])
    const names = [...os.sandboxes.get(sb.key)!.interfaces.keys()].sort()
    expect(names).toEqual(Array.from({ length: 8 }, (_, i) => `eth${i}`).sort())
  })

  it('two sandboxes racing to join one endpoint: exactly one wins', async () => {
    const { ctl } = await harness({ driverInit: { delayMs: 2 } })
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const ep = await ctl.createEndpoint('n1', { name: 'e' })
    const [a, b] = await Promise.all([ctl.createSandbox({ containerId: 'a' }), ctl.createSandbox({ containerId: 'b' })])
    const results = await Promise.allSettled([ctl.join(a.id, ep.id), ctl.join(b.id, ep.id)])
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    const lost = results.find((r) => r.status === 'rejected') as PromiseRejectedResult
    expect(lost.reason).toMatchObject({ code: 'ERR_CONTROLLER_ENDPOINT_ATTACHED' })
  })

  it('concurrent endpoint creation with the same name: exactly one wins', async () => {
    const { ctl } = await harness({ driverInit: { delayMs: 1 } })
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const results = await Promise.allSettled(
      Array.from({ length: 5 }, () => ctl.createEndpoint('n1', { name: 'same' })),
    )
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
    expect(ctl.endpoints()).toHaveLength(1)
  })

  it('network delete racing endpoint creation never leaves an endpoint on a deleted network', async () => {
    const { ctl, driver } = await harness({ driverInit: { delayMs: 1 } })
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const [del, ep] = await Promise.allSettled([ctl.deleteNetwork(n.id), ctl.createEndpoint(n.id, { name: 'e' })])
    if (del.status === 'fulfilled') {
      expect(ep.status).toBe('rejected')
      expect(ctl.endpoints()).toEqual([])
      expect(driver.state.networks.size).toBe(0)
    } else {
      expect(ep.status).toBe('fulfilled')
      expect(ctl.network(n.id).endpointCount).toBe(1)
    }
  })
})
