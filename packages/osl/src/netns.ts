import type { AbortOptions } from '@cnm/types'
import { splitJsonOutput, type NsTarget } from './batch.js'
import { NetnsPlan, type NsResolver } from './plan.js'
import {
  connectSocketWith,
  mapNativeError,
  openSocketWith,
  type ConnectSocketOptions,
  type NetnsSocket,
  type OpenSocketOptions,
} from './socket.js'
import { mapBatchError, type Transaction, type TxContext } from './transaction.js'
import type {
  AddressInfo,
  AddressOptions,
  BridgeSpec,
  FdbSpec,
  LinkChanges,
  LinkInfo,
  MutateOptions,
  NeighborInfo,
  NeighborSpec,
  NetnsInfo,
  RouteInfo,
  RouteSpec,
  VethSpec,
  VxlanSpec,
} from './types.js'
import { sysctlPath } from './validate.js'

/** @internal What namespace handles need from their Osl. */
export interface OslContext extends TxContext {
  readonly resolver: NsResolver
  transaction(): Transaction
  assertOpen(): void
}

/**
 * Operations inside one network namespace (the host namespace, a sandbox, or any namespace by name/path).
 * Each mutating method is one transaction (validated first, rolled back on failure); to combine several
 * into one launch use `osl.transaction()` and `tx.on(netns)`.
 */
export class Netns {
  /** @internal */
  constructor(
    protected readonly ctx: OslContext,
    /** @internal */ readonly target: NsTarget,
  ) {}

  /** The namespace file, or undefined for the namespace Node runs in. */
  get path(): string | undefined {
    return this.target.path
  }

  /** Name, path or `self`, for messages. */
  get label(): string {
    return this.target.label
  }

  /** Queues operations for this namespace on `tx`. */
  plan(tx: Transaction): NetnsPlan {
    return new NetnsPlan(tx, this.target, this.ctx.resolver)
  }

  /** @internal Runs `fn` on a fresh transaction and commits it. */
  protected async apply(fn: (tx: Transaction) => void, options?: MutateOptions): Promise<void> {
    options?.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const tx = this.ctx.transaction()
    try {
      fn(tx)
    } catch (err) {
      tx.discard()
      throw err
    }
    await tx.commit(options)
  }

  createBridge(spec: BridgeSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).createBridge(spec), options)
  }
  createVeth(spec: VethSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).createVeth(spec), options)
  }
  createVxlan(spec: VxlanSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).createVxlan(spec), options)
  }
  setLink(name: string, changes: LinkChanges, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).setLink(name, changes), options)
  }
  setLinkUp(name: string, options?: MutateOptions): Promise<void> {
    return this.setLink(name, { up: true }, options)
  }
  setLinkDown(name: string, options?: MutateOptions): Promise<void> {
    return this.setLink(name, { up: false }, options)
  }
  /** Enslaves `name` to `bridge` (in this namespace). */
  attachToBridge(name: string, bridge: string, options?: MutateOptions): Promise<void> {
    return this.setLink(name, { master: bridge }, options)
  }
  deleteLink(name: string, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteLink(name), options)
  }
  addAddress(link: string, cidr: string, opts?: AddressOptions & MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addAddress(link, cidr, opts), opts)
  }
  deleteAddress(link: string, cidr: string, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteAddress(link, cidr), options)
  }
  addRoute(spec: RouteSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addRoute(spec), options)
  }
  deleteRoute(spec: RouteSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteRoute(spec), options)
  }
  /** A PERMANENT neighbour entry in this namespace (no bookkeeping; see Sandbox.addNeighbor for that). */
  setNeighbor(spec: NeighborSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addNeighbor(spec), options)
  }
  removeNeighbor(spec: { ip: string; dev: string }, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteNeighbor(spec), options)
  }
  addFdb(spec: FdbSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).addFdb(spec), options)
  }
  deleteFdb(spec: FdbSpec, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).deleteFdb(spec), options)
  }
  /** Writes sysctls inside this namespace (no process launch). Keys: `net.ipv4.ip_forward` or slash form. */
  setSysctls(values: Record<string, string | number>, options?: MutateOptions): Promise<void> {
    return this.apply((tx) => this.plan(tx).setSysctls(values), options)
  }

  /** Reads sysctls inside this namespace (no process launch). */
  async getSysctls(keys: string[], options?: AbortOptions): Promise<Record<string, string>> {
    options?.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const paths = keys.map((k) => sysctlPath(k))
    this.ctx.stats.nativeCalls++
    let values: string[]
    try {
      values = await this.ctx.native().sysctl(this.target.path ?? null, [], [], paths)
    } catch (err) {
      throw mapNativeError(err, this.target.label, `read sysctls in ${this.target.label}`)
    }
    return Object.fromEntries(keys.map((k, i) => [k, values[i] ?? '']))
  }

  /** Opens a bound (tcp: listening) socket inside this namespace; see openSocketInNetns. */
  async openSocket(opts: OpenSocketOptions): Promise<NetnsSocket> {
    this.ctx.assertOpen()
    this.ctx.stats.nativeCalls++
    return await openSocketWith(this.ctx.native(), this.target.path ?? null, opts)
  }

  /** Opens a TCP connection from inside this namespace; see connectSocketInNetns. */
  async connect(opts: ConnectSocketOptions): Promise<NetnsSocket> {
    this.ctx.assertOpen()
    this.ctx.stats.nativeCalls++
    return await connectSocketWith(this.ctx.native(), this.target.path ?? null, opts)
  }

  /** @internal Runs `ip -json -batch` with show commands; one launch. */
  protected async query(
    lines: string[],
    options?: AbortOptions,
    flags: { stats?: boolean; details?: boolean } = {},
  ): Promise<unknown[]> {
    options?.signal?.throwIfAborted()
    this.ctx.assertOpen()
    const out = await this.ctx.runner.run('ip', this.target, lines, {
      json: true,
      ...(flags.stats === true && { stats: true }),
      ...(flags.details === true && { details: true }),
      ...(options?.signal === undefined ? {} : { signal: options.signal }),
    })
    if (!out.ok) {
      const idx = Math.max(out.failedIndex, 0)
      throw mapBatchError(
        { line: lines[idx] ?? lines[0] ?? '', creates: 'none', ns: this.target },
        out,
        this.ctx.runner.describe('ip', this.target, { json: true }),
      )
    }
    return splitJsonOutput(out.stdout)
  }

  /** `ip -json link show`. */
  async links(options?: AbortOptions): Promise<LinkInfo[]> {
    const [links] = await this.query(['link show'], options)
    return (links ?? []) as LinkInfo[]
  }

  /** One link by name, or undefined. */
  async link(name: string, options?: AbortOptions): Promise<LinkInfo | undefined> {
    return (await this.links(options)).find((l) => l.ifname === name)
  }

  /** `ip -json addr show`: links with their `addr_info`. */
  async addresses(options?: AbortOptions): Promise<AddressInfo[]> {
    const [addrs] = await this.query(['addr show'], options)
    return (addrs ?? []) as AddressInfo[]
  }

  /** `ip -json route show table all`, both families, without the kernel's `local` table. */
  async routes(options?: AbortOptions): Promise<RouteInfo[]> {
    const [routes] = await this.query(['route show table all'], options)
    return ((routes ?? []) as RouteInfo[]).filter((r) => r.table !== 'local')
  }

  /** `ip -json neigh show`. */
  async neighbors(options?: AbortOptions): Promise<NeighborInfo[]> {
    const [n] = await this.query(['neigh show'], options)
    return (n ?? []) as NeighborInfo[]
  }

  /** Links with addresses, routes and neighbours in one launch. */
  async info(options?: AbortOptions): Promise<NetnsInfo> {
    const [links, routes, neighbors] = await this.query(['addr show', 'route show table all', 'neigh show'], options)
    return {
      links: (links ?? []) as AddressInfo[],
      routes: ((routes ?? []) as RouteInfo[]).filter((r) => r.table !== 'local'),
      neighbors: (neighbors ?? []) as NeighborInfo[],
    }
  }
}
