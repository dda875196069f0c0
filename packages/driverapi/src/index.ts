/**
 * @cnm/driverapi: the network driver contract of cnm ([S5]): NetworkDriver, InterfaceInfo, JoinInfo,
 * the IPAM data handed to drivers, typed driver errors and option parsing helpers.
 * The compliance suite lives at `@cnm/driverapi/testing`.
 */
import type { NetworkDriver } from './driver.js'

export type { EndpointId, NetworkId, SandboxId } from '@cnm/types'
export type {
  Scope,
  Capability,
  IpamData,
  Protocol,
  TransportPort,
  PortBinding,
  PortMapping,
  NetworkInfo,
  NetworkDriverConfig,
  EndpointDriverConfig,
  SandboxDriverConfig,
  EndpointOperInfo,
  DiscoveryEvent,
  EncryptionKey,
  TableEvent,
  RestoredNetwork,
  RestoredEndpoint,
  NetworkDriver,
  InterfaceInfo,
  RouteType,
  StaticRoute,
  TableEntry,
  JoinInfo,
  JoinVeth,
} from './driver.js'
export { EndpointInterface, JoinInfoRecorder } from './interface-info.js'
export type { InterfaceSnapshot, JoinResult } from './interface-info.js'
export { generateId, isFullId, networkId, endpointId, sandboxId } from './ids.js'
export { parseMac, macBytes, macFromBytes, macFromIPv4, randomMac } from './mac.js'
export type { MacAddress } from './mac.js'
export {
  NETLABEL,
  parseStringMap,
  parseLabels,
  parseBoolOption,
  parseIntOption,
  parseIpOption,
  parseCidrOption,
  parsePrefixOption,
  parseTransportPorts,
  parsePortBindings,
  parseIpamData,
  ipamDataToJSON,
} from './options.js'
export type { IntRange, IpamDataJSON } from './options.js'
export {
  NetworkNotFoundError,
  EndpointNotFoundError,
  NetworkExistsError,
  EndpointExistsError,
  ActiveEndpointsError,
  EndpointJoinedError,
  AddressInUseError,
  PortAllocatedError,
  InterfaceFieldSetError,
  DriverRequestError,
  InvalidDriverOptionError,
  DriverNotSupportedError,
  DriverInternalError,
} from './errors.js'

/** Two-stage factory shape every driver package exports: `driverX(init)(components)`. */
export type NetworkDriverFactory<Components> = (components: Components) => NetworkDriver
