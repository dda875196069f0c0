import type { EntryStore } from './tables.js'

/**
 * One reaper pass over the tombstones of `networks` (spec/cluster.md §7): a tombstone with more than
 * `period + elapsed + 1 s` left loses `period + elapsed`, the others are removed. The extra second keeps
 * the residual reap time sent on the wire at ≥ 1 s. Returns the number of entries removed.
 */
export function reapTombstones(
  store: EntryStore,
  networks: readonly string[],
  periodMs: number,
  now: () => number,
): number {
  const start = now()
  let removed = 0
  for (const nid of networks) {
    const compensation = now() - start
    for (const [table, key, e] of store.networkEntries(nid)) {
      if (!e.deleting) continue
      if (e.reapTimeMs > periodMs + compensation + 1000) {
        e.reapTimeMs -= periodMs + compensation
        continue
      }
      store.remove(nid, table, key)
      removed++
    }
  }
  return removed
}

/** Leaving network records lose `periodMs` per pass and are removed once at or below zero. */
export function reapLeavingNetworks(
  networks: Iterable<Map<string, { leaving: boolean; reapTimeMs: number }>>,
  periodMs: number,
): void {
  for (const nn of networks) {
    for (const [id, n] of [...nn]) {
      if (!n.leaving) continue
      if (n.reapTimeMs <= 0) {
        nn.delete(id)
        continue
      }
      n.reapTimeMs -= periodMs
    }
  }
}

/**
 * Dead-node reaper pass (every `periodMs`, default 2 h): a left or failed node loses `periodMs` of its
 * reap time and is forgotten when no more than `periodMs` remain. Returns the names forgotten.
 */
export function reapDeadNodes(nodes: Map<string, { status: string; reapTimeMs: number }>, periodMs: number): string[] {
  const gone: string[] = []
  for (const [name, n] of [...nodes]) {
    if (n.status === 'active') continue
    if (n.reapTimeMs > periodMs) {
      n.reapTimeMs -= periodMs
      continue
    }
    nodes.delete(name)
    gone.push(name)
  }
  return gone
}
