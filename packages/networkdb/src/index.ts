export { createNetworkDB, NetworkDBNode, NODE_TABLE } from './networkdb.js'
export type { CreateMemberlistFn, NetworkDBDeps } from './networkdb.js'
export { DEFAULT_NETWORKDB_CONFIG } from './config.js'
export {
  EntryExistsError,
  EntryNotFoundError,
  InvalidConfigError,
  JoinFailedError,
  NetworkDBClosedError,
  NetworkNotJoinedError,
} from './errors.js'
export { LamportClock } from './clock.js'
export * as proto from './proto.js'
export * from './diagnostic/index.js'
export type {
  EntryInfo,
  NetworkDB,
  NetworkDBConfig,
  NetworkDBStats,
  NetworkStats,
  NodeInfo,
  NodeStatus,
  PeerInfo,
  TableEvent,
  TableEventType,
  TableWatch,
  WatchFilter,
} from './types.js'
