/**
 * @cnm/memberlist: SWIM membership and gossip, wire-compatible with the hashicorp/memberlist
 * (protocol 2, Vsn [1,5,2,0,0,0]) that Docker's networkdb speaks.
 */
export type {
  Address,
  Node,
  NodeState,
  Delegate,
  EventDelegate,
  TrafficFilter,
  MemberlistConfig,
  MemberlistStats,
  Keyring,
  Memberlist,
} from './types.js'
export {
  createMemberlist,
  parseJoinAddress,
  pushPullScaleMs,
  PROTOCOL_VSN,
  META_MAX_BYTES,
  MAX_ENCRYPTED_FRAME_BYTES,
} from './memberlist.js'
export { defaultConfig, defaultLanConfig, DEFAULT_MEMBERLIST_CONFIG } from './config.js'
export type { MemberlistDefaults } from './config.js'
export { TransmitLimitedQueue, retransmitLimit } from './broadcast-queue.js'
export type { Broadcast } from './broadcast-queue.js'
export { suspicionTimeoutMs, remainingSuspicionMs, suspicionParams, Suspicion } from './suspicion.js'
export { Awareness } from './awareness.js'
export { JoinError, RemoteError, IncompatibleVersionError, ShutdownError, ConfigError } from './errors.js'
export {
  MessageType,
  encodeMessage,
  decodeMessage,
  encodeCompound,
  decodeCompound,
  encodeUserStream,
  packPacket,
  unpackPacket,
  packStream,
  readStreamMessage,
  lzwCompress,
  lzwDecompress,
  crc32,
  encryptPayload,
  decryptPayload,
  ENCRYPT_OVERHEAD,
  ipToBytes,
  bytesToIp,
  KeyringImpl,
  WireError,
} from './wire/index.js'
export type { Message, MessageTypeName, PushNodeState } from './wire/index.js'
