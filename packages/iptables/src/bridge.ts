import { parseCidr, parseIp, parsePrefix, prefixContains, throwIfAborted, tryParseIp } from '@cnm/types'
import type { AbortOptions, ComponentLogger, IpAddr, IpVersion, Logger } from '@cnm/types'
import { InvalidFirewallOptionError, IptablesNotFoundError } from './errors.js'
import { isValidNetnsName, spawnCommand } from './internal/exec.js'
import type { CommandRunner } from './internal/exec.js'
import {
  assertInterfaceName,
  bridgeChains,
  canonicalIp,
  chainSetupChanges,
  maskedSubnet,
  networkRemovalChanges,
  networkRuleChanges,
  ownedChains,
} from './internal/layout.js'
import type { BridgeChains, NetworkRuleConfig } from './internal/layout.js'
import { Sysctl } from './internal/sysctl.js'
import { Iptables } from './iptables.js'
import type { ApplyResult, Change, IptablesBackend } from './iptables.js'

export type { BridgeChains } from './internal/layout.js'

export interface BridgeFirewallInit {
  /**
   * Network namespace that plays the host: a name under /run/netns or an absolute path to a
   * namespace file.
   * @default undefined (the namespace of this process)
   */
  netns?: string
  /**
   * Prefix of every chain cnm owns: `<P>`, `<P>-USER`, `<P>-ISOLATION-STAGE-1`,
   * `<P>-ISOLATION-STAGE-2`, `<P>-FORWARD`, `<P>-POSTROUTING`. Up to 10 characters, so cnm can run
   * next to Docker (which owns `DOCKER*`).
   * @default 'CNM'
   */
  chainPrefix?: string
  /**
   * Kernel-only port publishing (libnetwork's hairpin mode, userland proxy off): DNAT also for the
   * host's own traffic to 127.0.0.0/8, `route_localnet=1` on each bridge, MASQUERADE of
   * host-originated traffic into the bridge. Set false when a userland proxy serves loopback.
   * @default true
   */
  hairpin?: boolean
  /**
   * Manage ip6tables as well. When true but ip6tables is missing, IPv6 is skipped with a log
   * line and IPv6 subnets are refused.
   * @default true
   */
  ipv6?: boolean
  /** @default 'auto' */
  backend?: 'auto' | IptablesBackend
}

export interface BridgeFirewallComponents {
  logger: ComponentLogger
  /** Share existing instances (same namespace) instead of creating new ones. */
  iptables4?: Iptables
  iptables6?: Iptables
  runCommand?: CommandRunner
}

export const DEFAULT_BRIDGE_FIREWALL_INIT = Object.freeze({
  chainPrefix: 'CNM',
  hairpin: true,
  ipv6: true,
  backend: 'auto' as const,
})

export interface BridgeNetworkConfig {
  /** Bridge device name (must exist when `hairpin` or `icc: false` needs sysctls on it). */
  bridge: string
  /** IPv4 subnet (CIDR; host bits are ignored). */
  subnet: string
  /** IPv6 subnet, when the network has IPv6. */
  subnet6?: string
  /** Gateway addresses; checked to lie inside their subnet (the rules do not depend on them). */
  gateway?: string
  gateway6?: string
  /** Inter-container communication on the bridge. @default true */
  icc?: boolean
  /** NAT outbound traffic. @default true */
  masquerade?: boolean
  /** No outside connectivity (no NAT; two DROP rules in ISOLATION-STAGE-1). @default false */
  internal?: boolean
  /** SNAT to this IPv4 address instead of MASQUERADE. */
  hostIp?: string
  /** SNAT to this IPv6 address instead of MASQUERADE. */
  hostIp6?: string
  /**
   * Switch on IP forwarding in the namespace; if it had to be switched on, set the FORWARD policy to
   * DROP (IPv6: always DROP once forwarding is on), as Docker does.
   * @default false
   */
  enableIpForwarding?: boolean
}

export interface ProgramResult {
  /** Changes applied per family (0 when everything was already in place). */
  readonly applied: { readonly 4: number; readonly 6: number }
}

interface ResolvedNetwork {
  bridge: string
  v4: NetworkRuleConfig
  v6: NetworkRuleConfig | undefined
  icc: boolean
  enableIpForwarding: boolean
}

/**
 * The bridge driver's firewall: cnm's own chains in filter/nat/mangle (IPv4 and IPv6), the rules of
 * each bridge network, and exact cleanup. Every call is one atomic change set per family.
 */
export class BridgeFirewall {
  readonly netns: string | undefined
  readonly chains: BridgeChains
  readonly hairpin: boolean
  private readonly log: Logger
  private readonly v4: Iptables
  private readonly v6: Iptables | undefined
  private readonly sysctl: Sysctl
  private v6Usable: Promise<boolean> | undefined

  constructor(init: BridgeFirewallInit, components: BridgeFirewallComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidFirewallOptionError('init must be an object')
    const cfg = { ...DEFAULT_BRIDGE_FIREWALL_INIT, ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)) } as Required<
      Omit<BridgeFirewallInit, 'netns'>
    > & { netns?: string }
    if (cfg.netns !== undefined && (typeof cfg.netns !== 'string' || !isValidNetnsName(cfg.netns))) {
      throw new InvalidFirewallOptionError(`invalid netns name ${JSON.stringify(cfg.netns)}`)
    }
    if (typeof cfg.hairpin !== 'boolean') throw new InvalidFirewallOptionError('hairpin must be a boolean')
    if (typeof cfg.ipv6 !== 'boolean') throw new InvalidFirewallOptionError('ipv6 must be a boolean')
    this.chains = bridgeChains(cfg.chainPrefix)
    this.netns = cfg.netns
    this.hairpin = cfg.hairpin
    const runCommand = components.runCommand ?? spawnCommand
    const base = { ...(cfg.netns === undefined ? {} : { netns: cfg.netns }), backend: cfg.backend }
    const ipComponents = { logger: components.logger, runCommand }
    this.v4 = components.iptables4 ?? new Iptables({ ...base, family: 4 }, ipComponents)
    this.v6 = cfg.ipv6 ? (components.iptables6 ?? new Iptables({ ...base, family: 6 }, ipComponents)) : undefined
    for (const [ipt, family] of [[this.v4, 4], [this.v6, 6]] as const) {
      if (ipt !== undefined && (ipt.netns !== cfg.netns || ipt.family !== family)) {
        throw new InvalidFirewallOptionError(`iptables${family} must be an IPv${family} instance for netns ${cfg.netns ?? '(current)'}`)
      }
    }
    this.sysctl = new Sysctl(runCommand, cfg.netns)
    this.log = components.logger.forComponent('cnm:iptables:bridge').child(cfg.netns ?? 'root')
  }

  /** The Iptables instance of a family (IPv6: undefined when disabled or ip6tables is missing). */
  async iptables(family: IpVersion, options: AbortOptions = {}): Promise<Iptables | undefined> {
    if (family === 4) return this.v4
    return (await this.ipv6Usable(options)) ? this.v6 : undefined
  }

  /** Creates cnm's chains and the jumps into them (idempotent; re-pins the FORWARD head order). */
  async setupBridgeChains(options: AbortOptions = {}): Promise<ProgramResult> {
    throwIfAborted(options.signal)
    const r4 = await this.v4.apply(chainSetupChanges(this.chains, 4, this.hairpin), options)
    let r6: ApplyResult | undefined
    if (await this.ipv6Usable(options)) {
      try {
        r6 = await (this.v6 as Iptables).apply(chainSetupChanges(this.chains, 6, this.hairpin), options)
      } catch (err) {
        await this.undo(this.v4, r4)
        throw err
      }
    }
    if (r4.applied + (r6?.applied ?? 0) > 0) this.log('set up chains %s*', this.chains.main)
    return { applied: { 4: r4.applied, 6: r6?.applied ?? 0 } }
  }

  /**
   * Programs one bridge network (chains are set up too, so this can be the first call). Input is
   * validated before anything changes.
   */
  async programBridgeNetwork(config: BridgeNetworkConfig, options: AbortOptions = {}): Promise<ProgramResult> {
    throwIfAborted(options.signal)
    const n = this.resolve(config)
    if (n.v6 !== undefined && !(await this.ipv6Usable(options))) {
      throw new IptablesNotFoundError(`ip6tables is missing (needed for ${n.bridge}'s IPv6 subnet)`)
    }
    // sysctls first: they need the bridge to exist, and a failure leaves no rules behind
    // written blindly (idempotent): one process instead of a read and a write
    if (this.hairpin) await this.sysctl.write(`net/ipv4/conf/${n.bridge}/route_localnet`, '1', options.signal)
    if (!n.icc) {
      const key = 'net/bridge/bridge-nf-call-iptables'
      if ((await this.sysctl.read(key, options.signal)) === undefined) {
        this.log.error('%s: icc=false needs br_netfilter (net.bridge.* missing); bridged traffic is not filtered', n.bridge)
      } else {
        await this.sysctl.ensure(key, '1', options.signal)
        if (n.v6 !== undefined) await this.sysctl.ensure('net/bridge/bridge-nf-call-ip6tables', '1', options.signal)
      }
    }
    const extra4: Change[] = []
    const extra6: Change[] = []
    if (n.enableIpForwarding) {
      if (await this.sysctl.ensure('net/ipv4/ip_forward', '1', options.signal)) {
        extra4.push({ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' })
        this.log('enabled IPv4 forwarding; FORWARD policy DROP')
      }
      if (n.v6 !== undefined) {
        await this.sysctl.ensure('net/ipv6/conf/default/forwarding', '1', options.signal)
        await this.sysctl.ensure('net/ipv6/conf/all/forwarding', '1', options.signal)
        extra6.push({ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' })
      }
    }
    const r4 = await this.v4.apply(
      [...chainSetupChanges(this.chains, 4, this.hairpin), ...extra4, ...networkRuleChanges(this.chains, n.v4)],
      options,
    )
    let r6: ApplyResult | undefined
    if (await this.ipv6Usable(options)) {
      try {
        r6 = await (this.v6 as Iptables).apply(
          [
            ...chainSetupChanges(this.chains, 6, this.hairpin),
            ...extra6,
            ...(n.v6 === undefined ? [] : networkRuleChanges(this.chains, n.v6)),
          ],
          options,
        )
      } catch (err) {
        await this.undo(this.v4, r4)
        throw err
      }
    }
    this.log('programmed network rules for %s (%d+%d changes)', n.bridge, r4.applied, r6?.applied ?? 0)
    return { applied: { 4: r4.applied, 6: r6?.applied ?? 0 } }
  }

  /**
   * Removes one bridge network's rules (both ICC variants), plus any port-mapping rules for the
   * bridge or its subnets still left in cnm's chains (after a crash). Sysctls are left as they are.
   */
  async removeBridgeNetwork(config: BridgeNetworkConfig, options: AbortOptions = {}): Promise<ProgramResult> {
    throwIfAborted(options.signal)
    const n = this.resolve(config)
    const r4 = await this.v4.apply(
      [...this.leftoverMappingRules(n.v4), ...networkRemovalChanges(this.chains, n.v4)],
      options,
    )
    let applied6 = 0
    if (n.v6 !== undefined && (await this.ipv6Usable(options))) {
      const v6 = this.v6 as Iptables
      try {
        const r6 = await v6.apply(
          [...this.leftoverMappingRules(n.v6), ...networkRemovalChanges(this.chains, n.v6)],
          options,
        )
        applied6 = r6.applied
      } catch (err) {
        await this.undo(this.v4, r4)
        throw err
      }
    }
    this.log('removed network rules for %s', n.bridge)
    return { applied: { 4: r4.applied, 6: applied6 } }
  }

  /**
   * Removes exactly what cnm created: its chains (with all their rules) and every rule in any
   * chain that jumps to them, in both families. Nothing else is touched; sysctls stay as they are.
   */
  async cleanupAll(options: AbortOptions = {}): Promise<ProgramResult> {
    throwIfAborted(options.signal)
    const changes: Change[] = ownedChains(this.chains).map(({ table, chain }) => ({ op: 'deleteChain', table, chain }))
    const r4 = await this.v4.apply(changes, options)
    let applied6 = 0
    if (await this.ipv6Usable(options)) applied6 = (await (this.v6 as Iptables).apply(changes, options)).applied
    this.log('removed all %s* chains', this.chains.main)
    return { applied: { 4: r4.applied, 6: applied6 } }
  }

  private resolve(config: BridgeNetworkConfig): ResolvedNetwork {
    if (config === null || typeof config !== 'object') throw new InvalidFirewallOptionError('network config must be an object')
    assertInterfaceName(config.bridge, 'bridge')
    const bool = (v: unknown, field: string, dflt: boolean): boolean => {
      if (v === undefined) return dflt
      if (typeof v !== 'boolean') throw new InvalidFirewallOptionError(`${field} must be a boolean`)
      return v
    }
    const icc = bool(config.icc, 'icc', true)
    const masquerade = bool(config.masquerade, 'masquerade', true)
    const internal = bool(config.internal, 'internal', false)
    const enableIpForwarding = bool(config.enableIpForwarding, 'enableIpForwarding', false)
    const subnet = maskedSubnet(config.subnet, 'subnet', 4)
    if (subnet.endsWith('/0')) throw new InvalidFirewallOptionError('subnet must not be 0.0.0.0/0')
    const subnet6 = config.subnet6 === undefined ? undefined : maskedSubnet(config.subnet6, 'subnet6', 6)
    if (subnet6?.endsWith('/0') === true) throw new InvalidFirewallOptionError('subnet6 must not be ::/0')
    if (config.gateway !== undefined) inside(canonicalIp(config.gateway, 'gateway', 4), config.subnet, 'gateway')
    if (config.gateway6 !== undefined) {
      if (subnet6 === undefined) throw new InvalidFirewallOptionError('gateway6 needs subnet6')
      inside(canonicalIp(config.gateway6, 'gateway6', 6), config.subnet6 as string, 'gateway6')
    }
    const hostIp = config.hostIp === undefined ? undefined : canonicalIp(config.hostIp, 'hostIp', 4)
    const hostIp6 = config.hostIp6 === undefined ? undefined : canonicalIp(config.hostIp6, 'hostIp6', 6)
    const common = { bridge: config.bridge, icc, masquerade, internal, hairpin: this.hairpin }
    return {
      bridge: config.bridge,
      icc,
      enableIpForwarding,
      v4: { ...common, subnet, hostIp },
      v6: subnet6 === undefined ? undefined : { ...common, subnet: subnet6, hostIp: hostIp6 },
    }
  }

  /** Deletes, in cnm's chains, port-mapping rules left for this bridge or subnet (after a crash). */
  private leftoverMappingRules(n: NetworkRuleConfig): Change[] {
    const net = parsePrefix(n.subnet)
    const inNet = (value: string | undefined): boolean => {
      const ip = addressIn(value)
      return ip !== undefined && prefixContains(net, ip)
    }
    const where = (rule: readonly string[]): boolean => {
      const value = (opt: string): string | undefined => {
        const i = rule.indexOf(opt)
        return i >= 0 ? rule[i + 1] : undefined
      }
      const mentionsBridge = value('-i') === n.bridge || value('-o') === n.bridge
      return mentionsBridge || inNet(value('--to-destination')) || inNet(value('-d')) || inNet(value('-s'))
    }
    return [
      { op: 'deleteWhere', table: 'nat', chain: this.chains.main, where },
      { op: 'deleteWhere', table: 'filter', chain: this.chains.main, where },
      { op: 'deleteWhere', table: 'nat', chain: this.chains.postrouting, where },
    ]
  }

  private async ipv6Usable(options: AbortOptions): Promise<boolean> {
    if (this.v6 === undefined) return false
    if (this.v6Usable === undefined) {
      const v6 = this.v6
      this.v6Usable = v6.backend(options).then(
        () => true,
        (err: unknown) => {
          this.log.error('IPv6 firewall disabled: %s', (err as Error).message)
          return false
        },
      )
    }
    return await this.v6Usable
  }

  private async undo(ipt: Iptables, r: ApplyResult): Promise<void> {
    if (r.undo.length === 0) return
    try {
      await ipt.apply(r.undo)
    } catch (err) {
      this.log.error('undoing IPv%d changes after a failure failed: %s', ipt.family, (err as Error).message)
    }
  }
}

function inside(ip: string, subnet: string, field: string): void {
  if (!prefixContains(parseCidr(subnet).prefix, parseIp(ip))) {
    throw new InvalidFirewallOptionError(`${field} ${ip} is not inside ${subnet}`)
  }
}

/** The address in `-d 10.0.0.2/32`, `--to-destination 10.0.0.2:80` or `[fd00::2]:80`. */
function addressIn(value: string | undefined): IpAddr | undefined {
  if (value === undefined) return undefined
  let v = value.replace(/\/\d+$/, '')
  const bracket = /^\[([^\]]+)\](?::\d+)?$/.exec(v)
  if (bracket !== null) v = bracket[1] as string
  else if (/^\d+\.\d+\.\d+\.\d+:\d+(-\d+)?$/.test(v)) v = v.slice(0, v.indexOf(':'))
  return tryParseIp(v)
}

/** Creates the bridge firewall for one namespace. */
export function bridgeFirewall(init: BridgeFirewallInit, components: BridgeFirewallComponents): BridgeFirewall {
  return new BridgeFirewall(init, components)
}
