import { MessageType, compoundPartSize, encodeBulkSync, encodeGossip, makeCompound } from './proto.js'

export interface BulkSyncHeader {
  readonly ltime: bigint
  readonly nodeName: string
  readonly networks: readonly string[]
  readonly unsolicited: boolean
}

/**
 * Splits the table events of one bulk sync (`parts`: full GossipMessage{TABLE_EVENT} encodings) into
 * `GossipMessage{BULK_SYNC}` messages whose compound payload stays within `maxPayloadBytes` (a single part
 * larger than that travels alone). Every chunk but the last says `unsolicited=false` and has an empty
 * `node_name`; the last one carries the real flag and our name, so a receiver answers exactly once and an
 * initiator waiting for our reply is released only by the last chunk.
 * With no parts there is one message with an empty compound (`08 05`), as Go sends it.
 */
export function buildBulkSyncMessages(
  header: BulkSyncHeader,
  parts: readonly Uint8Array[],
  maxPayloadBytes: number,
): Uint8Array[] {
  const groups: Uint8Array[][] = []
  let current: Uint8Array[] = []
  let size = 0
  for (const part of parts) {
    const cost = compoundPartSize(part.length)
    if (current.length > 0 && size + cost + 8 > maxPayloadBytes) {
      groups.push(current)
      current = []
      size = 0
    }
    current.push(part)
    size += cost
  }
  if (current.length > 0 || groups.length === 0) groups.push(current)
  return groups.map((group, i) => {
    const last = i === groups.length - 1
    return encodeGossip(
      MessageType.BULK_SYNC,
      encodeBulkSync({
        ltime: header.ltime,
        unsolicited: last ? header.unsolicited : false,
        // Earlier chunks name no sender: a receiver looks up its waiting initiator by this name, so only
        // the last chunk releases it (and only the last one of an unsolicited sync asks for a reply).
        nodeName: last ? header.nodeName : '',
        networks: [...header.networks],
        payload: makeCompound(group),
      }),
    )
  })
}
