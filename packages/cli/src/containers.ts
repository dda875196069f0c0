import type { AbortOptions, Logger } from '@cnm/types'
import type { Store } from '@cnm/datastore'
import type { ExtraHost, SandboxInfo } from '@cnm/controller'

/** Store prefix of the daemon's own records (next to the controller's `docker/network/v1.0/`). */
export const CONTAINER_PREFIX = 'cnm/cli/v1/container/'

/** A legacy link (`--link name:alias`): the target container's name and the alias it gets in our hosts file. */
export interface LinkSpec {
  readonly name: string
  readonly alias: string
}

/**
 * What the daemon remembers about a sandbox beyond the controller's records: its configuration (so a
 * stopped sandbox can start again), its links, and whether it runs. Keyed by the sandbox name (the
 * container id in CNM terms), which stays the same across stop/start while the sandbox id changes.
 */
export interface ContainerRecord {
  name: string
  state: 'running' | 'stopped'
  hostname?: string
  domainname?: string
  labels: Record<string, string>
  dns: string[]
  dnsSearch: string[]
  dnsOptions: string[]
  extraHosts: ExtraHost[]
  links: LinkSpec[]
  /** Networks (ids) in the order they were connected: the join order on start (eth0, eth1 …). */
  networks: string[]
  /** When the record was made (ISO time). */
  created: string
}

const enc = new TextEncoder()
const dec = new TextDecoder()

/** The record of a sandbox found without one (made by an older daemon, or a crash before the write). */
export function recordFromSandbox(sb: SandboxInfo, networks: readonly string[]): ContainerRecord {
  return {
    name: sb.containerId,
    state: 'running',
    ...(sb.hostname !== undefined && { hostname: sb.hostname }),
    ...(sb.domainname !== undefined && { domainname: sb.domainname }),
    labels: { ...sb.labels },
    dns: [...sb.dnsServers],
    dnsSearch: [...sb.dnsSearch],
    dnsOptions: [...sb.dnsOptions],
    extraHosts: sb.extraHosts.map((h) => ({ name: h.name, ip: h.ip })),
    links: [],
    networks: [...networks],
    created: new Date().toISOString(),
  }
}

/** Container records in memory, written through to the daemon's store (unconditional puts: one writer). */
export class ContainerRecords {
  readonly #store: Store
  readonly #log: Logger
  readonly #records = new Map<string, ContainerRecord>()

  constructor(store: Store, log: Logger) {
    this.#store = store
    this.#log = log
  }

  async load(options?: AbortOptions): Promise<void> {
    this.#records.clear()
    for (const { key, value } of await this.#store.list(CONTAINER_PREFIX, options)) {
      try {
        const r = JSON.parse(dec.decode(value)) as ContainerRecord
        if (typeof r.name !== 'string' || (r.state !== 'running' && r.state !== 'stopped'))
          throw new Error('not a container record')
        this.#records.set(r.name, {
          ...r,
          links: r.links ?? [],
          networks: r.networks ?? [],
          extraHosts: r.extraHosts ?? [],
        })
      } catch (err) {
        this.#log.error('skipping unreadable container record %s: %s', key, (err as Error).message)
      }
    }
  }

  get(name: string): ContainerRecord | undefined {
    return this.#records.get(name)
  }

  all(): ContainerRecord[] {
    return [...this.#records.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
  }

  /** Containers whose links point at `name`. */
  linkersOf(name: string): ContainerRecord[] {
    return this.all().filter((r) => r.links.some((l) => l.name === name))
  }

  async put(r: ContainerRecord, options?: AbortOptions): Promise<void> {
    await this.#store.put(CONTAINER_PREFIX + r.name, enc.encode(JSON.stringify(r)), options)
    this.#records.set(r.name, r)
  }

  async update(
    name: string,
    change: Partial<ContainerRecord>,
    options?: AbortOptions,
  ): Promise<ContainerRecord | undefined> {
    const cur = this.#records.get(name)
    if (cur === undefined) return undefined
    const next = { ...cur, ...change }
    await this.put(next, options)
    return next
  }

  async delete(name: string, options?: AbortOptions): Promise<void> {
    await this.#store.delete(CONTAINER_PREFIX + name, options)
    this.#records.delete(name)
  }
}
