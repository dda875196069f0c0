import { formatCidr, parseIp } from '@cnm/types'
import type { NsTarget } from './batch.js'
import { InvalidAddressError, InvalidOptionError } from './errors.js'
import { netnsPath } from './socket.js'
import type { Transaction } from './transaction.js'
import type {
  AddressOptions,
  BridgeSpec,
  FdbSpec,
  LinkChanges,
  NeighborSpec,
  NetnsRef,
  RouteSpec,
  VethSpec,
  VxlanSpec,
} from './types.js'
import {
  sysctlPath,
  sysctlValue,
  validateCidr,
  validateDestination,
  validateIfName,
  validateIp,
  validateMac,
  validateMtu,
} from './validate.js'

/** How plans refer to namespaces in `netns <ref>` arguments. */
export interface NsResolver {
  /** A path any process can open for this namespace (`/proc/<pid>/ns/net` for Node's own). */
  refArg(ns: NsTarget): string
  /** Resolves a NetnsRef option to a target. */
  target(ref: NetnsRef): NsTarget
}

export function targetFromPath(path: string): NsTarget {
  const m = /^\/run\/netns\/([^/]+)$/.exec(path)
  return { label: m?.[1] ?? path, path, ipName: m?.[1] }
}

export function targetFromRef(ref: NetnsRef): NsTarget {
  if (typeof ref === 'string') return targetFromPath(netnsPath(ref))
  if (ref.path === undefined) return { label: ref.label, path: undefined, ipName: undefined }
  return targetFromPath(ref.path)
}

const bool = (b: boolean): string => (b ? 'on' : 'off')

function checkBool(v: unknown, field: string): void {
  if (v !== undefined && typeof v !== 'boolean') throw new InvalidOptionError(`${field}: must be a boolean`)
}

/** Route arguments shared by add and del; validates everything. */
export function routeArgs(spec: RouteSpec): string {
  if (typeof spec !== 'object' || spec === null) throw new InvalidOptionError('route: required')
  const gw = spec.gateway === undefined ? undefined : validateIp(spec.gateway, 'gateway')
  const gwVersion = gw === undefined ? undefined : parseIp(gw).version
  let dst: string
  let version: 4 | 6 | undefined
  if (spec.destination === 'default' || spec.destination === 'default6') {
    version = spec.destination === 'default6' ? 6 : (gwVersion ?? 4)
    dst = version === 6 ? '::/0' : '0.0.0.0/0'
  } else {
    const d = validateDestination(spec.destination)
    dst = d.text
    version = d.prefix.version
  }
  if (gwVersion !== undefined && gwVersion !== version) {
    throw new InvalidAddressError(`gateway ${gw} is not of the destination's family (${dst})`)
  }
  const parts = [dst]
  if (gw !== undefined) parts.push('via', gw)
  if (spec.dev !== undefined) parts.push('dev', validateIfName(spec.dev, 'dev'))
  if (spec.scope !== undefined) {
    if (!['global', 'link', 'host'].includes(spec.scope)) throw new InvalidOptionError('scope: global, link or host')
    parts.push('scope', spec.scope)
  }
  if (spec.metric !== undefined) {
    if (!Number.isInteger(spec.metric) || spec.metric < 0 || spec.metric > 0xffffffff) {
      throw new InvalidOptionError('metric: must be an unsigned 32-bit integer')
    }
    parts.push('metric', String(spec.metric))
  }
  if (spec.table !== undefined) {
    if (!Number.isInteger(spec.table) || spec.table < 1 || spec.table > 0xffffffff) {
      throw new InvalidOptionError('table: must be an integer in 1..2^32-1')
    }
    parts.push('table', String(spec.table))
  }
  checkBool(spec.onlink, 'onlink')
  if (spec.onlink === true) parts.push('onlink')
  if (gw === undefined && spec.dev === undefined) {
    throw new InvalidOptionError(`route to ${dst}: needs a gateway or a dev`)
  }
  return parts.join(' ')
}

function fdbArgs(spec: FdbSpec): string {
  const parts = [validateMac(spec.mac, 'fdb.mac'), 'dev', validateIfName(spec.dev, 'fdb.dev')]
  if (spec.dst !== undefined) parts.push('dst', validateIp(spec.dst, 'fdb.dst'))
  if (spec.vlan !== undefined) {
    if (!Number.isInteger(spec.vlan) || spec.vlan < 1 || spec.vlan > 4094)
      throw new InvalidOptionError('fdb.vlan: 1..4094')
    parts.push('vlan', String(spec.vlan))
  }
  const on = spec.on ?? 'self'
  if (on !== 'self' && on !== 'master') throw new InvalidOptionError("fdb.on: 'self' or 'master'")
  parts.push(on)
  return parts.join(' ')
}

/**
 * Queues changes in one namespace onto a transaction. Methods validate synchronously (typed errors,
 * nothing queued on failure) and return `this` for chaining; nothing touches the kernel until commit.
 */
export class NetnsPlan {
  /** @internal */
  constructor(
    readonly tx: Transaction,
    readonly ns: NsTarget,
    protected readonly resolver: NsResolver,
  ) {}

  /** `link add … type bridge`, optional sysctls, addresses, up. Undo: delete the bridge. */
  createBridge(spec: BridgeSpec): this {
    const name = validateIfName(spec?.name, 'bridge.name')
    const parts = ['link add name', name]
    if (spec.mac !== undefined) parts.push('address', validateMac(spec.mac, 'bridge.mac'))
    if (spec.mtu !== undefined) parts.push('mtu', String(validateMtu(spec.mtu, 'bridge.mtu')))
    parts.push('type bridge')
    checkBool(spec.stp, 'bridge.stp')
    checkBool(spec.mcastSnooping, 'bridge.mcastSnooping')
    checkBool(spec.vlanFiltering, 'bridge.vlanFiltering')
    checkBool(spec.up, 'bridge.up')
    if (spec.stp !== undefined) parts.push('stp_state', spec.stp ? '1' : '0')
    if (spec.mcastSnooping !== undefined) parts.push('mcast_snooping', spec.mcastSnooping ? '1' : '0')
    if (spec.vlanFiltering !== undefined) parts.push('vlan_filtering', spec.vlanFiltering ? '1' : '0')
    const addrs = (spec.addresses ?? []).map((a, i) => validateCidr(a, `bridge.addresses[${i}]`))
    const sysctls = Object.entries(spec.sysctls ?? {}).map(
      ([k, v]) => [sysctlPath(k, 'bridge.sysctls'), sysctlValue(v, `bridge.sysctls[${k}]`)] as const,
    )
    this.tx.cmd('ip', this.ns, parts.join(' '), [{ tool: 'ip', ns: this.ns, line: `link del dev ${name}` }], 'link')
    this.tx.sysctl(
      this.ns,
      sysctls.map(([k]) => k),
      sysctls.map(([, v]) => v),
      false,
    )
    for (const a of addrs) {
      const text = formatCidr(a)
      this.tx.cmd('ip', this.ns, `addr add ${text} dev ${name}${a.ip.version === 6 ? ' nodad' : ''}`, [], 'entry')
    }
    if (spec.up !== false) this.tx.cmd('ip', this.ns, `link set dev ${name} up`)
    return this
  }

  /** `link add NAME … type veth peer name PEER …` in one line (master and up included). Undo: delete it. */
  createVeth(spec: VethSpec): this {
    const name = validateIfName(spec?.name, 'veth.name')
    const peer = validateIfName(spec.peerName, 'veth.peerName')
    const mtu = spec.mtu === undefined ? undefined : validateMtu(spec.mtu, 'veth.mtu')
    const parts = ['link add name', name]
    if (spec.mac !== undefined) parts.push('address', validateMac(spec.mac, 'veth.mac'))
    if (mtu !== undefined) parts.push('mtu', String(mtu))
    if (spec.master !== undefined) parts.push('master', validateIfName(spec.master, 'veth.master'))
    checkBool(spec.up, 'veth.up')
    if (spec.up !== false) parts.push('up')
    parts.push('type veth peer name', peer)
    if (spec.peerMac !== undefined) parts.push('address', validateMac(spec.peerMac, 'veth.peerMac'))
    if (mtu !== undefined) parts.push('mtu', String(mtu))
    if (spec.peerNetns !== undefined) parts.push('netns', this.resolver.refArg(this.resolver.target(spec.peerNetns)))
    this.tx.cmd('ip', this.ns, parts.join(' '), [{ tool: 'ip', ns: this.ns, line: `link del dev ${name}` }], 'link')
    return this
  }

  /** A VXLAN device (overlay). Undo: delete it. */
  createVxlan(spec: VxlanSpec): this {
    const name = validateIfName(spec?.name, 'vxlan.name')
    if (!Number.isInteger(spec.vni) || spec.vni < 1 || spec.vni > 0xffffff) {
      throw new InvalidOptionError('vxlan.vni: must be an integer in 1..16777215')
    }
    const port = spec.port ?? 4789
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new InvalidOptionError('vxlan.port: 1..65535')
    const parts = ['link add name', name]
    if (spec.mtu !== undefined) parts.push('mtu', String(validateMtu(spec.mtu, 'vxlan.mtu')))
    if (spec.master !== undefined) parts.push('master', validateIfName(spec.master, 'vxlan.master'))
    checkBool(spec.up, 'vxlan.up')
    if (spec.up !== false) parts.push('up')
    parts.push('type vxlan id', String(spec.vni), 'dstport', String(port))
    if (spec.local !== undefined) parts.push('local', validateIp(spec.local, 'vxlan.local'))
    for (const k of ['learning', 'proxy', 'l2miss', 'l3miss'] as const) checkBool(spec[k], `vxlan.${k}`)
    parts.push(spec.learning === true ? 'learning' : 'nolearning')
    if (spec.proxy === true) parts.push('proxy')
    if (spec.l2miss === true) parts.push('l2miss')
    if (spec.l3miss === true) parts.push('l3miss')
    this.tx.cmd('ip', this.ns, parts.join(' '), [{ tool: 'ip', ns: this.ns, line: `link del dev ${name}` }], 'link')
    return this
  }

  /**
   * `link set dev NAME …`. Undo covers `up` (→ down), `master` (→ nomaster / back), and `netns`/`newName`
   * (moved back under the old name); MTU and MAC changes are not reverted.
   */
  setLink(name: string, changes: LinkChanges): this {
    validateIfName(name, 'link')
    if (typeof changes !== 'object' || changes === null) throw new InvalidOptionError('changes: required')
    const parts = ['link set dev', name]
    const undo: string[] = []
    checkBool(changes.up, 'up')
    if (changes.up !== undefined) parts.push(changes.up ? 'up' : 'down')
    let undoNs = this.ns
    const finalName = changes.newName === undefined ? name : validateIfName(changes.newName, 'newName')
    if (changes.netns !== undefined) {
      const target = this.resolver.target(changes.netns)
      parts.push('netns', this.resolver.refArg(target))
      undoNs = target
    }
    if (changes.newName !== undefined) parts.push('name', finalName)
    if (changes.mac !== undefined) parts.push('address', validateMac(changes.mac))
    if (changes.mtu !== undefined) parts.push('mtu', String(validateMtu(changes.mtu)))
    if (changes.master === null) parts.push('nomaster')
    else if (changes.master !== undefined) {
      parts.push('master', validateIfName(changes.master, 'master'))
      undo.push('nomaster')
    }
    if (changes.up === true) undo.push('down')
    if (changes.netns !== undefined) undo.push('down', 'netns', this.resolver.refArg(this.ns))
    if (changes.newName !== undefined || changes.netns !== undefined) undo.push('name', name)
    const undos =
      undo.length > 0 ? [{ tool: 'ip' as const, ns: undoNs, line: `link set dev ${finalName} ${undo.join(' ')}` }] : []
    const hasChange = parts.length > 2
    if (hasChange) this.tx.cmd('ip', this.ns, parts.join(' '), undos, changes.newName !== undefined ? 'link' : 'none')
    const port: string[] = []
    for (const k of ['hairpin', 'learning', 'isolated'] as const) {
      checkBool(changes[k], k)
      const v = changes[k]
      if (v !== undefined) port.push(k === 'hairpin' ? 'hairpin' : k, bool(v))
    }
    if (port.length > 0) {
      const ns = changes.netns === undefined ? this.ns : undoNs
      this.tx.cmd('ip', ns, `link set dev ${finalName} type bridge_slave ${port.join(' ')}`)
    }
    if (!hasChange && port.length === 0) throw new InvalidOptionError('changes: nothing to change')
    return this
  }

  /** `link del dev NAME` (a veth takes its peer with it). Not undoable. */
  deleteLink(name: string): this {
    this.tx.cmd('ip', this.ns, `link del dev ${validateIfName(name, 'link')}`)
    return this
  }

  /** `addr add CIDR dev LINK` (IPv6: nodad unless `nodad: false`). Undo: delete it. */
  addAddress(link: string, cidr: string, options: AddressOptions = {}): this {
    validateIfName(link, 'link')
    const a = validateCidr(cidr)
    const text = formatCidr(a)
    const nodad = a.ip.version === 6 && options.nodad !== false ? ' nodad' : ''
    this.tx.cmd(
      'ip',
      this.ns,
      `addr add ${text} dev ${link}${nodad}`,
      [{ tool: 'ip', ns: this.ns, line: `addr del ${text} dev ${link}` }],
      'entry',
    )
    return this
  }

  deleteAddress(link: string, cidr: string): this {
    validateIfName(link, 'link')
    const a = validateCidr(cidr)
    this.tx.cmd('ip', this.ns, `addr del ${formatCidr(a)} dev ${link}`)
    return this
  }

  /** `route add …`. Undo: delete it. */
  addRoute(spec: RouteSpec): this {
    const args = routeArgs(spec)
    this.tx.cmd('ip', this.ns, `route add ${args}`, [{ tool: 'ip', ns: this.ns, line: `route del ${args}` }], 'entry')
    return this
  }

  deleteRoute(spec: RouteSpec): this {
    this.tx.cmd('ip', this.ns, `route del ${routeArgs(spec)}`)
    return this
  }

  /** A PERMANENT neighbour entry (replace semantics). Undo: delete it. */
  addNeighbor(spec: NeighborSpec): this {
    const ip = validateIp(spec?.ip, 'neighbor.ip')
    const mac = validateMac(spec.mac, 'neighbor.mac')
    const dev = validateIfName(spec.dev, 'neighbor.dev')
    this.tx.cmd(
      'ip',
      this.ns,
      `neigh replace ${ip} lladdr ${mac} dev ${dev} nud permanent`,
      [{ tool: 'ip', ns: this.ns, line: `neigh del ${ip} dev ${dev}` }],
      'entry',
    )
    return this
  }

  deleteNeighbor(spec: { ip: string; dev: string }): this {
    this.tx.cmd(
      'ip',
      this.ns,
      `neigh del ${validateIp(spec?.ip, 'neighbor.ip')} dev ${validateIfName(spec.dev, 'neighbor.dev')}`,
    )
    return this
  }

  /** A permanent bridge FDB entry (`bridge fdb replace`), e.g. a vxlan remote VTEP. Undo: delete it. */
  addFdb(spec: FdbSpec): this {
    const args = fdbArgs(spec)
    this.tx.cmd('bridge', this.ns, `fdb replace ${args} permanent`, [
      { tool: 'bridge', ns: this.ns, line: `fdb del ${args}` },
    ])
    return this
  }

  deleteFdb(spec: FdbSpec): this {
    this.tx.cmd('bridge', this.ns, `fdb del ${fdbArgs(spec)}`)
    return this
  }

  /** Sysctls in this namespace (native call, no launch); rollback writes the old values back. */
  setSysctls(values: Record<string, string | number>): this {
    if (typeof values !== 'object' || values === null) throw new InvalidOptionError('sysctls: required')
    const entries = Object.entries(values).map(([k, v]) => [sysctlPath(k), sysctlValue(v, k)] as const)
    this.tx.sysctl(
      this.ns,
      entries.map(([k]) => k),
      entries.map(([, v]) => v),
      true,
    )
    return this
  }

  /** A raw `ip` batch line (no undo), for what the typed methods do not cover. Validated against quoting only. */
  ipLine(line: string): this {
    if (typeof line !== 'string' || line.trim() === '' || /[\n\r"'\\#]/.test(line)) {
      throw new InvalidOptionError(
        `ip line: must be one line without quotes, backslashes or '#': ${JSON.stringify(line)}`,
      )
    }
    this.tx.cmd('ip', this.ns, line.trim())
    return this
  }
}
