/**
 * @cnm/controller: the CNM controller (networks, endpoints, sandboxes, registries, persistence,
 * recovery, events, service-discovery records). Drivers and IPAMs arrive from the caller.
 */
export { Controller, createController, DEFAULT_CONTROLLER_INIT, ipamInfoToJSON } from './controller.js'
export { GW_BRIDGE_NETWORK } from './internal/order.js'
export {
  parseCreateNetworkRequest,
  parseCreateEndpointRequest,
  parseCreateSandboxRequest,
  parseJoinOptions,
} from './parse.js'
export { ROOT as STORE_ROOT, keys as storeKeys } from './internal/state-store.js'
export type {
  NetworkScope,
  SandboxOsLayer,
  SandboxInterface,
  SandboxGateway,
  ControllerInit,
  ControllerComponents,
  IpamConfig,
  NetworkIpamRequest,
  CreateNetworkRequest,
  NetworkIpamInfo,
  NetworkInfo,
  CreateEndpointRequest,
  EndpointInfo,
  ExtraHost,
  CreateSandboxRequest,
  SandboxInfo,
  JoinOptions,
  DeleteEndpointOptions,
  DeleteNetworkOptions,
  DeleteSandboxOptions,
  ConnectOptions,
  ServiceRecord,
  ResolvedName,
  ControllerEvent,
  ControllerEventListener,
  DnsRecordSource,
  DnsServiceProtocol,
  DnsServiceRecord,
} from './types.js'
export {
  InvalidNameError,
  InvalidRequestError,
  NetworkNotFoundError,
  EndpointNotFoundError,
  SandboxNotFoundError,
  DriverNotFoundError,
  IpamNotFoundError,
  NetworkExistsError,
  EndpointExistsError,
  SandboxExistsError,
  ActiveEndpointsError,
  ActiveContainerError,
  EndpointAttachedError,
  NotJoinedError,
  AlreadyRegisteredError,
  NetworkRuleError,
  SandboxInDeleteError,
  NoAddressError,
  ControllerStoreError,
  ControllerInternalError,
  ControllerStoppedError,
  ControllerNotImplementedError,
  toApiError,
} from './errors.js'
export type { ApiError } from './errors.js'
