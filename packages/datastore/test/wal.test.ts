import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { crc32, readSegments, segmentName, WalWriter } from '../src/internal/wal.js'

const dirs: string[] = []
function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'cnm-datastore-wal-'))
  dirs.push(dir)
  return dir
}

afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
})

function writer(dir: string, segmentBytes = 1 << 20, errors: unknown[] = []): WalWriter {
  return new WalWriter({ dir, segmentBytes, onError: (err) => errors.push(err) })
}

describe('write-ahead log', () => {
  it('computes the standard CRC-32', () => {
    expect(crc32(new TextEncoder().encode('123456789'))).toBe(0xcbf43926)
    expect(crc32(new Uint8Array(0))).toBe(0)
  })

  it('reads back what it wrote: puts, deletes, empty and binary values, non-ASCII keys', () => {
    const dir = tempDir()
    const w = writer(dir)
    const big = new Uint8Array(70_000).map((_, i) => i & 0xff)
    w.append('put', 1, 'a/b', new Uint8Array([1, 2, 3]))
    w.append('delete', 2, 'a/b', undefined)
    w.append('put', 3, 'ünï/😀', new Uint8Array(0))
    w.append('put', 4, 'big', big)
    w.close()
    const recs = readSegments(dir)
    expect(recs.map((r) => [r.op, r.index, r.key, r.value?.length])).toEqual([
      ['put', 1, 'a/b', 3],
      ['delete', 2, 'a/b', undefined],
      ['put', 3, 'ünï/😀', 0],
      ['put', 4, 'big', 70_000],
    ])
    expect(Array.from(recs[0]?.value as Uint8Array)).toEqual([1, 2, 3])
    expect(Buffer.compare(Buffer.from(recs[3]?.value as Uint8Array), Buffer.from(big))).toBe(0)
    expect(readdirSync(dir)).toEqual([segmentName(1)])
  })

  it('rotates segments and deletes those whose records are all durable', () => {
    const dir = tempDir()
    const w = writer(dir, 4096)
    for (let i = 1; i <= 200; i++) w.append('put', i, `k/${i}`, new Uint8Array(50))
    const files = readdirSync(dir).sort()
    expect(files.length).toBeGreaterThan(3)
    expect(files[0]).toBe(segmentName(1))
    expect(readSegments(dir).map((r) => r.index)).toEqual(Array.from({ length: 200 }, (_, i) => i + 1))
    // Durable up to the end of the second segment: the first two go.
    const secondLast = Number(/\d+/.exec(files[2] as string)?.[0]) - 1
    w.release(secondLast)
    expect(readdirSync(dir).sort()).toEqual(files.slice(2))
    w.release(150)
    expect(readSegments(dir)[0]?.index).toBeLessThanOrEqual(151)
    w.close(200)
    expect(readdirSync(dir)).toEqual([])
  })

  it('stops reading at a truncated or corrupted record', () => {
    const dir = tempDir()
    const w = writer(dir)
    for (let i = 1; i <= 5; i++) w.append('put', i, `k${i}`, new Uint8Array([i]))
    w.close()
    const file = join(dir, segmentName(1))
    const whole = readFileSync(file)
    const recordBytes = whole.length / 5
    writeFileSync(file, whole.subarray(0, whole.length - 1))
    expect(readSegments(dir).map((r) => r.index)).toEqual([1, 2, 3, 4])
    const bad = Buffer.from(whole)
    bad[2 * recordBytes + 12] = (bad[2 * recordBytes + 12] as number) ^ 1
    writeFileSync(file, bad)
    expect(readSegments(dir).map((r) => r.index)).toEqual([1, 2])
    writeFileSync(file, Buffer.concat([whole, Buffer.alloc(64)]))
    expect(readSegments(dir).map((r) => r.index)).toEqual([1, 2, 3, 4, 5])
  })
})
