import { afterEach, describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { residentCommandRunner } from '../src/index.js'
import type { ResidentCommandRunner } from '../src/index.js'

describe('residentCommandRunner (one long-lived /bin/sh)', () => {
  const runners: ResidentCommandRunner[] = []
  const make = (idleMs?: number): ResidentCommandRunner => {
    const r = residentCommandRunner(idleMs === undefined ? {} : { idleMs })
    runners.push(r)
    return r
  }
  afterEach(async () => {
    for (const r of runners.splice(0)) await r.close()
  })

  it('frames stdout, stderr and the exit status of each command, feeds input, and starts one shell', async () => {
    const run = make()
    expect(await run(['printf', '%s', 'no newline'])).toEqual({ code: 0, stdout: 'no newline', stderr: '' })
    expect(await run(['sh', '-c', 'cat; echo oops >&2; exit 3'], { input: 'line 1\nline 2' })).toEqual({
      code: 3,
      stdout: 'line 1\nline 2\n',
      stderr: 'oops\n',
    })
    // arguments reach the program verbatim: quotes, spaces, $ and newlines are not interpreted
    const odd = ["it's", 'a b', '$HOME', 'x\ny', '`id`']
    expect((await run(['printf', '%s|', ...odd])).stdout).toBe(odd.join('|') + '|')
    // the command never reads the protocol stream: without input it sees an empty stdin
    expect((await run(['cat'])).stdout).toBe('')
    // concurrent calls run one after another, each with its own output
    const outs = await Promise.all([1, 2, 3, 4, 5].map((i) => run(['sh', '-c', `sleep 0.0${i}; echo ${i}`])))
    expect(outs.map((o) => o.stdout)).toEqual(['1\n', '2\n', '3\n', '4\n', '5\n'])
    expect(run.stats).toEqual({ launches: 1, commands: 9 })
  })

  it('validates its options', () => {
    expect(() => residentCommandRunner({ idleMs: -1 })).toThrow(
      expect.objectContaining({ code: 'ERR_IPTABLES_INVALID_OPTION' }),
    )
    expect(() => residentCommandRunner({ shell: 'sh' })).toThrow(/absolute/)
  })

  it('rejects a missing program with code ENOENT, as spawn does', async () => {
    const run = make()
    const err = await run(['cnm-no-such-program-here']).catch((e: unknown) => e)
    expect((err as NodeJS.ErrnoException).code).toBe('ENOENT')
    expect((await run(['true'])).code).toBe(0)
  })

  it('an aborted command kills the shell and its child; the next command starts a new shell', async () => {
    const run = make()
    await run(['true'])
    const ac = new AbortController()
    const started = Date.now()
    const p = run(['sleep', '30'], { signal: ac.signal })
    setTimeout(() => ac.abort(new Error('enough')), 50)
    const err = await p.catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_ABORTED')).toBe(true)
    expect(Date.now() - started).toBeLessThan(5000)
    expect(await run(['echo', 'again'])).toEqual({ code: 0, stdout: 'again\n', stderr: '' })
    expect(run.stats.launches).toBe(2)
    const pre = new AbortController()
    pre.abort()
    expect(isCnmError(await run(['true'], { signal: pre.signal }).catch((e: unknown) => e), 'ERR_ABORTED')).toBe(true)
  })

  it('an idle shell exits after idleMs and comes back on demand; close() ends it after queued work', async () => {
    const run = make(30)
    const first = await run(['sh', '-c', 'echo $PPID'])
    await new Promise((r) => setTimeout(r, 200))
    const second = await run(['sh', '-c', 'echo $PPID'])
    expect(run.stats.launches).toBe(2)
    expect(second.stdout).not.toBe(first.stdout)
    // close() lets queued work finish, ends the shell; the runner stays usable with a new shell
    const queued = run(['echo', 'queued'])
    await run.close()
    expect((await queued).stdout).toBe('queued\n')
    expect((await run(['echo', 'after'])).stdout).toBe('after\n')
    expect(run.stats.launches).toBe(3)
  })
})
