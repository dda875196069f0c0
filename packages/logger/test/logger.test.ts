import { describe, expect, it } from 'vitest'
import { defaultLogger } from '../src/index.js'

describe('defaultLogger', () => {
  it('writes enabled namespaces and always writes errors', () => {
    const lines: string[] = []
    const logger = defaultLogger({ enabled: 'cnm:ipam*,-cnm:ipam:quiet', write: (l) => lines.push(l), now: () => 0 })
    const ipam = logger.forComponent('cnm:ipam')
    ipam('allocated %s', '10.0.0.2')
    ipam.child('quiet')('hidden')
    logger.forComponent('cnm:osl')('hidden too')
    logger.forComponent('cnm:osl').error('failed %d', 3)
    ipam.trace('not without trace')
    expect(lines).toEqual([
      '1970-01-01T00:00:00.000Z cnm:ipam allocated 10.0.0.2',
      '1970-01-01T00:00:00.000Z cnm:osl:error failed 3',
    ])
    expect(ipam.enabled).toBe(true)
  })
  it('writes trace lines only when asked', () => {
    const lines: string[] = []
    const log = defaultLogger({ enabled: '*', trace: true, write: (l) => lines.push(l) }).forComponent('cnm:x')
    log.trace('hot %s', 'path')
    expect(lines[0]).toMatch(/cnm:x:trace hot path$/)
  })
})
