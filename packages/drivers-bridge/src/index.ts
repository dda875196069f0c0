/**
 * @cnm/drivers-bridge: the `bridge` network driver (Linux bridge + veth pairs + iptables) and the trivial
 * `null` and `host` drivers, implementing the @cnm/driverapi NetworkDriver contract.
 */
export {
  BridgeError,
  InvalidBridgeOptionError,
  InvalidBridgeConfigError,
  InvalidIpamDataError,
  NetworkConflictError,
  BridgeDeviceError,
  EndpointStateError,
  EndpointAddressError,
  InvalidPortBindingError,
  BridgeKernelError,
  BridgeStoreError,
  SingletonNetworkError,
} from './errors.js'
export type { BridgeErrorCode } from './errors.js'
export { parseBridgeNetworkOptions, DEFAULT_BRIDGE_NETWORK_OPTIONS, BRIDGE_LABELS } from './options.js'
export type { BridgeNetworkOptions } from './options.js'
export {
  BridgeStateStore,
  findNetworkConflict,
  networkKey,
  endpointKey,
  NETWORK_KEY_PREFIX,
  ENDPOINT_KEY_PREFIX,
} from './state.js'
export type {
  BridgeNetworkRecord,
  BridgeEndpointRecord,
  BridgeFamilyRecord,
  PortBindingRecord,
  PortMappingRecord,
  ExposedPortRecord,
  NetworkConflict,
  LoadedState,
} from './state.js'
export { NullDriver, HostDriver, nullDriver, hostDriver } from './singleton-driver.js'
export type { SingletonDriverComponents } from './singleton-driver.js'
export { BridgeDriver, resolveBridgeDriverConfig, DEFAULT_BRIDGE_DRIVER_INIT } from './bridge-driver.js'
export type { BridgeDriverInit, BridgeDriverConfig } from './bridge-driver.js'
export { bridgeDriver } from './factory.js'
export type { BridgeDriverComponents } from './factory.js'
export type {
  BridgeKernel,
  HostLink,
  BridgeSpec as KernelBridgeSpec,
  VethSpec as KernelVethSpec,
  NetworkFirewallSpec,
  PortRequest,
  PortRef,
  PublishedPort,
  PortProtocol,
} from './internal/kernel.js'
