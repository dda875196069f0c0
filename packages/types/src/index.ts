export {
  CnmError,
  isCnmError,
  throwIfAborted,
  statusForKind,
  InvalidArgumentError,
  NotFoundError,
  ConflictError,
  ForbiddenError,
  UnavailableError,
  TimeoutError,
  AbortError,
  NotImplementedError,
  InternalError,
} from './errors.js'
export type { ErrorKind, CnmErrorOptions } from './errors.js'
export type { AbortOptions, Startable, Brand, NetworkId, EndpointId, SandboxId, PoolId } from './options.js'
export type { Logger, ComponentLogger } from './logger.js'
export { noopLogger } from './logger.js'
export {
  parseIp,
  tryParseIp,
  formatIp,
  parseCidr,
  parsePrefix,
  formatPrefix,
  formatCidr,
  maskOf,
  prefixSize,
  hostBits,
  prefixContains,
  prefixOverlaps,
  addressAt,
  ordinalOf,
  ipEquals,
  prefixEquals,
  isLinkLocalUnicast,
  isGlobalUnicast,
} from './ip.js'
export type { IpVersion, IpAddr, IpPrefix, IpCidr } from './ip.js'
