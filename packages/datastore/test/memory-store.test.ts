import { describe, expect, it } from 'vitest'
import { MemoryStore, memoryStore } from '../src/index.js'

const enc = new TextEncoder()

describe('MemoryStore', () => {
  it('is what memoryStore() returns, and starts at index 0', async () => {
    const store = memoryStore()
    expect(store).toBeInstanceOf(MemoryStore)
    expect(store.lastIndex).toBe(0n)
    expect(await store.put('k', enc.encode('v'))).toBe(1n)
    expect(store.lastIndex).toBe(1n)
    await store.close()
  })

  it('keeps keys sorted by UTF-8 bytes through random inserts and deletes', async () => {
    const store = memoryStore()
    const live = new Set<string>()
    const chars = ['a', 'b', '.', 'é', '\uffff', '😀']
    for (let i = 0; i < 2000; i++) {
      let key = 'r/'
      for (let j = 0; j < 3; j++) key += chars[Math.floor(Math.random() * chars.length)]
      if (live.has(key) && Math.random() < 0.5) {
        await store.delete(key)
        live.delete(key)
      } else {
        await store.put(key, enc.encode(key))
        live.add(key)
      }
    }
    const expected = [...live].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)))
    expect((await store.list('r/')).map((e) => e.key)).toEqual(expected)
    await store.close()
  })

  it('supports await using', async () => {
    let kept: MemoryStore | undefined
    {
      await using store = memoryStore()
      kept = store
      await store.put('k', enc.encode('v'))
    }
    await expect(kept.get('k')).rejects.toMatchObject({ code: 'ERR_STORE_UNAVAILABLE' })
  })
})
