import { ipamComplianceTests } from '@cnm/ipamapi/testing'
import { noopLogger } from '@cnm/types'
import { describe } from 'vitest'
import { defaultIpam, nullIpam } from '../src/index.js'

describe('default ipam, in memory', () => {
  ipamComplianceTests({ setup: () => defaultIpam()({ logger: noopLogger() }) })
})

describe('null ipam', () => {
  ipamComplianceTests({ setup: () => nullIpam()(), allocates: false })
})
