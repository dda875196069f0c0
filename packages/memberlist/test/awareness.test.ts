import { describe, expect, it } from 'vitest'
import { Awareness } from '../src/awareness.js'

describe('Awareness', () => {
  it('starts healthy and scales probe deadlines by score + 1', () => {
    const a = new Awareness(8)
    expect(a.score).toBe(0)
    expect(a.scaleTimeout(1000)).toBe(1000)
    a.applyDelta(3)
    expect(a.scaleTimeout(1000)).toBe(4000)
  })

  it('is clamped to [0, max − 1]', () => {
    const a = new Awareness(8)
    expect(a.applyDelta(-1)).toBe(0)
    expect(a.applyDelta(100)).toBe(7)
    expect(a.scaleTimeout(500)).toBe(4000)
    expect(a.applyDelta(-2)).toBe(5)
  })
})
