import { describe } from 'vitest'
import { noopLogger } from '@cnm/types'
import { driverComplianceTests } from '@cnm/driverapi/testing'
import { osl as makeOsl, type Osl } from '@cnm/osl'
import { NetnsFixture, netnsAvailable } from '@cnm/test-utils'
import { bridgeDriver, type BridgeDriver } from '../src/index.js'
import { MemoryStore } from './fixtures/memory-store.js'

// The driver contract on the real kernel: every test gets its own namespace playing the host.
const owned = new Map<BridgeDriver, { fx: NetnsFixture; osl: Osl }>()

describe.skipIf(!netnsAvailable())('bridge driver on the kernel', () => {
  driverComplianceTests({
    name: 'bridge driver compliance (kernel)',
    setup: async () => {
      const fx = new NetnsFixture('brc')
      try {
        const host = await fx.add('h')
        const osl = makeOsl({ hostNetns: host })({ logger: noopLogger() })
        const driver = bridgeDriver({ hostNetns: host })({ logger: noopLogger(), store: new MemoryStore(), osl })
        await driver.restore([])
        owned.set(driver, { fx, osl })
        return driver
      } catch (err) {
        await fx.cleanup()
        throw err
      }
    },
    teardown: async (driver) => {
      const o = owned.get(driver)
      owned.delete(driver)
      await driver.close() // the firewall's resident processes live in the namespace
      await o?.osl.close()
      await o?.fx.cleanup()
    },
    requiresAddress: true,
    implementsRestore: true,
    sandboxConfig: () => ({
      labels: {},
      exposedPorts: [{ proto: 'tcp', port: 80 }],
      portBindings: [
        { proto: 'tcp', containerPort: 80, hostPort: 0, hostPortEnd: 0 },
        { proto: 'udp', containerPort: 53, hostPort: 0, hostPortEnd: 0 },
      ],
    }),
  })
})
