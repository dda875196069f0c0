/**
 * What the resolver asks the sandbox about. The controller implements it (or uses the in-memory
 * `SandboxRecords` of this package). Every method is synchronous and called on the query path:
 * keep it a map lookup. Names are passed lower-case, without the trailing dot.
 */
export interface DnsRecordSource {
  /**
   * A number that changes whenever any answer could change (records added or removed, endpoint
   * order, aliases). The resolver caches encoded answers and drops them when it sees a new value.
   */
  readonly generation: number

  /**
   * Forward lookup of a name on the sandbox's networks (sandbox-dns.md §3.2: container names,
   * aliases, service names, `name.network` forms, link aliases). `undefined` = not a local name
   * (the resolver forwards it). A returned object means the name exists here: a query type without
   * records gets NOERROR with no answers (NODATA), never a forward.
   */
  lookupName(name: string): NameRecords | undefined

  /**
   * Reverse lookup of an address (canonical text: dotted quad, RFC 5952 IPv6). Returns the PTR
   * target (`<name>.<network>`, without trailing dot), or `undefined` to forward the query.
   */
  lookupAddress(address: string, version: 4 | 6): string | undefined

  /**
   * SRV lookup for `_<service>._<protocol>.<name>` (service without its underscore, e.g. `http`
   * or `host_http`). `undefined` or an empty list = no such service here.
   */
  lookupService(name: string, service: string, protocol: ServiceProtocol): readonly ServiceRecord[] | undefined

  /**
   * Optional: called with the A/AAAA addresses of accepted forwarded replies (libnetwork marks
   * reverse entries for them as externally resolved). Called off the hot path, at most once per
   * forwarded reply.
   */
  reportExternal?(name: string, addresses: readonly string[]): void

  /**
   * Optional: calls `listener` synchronously whenever `generation` changes; returns a function that
   * removes it. A resolver with a native fast path (`components.fastPath`) needs it to drop the
   * answers it handed to native code at once; without it the fast path is not used.
   */
  onChange?(listener: () => void): () => void
}

export type ServiceProtocol = 'tcp' | 'udp' | 'sctp'

/** Addresses of a local name; one of the lists may be empty. */
export interface NameRecords {
  readonly ipv4: readonly string[]
  readonly ipv6: readonly string[]
}

/** One SRV target: answered as `SRV priority weight port target`, its addresses in the additional section. */
export interface ServiceRecord {
  /** Target host name (a local name, e.g. the container or task name), without trailing dot. */
  readonly target: string
  readonly port: number
  /** Addresses of the target (A/AAAA additional records). */
  readonly addresses: readonly string[]
  /** @default 0 */
  readonly priority?: number
  /** @default 0 */
  readonly weight?: number
}
