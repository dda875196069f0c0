import { isCnmError, parseCidr, parseIp, parsePrefix, prefixContains, throwIfAborted, tryParseIp } from '@cnm/types'
import type { AbortOptions, ComponentLogger, IpAddr, IpVersion, Logger } from '@cnm/types'
import { CommandFailure, InvalidFirewallOptionError, IptablesCommandError, IptablesNotFoundError } from './errors.js'
import { inNetns, isValidNetnsName, spawnCommand } from './internal/exec.js'
import type { CommandRunner } from './internal/exec.js'
import { residentCommandRunner } from './internal/resident.js'
import type { ResidentCommandRunner } from './internal/resident.js'
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
import { assertProtocol } from './port-allocator.js'
import type { Protocol } from './port-allocator.js'

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
  /**
   * Run iptables, sysctl and conntrack through one long-lived shell shared by both families, instead
   * of one Node `spawn` per command. Ignored when `runCommand` is injected. `close()` ends it.
   * @default true
   */
  resident?: boolean
  /** Milliseconds the resident shell and writers stay alive without work. @default 10000 */
  residentIdleMs?: number
  /**
   * nft backend: the Iptables instances the firewall makes write through a resident
   * `iptables-nft-restore` acknowledged by `xtables-monitor` (`IptablesInit.residentWriter`): a port
   * mapping then starts no process. They run inside `netns` (keeping it alive while they run). Ignored
   * when `runCommand` is injected.
   * @default true
   */
  residentWriter?: boolean
}

export interface BridgeFirewallComponents {
  logger: ComponentLogger
  /**
   * Share existing instances (same namespace) instead of creating new ones. cnm's chains are claimed
   * on them (`Iptables.claimChains`): nothing else may write those chains through them.
   */
  iptables4?: Iptables
  iptables6?: Iptables
  /** Runs one command. @default a resident shell owned by the firewall (`resident: true`) */
  runCommand?: CommandRunner
}

export const DEFAULT_BRIDGE_FIREWALL_INIT = Object.freeze({
  chainPrefix: 'CNM',
  hairpin: true,
  ipv6: true,
  backend: 'auto' as const,
  resident: true,
  residentIdleMs: 10_000,
  residentWriter: true,
})

/** Processes of a BridgeFirewall (for benchmarks and diagnostics). */
export interface BridgeFirewallStats {
  /** Processes Node started for the firewall: resident shells and resident writers. */
  readonly launches: number
  /** Commands run through the firewall's resident shell (iptables-save, sysctl, conntrack, …). */
  readonly commands: number
}

/** What `enableForwarding` did. */
export interface ForwardingResult {
  /** Per family: forwarding had to be switched on (and the filter FORWARD policy was set to DROP). */
  readonly enabled: { readonly 4: boolean; readonly 6: boolean }
}

export interface ForwardingOptions extends AbortOptions {
  /**
   * Also IPv6: `net.ipv6.conf.{default,all}.forwarding=1` and the ip6tables FORWARD policy DROP
   * (always, as Docker does with ip6tables). Skipped when ip6tables is not managed.
   * @default false
   */
  ipv6?: boolean
}

/** Connection-tracking entries of one published port, to flush when it is unpublished. */
export interface ConntrackFlow {
  readonly family: IpVersion
  readonly proto: Protocol
  /** The host address the port was published on; the unspecified address matches every address. */
  readonly hostIp?: string
  readonly hostPort: number
}

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
  private readonly runCommand: CommandRunner
  private readonly ownRunner: ResidentCommandRunner | undefined
  /** The Iptables instances this firewall made (closed with it). */
  private readonly ownIptables: Iptables[] = []
  private v6Usable: Promise<boolean> | undefined
  /** IPv6 chains and jumps were set up by this instance (v4-only networks then skip ip6tables). */
  private ready6 = false

  constructor(init: BridgeFirewallInit, components: BridgeFirewallComponents) {
    if (init === null || typeof init !== 'object') throw new InvalidFirewallOptionError('init must be an object')
    const cfg = {
      ...DEFAULT_BRIDGE_FIREWALL_INIT,
      ...Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined)),
    } as Required<Omit<BridgeFirewallInit, 'netns'>> & { netns?: string }
    if (cfg.netns !== undefined && (typeof cfg.netns !== 'string' || !isValidNetnsName(cfg.netns))) {
      throw new InvalidFirewallOptionError(`invalid netns name ${JSON.stringify(cfg.netns)}`)
    }
    if (typeof cfg.hairpin !== 'boolean') throw new InvalidFirewallOptionError('hairpin must be a boolean')
    if (typeof cfg.ipv6 !== 'boolean') throw new InvalidFirewallOptionError('ipv6 must be a boolean')
    if (typeof cfg.resident !== 'boolean') throw new InvalidFirewallOptionError('resident must be a boolean')
    if (!Number.isInteger(cfg.residentIdleMs) || cfg.residentIdleMs < 0) {
      throw new InvalidFirewallOptionError(
        `residentIdleMs must be a non-negative integer, got ${String(cfg.residentIdleMs)}`,
      )
    }
    if (typeof cfg.residentWriter !== 'boolean')
      throw new InvalidFirewallOptionError('residentWriter must be a boolean')
    this.chains = bridgeChains(cfg.chainPrefix)
    this.netns = cfg.netns
    this.hairpin = cfg.hairpin
    if (components.runCommand !== undefined) {
      this.runCommand = components.runCommand
    } else if (cfg.resident) {
      this.ownRunner = residentCommandRunner({ idleMs: cfg.residentIdleMs })
      this.runCommand = this.ownRunner
    } else {
      this.runCommand = spawnCommand
    }
    const runCommand = this.runCommand
    const base = {
      ...(cfg.netns === undefined ? {} : { netns: cfg.netns }),
      backend: cfg.backend,
      residentIdleMs: cfg.residentIdleMs,
      residentWriter: cfg.residentWriter && components.runCommand === undefined,
    }
    const ipComponents = { logger: components.logger, runCommand }
    const make = (family: IpVersion): Iptables => {
      const ipt = new Iptables({ ...base, family }, ipComponents)
      this.ownIptables.push(ipt)
      return ipt
    }
    this.v4 = components.iptables4 ?? make(4)
    this.v6 = cfg.ipv6 ? (components.iptables6 ?? make(6)) : undefined
    for (const [ipt, family] of [
      [this.v4, 4],
      [this.v6, 6],
    ] as const) {
      if (ipt !== undefined && (ipt.netns !== cfg.netns || ipt.family !== family)) {
        throw new InvalidFirewallOptionError(
          `iptables${family} must be an IPv${family} instance for netns ${cfg.netns ?? '(current)'}`,
        )
      }
    }
    // cnm alone writes these chains: port mappings and per-network rules are planned from memory.
    // <P>-USER is left out: like DOCKER-USER it is meant for the administrator's own rules.
    const c = this.chains
    const owned = [c.main, c.isolation1, c.isolation2, c.forward, c.postrouting]
    this.v4.claimChains(owned)
    this.v6?.claimChains(owned)
    this.sysctl = new Sysctl(runCommand, cfg.netns)
    this.log = components.logger.forComponent('cnm:iptables:bridge').child(cfg.netns ?? 'root')
  }

  /** Processes started and commands run so far. */
  get stats(): BridgeFirewallStats {
    const writers = this.ownIptables.reduce((n, ipt) => n + ipt.stats.writerLaunches, 0)
    return { launches: (this.ownRunner?.stats.launches ?? 0) + writers, commands: this.ownRunner?.stats.commands ?? 0 }
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
        this.ready6 = true
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
        this.log.error(
          '%s: icc=false needs br_netfilter (net.bridge.* missing); bridged traffic is not filtered',
          n.bridge,
        )
      } else {
        await this.sysctl.ensure(key, '1', options.signal)
        if (n.v6 !== undefined) await this.sysctl.ensure('net/bridge/bridge-nf-call-ip6tables', '1', options.signal)
      }
    }
    const fwd = n.enableIpForwarding
      ? await this.forwardingChanges(n.v6 !== undefined, options.signal)
      : { 4: [], 6: [] }
    const r4 = await this.v4.apply(
      [...chainSetupChanges(this.chains, 4, this.hairpin), ...fwd[4], ...networkRuleChanges(this.chains, n.v4)],
      options,
    )
    let r6: ApplyResult | undefined
    // a v4-only network needs ip6tables only while cnm's IPv6 chains are not set up yet
    if ((n.v6 !== undefined || !this.ready6) && (await this.ipv6Usable(options))) {
      try {
        r6 = await (this.v6 as Iptables).apply(
          [
            ...chainSetupChanges(this.chains, 6, this.hairpin),
            ...fwd[6],
            ...(n.v6 === undefined ? [] : networkRuleChanges(this.chains, n.v6)),
          ],
          options,
        )
        this.ready6 = true
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
    this.ready6 = false
    this.log('removed all %s* chains', this.chains.main)
    return { applied: { 4: r4.applied, 6: applied6 } }
  }

  /**
   * Driver start (drivers.md §3.1): ensures `net.ipv4.ip_forward=1` in the namespace; if it had to be
   * switched on, the filter FORWARD policy becomes DROP. With `ipv6` (and ip6tables managed) also
   * IPv6 forwarding (`default` and `all`) and the ip6tables FORWARD policy DROP. The policies are
   * never put back. Idempotent; one sysctl read when forwarding is already on.
   */
  async enableForwarding(options: ForwardingOptions = {}): Promise<ForwardingResult> {
    throwIfAborted(options.signal)
    const ipv6 = options.ipv6 === true && (await this.ipv6Usable(options))
    const fwd = await this.forwardingChanges(ipv6, options.signal)
    const r4 = await this.v4.apply(fwd[4], options)
    if (ipv6) {
      try {
        await (this.v6 as Iptables).apply(fwd[6], options)
      } catch (err) {
        await this.undo(this.v4, r4)
        throw err
      }
    }
    return { enabled: { 4: fwd[4].length > 0, 6: fwd.enabled6 } }
  }

  /** Sysctls for forwarding, and the FORWARD policy changes that go with them. */
  private async forwardingChanges(
    ipv6: boolean,
    signal?: AbortSignal,
  ): Promise<{ 4: Change[]; 6: Change[]; enabled6: boolean }> {
    const out: { 4: Change[]; 6: Change[]; enabled6: boolean } = { 4: [], 6: [], enabled6: false }
    if (await this.sysctl.ensure('net/ipv4/ip_forward', '1', signal)) {
      out[4].push({ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' })
      this.log('enabled IPv4 forwarding; FORWARD policy DROP')
    }
    if (ipv6) {
      const a = await this.sysctl.ensure('net/ipv6/conf/default/forwarding', '1', signal)
      const b = await this.sysctl.ensure('net/ipv6/conf/all/forwarding', '1', signal)
      out.enabled6 = a || b
      out[6].push({ op: 'policy', table: 'filter', chain: 'FORWARD', policy: 'DROP' })
    }
    return out
  }

  /**
   * Deletes the connection-tracking entries of unpublished ports (`conntrack -D -p P --orig-port-dst
   * HP [--orig-dst HOSTIP]` in the namespace), so that, for UDP above all, packets of an existing flow
   * stop going to the old container. Returns how many entries were deleted. Needs the `conntrack`
   * tool (conntrack-tools).
   */
  async flushConntrack(flows: readonly ConntrackFlow[], options: AbortOptions = {}): Promise<number> {
    throwIfAborted(options.signal)
    const argvs = flows.map((f) => {
      if (f === null || typeof f !== 'object' || (f.family !== 4 && f.family !== 6)) {
        throw new InvalidFirewallOptionError('a conntrack flow needs family 4 or 6')
      }
      assertProtocol(f.proto)
      if (!Number.isInteger(f.hostPort) || f.hostPort < 1 || f.hostPort > 65535) {
        throw new InvalidFirewallOptionError(`hostPort must be in 1..65535, got ${String(f.hostPort)}`)
      }
      const argv = [
        'conntrack',
        '-D',
        '-f',
        f.family === 4 ? 'ipv4' : 'ipv6',
        '-p',
        f.proto,
        '--orig-port-dst',
        String(f.hostPort),
      ]
      if (f.hostIp !== undefined) {
        const ip = canonicalIp(f.hostIp, 'hostIp', f.family)
        if (ip !== '0.0.0.0' && ip !== '::') argv.push('--orig-dst', ip)
      }
      return inNetns(this.netns, argv)
    })
    let deleted = 0
    for (const argv of argvs) {
      throwIfAborted(options.signal)
      let r
      try {
        r = await this.runCommand(argv, options.signal === undefined ? {} : { signal: options.signal })
      } catch (err) {
        if (isCnmError(err)) throw err
        if ((err as NodeJS.ErrnoException).code === 'ENOENT')
          throw new IptablesNotFoundError('conntrack not found', { cause: err })
        throw new IptablesCommandError('could not run conntrack', { cause: err })
      }
      // conntrack exits 1 when nothing matched ("0 flow entries have been deleted")
      const m = /(\d+) flow entries have been deleted/.exec(r.stderr)
      if (m !== null) {
        deleted += Number(m[1])
        continue
      }
      if (r.code !== 0) {
        throw new IptablesCommandError(`conntrack -D failed: ${r.stderr.trim().split('\n')[0] ?? ''}`, {
          cause: new CommandFailure(argv, r.code, r.stderr, r.stdout),
        })
      }
    }
    if (deleted > 0) this.log('deleted %d conntrack entries', deleted)
    return deleted
  }

  /**
   * Forgets the in-memory view of both families' rulesets, so the next change reads them again (call it
   * after something else reloaded the firewall).
   */
  invalidate(): void {
    this.v4.invalidate()
    this.v6?.invalidate()
  }

  /**
   * Ends the resident processes of the firewall and of the Iptables instances it made. Rules stay.
   * Injected Iptables instances are not closed. The firewall stays usable (they start again on demand).
   */
  async close(): Promise<void> {
    for (const ipt of this.ownIptables) await ipt.close()
    await this.ownRunner?.close()
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close()
  }

  private resolve(config: BridgeNetworkConfig): ResolvedNetwork {
    if (config === null || typeof config !== 'object')
      throw new InvalidFirewallOptionError('network config must be an object')
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
