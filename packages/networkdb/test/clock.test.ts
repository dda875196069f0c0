import { describe, expect, it } from 'vitest'
import { LamportClock } from '../src/clock.js'

describe('LamportClock', () => {
  it('increment returns the new value', () => {
    const c = new LamportClock()
    expect(c.time()).toBe(0n)
    expect(c.increment()).toBe(1n)
    expect(c.increment()).toBe(2n)
    expect(c.time()).toBe(2n)
  })

  it('witness moves past times at or above the current value and ignores older ones', () => {
    const c = new LamportClock()
    c.witness(5n)
    expect(c.time()).toBe(6n)
    c.witness(6n)
    expect(c.time()).toBe(7n)
    c.witness(3n)
    expect(c.time()).toBe(7n)
    expect(c.increment()).toBe(8n)
  })
})
