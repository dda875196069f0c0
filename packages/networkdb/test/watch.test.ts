import { describe, expect, it } from 'vitest'
import type { TableEvent } from '../src/index.js'
import { WatchHub } from '../src/watch.js'

const ev = (table: string, networkId: string, key: string, type: TableEvent['type'] = 'create'): TableEvent => ({
  type,
  table,
  networkId,
  key,
  value: new Uint8Array(0),
  owner: 'n',
})

describe('WatchHub', () => {
  it('filters with wildcards (missing, empty or *)', async () => {
    const hub = new WatchHub()
    const all = hub.watch({})
    const byTable = hub.watch({ table: 't1', networkId: '', key: '*' })
    const exact = hub.watch({ table: 't1', networkId: 'n1', key: 'k1' })
    hub.emit(ev('t1', 'n1', 'k1'))
    hub.emit(ev('t1', 'n2', 'k2'))
    hub.emit(ev('t2', 'n1', 'k1', 'update'))
    const take = async (w: typeof all, n: number): Promise<string[]> => {
      const out: string[] = []
      for await (const e of w) {
        out.push(`${e.type}:${e.table}/${e.networkId}/${e.key}`)
        if (out.length === n) break
      }
      return out
    }
    expect(await take(all, 3)).toEqual(['create:t1/n1/k1', 'create:t1/n2/k2', 'update:t2/n1/k1'])
    expect(await take(byTable, 2)).toEqual(['create:t1/n1/k1', 'create:t1/n2/k2'])
    expect(await take(exact, 1)).toEqual(['create:t1/n1/k1'])
    // breaking out of for-await ended those watches
    expect(hub.size).toBe(0)
  })

  it('close() and an abort signal end a pending iteration; a pre-aborted signal gives an ended watch', async () => {
    const hub = new WatchHub()
    const w = hub.watch({})
    const it = w[Symbol.asyncIterator]()
    const pending = it.next()
    w.close()
    expect((await pending).done).toBe(true)

    const ac = new AbortController()
    const w2 = hub.watch({}, { signal: ac.signal })
    const p2 = w2[Symbol.asyncIterator]().next()
    ac.abort()
    expect((await p2).done).toBe(true)

    const w3 = hub.watch({}, { signal: AbortSignal.abort() })
    expect((await w3[Symbol.asyncIterator]().next()).done).toBe(true)
    expect(hub.size).toBe(0)
  })

  it('buffers without bound and delivers in order (100,000 events)', async () => {
    const hub = new WatchHub()
    const w = hub.watch({ table: 't' })
    for (let i = 0; i < 100_000; i++) hub.emit(ev('t', 'n', String(i)))
    let next = 0
    for await (const e of w) {
      expect(e.key).toBe(String(next))
      if (++next === 100_000) break
    }
    expect(next).toBe(100_000)
  })
})
