import { isCnmError } from '@cnm/types'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import type { KVPair, Store, WatchEvent } from '@cnm/storeapi'
import { MAX_KEY_BYTES } from '@cnm/storeapi'

export interface StoreComplianceOptions {
  /** A fresh, empty store for each test. */
  setup(): Store | Promise<Store>
  /** Releases it (the store may already be closed by the test). */
  teardown(store: Store): void | Promise<void>
}

const KEY_MODIFIED = 'ERR_STORE_KEY_MODIFIED'
const KEY_EXISTS = 'ERR_STORE_KEY_EXISTS'
const INVALID_KEY = 'ERR_STORE_INVALID_KEY'
const UNAVAILABLE = 'ERR_STORE_UNAVAILABLE'
const ABORTED = 'ERR_ABORTED'

const enc = new TextEncoder()
const dec = new TextDecoder()

function bytes(s: string): Uint8Array {
  return enc.encode(s)
}

function text(b: Uint8Array | undefined): string | undefined {
  return b === undefined ? undefined : dec.decode(b)
}

/** Plain arrays compare the same whatever Uint8Array subclass an implementation returns. */
function arr(b: Uint8Array | undefined): number[] | undefined {
  return b === undefined ? undefined : Array.from(b)
}

function utf8Sorted(keys: string[]): string[] {
  return [...keys].sort((a, b) => Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8')))
}

/** Runs `fn` and returns what it threw or rejected with; fails when it succeeds. */
async function failure(fn: () => unknown): Promise<unknown> {
  try {
    await fn()
  } catch (err) {
    return err
  }
  expect.fail('expected the call to fail')
}

async function expectCode(fn: () => unknown, code: string): Promise<unknown> {
  const err = await failure(fn)
  expect((err as { code?: unknown }).code, String(err)).toBe(code)
  expect(isCnmError(err, code)).toBe(true)
  return err
}

async function withTimeout<T>(p: Promise<T>, what: string, ms = 5000): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  try {
    return await Promise.race([p, timeout])
  } finally {
    clearTimeout(timer)
  }
}

function iter(w: AsyncIterable<WatchEvent>): AsyncIterator<WatchEvent> {
  return w[Symbol.asyncIterator]()
}

/** The next `n` events (fails after 5 s without one). */
async function take(it: AsyncIterator<WatchEvent>, n: number): Promise<WatchEvent[]> {
  const out: WatchEvent[] = []
  while (out.length < n) {
    const r = await withTimeout(it.next(), `watch event ${out.length + 1} of ${n}`)
    if (r.done === true) break
    out.push(r.value)
  }
  return out
}

function summary(e: WatchEvent): [string, string, string | undefined, bigint] {
  return [e.type, e.key, text(e.value), e.index]
}

/**
 * The `Store` contract as vitest tests. Call it inside a test file; every implementation runs it:
 *
 * ```ts
 * storeComplianceTests({ setup: () => memoryStore(), teardown: (s) => s.close() })
 * ```
 */
export function storeComplianceTests(options: StoreComplianceOptions): void {
  describe('Store compliance', () => {
    let store: Store

    beforeEach(async () => {
      store = await options.setup()
    })

    afterEach(async () => {
      await options.teardown(store)
    })

    describe('keys and values', () => {
      const badKeys: unknown[] = [
        '',
        '/a',
        'a//b',
        '//',
        'a\u0000b',
        'a\nb',
        'a\u007fb',
        'a\u0085b',
        'a\ud800b',
        'x'.repeat(MAX_KEY_BYTES + 1),
        'é'.repeat(MAX_KEY_BYTES / 2 + 1),
        42,
        undefined,
      ]

      it('rejects invalid keys in every method with InvalidKeyError, without effect', async () => {
        const v = bytes('v')
        for (const k of badKeys) {
          const key = k as string
          await expectCode(() => store.get(key), INVALID_KEY)
          await expectCode(() => store.put(key, v), INVALID_KEY)
          await expectCode(() => store.create(key, v), INVALID_KEY)
          await expectCode(() => store.update(key, v, 1n), INVALID_KEY)
          await expectCode(() => store.delete(key), INVALID_KEY)
          await expectCode(() => store.deleteIf(key, 1n), INVALID_KEY)
          await expectCode(() => store.watch(key), INVALID_KEY)
        }
        expect(await store.list('')).toEqual([])
      })

      it('rejects invalid prefixes in list and prefix watch', async () => {
        for (const p of ['/a', 'a//', 'a\u0000', 'x'.repeat(MAX_KEY_BYTES + 1), 7]) {
          const prefix = p as string
          await expectCode(() => store.list(prefix), INVALID_KEY)
          await expectCode(() => store.watch(prefix, { prefix: true }), INVALID_KEY)
        }
      })

      it('accepts keys at the edges of the rules', async () => {
        const keys = [
          'a',
          'a/',
          'a/b/',
          'docker/network/v1.0/network/0123abcd/',
          'ipam/default/data/LocalDefault/172.17.0.0/16',
          'ipam/fd00::/64',
          'sp ace/ünï/cødé/😀',
          'x'.repeat(MAX_KEY_BYTES),
          'é'.repeat(MAX_KEY_BYTES / 2),
        ]
        for (const k of keys) {
          const index = await store.put(k, bytes(`v:${k}`))
          const got = await store.get(k)
          expect(got?.key).toBe(k)
          expect(text(got?.value)).toBe(`v:${k}`)
          expect(got?.index).toBe(index)
        }
        expect((await store.list('')).map((e) => e.key)).toEqual(utf8Sorted(keys))
      })

      it('rejects values that are not Uint8Array with InvalidKeyError', async () => {
        for (const bad of ['text', [1, 2], null, undefined, new ArrayBuffer(2), { length: 1 }]) {
          const value = bad as Uint8Array
          await expectCode(() => store.put('k', value), INVALID_KEY)
          await expectCode(() => store.create('k', value), INVALID_KEY)
          await expectCode(() => store.update('k', value, 1n), INVALID_KEY)
        }
        expect(await store.get('k')).toBeUndefined()
      })

      it('rejects a previousIndex that is not a bigint as invalid-argument', async () => {
        const index = await store.put('k', bytes('v'))
        for (const bad of [Number(index), String(index), undefined]) {
          const err = await failure(() => store.update('k', bytes('w'), bad as unknown as bigint))
          expect(isCnmError(err)).toBe(true)
          expect((err as { kind?: unknown }).kind).toBe('invalid-argument')
          const err2 = await failure(() => store.deleteIf('k', bad as unknown as bigint))
          expect((err2 as { kind?: unknown }).kind).toBe('invalid-argument')
        }
        expect(text((await store.get('k'))?.value)).toBe('v')
      })
    })

    describe('get and put', () => {
      it('returns undefined for a missing key', async () => {
        expect(await store.get('missing')).toBeUndefined()
      })

      it('stores a value and returns it with the index put returned', async () => {
        const index = await store.put('a/b', bytes('hello'))
        expect(typeof index).toBe('bigint')
        expect(index > 0n).toBe(true)
        const got = await store.get('a/b')
        expect(got).toBeDefined()
        expect(got?.key).toBe('a/b')
        expect(text(got?.value)).toBe('hello')
        expect(got?.index).toBe(index)
        expect(got?.value).toBeInstanceOf(Uint8Array)
      })

      it('overwrites with a greater index', async () => {
        const i1 = await store.put('k', bytes('1'))
        const i2 = await store.put('k', bytes('2'))
        expect(i2 > i1).toBe(true)
        const got = await store.get('k')
        expect(text(got?.value)).toBe('2')
        expect(got?.index).toBe(i2)
      })

      it('hands out strictly increasing indices across all keys', async () => {
        const indices: bigint[] = []
        indices.push(await store.put('a', bytes('1')))
        indices.push(await store.put('b', bytes('1')))
        indices.push(await store.create('c', bytes('1')))
        indices.push(await store.put('a', bytes('2')))
        await store.delete('b')
        const after = await store.put('b', bytes('3'))
        indices.push(after)
        indices.push(await store.update('c', bytes('2'), indices[2] as bigint))
        for (let i = 1; i < indices.length; i++) expect((indices[i] as bigint) > (indices[i - 1] as bigint)).toBe(true)
      })

      it('round-trips empty, binary and large values, and Buffers', async () => {
        const all = new Uint8Array(256).map((_, i) => i)
        const large = new Uint8Array(1024 * 1024).map((_, i) => (i * 31) & 0xff)
        await store.put('empty', new Uint8Array(0))
        await store.put('binary', all)
        await store.put('large', large)
        await store.put('buffer', Buffer.from('from a buffer'))
        expect((await store.get('empty'))?.value.length).toBe(0)
        expect(arr((await store.get('binary'))?.value)).toEqual(Array.from(all))
        const gotLarge = (await store.get('large'))?.value
        expect(gotLarge?.length).toBe(large.length)
        expect(Buffer.compare(Buffer.from(gotLarge as Uint8Array), Buffer.from(large))).toBe(0)
        expect(text((await store.get('buffer'))?.value)).toBe('from a buffer')
      })

      it('copies values in and out', async () => {
        const input = bytes('abc')
        await store.put('k', input)
        input[0] = 0x7a
        const out1 = (await store.get('k'))?.value as Uint8Array
        expect(text(out1)).toBe('abc')
        out1[0] = 0x79
        expect(text((await store.get('k'))?.value)).toBe('abc')
        const buf = Buffer.from('def')
        await store.put('b', buf)
        buf[0] = 0x7a
        expect(text((await store.get('b'))?.value)).toBe('def')
        const listed = (await store.list('k')) as KVPair[]
        ;(listed[0]?.value as Uint8Array)[0] = 0x78
        expect(text((await store.get('k'))?.value)).toBe('abc')
      })
    })

    describe('create (create-only)', () => {
      it('creates a missing key', async () => {
        const index = await store.create('k', bytes('v'))
        const got = await store.get('k')
        expect(text(got?.value)).toBe('v')
        expect(got?.index).toBe(index)
      })

      it('throws KeyExistsError for an existing key and changes nothing', async () => {
        const index = await store.put('k', bytes('first'))
        await expectCode(() => store.create('k', bytes('second')), KEY_EXISTS)
        const got = await store.get('k')
        expect(text(got?.value)).toBe('first')
        expect(got?.index).toBe(index)
      })

      it('creates again after a delete, with a new index', async () => {
        const i1 = await store.create('k', bytes('1'))
        await store.delete('k')
        const i2 = await store.create('k', bytes('2'))
        expect(i2 > i1).toBe(true)
        expect(text((await store.get('k'))?.value)).toBe('2')
      })
    })

    describe('update (update-if-unchanged)', () => {
      it('updates when the index matches', async () => {
        const i1 = await store.put('k', bytes('1'))
        const i2 = await store.update('k', bytes('2'), i1)
        expect(i2 > i1).toBe(true)
        const got = await store.get('k')
        expect(text(got?.value)).toBe('2')
        expect(got?.index).toBe(i2)
      })

      it('throws KeyModifiedError on a stale index and changes nothing', async () => {
        const i1 = await store.put('k', bytes('1'))
        const i2 = await store.put('k', bytes('2'))
        await expectCode(() => store.update('k', bytes('3'), i1), KEY_MODIFIED)
        const got = await store.get('k')
        expect(text(got?.value)).toBe('2')
        expect(got?.index).toBe(i2)
      })

      it('throws KeyModifiedError when the key vanished, and does not recreate it', async () => {
        const i1 = await store.put('k', bytes('1'))
        await store.delete('k')
        await expectCode(() => store.update('k', bytes('2'), i1), KEY_MODIFIED)
        expect(await store.get('k')).toBeUndefined()
        await expectCode(() => store.update('never', bytes('2'), 1n), KEY_MODIFIED)
        expect(await store.get('never')).toBeUndefined()
      })

      it('never matches an index from before a delete and re-create (no ABA)', async () => {
        const old = await store.create('k', bytes('1'))
        await store.delete('k')
        await store.create('k', bytes('2'))
        await expectCode(() => store.update('k', bytes('3'), old), KEY_MODIFIED)
        await expectCode(() => store.deleteIf('k', old), KEY_MODIFIED)
        expect(text((await store.get('k'))?.value)).toBe('2')
      })

      it('does not accept the index of another key', async () => {
        const ia = await store.put('a', bytes('1'))
        await store.put('b', bytes('1'))
        await expectCode(() => store.update('b', bytes('2'), ia), KEY_MODIFIED)
      })
    })

    describe('delete and deleteIf', () => {
      it('delete removes a key; deleting a missing key is not an error', async () => {
        await store.put('k', bytes('v'))
        await store.delete('k')
        expect(await store.get('k')).toBeUndefined()
        await store.delete('k')
        await store.delete('never')
      })

      it('deleteIf removes when the index matches', async () => {
        const index = await store.put('k', bytes('v'))
        await store.deleteIf('k', index)
        expect(await store.get('k')).toBeUndefined()
      })

      it('deleteIf throws KeyModifiedError on a stale index and keeps the key', async () => {
        const i1 = await store.put('k', bytes('1'))
        const i2 = await store.put('k', bytes('2'))
        await expectCode(() => store.deleteIf('k', i1), KEY_MODIFIED)
        expect((await store.get('k'))?.index).toBe(i2)
      })

      it('deleteIf throws KeyModifiedError when the key vanished', async () => {
        const index = await store.put('k', bytes('1'))
        await store.delete('k')
        await expectCode(() => store.deleteIf('k', index), KEY_MODIFIED)
        await expectCode(() => store.deleteIf('never', 1n), KEY_MODIFIED)
      })
    })

    describe('list', () => {
      const keys = [
        'o/z',
        'p',
        'p.',
        'p/',
        'p/a',
        'p/a/',
        'p/a/b',
        'p/ab',
        'p/b',
        'p/~',
        'p/é',
        'p/\uffff',
        'p/😀',
        'p0',
        'q',
      ]

      async function fill(): Promise<Map<string, bigint>> {
        const indices = new Map<string, bigint>()
        // Insert in a scrambled order so that the store has to sort.
        for (const k of [...keys].reverse()) indices.set(k, await store.put(k, bytes(`v:${k}`)))
        return indices
      }

      it('returns [] for an empty store or an unmatched prefix', async () => {
        expect(await store.list('')).toEqual([])
        await fill()
        expect(await store.list('p/z')).toEqual([])
        expect(await store.list('r')).toEqual([])
        expect(await store.list('p/a/b/')).toEqual([])
      })

      it('matches plain string prefixes exactly at their boundaries', async () => {
        await fill()
        const listKeys = async (prefix: string): Promise<string[]> => (await store.list(prefix)).map((e) => e.key)
        expect(await listKeys('p/')).toEqual(utf8Sorted(keys.filter((k) => k.startsWith('p/'))))
        expect(await listKeys('p/a')).toEqual(['p/a', 'p/a/', 'p/a/b', 'p/ab'])
        expect(await listKeys('p/a/')).toEqual(['p/a/', 'p/a/b'])
        expect(await listKeys('p/a/b')).toEqual(['p/a/b'])
        expect(await listKeys('p')).toEqual(utf8Sorted(keys.filter((k) => k.startsWith('p'))))
        expect(await listKeys('')).toEqual(utf8Sorted(keys))
        expect(await listKeys('o/')).toEqual(['o/z'])
        expect(await listKeys('q')).toEqual(['q'])
      })

      it('orders keys by their UTF-8 bytes', async () => {
        await fill()
        const got = (await store.list('p/')).map((e) => e.key)
        expect(got).toEqual(['p/', 'p/a', 'p/a/', 'p/a/b', 'p/ab', 'p/b', 'p/~', 'p/é', 'p/\uffff', 'p/😀'])
      })

      it('returns the values and indices get returns', async () => {
        const indices = await fill()
        for (const e of await store.list('')) {
          expect(text(e.value)).toBe(`v:${e.key}`)
          expect(e.index).toBe(indices.get(e.key))
          expect((await store.get(e.key))?.index).toBe(e.index)
        }
      })

      it('sees writes and deletes as soon as they resolve', async () => {
        await fill()
        await store.delete('p/a/')
        const i = await store.put('p/a/c', bytes('new'))
        await store.put('p/b', bytes('changed'))
        const got = await store.list('p/a')
        expect(got.map((e) => e.key)).toEqual(['p/a', 'p/a/b', 'p/a/c', 'p/ab'])
        expect(got.find((e) => e.key === 'p/a/c')?.index).toBe(i)
        expect(text((await store.list('p/b')).at(0)?.value)).toBe('changed')
      })
    })

    describe('watch', () => {
      it('reports every write of one key, with the indices the writes returned', async () => {
        const ac = new AbortController()
        const it = iter(store.watch('k', { signal: ac.signal }))
        const i1 = await store.put('k', bytes('1'))
        const i2 = await store.update('k', bytes('2'), i1)
        await store.deleteIf('k', i2)
        const i4 = await store.create('k', bytes('4'))
        await store.delete('k')
        const i6 = await store.put('k', bytes('6'))
        const events = await take(it, 6)
        expect(events.map(summary)).toEqual([
          ['put', 'k', '1', i1],
          ['put', 'k', '2', i2],
          ['delete', 'k', undefined, events[2]?.index],
          ['put', 'k', '4', i4],
          ['delete', 'k', undefined, events[4]?.index],
          ['put', 'k', '6', i6],
        ])
        expect((events[2]?.index as bigint) > i2 && (events[2]?.index as bigint) < i4).toBe(true)
        expect((events[4]?.index as bigint) > i4 && (events[4]?.index as bigint) < i6).toBe(true)
        ac.abort()
      })

      it('reports nothing for other keys, failed compare-and-swaps or deletes of missing keys', async () => {
        const ac = new AbortController()
        const it = iter(store.watch('k', { signal: ac.signal }))
        const i1 = await store.put('k', bytes('1'))
        await store.put('k/child', bytes('x'))
        await store.put('k2', bytes('x'))
        await store.put('kk', bytes('x'))
        await store.put('j', bytes('x'))
        await expectCode(() => store.create('k', bytes('x')), KEY_EXISTS)
        await expectCode(() => store.update('k', bytes('x'), i1 - 1n), KEY_MODIFIED)
        await expectCode(() => store.deleteIf('k', i1 - 1n), KEY_MODIFIED)
        await store.delete('k')
        await store.delete('k')
        const i2 = await store.put('k', bytes('sentinel'))
        const events = await take(it, 3)
        expect(events.map((e) => [e.type, e.key, text(e.value)])).toEqual([
          ['put', 'k', '1'],
          ['delete', 'k', undefined],
          ['put', 'k', 'sentinel'],
        ])
        expect(events[2]?.index).toBe(i2)
        ac.abort()
      })

      it('starts when watch() is called: not before, and nothing missed before the first next()', async () => {
        await store.put('k', bytes('before'))
        const ac = new AbortController()
        const it = iter(store.watch('k', { signal: ac.signal }))
        await store.put('k', bytes('after'))
        const events = await take(it, 1)
        expect(text(events[0]?.value)).toBe('after')
        ac.abort()
      })

      it('watches a prefix, with the same boundaries as list', async () => {
        const ac = new AbortController()
        const it = iter(store.watch('w/', { prefix: true, signal: ac.signal }))
        await store.put('w', bytes('no'))
        await store.put('w0', bytes('no'))
        await store.put('x/w/a', bytes('no'))
        await store.put('v/', bytes('no'))
        const ia = await store.put('w/a', bytes('a'))
        await store.put('w/b/c', bytes('c'))
        await store.put('w/', bytes('self'))
        await store.deleteIf('w/a', ia)
        const events = await take(it, 4)
        expect(events.map((e) => [e.type, e.key])).toEqual([
          ['put', 'w/a'],
          ['put', 'w/b/c'],
          ['put', 'w/'],
          ['delete', 'w/a'],
        ])
        ac.abort()
      })

      it('watches everything with the empty prefix, in index order', async () => {
        const ac = new AbortController()
        const it = iter(store.watch('', { prefix: true, signal: ac.signal }))
        const written: bigint[] = []
        for (let i = 0; i < 50; i++) written.push(await store.put(`n/${i % 7}`, bytes(String(i))))
        const events = await take(it, 50)
        expect(events.map((e) => e.index)).toEqual(written)
        expect(events.map((e) => text(e.value))).toEqual(written.map((_, i) => String(i)))
        ac.abort()
      })

      it('gives each watcher its own events and copies', async () => {
        const ac = new AbortController()
        const a = iter(store.watch('k', { signal: ac.signal }))
        const b = iter(store.watch('', { prefix: true, signal: ac.signal }))
        await store.put('k', bytes('abc'))
        const [ea] = await take(a, 1)
        const [eb] = await take(b, 1)
        ;(ea?.value as Uint8Array)[0] = 0x7a
        expect(text(eb?.value)).toBe('abc')
        expect(text((await store.get('k'))?.value)).toBe('abc')
        ac.abort()
      })

      it('rejects a pending next() with AbortError when the signal aborts, then ends', async () => {
        const ac = new AbortController()
        const it = iter(store.watch('k', { signal: ac.signal }))
        const pending = it.next()
        const reason = new Error('stop watching')
        ac.abort(reason)
        const err = await expectCode(() => withTimeout(pending, 'the aborted next()'), ABORTED)
        expect((err as Error).cause).toBe(reason)
        await store.put('k', bytes('after abort'))
        expect((await withTimeout(it.next(), 'next() after abort')).done).toBe(true)
      })

      it('ends a for-await loop with AbortError when aborted between events', async () => {
        const ac = new AbortController()
        const seen: string[] = []
        const loop = (async () => {
          for await (const e of store.watch('k', { signal: ac.signal })) {
            seen.push(text(e.value) as string)
            if (seen.length === 2) ac.abort()
          }
        })()
        // Handle the loop's rejection right away: it may come while the writes below are still awaited.
        const ended = expectCode(() => withTimeout(loop, 'the watch loop'), ABORTED)
        await store.put('k', bytes('1'))
        await store.put('k', bytes('2'))
        await store.put('k', bytes('3'))
        await ended
        expect(seen).toEqual(['1', '2'])
      })

      it('throws AbortError from watch() itself for an already aborted signal', async () => {
        await expectCode(() => store.watch('k', { signal: AbortSignal.abort() }), ABORTED)
      })

      it('unsubscribes on break, and a new watch still works', async () => {
        const loop = (async () => {
          for await (const e of store.watch('k')) {
            if (e.type === 'put') break
          }
        })()
        await store.put('k', bytes('1'))
        await withTimeout(loop, 'the watch loop')
        await store.put('k', bytes('2'))
        const ac = new AbortController()
        const it = iter(store.watch('k', { signal: ac.signal }))
        await store.put('k', bytes('3'))
        expect(text((await take(it, 1))[0]?.value)).toBe('3')
        ac.abort()
      })

      it('ends iteration when the store closes, after the events already written', async () => {
        const seen: string[] = []
        const loop = (async () => {
          for await (const e of store.watch('', { prefix: true })) seen.push(e.key)
        })()
        await store.put('a', bytes('1'))
        await store.put('b', bytes('2'))
        await store.close()
        await withTimeout(loop, 'the watch loop to end')
        expect(seen).toEqual(['a', 'b'])
      })
    })

    describe('cancellation', () => {
      it('rejects every call with an aborted signal with AbortError (cause = reason), without effect', async () => {
        const index = await store.put('k', bytes('v'))
        const reason = new Error('cancelled')
        const signal = AbortSignal.abort(reason)
        const calls: Array<() => unknown> = [
          () => store.get('k', { signal }),
          () => store.put('k', bytes('x'), { signal }),
          () => store.put('new', bytes('x'), { signal }),
          () => store.create('new', bytes('x'), { signal }),
          () => store.update('k', bytes('x'), index, { signal }),
          () => store.delete('k', { signal }),
          () => store.deleteIf('k', index, { signal }),
          () => store.list('', { signal }),
        ]
        for (const call of calls) {
          const err = await expectCode(call, ABORTED)
          expect((err as Error).cause).toBe(reason)
        }
        const got = await store.get('k')
        expect(text(got?.value)).toBe('v')
        expect(got?.index).toBe(index)
        expect(await store.get('new')).toBeUndefined()
      })
    })

    describe('close', () => {
      it('is idempotent, and every later call fails with StoreUnavailableError', async () => {
        await store.put('k', bytes('v'))
        await Promise.all([store.close(), store.close()])
        await store.close()
        await expectCode(() => store.get('k'), UNAVAILABLE)
        await expectCode(() => store.put('k', bytes('v')), UNAVAILABLE)
        await expectCode(() => store.create('x', bytes('v')), UNAVAILABLE)
        await expectCode(() => store.update('k', bytes('v'), 1n), UNAVAILABLE)
        await expectCode(() => store.delete('k'), UNAVAILABLE)
        await expectCode(() => store.deleteIf('k', 1n), UNAVAILABLE)
        await expectCode(() => store.list(''), UNAVAILABLE)
        await expectCode(() => store.watch('k'), UNAVAILABLE)
      })
    })

    describe('concurrency', () => {
      it('lands every one of many concurrent compare-and-swap increments exactly once', async () => {
        const workers = 20
        const each = 5
        await store.create('counter', bytes('0'))
        const indices: bigint[] = []
        let conflicts = 0
        const increment = async (): Promise<void> => {
          for (;;) {
            const cur = (await store.get('counter')) as KVPair
            const n = Number(text(cur.value))
            try {
              indices.push(await store.update('counter', bytes(String(n + 1)), cur.index))
              return
            } catch (err) {
              if (!isCnmError(err, KEY_MODIFIED)) throw err
              conflicts++
            }
          }
        }
        await Promise.all(
          Array.from({ length: workers }, async () => {
            for (let i = 0; i < each; i++) await increment()
          }),
        )
        const final = await store.get('counter')
        expect(text(final?.value)).toBe(String(workers * each))
        expect(new Set(indices).size).toBe(workers * each)
        expect(final?.index).toBe(indices.reduce((a, b) => (a > b ? a : b)))
        expect(conflicts).toBeGreaterThan(0)
      })

      it('lets exactly one of many concurrent creates of one key win', async () => {
        const results = await Promise.allSettled(
          Array.from({ length: 25 }, (_, i) => store.create('once', bytes(String(i)))),
        )
        const won = results.filter((r) => r.status === 'fulfilled')
        expect(won).toHaveLength(1)
        for (const r of results) {
          if (r.status === 'rejected') expect(isCnmError(r.reason, KEY_EXISTS)).toBe(true)
        }
        const got = await store.get('once')
        expect(got?.index).toBe((won[0] as PromiseFulfilledResult<bigint>).value)
      })

      it('lets exactly one of many concurrent deleteIf calls with the same index win', async () => {
        const index = await store.put('k', bytes('v'))
        const results = await Promise.allSettled(Array.from({ length: 10 }, () => store.deleteIf('k', index)))
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1)
        for (const r of results) {
          if (r.status === 'rejected') expect(isCnmError(r.reason, KEY_MODIFIED)).toBe(true)
        }
        expect(await store.get('k')).toBeUndefined()
      })

      it('keeps every one of many concurrent writes to distinct keys, each with its own index', async () => {
        const n = 200
        const indices = await Promise.all(
          Array.from({ length: n }, (_, i) => store.put(`many/${String(i).padStart(3, '0')}`, bytes(String(i)))),
        )
        expect(new Set(indices).size).toBe(n)
        const listed = await store.list('many/')
        expect(listed).toHaveLength(n)
        listed.forEach((e, i) => {
          expect(text(e.value)).toBe(String(i))
          expect(e.index).toBe(indices[i])
        })
      })
    })
  })
}
