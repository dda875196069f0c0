/**
 * @cnm/driverapi/testing: the NetworkDriver compliance suite (vitest) and a reference in-memory driver
 * for tests of code that consumes drivers.
 */
export { driverComplianceTests, testIpamData, cidr } from './compliance.js'
export type { DriverComplianceOptions } from './compliance.js'
export { MemoryDriver, MemoryDriverState, memoryDriver, DEFAULT_MEMORY_DRIVER_INIT } from './memory-driver.js'
export type {
  MemoryDriverInit,
  MemoryDriverCall,
  MemoryDriverMethod,
  MemoryEndpointState,
  MemoryNetworkState,
} from './memory-driver.js'
