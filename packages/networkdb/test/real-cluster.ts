// Real memberlist nodes on 127.0.0.1 (ephemeral ports) with shortened timers, shut down after each test.
import { afterEach } from 'vitest'
import { createNetworkDB } from '../src/index.js'
import type { NetworkDBConfig, NetworkDBNode } from '../src/index.js'

export const FAST: Partial<NetworkDBConfig> = {
  bindAddr: '127.0.0.1',
  bindPort: 0,
  gossipIntervalMs: 50,
  reconnectIntervalMs: 500,
  bulkSyncIntervalMs: 5_000,
  memberlist: {
    // short, but with room for a busy machine: a spurious failure would turn a graceful LEFT into FAILED
    probeIntervalMs: 300,
    probeTimeoutMs: 250,
    gossipIntervalMs: 50,
    pushPullIntervalMs: 2_000,
    gossipToTheDeadMs: 3_000,
    tcpTimeoutMs: 5_000,
  },
}

export const running: NetworkDBNode[] = []

afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((db) => db.shutdown()))
})

export async function start(name: string, extra: Partial<NetworkDBConfig> = {}): Promise<NetworkDBNode> {
  const db = await createNetworkDB({ ...FAST, nodeId: name, ...extra })
  running.push(db)
  return db
}

export async function waitFor(what: string, cond: () => boolean, timeoutMs = 20_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) {
      const views = running.map(
        (db) =>
          `${db.nodeId}: ${db
            .nodes()
            .map((n) => `${n.name}=${n.status}`)
            .join(' ')}`,
      )
      throw new Error(`timed out waiting for ${what}\n${views.join('\n')}`)
    }
    await new Promise((r) => setTimeout(r, 20))
  }
}

export const seedOf = (db: NetworkDBNode): string => `${db.address.addr}:${db.address.port}`
export const status = (db: NetworkDBNode, name: string): string | undefined =>
  db.nodes().find((n) => n.name === name)?.status
