import { onTestFinished, vi } from 'vitest'
import { createNetworkDB } from '../src/index.js'
import type { NetworkDBConfig, NetworkDBNode, TableEvent, TableWatch } from '../src/index.js'
import { FakeHub } from './fake-hub.js'
import type { FakeMember } from './fake-hub.js'

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

/** Everything a watch delivers, collected in the background. */
export function collect(w: TableWatch): TableEvent[] {
  const out: TableEvent[] = []
  void (async () => {
    for await (const ev of w) out.push(ev)
  })()
  return out
}

export const settle = async (ms: number): Promise<void> => {
  await vi.advanceTimersByTimeAsync(ms)
}

export interface TestCluster {
  hub: FakeHub
  dbs: NetworkDBNode[]
  add: (name: string, extra?: Partial<NetworkDBConfig>) => Promise<NetworkDBNode>
  member: (db: NetworkDBNode) => FakeMember
  seed: string
}

/** Fake timers on, `n` nodes on an in-memory hub (node0 … node{n-1}), all joined through node0. */
export async function fakeCluster(n: number, extra: Partial<NetworkDBConfig> = {}): Promise<TestCluster> {
  vi.useFakeTimers()
  const hub = new FakeHub({ gossipIntervalMs: 100, failureDetectionMs: 2_000 })
  const dbs: NetworkDBNode[] = []
  onTestFinished(async () => {
    const closing = Promise.allSettled(dbs.map((db) => db.shutdown()))
    await vi.advanceTimersByTimeAsync(10_000)
    await closing
    vi.useRealTimers()
  })
  const add = async (name: string, more: Partial<NetworkDBConfig> = {}): Promise<NetworkDBNode> => {
    const db = await createNetworkDB(
      { nodeId: name, bindAddr: '127.0.0.1', bindPort: 0, ...extra, ...more },
      { createMemberlist: hub.create },
    )
    dbs.push(db)
    return db
  }
  for (let i = 0; i < n; i++) await add(`node${i}`)
  const first = dbs[0]
  const seed = first === undefined ? '' : `${first.address.addr}:${first.address.port}`
  for (const db of dbs.slice(1)) await db.join([seed])
  await settle(500)
  return {
    hub,
    dbs,
    add,
    seed,
    member: (db) => hub.members.get(`${db.address.addr}:${db.address.port}`) as FakeMember,
  }
}

/** Closes while the fake clock runs. */
export async function closeWithClock(db: NetworkDBNode): Promise<void> {
  const p = db.close()
  await vi.advanceTimersByTimeAsync(6_000)
  await p
}
