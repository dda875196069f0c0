/**
 * A native fast path for the UDP listener: `DnsResponderEngine` of `@cnm/osl` fits. It owns the UDP
 * sockets, answers queries whose (name, type) the resolver put in its table without running any
 * JavaScript, and hands every other datagram back to the resolver. The resolver stays the source of
 * truth: it fills the table with the answers it computed and empties it whenever records change.
 */
export interface DnsFastPath {
  attach(options: DnsFastPathAttachOptions): Promise<DnsFastPathResponder>
}

export interface DnsFastPathAttachOptions {
  /** Bound UDP sockets (owned by the fast path from then on). */
  fds?: readonly number[]
  /** Or a socket to bind in this process's namespace. */
  bind?: { address: string; port: number }
  /** Datagrams the table cannot answer. */
  onMiss: (message: Buffer, address: string, port: number) => void
  ednsUdpSize?: number
  maxUdpReplyBytes?: number
  maxEntries?: number
  recvBufferBytes?: number
}

export interface DnsFastPathAnswer {
  rcode: number
  ancount: number
  arcount: number
  body: Uint8Array
  rotateOffsets?: Uint16Array
}

export interface DnsFastPathStats {
  received: number
  answered: number
  missed: number
  dropped: number
  sendErrors: number
  entries: number
  rejectedEntries: number
}

export interface DnsFastPathResponder {
  readonly address: string
  readonly port: number
  readonly family: 4 | 6
  /** `name`: wire form, lower-cased, with its terminating zero. */
  setAnswer(name: Uint8Array, qtype: number, answer: DnsFastPathAnswer): boolean
  clearAnswers(): void
  send(message: Uint8Array, address: string, port: number): boolean
  stats(): DnsFastPathStats
  close(): void
}
