import { formatIp, formatPrefix, parseCidr, parseIp } from '@cnm/types'
import type { IpVersion } from '@cnm/types'
import { InvalidFirewallOptionError } from '../errors.js'
import type { Change, RuleChange } from '../iptables.js'
import { MAX_CHAIN_NAME_LENGTH } from './rule.js'

/** The chain names cnm owns, derived from one prefix. */
export interface BridgeChains {
  /** nat: DNAT of published ports; filter: ACCEPT of published ports. */
  readonly main: string
  /** filter: user rules, jumped to first from FORWARD; ends with RETURN. */
  readonly user: string
  readonly isolation1: string
  readonly isolation2: string
  /** filter: the per-bridge rules Docker puts straight into FORWARD. */
  readonly forward: string
  /** nat: MASQUERADE/SNAT rules; mangle: SCTP checksum fill. */
  readonly postrouting: string
}

const LONGEST_SUFFIX = '-ISOLATION-STAGE-1'
export const MAX_PREFIX_LENGTH = MAX_CHAIN_NAME_LENGTH - LONGEST_SUFFIX.length

export function bridgeChains(prefix: string): BridgeChains {
  if (typeof prefix !== 'string' || !/^[A-Za-z][A-Za-z0-9_]*$/.test(prefix) || prefix.length > MAX_PREFIX_LENGTH) {
    throw new InvalidFirewallOptionError(
      `chainPrefix must be 1-${MAX_PREFIX_LENGTH} characters of [A-Za-z0-9_] starting with a letter, got ${JSON.stringify(prefix)}`,
    )
  }
  return Object.freeze({
    main: prefix,
    user: `${prefix}-USER`,
    isolation1: `${prefix}-ISOLATION-STAGE-1`,
    isolation2: `${prefix}-ISOLATION-STAGE-2`,
    forward: `${prefix}-FORWARD`,
    postrouting: `${prefix}-POSTROUTING`,
  })
}

/** Every (table, chain) cnm may create, for cleanup. */
export function ownedChains(c: BridgeChains): Array<{ table: 'filter' | 'nat' | 'mangle'; chain: string }> {
  return [
    { table: 'filter', chain: c.user },
    { table: 'filter', chain: c.isolation1 },
    { table: 'filter', chain: c.isolation2 },
    { table: 'filter', chain: c.forward },
    { table: 'filter', chain: c.main },
    { table: 'nat', chain: c.main },
    { table: 'nat', chain: c.postrouting },
    { table: 'mangle', chain: c.postrouting },
  ]
}

export function assertInterfaceName(name: unknown, field: string): asserts name is string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_.:@-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new InvalidFirewallOptionError(
      `${field} must be an interface name (1-15 characters, no spaces or '/'), got ${JSON.stringify(name)}`,
    )
  }
}

/** Parses `addr/len` and returns the masked network text (`10.1.2.3/24` → `10.1.2.0/24`). */
export function maskedSubnet(cidr: unknown, field: string, family: IpVersion): string {
  try {
    const c = parseCidr(cidr as string)
    if (c.ip.version !== family) throw new Error(`not IPv${family}`)
    return formatPrefix(c.prefix)
  } catch (err) {
    throw new InvalidFirewallOptionError(`${field} must be an IPv${family} CIDR, got ${JSON.stringify(cidr)}`, {
      cause: err,
    })
  }
}

export function canonicalIp(ip: unknown, field: string, family?: IpVersion): string {
  try {
    const a = parseIp(ip as string)
    if (family !== undefined && a.version !== family) throw new Error(`not IPv${family}`)
    return formatIp(a)
  } catch (err) {
    throw new InvalidFirewallOptionError(
      `${field} must be an IP${family === undefined ? '' : `v${family}`} address, got ${JSON.stringify(ip)}`,
      { cause: err },
    )
  }
}

/** The chains and jumps every bridge network needs; idempotent. */
export function chainSetupChanges(c: BridgeChains, family: IpVersion, hairpin: boolean): Change[] {
  const loopback = family === 4 ? '127.0.0.0/8' : '::1/128'
  const localJump = ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', c.main]
  const localJumpNoLoopback = ['!', '-d', loopback, ...localJump]
  return [
    { op: 'ensureChain', table: 'filter', chain: c.main },
    { op: 'ensureChain', table: 'filter', chain: c.user },
    { op: 'ensureChain', table: 'filter', chain: c.isolation1 },
    { op: 'ensureChain', table: 'filter', chain: c.isolation2 },
    { op: 'ensureChain', table: 'filter', chain: c.forward },
    { op: 'ensure', table: 'filter', chain: c.user, rule: ['-j', 'RETURN'] },
    { op: 'ensure', table: 'filter', chain: c.isolation1, rule: ['-j', 'RETURN'] },
    { op: 'ensure', table: 'filter', chain: c.isolation2, rule: ['-j', 'RETURN'] },
    // FORWARD head order as Docker keeps it: USER, ISOLATION-STAGE-1, then the per-bridge rules
    { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', c.user], position: 1, pin: true },
    { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', c.isolation1], position: 2, pin: true },
    { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', c.forward], position: 3, pin: true },
    { op: 'ensureChain', table: 'nat', chain: c.main },
    { op: 'ensureChain', table: 'nat', chain: c.postrouting },
    { op: 'ensure', table: 'nat', chain: 'PREROUTING', rule: localJump },
    // with hairpin (no userland proxy) the host's own loopback traffic is DNATed too
    { op: 'delete', table: 'nat', chain: 'OUTPUT', rule: hairpin ? localJumpNoLoopback : localJump },
    { op: 'ensure', table: 'nat', chain: 'OUTPUT', rule: hairpin ? localJump : localJumpNoLoopback },
    { op: 'ensure', table: 'nat', chain: 'POSTROUTING', rule: ['-j', c.postrouting] },
  ]
}

export interface NetworkRuleConfig {
  bridge: string
  /** Masked subnet of this family. */
  subnet: string
  icc: boolean
  masquerade: boolean
  internal: boolean
  /** SNAT source instead of MASQUERADE. */
  hostIp: string | undefined
  hairpin: boolean
}

/** The rules of one bridge network (drivers.md §3.5), as ensure/insert changes. */
export function networkRuleChanges(c: BridgeChains, n: NetworkRuleConfig): RuleChange[] {
  const br = n.bridge
  const iccAccept = ['-i', br, '-o', br, '-j', 'ACCEPT']
  const iccDrop = ['-i', br, '-o', br, '-j', 'DROP']
  const out: RuleChange[] = []
  if (n.internal) {
    out.push(
      {
        op: 'insert',
        table: 'filter',
        chain: c.isolation1,
        rule: ['!', '-d', n.subnet, '-i', br, '-j', 'DROP'],
        position: 1,
      },
      {
        op: 'insert',
        table: 'filter',
        chain: c.isolation1,
        rule: ['!', '-s', n.subnet, '-o', br, '-j', 'DROP'],
        position: 1,
      },
    )
  } else {
    const nat = n.hostIp === undefined ? ['-j', 'MASQUERADE'] : ['-j', 'SNAT', '--to-source', n.hostIp]
    if (n.masquerade) {
      out.push({ op: 'ensure', table: 'nat', chain: c.postrouting, rule: ['-s', n.subnet, '!', '-o', br, ...nat] })
      if (!n.hairpin) out.push({ op: 'ensure', table: 'nat', chain: c.main, rule: ['-i', br, '-j', 'RETURN'] })
    }
    if (n.hairpin) {
      // host-originated traffic into the bridge (including 127.0.0.0/8 sources after DNAT of
      // loopback connections, thanks to route_localnet) leaves with the bridge's address
      out.push({
        op: 'ensure',
        table: 'nat',
        chain: c.postrouting,
        rule: ['-o', br, '-m', 'addrtype', '--src-type', 'LOCAL', ...nat],
      })
    }
    out.push(
      {
        op: 'ensure',
        table: 'filter',
        chain: c.forward,
        rule: ['-o', br, '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
      },
      { op: 'ensure', table: 'filter', chain: c.forward, rule: ['-o', br, '-j', c.main] },
      { op: 'ensure', table: 'filter', chain: c.forward, rule: ['-i', br, '!', '-o', br, '-j', 'ACCEPT'] },
      {
        op: 'insert',
        table: 'filter',
        chain: c.isolation1,
        rule: ['-i', br, '!', '-o', br, '-j', c.isolation2],
        position: 1,
      },
      { op: 'insert', table: 'filter', chain: c.isolation2, rule: ['-o', br, '-j', 'DROP'], position: 1 },
    )
  }
  out.push(
    { op: 'delete', table: 'filter', chain: c.forward, rule: n.icc ? iccDrop : iccAccept },
    { op: 'ensure', table: 'filter', chain: c.forward, rule: n.icc ? iccAccept : iccDrop },
  )
  return out
}

/** Turns the ensure/insert changes of networkRuleChanges into deletes, plus both ICC variants. */
export function networkRemovalChanges(c: BridgeChains, n: NetworkRuleConfig): RuleChange[] {
  const seen = new Set<string>()
  const out: RuleChange[] = []
  const variants = [
    { ...n, icc: true },
    { ...n, icc: false },
  ]
  for (const v of variants) {
    for (const ch of networkRuleChanges(c, v)) {
      const key = `${ch.table} ${ch.chain} ${ch.rule.join(' ')}`
      if (seen.has(key)) continue
      seen.add(key)
      out.push({ op: 'delete', table: ch.table, chain: ch.chain, rule: ch.rule })
    }
  }
  return out
}

export type Protocol = 'tcp' | 'udp' | 'sctp'

export interface MappingRuleConfig {
  proto: Protocol
  /** undefined for the unspecified address (all host addresses). */
  hostIp: string | undefined
  hostPort: number
  containerIp: string
  containerPort: number
  bridge: string
  hairpin: boolean
  family: IpVersion
}

/** The rules of one port mapping (drivers.md §3.6), as ensure changes. */
export function mappingRuleChanges(c: BridgeChains, m: MappingRuleConfig): RuleChange[] {
  const to = m.family === 4 ? `${m.containerIp}:${m.containerPort}` : `[${m.containerIp}]:${m.containerPort}`
  const dnat = [
    ...(m.hostIp === undefined ? [] : ['-d', m.hostIp]),
    ...(m.hairpin ? [] : ['!', '-i', m.bridge]),
    '-p',
    m.proto,
    '-m',
    m.proto,
    '--dport',
    String(m.hostPort),
    '-j',
    'DNAT',
    '--to-destination',
    to,
  ]
  const out: RuleChange[] = [
    { op: 'ensure', table: 'nat', chain: c.main, rule: dnat },
    {
      op: 'ensure',
      table: 'filter',
      chain: c.main,
      rule: [
        '-d',
        m.containerIp,
        '!',
        '-i',
        m.bridge,
        '-o',
        m.bridge,
        '-p',
        m.proto,
        '-m',
        m.proto,
        '--dport',
        String(m.containerPort),
        '-j',
        'ACCEPT',
      ],
    },
    {
      op: 'ensure',
      table: 'nat',
      chain: c.postrouting,
      rule: [
        '-s',
        m.containerIp,
        '-d',
        m.containerIp,
        '-p',
        m.proto,
        '-m',
        m.proto,
        '--dport',
        String(m.containerPort),
        '-j',
        'MASQUERADE',
      ],
    },
  ]
  if (m.proto === 'sctp') {
    out.push({
      op: 'ensure',
      table: 'mangle',
      chain: c.postrouting,
      rule: ['-p', 'sctp', '-m', 'sctp', '--sport', String(m.containerPort), '-j', 'CHECKSUM', '--checksum-fill'],
    })
  }
  return out
}

/** The mangle chain and its jump, needed only by SCTP mappings. */
export function sctpChainChanges(c: BridgeChains): Change[] {
  return [
    { op: 'ensureChain', table: 'mangle', chain: c.postrouting },
    { op: 'ensure', table: 'mangle', chain: 'POSTROUTING', rule: ['-j', c.postrouting] },
  ]
}
