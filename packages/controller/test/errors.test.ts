import { describe, expect, it } from 'vitest'
import { isCnmError, statusForKind } from '@cnm/types'
import { harness, storeKeys } from './fixtures/harness.js'
import { toApiError, NetworkNotFoundError } from '../src/index.js'

describe('bad input is typed and leaves no state', () => {
  it('empty or whitespace names, unknown ids and bad addresses', async () => {
    const { ctl, store, driver, os } = await harness()
    const n = await ctl.createNetwork({ name: 'n1', type: 'bridge', ipam: { v4: [{ pool: '10.60.0.0/24' }] } })
    const sb = await ctl.createSandbox({ containerId: 'c' })
    const before = await storeKeys(store)
    const ghost = 'f'.repeat(64)
    const cases: Array<[Promise<unknown>, string]> = [
      [ctl.createNetwork({ name: '', type: 'bridge' }), 'invalid-argument'],
      [ctl.createNetwork({ name: '   ', type: 'bridge' }), 'invalid-argument'],
      [ctl.createNetwork({ name: 'x', type: '' }), 'invalid-argument'],
      [ctl.createNetwork({ name: 'x', type: 'bridge', ipam: { v4: [{ pool: '10.0.0.0/33' }] } }), 'invalid-argument'],
      [ctl.createNetwork({ name: 'x', type: 'bridge', ipam: { v4: [{ pool: 'fd00::/64' }] } }), 'invalid-argument'],
      [
        ctl.createNetwork({ name: 'x', type: 'bridge', ipam: { v4: [{ pool: '10.61.0.0/24', gateway: 'nope' }] } }),
        'invalid-argument',
      ],
      [
        ctl.createNetwork({
          name: 'x',
          type: 'bridge',
          ipam: { v4: [{ pool: '10.61.0.0/24', gateway: '10.62.0.1' }] },
        }),
        'invalid-argument',
      ],
      [
        ctl.createNetwork({
          name: 'x',
          type: 'bridge',
          ipam: { v4: [{ pool: '10.61.0.0/24', auxAddresses: { a: '10.62.0.1' } }] },
        }),
        'forbidden',
      ],
      [ctl.createNetwork({ name: 'x', type: 'bridge', ipam: { v4: [{ pool: '10.60.0.0/25' }] } }), 'forbidden'],
      [ctl.createEndpoint(n.id, { name: '' }), 'invalid-argument'],
      [ctl.createEndpoint(n.id, { name: 'e', ipv4Address: '300.1.1.1' }), 'invalid-argument'],
      [ctl.createEndpoint(n.id, { name: 'e', ipv4Address: 'fd00::1' }), 'invalid-argument'],
      [ctl.createEndpoint(n.id, { name: 'e', macAddress: 'zz:zz' }), 'invalid-argument'],
      [ctl.createEndpoint(n.id, { name: 'e', linkLocalAddresses: ['10.0.0.1'] }), 'invalid-argument'],
      [ctl.createEndpoint(n.id, { name: 'e', dnsServers: ['x'] }), 'invalid-argument'],
      [ctl.createEndpoint(ghost, { name: 'e' }), 'not-found'],
      [ctl.createEndpoint('', { name: 'e' }), 'invalid-argument'],
      [ctl.deleteNetwork(ghost), 'not-found'],
      [ctl.deleteEndpoint(ghost), 'not-found'],
      [ctl.join(sb.id, ghost), 'not-found'],
      [ctl.join(ghost, ghost), 'not-found'],
      [ctl.leave(ghost, ghost), 'not-found'],
      [ctl.deleteSandbox(ghost), 'not-found'],
      [ctl.endpointOperInfo(ghost), 'not-found'],
      [ctl.createSandbox({ containerId: '  ' }), 'invalid-argument'],
      [ctl.createSandbox({ containerId: 'd', extraHosts: [{ name: 'h', ip: 'bad' }] }), 'invalid-argument'],
    ]
    for (const [p, kind] of cases) {
      const err = await p.then(
        () => new Error('unexpectedly succeeded'),
        (e: unknown) => e,
      )
      expect(isCnmError(err), String(err)).toBe(true)
      expect((err as { kind: string }).kind, (err as Error).message).toBe(kind)
    }
    expect(() => ctl.network(ghost)).toThrow(NetworkNotFoundError)
    expect(() => ctl.network('')).toThrow(expect.objectContaining({ kind: 'invalid-argument' }))
    expect(() => ctl.endpoint(ghost)).toThrow(expect.objectContaining({ kind: 'not-found' }))
    expect(ctl.sandboxByContainer('nobody')).toBeUndefined()
    expect(await storeKeys(store)).toEqual(before)
    expect(ctl.networks().map((x) => x.name)).toEqual(['n1'])
    expect(ctl.endpoints()).toEqual([])
    expect(driver.state.networks.size).toBe(1)
    expect(os.sandboxes.size).toBe(1)
    // and the pool still hands out its first address
    expect((await ctl.createEndpoint(n.id, { name: 'ok' })).address?.ip).toEqual({ version: 4, value: 0x0a3c0002n })
  })

  it('finds networks by id, name and unique id prefix', async () => {
    const { ctl } = await harness()
    const n = await ctl.createNetwork({ name: 'alpha', type: 'bridge' })
    expect(ctl.network(n.id).id).toBe(n.id)
    expect(ctl.network('alpha').id).toBe(n.id)
    expect(ctl.network(n.id.slice(0, 12)).id).toBe(n.id)
    await ctl.createNetwork({ name: 'alpha', type: 'bridge' })
    expect(() => ctl.network('alpha')).toThrow(expect.objectContaining({ kind: 'invalid-argument' }))
  })

  it('toApiError maps kinds to Docker API statuses', () => {
    expect(toApiError(new NetworkNotFoundError('x'))).toEqual({
      status: 404,
      kind: 'not-found',
      code: 'ERR_CONTROLLER_NETWORK_NOT_FOUND',
      message: 'network x not found',
    })
    expect(toApiError(new Error('boom'))).toMatchObject({ status: 500, kind: 'internal' })
    expect(statusForKind('forbidden')).toBe(403)
  })

  it('rejects bad construction options', async () => {
    const { createController } = await import('../src/index.js')
    const { memoryStore } = await import('@cnm/datastore')
    const { noopLogger } = await import('@cnm/types')
    const { FakeOsLayer } = await import('./fixtures/harness.js')
    const components = { logger: noopLogger(), store: memoryStore(), osLayer: new FakeOsLayer() }
    expect(() => createController({ netnsRoot: 'relative' })(components)).toThrow(/netnsRoot/)
    expect(() => createController({ casRetries: 0 })(components)).toThrow(/casRetries/)
    expect(() => createController()({ ...components, osLayer: undefined as never })).toThrow(/osLayer/)
  })
})
