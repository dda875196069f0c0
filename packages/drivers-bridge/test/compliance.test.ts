import { noopLogger } from '@cnm/types'
import { driverComplianceTests } from '@cnm/driverapi/testing'
import { BridgeDriver, resolveBridgeDriverConfig } from '../src/index.js'
import { FakeKernel } from './fixtures/fake-kernel.js'
import { MemoryStore } from './fixtures/memory-store.js'

// The bridge driver's logic against the in-memory kernel model (the real kernel runs the same suite in
// compliance.netns.test.ts).
driverComplianceTests({
  name: 'bridge driver compliance (fake kernel)',
  setup: () =>
    new BridgeDriver(
      resolveBridgeDriverConfig({}),
      { logger: noopLogger(), store: new MemoryStore() },
      new FakeKernel(),
    ),
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
