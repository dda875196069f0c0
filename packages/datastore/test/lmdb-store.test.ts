import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { format } from 'node:util'
import { isCnmError, type ComponentLogger, type Logger } from '@cnm/types'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import {
  DEFAULT_LMDB_STORE_INIT,
  type LmdbStore,
  lmdbStore,
  type LmdbStoreInit,
  type WatchEvent,
} from '../src/index.js'
import { bundleFixture } from './fixtures/bundle.js'

const enc = new TextEncoder()
const dec = new TextDecoder()
const dirs: string[] = []
const open: LmdbStore[] = []

function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-datastore-lmdb-'))
  dirs.push(dir)
  return dir
}

function openStore(init: LmdbStoreInit): LmdbStore {
  const store = lmdbStore(init)
  open.push(store)
  return store
}

function walFiles(dir: string): string[] {
  return readdirSync(dir).filter((f) => f.startsWith('wal-'))
}

/** Records `component: formatted message` lines. */
function capturingLogger(): ComponentLogger & { lines: string[] } {
  const lines: string[] = []
  const make = (component: string): Logger => {
    const line =
      (level: string) =>
      (f: string, ...a: unknown[]) => {
        lines.push(`${component} ${level}: ${format(f, ...a)}`)
      }
    return Object.assign(line('info'), {
      error: line('error'),
      trace: line('trace'),
      enabled: true,
      child: (s: string) => make(`${component}:${s}`),
    })
  }
  return { lines, forComponent: make }
}

afterEach(async () => {
  for (const store of open.splice(0)) await store.close()
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

describe('LmdbStore options', () => {
  it('has frozen defaults', () => {
    expect(DEFAULT_LMDB_STORE_INIT).toEqual({ sync: false, walSegmentBytes: 4 * 1024 * 1024 })
    expect(Object.isFrozen(DEFAULT_LMDB_STORE_INIT)).toBe(true)
  })

  it('rejects bad options with InvalidArgumentError naming the field', () => {
    const cases: Array<[unknown, string]> = [
      [undefined, 'init'],
      [{}, 'path'],
      [{ path: '' }, 'path'],
      [{ path: tempDir(), sync: 'yes' }, 'sync'],
      [{ path: tempDir(), walSegmentBytes: 100 }, 'walSegmentBytes'],
      [{ path: tempDir(), walSegmentBytes: 5000.5 }, 'walSegmentBytes'],
    ]
    for (const [init, field] of cases) {
      let err: unknown
      try {
        lmdbStore(init as LmdbStoreInit)
      } catch (e) {
        err = e
      }
      expect(isCnmError(err, 'ERR_INVALID_ARGUMENT'), String(err)).toBe(true)
      expect((err as Error).message).toContain(field)
    }
  })

  it('does not change the caller’s init object', () => {
    const init = Object.freeze({ path: tempDir() })
    openStore(init)
    expect(init).toEqual({ path: init.path })
  })

  it('fails with StoreUnavailableError when the directory cannot be created', () => {
    const file = join(tempDir(), 'a-file')
    writeFileSync(file, 'x')
    let err: unknown
    try {
      lmdbStore({ path: join(file, 'store') })
    } catch (e) {
      err = e
    }
    expect(isCnmError(err, 'ERR_STORE_UNAVAILABLE')).toBe(true)
  })
})

describe('LmdbStore persistence', () => {
  it('keeps values and indices across close and reopen', async () => {
    const dir = tempDir()
    const a = lmdbStore({ path: dir })
    const i1 = await a.put('k/1', enc.encode('one'))
    const i2 = await a.create('k/2', enc.encode('two'))
    await a.close()
    const b = openStore({ path: dir })
    expect((await b.list('k/')).map((e) => [e.key, dec.decode(e.value), e.index])).toEqual([
      ['k/1', 'one', i1],
      ['k/2', 'two', i2],
    ])
    expect(await b.update('k/1', enc.encode('uno'), i1)).toBeGreaterThan(i2)
  })

  it('never reuses an index after reopening, even when the newest key was deleted', async () => {
    const dir = tempDir()
    const a = lmdbStore({ path: dir })
    const old = await a.create('k', enc.encode('1'))
    await a.put('other', enc.encode('x'))
    await a.delete('other')
    await a.delete('k')
    const last = a.lastIndex
    await a.close()
    const b = openStore({ path: dir })
    expect(b.lastIndex).toBe(last)
    const fresh = await b.create('k', enc.encode('2'))
    expect(fresh).toBe(last + 1n)
    let err: unknown
    try {
      await b.update('k', enc.encode('3'), old)
    } catch (e) {
      err = e
    }
    expect(isCnmError(err, 'ERR_STORE_KEY_MODIFIED')).toBe(true)
  })

  it('keeps the sync-mode writes across reopen and never writes a log', async () => {
    const dir = tempDir()
    const a = lmdbStore({ path: dir, sync: true })
    await Promise.all(Array.from({ length: 50 }, (_, i) => a.put(`s/${i}`, enc.encode(String(i)))))
    expect(walFiles(dir)).toEqual([])
    await a.close()
    const b = openStore({ path: dir, sync: true })
    expect(await b.list('s/')).toHaveLength(50)
  })

  it('deletes the write-ahead log once LMDB has flushed the writes, and at close', async () => {
    const dir = tempDir()
    const store = lmdbStore({ path: dir, walSegmentBytes: 4096 })
    for (let i = 0; i < 400; i++) await store.put(`w/${i}`, new Uint8Array(100).fill(i & 0xff))
    expect(walFiles(dir).length).toBeGreaterThan(0)
    await store.flush()
    // Only the segment still being written may remain.
    expect(walFiles(dir).length).toBeLessThanOrEqual(1)
    await store.close()
    expect(walFiles(dir)).toEqual([])
  })

  it('refuses a second open of the same store while the first is open', async () => {
    const dir = tempDir()
    const a = lmdbStore({ path: dir })
    let err: unknown
    try {
      lmdbStore({ path: dir })
    } catch (e) {
      err = e
    }
    expect(isCnmError(err, 'ERR_STORE_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toContain('in use')
    await a.put('k', enc.encode('still fine'))
    await a.close()
    const b = openStore({ path: dir })
    expect(dec.decode((await b.get('k'))?.value)).toBe('still fine')
  })

  it('releases the store when opening fails half-way, so that it can be opened again', async () => {
    const dir = tempDir()
    const a = lmdbStore({ path: dir })
    await a.put('k', enc.encode('v'))
    await a.close()
    // An unreadable log segment makes the replay (after the ownership is taken) fail.
    mkdirSync(join(dir, 'wal-0000000000000002.log'))
    let err: unknown
    try {
      lmdbStore({ path: dir })
    } catch (e) {
      err = e
    }
    expect(isCnmError(err, 'ERR_STORE_UNAVAILABLE')).toBe(true)
    rmSync(join(dir, 'wal-0000000000000002.log'), { recursive: true })
    const b = openStore({ path: dir })
    expect(dec.decode((await b.get('k'))?.value)).toBe('v')
  })

  it('logs opening and closing through the injected logger', async () => {
    const logger = capturingLogger()
    const store = lmdbStore({ path: tempDir() }, { logger })
    await store.close()
    const text = logger.lines.join('\n')
    expect(text).toMatch(/^cnm:datastore:lmdb info: opened .* at index 0/m)
    expect(text).toMatch(/^cnm:datastore:lmdb info: closed .* at index 0/m)
  })

  it('fails the store when the write-ahead log cannot be written', async () => {
    const dir = tempDir()
    const logger = capturingLogger()
    const store = lmdbStore({ path: dir }, { logger })
    open.push(store)
    // The first segment's name taken by a directory: opening it for writing fails.
    mkdirSync(join(dir, 'wal-0000000000000001.log'))
    const watching = store.watch('', { prefix: true })[Symbol.asyncIterator]()
    const next = watching.next()
    const err = await store.put('k', enc.encode('v')).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_STORE_UNAVAILABLE')).toBe(true)
    expect((err as Error).message).toContain('write-ahead log')
    // The watcher saw the write (it was applied in memory before the log write failed), then the failure.
    expect(((await next).value as WatchEvent | undefined)?.key).toBe('k')
    expect(isCnmError(await watching.next().catch((e: unknown) => e), 'ERR_STORE_UNAVAILABLE')).toBe(true)
    expect(isCnmError(await store.get('k').catch((e: unknown) => e), 'ERR_STORE_UNAVAILABLE')).toBe(true)
    expect(logger.lines.some((l) => l.includes('error: store') && l.includes('failed'))).toBe(true)
    await store.close()
    rmSync(join(dir, 'wal-0000000000000001.log'), { recursive: true })
    // The failed write never reached LMDB.
    const again = openStore({ path: dir })
    expect(await again.get('k')).toBeUndefined()
    expect(again.lastIndex).toBe(0n)
  })

  it('supports await using', async () => {
    const dir = tempDir()
    {
      await using store = lmdbStore({ path: dir })
      await store.put('k', enc.encode('v'))
    }
    const again = openStore({ path: dir })
    expect(dec.decode((await again.get('k'))?.value)).toBe('v')
  })
})

describe('LmdbStore write-ahead log replay', () => {
  let writer: { file: string; remove(): void }

  beforeAll(async () => {
    writer = await bundleFixture('wal-only-writer')
  })

  afterAll(() => {
    writer.remove()
  })

  /** Runs the fixture: 300 puts and 30 deletes that only reach the log, then SIGKILL. Returns the last index. */
  async function writeOnlyToLog(dir: string): Promise<bigint> {
    const child = spawn(process.execPath, [writer.file, dir, '300'], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => {
      child.on('close', (_code, sig) => resolve(sig))
    })
    expect(signal, err).toBe('SIGKILL')
    const m = /^acked (\d+)$/m.exec(out)
    expect(m, out + err).not.toBeNull()
    return BigInt((m as RegExpExecArray)[1] as string)
  }

  function expectedKeys(upToIndex: number): string[] {
    // Index i+1+floor(i/10) is the put of item i; every tenth item is deleted right after its put.
    const keys: string[] = []
    let index = 0
    for (let i = 0; i < 300; i++) {
      index++
      if (index > upToIndex) break
      const key = `wal/${String(i).padStart(4, '0')}`
      keys.push(key)
      if (i % 10 === 9) {
        index++
        if (index > upToIndex) break
        keys.pop()
      }
    }
    return keys
  }

  it('replays acknowledged writes that never reached LMDB', async () => {
    const dir = tempDir()
    const acked = await writeOnlyToLog(dir)
    expect(acked).toBe(330n)
    expect(walFiles(dir).length).toBeGreaterThan(1)
    const logger = capturingLogger()
    const store = lmdbStore({ path: dir }, { logger })
    open.push(store)
    expect(store.lastIndex).toBe(acked)
    const listed = await store.list('wal/')
    expect(listed.map((e) => e.key)).toEqual(expectedKeys(330))
    expect(listed).toHaveLength(270)
    expect(dec.decode(listed[0]?.value)).toBe('value 0')
    // wal/0298 is the last item kept (wal/0299 is deleted): index 298 + 1 + 29 deletes before it.
    expect(listed.at(-1)?.key).toBe('wal/0298')
    expect(listed.at(-1)?.index).toBe(328n)
    expect(walFiles(dir)).toEqual([])
    expect(logger.lines.some((l) => /replayed 330 write-ahead log records/.test(l))).toBe(true)
  })

  it('stops at a torn last record and keeps everything before it', async () => {
    const dir = tempDir()
    await writeOnlyToLog(dir)
    const last = join(dir, walFiles(dir).at(-1) as string)
    truncateSync(last, readFileSync(last).length - 3)
    const store = openStore({ path: dir })
    expect(store.lastIndex).toBe(329n)
    expect((await store.list('wal/')).map((e) => e.key)).toEqual(expectedKeys(329))
    // The store goes on from there with consistent indices.
    expect(await store.put('after', enc.encode('x'))).toBe(330n)
  })

  it('stops at a damaged record and drops everything after it, even in later segments', async () => {
    const dir = tempDir()
    await writeOnlyToLog(dir)
    const files = walFiles(dir)
    expect(files.length).toBeGreaterThan(2)
    const second = join(dir, files[1] as string)
    const firstIndexOfSecond = Number(/wal-(\d+)\.log/.exec(files[1] as string)?.[1])
    const buf = readFileSync(second)
    buf[20] = (buf[20] as number) ^ 0xff // inside the first record's payload
    writeFileSync(second, buf)
    const logger = capturingLogger()
    const store = lmdbStore({ path: dir }, { logger })
    open.push(store)
    expect(store.lastIndex).toBe(BigInt(firstIndexOfSecond - 1))
    expect((await store.list('wal/')).map((e) => e.key)).toEqual(expectedKeys(firstIndexOfSecond - 1))
  })
})
