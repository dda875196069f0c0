import { spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { lmdbStore } from '../src/index.js'
import { bundleFixture } from './fixtures/bundle.js'
import { CRASH_PREFIX, simulate } from './fixtures/crash-steps.js'

/**
 * kill -9 at a random moment, repeatedly: every write the child reported as resolved must be in the
 * reopened store, and the store must be exactly the state after the reported steps (or after one more,
 * the step in flight at the kill), never anything else.
 */
describe('LmdbStore survives SIGKILL', () => {
  let writer: { file: string; remove(): void }
  const children = new Set<ChildProcess>()
  const dirs: string[] = []

  beforeAll(async () => {
    writer = await bundleFixture('crash-writer')
  })

  afterAll(() => {
    writer.remove()
  })

  afterEach(() => {
    for (const child of children) {
      if (child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
    }
    children.clear()
    for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true })
  })

  /**
   * Starts the writer at step `first` and kills it `delayMs` after its first acknowledged step. Returns the
   * last acknowledged step.
   */
  async function runAndKill(dir: string, mode: string, first: number, delayMs: number): Promise<number> {
    const child = spawn(process.execPath, [writer.file, dir, mode, String(first)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    children.add(child)
    let acked = first - 1
    let stderr = ''
    let buffered = ''
    let timer: ReturnType<typeof setTimeout> | undefined
    // 'close', not 'exit': every line the child wrote before it died must have been read.
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
      child.on('close', (code, signal) => resolve({ code, signal }))
    })
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
    child.stdout?.on('data', (d: Buffer) => {
      buffered += d.toString()
      const lines = buffered.split('\n')
      buffered = lines.pop() as string
      for (const line of lines) {
        if (line === 'ready') continue
        const s = Number(line)
        expect(s).toBe(acked + 1)
        acked = s
        if (timer === undefined) {
          timer = setTimeout(() => {
            if (child.pid !== undefined) process.kill(child.pid, 'SIGKILL')
          }, delayMs)
        }
      }
    })
    const { code, signal } = await exited
    clearTimeout(timer)
    children.delete(child)
    expect(signal, `writer exited on its own (code ${code}): ${stderr}`).toBe('SIGKILL')
    return acked
  }

  async function stateOf(dir: string): Promise<{ state: Map<string, string>; lastIndex: bigint; maxIndex: bigint }> {
    const store = lmdbStore({ path: dir })
    try {
      const dec = new TextDecoder()
      const state = new Map<string, string>()
      let maxIndex = 0n
      for (const e of await store.list(CRASH_PREFIX)) {
        state.set(e.key, dec.decode(e.value))
        if (e.index > maxIndex) maxIndex = e.index
      }
      return { state, lastIndex: store.lastIndex, maxIndex }
    } finally {
      await store.close()
    }
  }

  function same(a: Map<string, string>, b: Map<string, string>): boolean {
    if (a.size !== b.size) return false
    for (const [k, v] of a) if (b.get(k) !== v) return false
    return true
  }

  function diff(actual: Map<string, string>, expected: Map<string, string>): string[] {
    const out: string[] = []
    for (const [k, v] of expected) {
      if (actual.get(k) !== v) out.push(`${k}: expected ${v.slice(0, 20)}, got ${actual.get(k)?.slice(0, 20)}`)
    }
    for (const k of actual.keys()) if (!expected.has(k)) out.push(`${k}: unexpected`)
    return out.slice(0, 10)
  }

  for (const mode of ['fast', 'sync']) {
    it(`keeps every acknowledged write (${mode} mode)`, { timeout: 120_000 }, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'cnm-datastore-crash-'))
      dirs.push(dir)
      let applied = 0
      let lastIndex = 0n
      for (let round = 0; round < 5; round++) {
        const acked = await runAndKill(dir, mode, applied + 1, Math.floor(Math.random() * 250))
        expect(acked).toBeGreaterThan(applied)
        const after = await stateOf(dir)
        const exact = same(after.state, simulate(acked))
        const oneMore = !exact && same(after.state, simulate(acked + 1))
        const why = `round ${round}, acked ${acked}: ${diff(after.state, simulate(acked)).join('; ')}`
        expect(exact || oneMore, why).toBe(true)
        applied = oneMore ? acked + 1 : acked
        // Indices never go back across crashes, and every stored index is one the store handed out.
        expect(after.lastIndex >= lastIndex).toBe(true)
        expect(after.maxIndex <= after.lastIndex).toBe(true)
        lastIndex = after.lastIndex
      }
      expect(applied).toBeGreaterThan(5)
    })
  }
})
