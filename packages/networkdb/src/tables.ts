/** One table entry as this node stores it. */
export interface Entry {
  ltime: bigint
  /** Node that wrote it. */
  owner: string
  value: Uint8Array
  /** A tombstone (kept until reaped so older events cannot resurrect the key). */
  deleting: boolean
  /** Tombstones: milliseconds left before reaping; 0 for live entries. */
  reapTimeMs: number
}

type Tables = Map<string, Map<string, Entry>>

/**
 * Entries indexed by network, then table, then key (libnetwork keeps a `/<nid>/<table>/<key>` radix
 * index for the same walks). Empty levels are dropped so that a reaped network costs nothing.
 */
export class EntryStore {
  readonly #byNetwork = new Map<string, Tables>()

  get(nid: string, table: string, key: string): Entry | undefined {
    return this.#byNetwork.get(nid)?.get(table)?.get(key)
  }

  put(nid: string, table: string, key: string, e: Entry): void {
    let tables = this.#byNetwork.get(nid)
    if (tables === undefined) this.#byNetwork.set(nid, (tables = new Map<string, Map<string, Entry>>()))
    let t = tables.get(table)
    if (t === undefined) tables.set(table, (t = new Map<string, Entry>()))
    t.set(key, e)
  }

  remove(nid: string, table: string, key: string): void {
    const tables = this.#byNetwork.get(nid)
    const t = tables?.get(table)
    if (tables === undefined || t === undefined) return
    t.delete(key)
    if (t.size === 0) tables.delete(table)
    if (tables.size === 0) this.#byNetwork.delete(nid)
  }

  /** Entries of one table in one network (a live view; copy before mutating the store). */
  table(nid: string, table: string): ReadonlyMap<string, Entry> | undefined {
    return this.#byNetwork.get(nid)?.get(table)
  }

  /** Every (table, key, entry) of a network, as a snapshot safe against mutation while iterating. */
  networkEntries(nid: string): [string, string, Entry][] {
    const out: [string, string, Entry][] = []
    for (const [table, t] of this.#byNetwork.get(nid) ?? []) for (const [key, e] of t) out.push([table, key, e])
    return out
  }

  /** Iterates a network's entries in place (no copy): the callback must not add or remove entries. */
  forEachInNetwork(nid: string, fn: (table: string, key: string, e: Entry) => void): void {
    for (const [table, t] of this.#byNetwork.get(nid) ?? []) for (const [key, e] of t) fn(table, key, e)
  }

  networkIds(): string[] {
    return [...this.#byNetwork.keys()]
  }

  /** Entries (tombstones included) of a network. */
  count(nid: string): number {
    let n = 0
    for (const t of this.#byNetwork.get(nid)?.values() ?? []) n += t.size
    return n
  }

  /** Walks one table across networks; stops when `fn` returns true. */
  walkTable(table: string, fn: (nid: string, key: string, e: Entry) => boolean | void): void {
    for (const [nid, tables] of this.#byNetwork) {
      for (const [key, e] of tables.get(table) ?? []) if (fn(nid, key, e) === true) return
    }
  }

  /** Removes every entry owned by `node`, returning them. */
  removeOwnedBy(node: string): [string, string, string, Entry][] {
    const removed: [string, string, string, Entry][] = []
    for (const nid of this.networkIds()) {
      for (const [table, key, e] of this.networkEntries(nid)) {
        if (e.owner !== node) continue
        this.remove(nid, table, key)
        removed.push([nid, table, key, e])
      }
    }
    return removed
  }
}
