import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import { InvalidConfigError } from './errors.js'
import type { NetworkDBConfig } from './types.js'

/** Docker's defaults (spec/cluster.md §1). nodeId and hostname are filled in per instance. */
export const DEFAULT_NETWORKDB_CONFIG: Readonly<
  Omit<
    NetworkDBConfig,
    'nodeId' | 'hostname' | 'reapNetworkIntervalMs' | 'memberlist' | 'logger' | 'advertiseAddr' | 'advertisePort'
  >
> = Object.freeze({
  bindAddr: '0.0.0.0',
  bindPort: 7946,
  keys: [],
  packetBufferSize: 1400,
  reapEntryIntervalMs: 30 * 60_000,
  reapIntervalMs: 5_000,
  gossipIntervalMs: 200,
  eagerGossipIntervalMs: 5,
  bulkSyncIntervalMs: 30_000,
  reconnectIntervalMs: 1_000,
  rejoinBootstrapIntervalMs: 60_000,
  reapDeadNodeIntervalMs: 2 * 3_600_000,
  nodeReapTimeMs: 24 * 3_600_000,
  bulkSyncTimeoutMs: 30_000,
  bulkSyncChunkBytes: 1024 * 1024,
  rejoinBootstrapDurationMs: 10_000,
  nodeLeaveBroadcastTimeoutMs: 5_000,
  leaveTimeoutMs: 1_000,
})

const DURATIONS = [
  'reapEntryIntervalMs',
  'reapNetworkIntervalMs',
  'reapIntervalMs',
  'gossipIntervalMs',
  'bulkSyncIntervalMs',
  'reconnectIntervalMs',
  'rejoinBootstrapIntervalMs',
  'reapDeadNodeIntervalMs',
  'nodeReapTimeMs',
  'bulkSyncTimeoutMs',
  'rejoinBootstrapDurationMs',
  'nodeLeaveBroadcastTimeoutMs',
  'leaveTimeoutMs',
] as const

/** Fills defaults and validates; never mutates `init`. */
export function resolveConfig(
  init: Partial<NetworkDBConfig>,
): Required<Omit<NetworkDBConfig, 'advertiseAddr' | 'advertisePort' | 'memberlist' | 'logger'>> &
  Pick<NetworkDBConfig, 'advertiseAddr' | 'advertisePort' | 'memberlist' | 'logger'> {
  const defined = Object.fromEntries(
    Object.entries(init).filter(([, v]) => v !== undefined),
  ) as Partial<NetworkDBConfig>
  const reapEntryIntervalMs = defined.reapEntryIntervalMs ?? DEFAULT_NETWORKDB_CONFIG.reapEntryIntervalMs
  const cfg = {
    ...DEFAULT_NETWORKDB_CONFIG,
    nodeId: randomBytes(6).toString('hex'),
    hostname: hostname(),
    reapNetworkIntervalMs: reapEntryIntervalMs + 25_000,
    ...defined,
    keys: [...(defined.keys ?? [])],
  }
  if (typeof cfg.nodeId !== 'string' || cfg.nodeId === '')
    throw new InvalidConfigError('nodeId', 'must be a non-empty string')
  if (!Number.isInteger(cfg.bindPort) || cfg.bindPort < 0 || cfg.bindPort > 65535)
    throw new InvalidConfigError('bindPort', 'must be an integer 0..65535')
  if (!Number.isInteger(cfg.packetBufferSize) || cfg.packetBufferSize < 64)
    throw new InvalidConfigError('packetBufferSize', 'must be an integer ≥ 64')
  if (!Number.isInteger(cfg.bulkSyncChunkBytes) || cfg.bulkSyncChunkBytes < 1024)
    throw new InvalidConfigError('bulkSyncChunkBytes', 'must be an integer ≥ 1024')
  if (
    typeof cfg.eagerGossipIntervalMs !== 'number' ||
    !Number.isFinite(cfg.eagerGossipIntervalMs) ||
    cfg.eagerGossipIntervalMs < 0
  )
    throw new InvalidConfigError(
      'eagerGossipIntervalMs',
      'must be a number of milliseconds ≥ 0 (0 turns eager gossip off)',
    )
  for (const f of DURATIONS) {
    const v = cfg[f]
    if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
      throw new InvalidConfigError(f, 'must be a positive number of milliseconds')
  }
  return cfg
}

export type ResolvedConfig = ReturnType<typeof resolveConfig>
