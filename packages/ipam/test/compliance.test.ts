import { ipamComplianceTests } from '@cnm/ipamapi/testing'
import { noopLogger } from '@cnm/types'
import { describe } from 'vitest'
import { defaultIpam, nullIpam } from '../src/index.js'
import { TestStore } from './fixtures/test-store.js'

describe('default ipam, in memory', () => {
  ipamComplianceTests({ setup: () => defaultIpam()({ logger: noopLogger() }) })
})

describe('default ipam, with local and global stores', () => {
  ipamComplianceTests({
    setup: () => defaultIpam()({ logger: noopLogger(), store: new TestStore(), globalStore: new TestStore() }),
  })
})

describe('null ipam', () => {
  ipamComplianceTests({ setup: () => nullIpam()(), allocates: false })
})
