import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest'
import { Suspicion, remainingSuspicionMs, suspicionParams, suspicionTimeoutMs } from '../src/suspicion.js'

const lan = { suspicionMult: 4, suspicionMaxTimeoutMult: 6, probeIntervalMs: 1000 }

describe('suspicion timeout math (spec §9)', () => {
  it('3 nodes: k = 0, timer starts at min = 4 s', () => {
    expect(suspicionParams(lan, 3)).toEqual({ k: 0, minMs: 4000, maxMs: 24000 })
  })

  it('10 nodes: 24 s, 11.38 s after one confirmation, 4 s after two', () => {
    const { k, minMs, maxMs } = suspicionParams(lan, 10)
    expect({ k, minMs, maxMs }).toEqual({ k: 2, minMs: 4000, maxMs: 24000 })
    expect(remainingSuspicionMs(0, k, 0, minMs, maxMs)).toBe(24000)
    expect(remainingSuspicionMs(1, k, 0, minMs, maxMs)).toBe(11381)
    expect(remainingSuspicionMs(2, k, 0, minMs, maxMs)).toBe(4000)
  })

  it('scales with log10(n) above 10 nodes and never goes below min', () => {
    expect(suspicionTimeoutMs(4, 100, 1000)).toBe(8000)
    expect(suspicionTimeoutMs(4, 1, 1000)).toBe(4000)
    expect(suspicionTimeoutMs(4, 0, 200)).toBe(800)
    expect(suspicionTimeoutMs(5, 1000, 1000)).toBe(15000)
    // Elapsed time is subtracted; the floor is min.
    expect(remainingSuspicionMs(2, 2, 1000, 4000, 24000)).toBe(3000)
    expect(remainingSuspicionMs(5, 2, 0, 4000, 24000)).toBe(4000)
  })

  it('k is 0 when n − 2 < suspicionMult − 2', () => {
    expect(suspicionParams(lan, 4).k).toBe(2)
    expect(suspicionParams(lan, 3).k).toBe(0)
    expect(suspicionParams({ ...lan, suspicionMult: 5 }, 4).k).toBe(0)
    expect(suspicionParams({ ...lan, suspicionMult: 5 }, 5).k).toBe(3)
  })
})

describe('Suspicion timer', () => {
  beforeEach(() => {
    vi.useFakeTimers()
  })
  afterEach(() => {
    vi.useRealTimers()
  })

  it('fires at min when no confirmations are expected', () => {
    const fired = vi.fn()
    const s = new Suspicion('a', 0, 4000, 24000, fired, () => Date.now())
    vi.advanceTimersByTime(3999)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fired).toHaveBeenCalledWith(0)
    s.stop()
  })

  it('10 nodes: fires at 24 s without confirmations', () => {
    const fired = vi.fn()
    new Suspicion('a', 2, 4000, 24000, fired, () => Date.now())
    vi.advanceTimersByTime(23999)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fired).toHaveBeenCalledTimes(1)
  })

  it('one confirmation cuts the timeout to 11.381 s, two to 4 s; duplicates and the accuser do not count', () => {
    const fired = vi.fn()
    const s = new Suspicion('a', 2, 4000, 24000, fired, () => Date.now())
    vi.advanceTimersByTime(1000)
    expect(s.confirm('a')).toBe(false) // the original accuser
    expect(s.confirm('b')).toBe(true)
    expect(s.confirm('b')).toBe(false)
    expect(s.confirmations).toBe(1)
    vi.advanceTimersByTime(11381 - 1000 - 1)
    expect(fired).not.toHaveBeenCalled()
    vi.advanceTimersByTime(1)
    expect(fired).toHaveBeenCalledWith(1)
  })

  it('two confirmations after 5 s expire at once (elapsed > min) and extra ones are ignored', () => {
    const fired = vi.fn()
    const s = new Suspicion('a', 2, 4000, 24000, fired, () => Date.now())
    vi.advanceTimersByTime(5000)
    expect(s.confirm('b')).toBe(true)
    expect(fired).not.toHaveBeenCalled()
    expect(s.confirm('c')).toBe(true)
    expect(fired).toHaveBeenCalledWith(2)
    expect(s.confirm('d')).toBe(false)
    expect(fired).toHaveBeenCalledTimes(1)
  })

  it('stop() cancels the timer', () => {
    const fired = vi.fn()
    const s = new Suspicion('a', 0, 4000, 24000, fired, () => Date.now())
    s.stop()
    vi.advanceTimersByTime(30000)
    expect(fired).not.toHaveBeenCalled()
  })
})
