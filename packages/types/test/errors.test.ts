import { describe, expect, it } from 'vitest'
import { AbortError, CnmError, ForbiddenError, isCnmError, statusForKind, throwIfAborted } from '../src/index.js'

describe('errors', () => {
  it('brands errors and keeps code, kind, name and cause', () => {
    const cause = new Error('inner')
    const err = new ForbiddenError('nope', { code: 'ERR_X_Y', cause })
    expect(err).toBeInstanceOf(CnmError)
    expect(err.name).toBe('ForbiddenError')
    expect(err.kind).toBe('forbidden')
    expect(err.cause).toBe(cause)
    expect(isCnmError(err)).toBe(true)
    expect(isCnmError(err, 'ERR_X_Y')).toBe(true)
    expect(isCnmError(err, 'ERR_OTHER')).toBe(false)
    expect(isCnmError(new Error('plain'))).toBe(false)
    expect(statusForKind(err.kind)).toBe(403)
  })
  it('recognises an error from another copy by its brand', () => {
    const foreign = Object.assign(new Error('x'), { code: 'ERR_Z', [Symbol.for('cnm.error')]: true })
    expect(isCnmError(foreign, 'ERR_Z')).toBe(true)
  })
  it('throwIfAborted throws AbortError with the reason as cause', () => {
    const ac = new AbortController()
    ac.abort(new Error('why'))
    expect(() => throwIfAborted(ac.signal)).toThrow(AbortError)
    throwIfAborted(undefined)
  })
})
