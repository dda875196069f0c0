import type { MemberlistConfig } from './types.js'
import { ConfigError } from './errors.js'

/** The settings that have defaults (everything but `name` and the optional hooks). */
export type MemberlistDefaults = Omit<
  MemberlistConfig,
  'name' | 'advertiseAddr' | 'advertisePort' | 'delegate' | 'events' | 'logger' | 'filter'
>

/** memberlist's LAN defaults, as Docker's networkdb uses them (spec/memberlist.md §1). */
export const DEFAULT_MEMBERLIST_CONFIG: Readonly<MemberlistDefaults> = Object.freeze({
  bindAddr: '127.0.0.1',
  bindPort: 7946,
  keys: [] as Uint8Array[],
  udpBufferSize: 1400,
  enableCompression: true,
  probeIntervalMs: 1000,
  probeTimeoutMs: 500,
  indirectChecks: 3,
  suspicionMult: 4,
  suspicionMaxTimeoutMult: 6,
  retransmitMult: 4,
  gossipIntervalMs: 200,
  gossipNodes: 3,
  gossipToTheDeadMs: 30_000,
  pushPullIntervalMs: 30_000,
  tcpTimeoutMs: 10_000,
  disableTcpPings: false,
  awarenessMaxMultiplier: 8,
  handoffQueueDepth: 1024,
  maxStreamBytes: 256 * 1024 * 1024,
})

/** A fresh copy of the LAN defaults (a new `keys` array each call). */
export function defaultLanConfig(): MemberlistDefaults {
  return { ...DEFAULT_MEMBERLIST_CONFIG, keys: [] }
}

/** Same as {@link defaultLanConfig}: networkdb runs memberlist with the LAN profile. */
export function defaultConfig(): MemberlistDefaults {
  return defaultLanConfig()
}

function checkInt(
  cfg: MemberlistConfig,
  field: keyof MemberlistConfig,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): void {
  const v = cfg[field]
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      `config.${field} must be an integer in [${min}, ${max}], got ${typeof v === 'number' ? v : typeof v}`,
    )
  }
}

/** Resolves user options over the defaults (never mutating them) and validates every field. */
export function resolveConfig(init: Partial<MemberlistConfig> & { name: string }): MemberlistConfig {
  const defined = Object.fromEntries(Object.entries(init).filter(([, v]) => v !== undefined))
  const cfg = { ...defaultLanConfig(), ...defined } as MemberlistConfig
  cfg.keys = [...(init.keys ?? [])]
  if (typeof cfg.name !== 'string' || cfg.name.length === 0)
    throw new ConfigError('config.name must be a non-empty string')
  if (Buffer.byteLength(cfg.name) > 65535) throw new ConfigError('config.name is too long')
  if (typeof cfg.bindAddr !== 'string' || cfg.bindAddr.length === 0)
    throw new ConfigError('config.bindAddr must be an IP address')
  checkInt(cfg, 'bindPort', 0, 65535)
  if (cfg.advertisePort !== undefined) checkInt(cfg, 'advertisePort', 1, 65535)
  checkInt(cfg, 'udpBufferSize', 128, 65507)
  checkInt(cfg, 'probeIntervalMs', 1)
  checkInt(cfg, 'probeTimeoutMs', 1)
  checkInt(cfg, 'indirectChecks', 0)
  checkInt(cfg, 'suspicionMult', 1)
  checkInt(cfg, 'suspicionMaxTimeoutMult', 1)
  checkInt(cfg, 'retransmitMult', 1)
  checkInt(cfg, 'gossipIntervalMs', 0)
  checkInt(cfg, 'gossipNodes', 0)
  checkInt(cfg, 'gossipToTheDeadMs', 0)
  checkInt(cfg, 'pushPullIntervalMs', 0)
  checkInt(cfg, 'tcpTimeoutMs', 1)
  checkInt(cfg, 'awarenessMaxMultiplier', 1, 255)
  checkInt(cfg, 'handoffQueueDepth', 1)
  checkInt(cfg, 'maxStreamBytes', 1024)
  for (const [i, key] of cfg.keys.entries()) {
    if (!(key instanceof Uint8Array) || ![16, 24, 32].includes(key.length)) {
      throw new ConfigError(`config.keys[${i}] must be a 16, 24 or 32-byte key`)
    }
  }
  return cfg
}
