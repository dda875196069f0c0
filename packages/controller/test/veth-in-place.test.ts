import { memoryStore } from '@cnm/datastore'
import type { JoinInfo, SandboxDriverConfig } from '@cnm/driverapi'
import { MemoryDriver, MemoryDriverState } from '@cnm/driverapi/testing'
import { defaultIpam } from '@cnm/ipam'
import { capturingLogger } from '@cnm/test-utils'
import type { AbortOptions, EndpointId, NetworkId } from '@cnm/types'
import { describe, expect, it } from 'vitest'
import { createController, type SandboxInterface } from '../src/index.js'
import { FakeOsLayer } from './fixtures/harness.js'

/** A driver that asks for a veth made in place whenever the sandbox layer offers it. */
class VethDriver extends MemoryDriver {
  offered: boolean[] = []
  override async join(
    nid: NetworkId,
    eid: EndpointId,
    key: string,
    ji: JoinInfo,
    cfg: SandboxDriverConfig,
    options?: AbortOptions,
  ): Promise<void> {
    await super.join(nid, eid, key, ji, cfg, options)
    this.offered.push(ji.canCreateVeth === true)
    if (ji.canCreateVeth === true)
      ji.setVeth?.({ hostName: `vh${eid.slice(0, 7)}`, master: 'br0', mtu: 1400, hairpin: true }, 'eth')
  }
}

class VethOs extends FakeOsLayer {
  constructor(readonly vethInPlace: boolean) {
    super()
  }
}

async function setup(vethInPlace: boolean) {
  const logger = capturingLogger()
  const store = memoryStore()
  const os = new VethOs(vethInPlace)
  const driver = new VethDriver({ type: 'bridge', state: new MemoryDriverState() })
  const ctl = createController()({
    logger,
    store,
    osLayer: os,
    drivers: { bridge: driver },
    ipams: { default: defaultIpam()({ store, logger }) },
  })
  await ctl.start()
  return { ctl, os, driver }
}

describe('veth pairs made in place at join', () => {
  it('passes the driver veth to the sandbox layer when it can create pairs, and removes the interface on leave', async () => {
    const { ctl, os, driver } = await setup(true)
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const ep = await ctl.createEndpoint('n1', { name: 'e1' })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    const info = await ctl.join(sb.id, ep.id)
    expect(driver.offered).toEqual([true])
    const key = ctl.sandboxes().find((s) => s.id === sb.id)?.key ?? ''
    const iface = os.sandboxes.get(key)?.interfaces.get('eth0') as SandboxInterface
    expect(iface.veth).toEqual({ hostName: `vh${ep.id.slice(0, 7)}`, master: 'br0', mtu: 1400, hairpin: true })
    expect(iface.srcName).toBe(`vh${ep.id.slice(0, 7)}`)
    expect(iface.address).toEqual(ep.address)
    expect(info.interfaceName).toBe('eth0')
    await ctl.leave(sb.id, ep.id)
    expect(os.sandboxes.get(key)?.interfaces.size).toBe(0)
    await ctl.stop()
  })

  it('does not offer it when the sandbox layer cannot: the driver names a host device to move', async () => {
    const { ctl, os, driver } = await setup(false)
    await ctl.createNetwork({ name: 'n1', type: 'bridge' })
    const ep = await ctl.createEndpoint('n1', { name: 'e1' })
    const sb = await ctl.createSandbox({ containerId: 'c1' })
    await ctl.join(sb.id, ep.id)
    expect(driver.offered).toEqual([false])
    const key = ctl.sandboxes().find((s) => s.id === sb.id)?.key ?? ''
    const iface = os.sandboxes.get(key)?.interfaces.get('eth0') as SandboxInterface
    expect(iface.veth).toBeUndefined()
    expect(iface.srcName).toBe(`vm${ep.id.slice(0, 7)}`)
    await ctl.stop()
  })
})
