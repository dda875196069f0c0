/** The memberlist wire layer: message codecs, packet and stream pipelines, LZW, CRC-32, AES-GCM, keyring. */
export { WireError } from './errors.js'
export {
  MessageType,
  encodeMessage,
  encodeUserStream,
  encodeCompound,
  decodeCompound,
  decodeMessage,
  MAX_STREAM_BYTES,
} from './messages.js'
export type { Message, MessageTypeName, PushNodeState } from './messages.js'
export { packPacket, packPacketWithNonce, unpackPacket, compressMessage, decompressMessage } from './packet.js'
export type { PackOptions, UnpackResult } from './packet.js'
export {
  packStream,
  packStreamWithNonce,
  readStreamMessage,
  sealStreamFrame,
  ERR_NOT_ENCRYPTED,
  ERR_NO_ENCRYPTION,
} from './stream.js'
export { lzwCompress, lzwDecompress } from './lzw.js'
export { crc32 } from './crc32.js'
export { encryptPayload, encryptPayloadWithNonce, decryptPayload, ENCRYPT_OVERHEAD } from './crypto.js'
export { ipToBytes, bytesToIp } from './ip.js'
export { KeyringImpl } from './keyring.js'
