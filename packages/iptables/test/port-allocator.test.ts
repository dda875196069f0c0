import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import {
  AllPortsAllocatedError,
  DEFAULT_EPHEMERAL_RANGE,
  InvalidPortRangeError,
  PortAlreadyAllocatedError,
  UnknownProtocolError,
  parsePortRange,
  portAllocator,
  readEphemeralRange,
} from '../src/index.js'
import type { Protocol } from '../src/index.js'

describe('PortAllocator', () => {
  it('custom range 8081-8082 hands out both, then all ports allocated', () => {
    const pa = portAllocator({ ephemeralRange: { start: 40000, end: 40100 } })
    expect(pa.requestPortInRange(undefined, 'tcp', 8081, 8082)).toBe(8081)
    expect(pa.requestPortInRange(undefined, 'tcp', 8081, 8082)).toBe(8082)
    const err = (() => {
      try {
        pa.requestPortInRange(undefined, 'tcp', 8081, 8082)
      } catch (e) {
        return e
      }
      return undefined
    })()
    expect(err).toBeInstanceOf(AllPortsAllocatedError)
    expect(isCnmError(err, 'ERR_PORT_ALL_ALLOCATED')).toBe(true)
  })

  it('rejects invalid ranges 0-8082, 8081-0, 8081-8080 and out-of-range ports', () => {
    const pa = portAllocator({ ephemeralRange: { start: 40000, end: 40100 } })
    for (const [s, e] of [
      [0, 8082],
      [8081, 0],
      [8081, 8080],
      [-1, -1],
      [65536, 65536],
      [1.5, 2],
    ] as const) {
      expect(() => pa.requestPortInRange(undefined, 'tcp', s, e), `${s}-${e}`).toThrow(InvalidPortRangeError)
    }
  })

  it('ephemeral requests increase through the range, then wrap to free ports', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50004 } })
    const got = [0, 1, 2, 3, 4].map(() => pa.requestPort('0.0.0.0', 'udp', 0))
    expect(got).toEqual([50000, 50001, 50002, 50003, 50004])
    expect(() => pa.requestPort(undefined, 'udp', 0)).toThrow(AllPortsAllocatedError)
    pa.releasePort(undefined, 'udp', 50001)
    expect(pa.requestPort(undefined, 'udp', 0)).toBe(50001)
  })

  it('round robin: a released port is not reused before the cursor wraps', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50010 } })
    expect(pa.requestPortInRange(undefined, 'tcp', 9000, 9009)).toBe(9000)
    expect(pa.requestPortInRange(undefined, 'tcp', 9000, 9009)).toBe(9001)
    pa.releasePort(undefined, 'tcp', 9000)
    expect(pa.requestPortInRange(undefined, 'tcp', 9000, 9009)).toBe(9002)
  })

  it('an exact port taken twice fails with the libnetwork message', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50010 } })
    expect(pa.requestPort('127.0.0.1', 'tcp', 8080)).toBe(8080)
    let err: unknown
    try {
      pa.requestPort('127.0.0.1', 'tcp', 8080)
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(PortAlreadyAllocatedError)
    expect((err as Error).message).toBe('Bind for 127.0.0.1:8080 failed: port is already allocated')
    expect((err as PortAlreadyAllocatedError).kind).toBe('conflict')
  })

  it('keys by protocol and host IP independently; empty IP means 0.0.0.0', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50010 } })
    for (const proto of ['tcp', 'udp', 'sctp'] as Protocol[]) expect(pa.requestPort(undefined, proto, 80)).toBe(80)
    expect(pa.requestPort('::', 'tcp', 80)).toBe(80)
    expect(pa.requestPort('10.0.0.1', 'tcp', 80)).toBe(80)
    expect(() => pa.requestPort('', 'tcp', 80)).toThrow(PortAlreadyAllocatedError)
    expect(() => pa.requestPort('0.0.0.0', 'tcp', 80)).toThrow(PortAlreadyAllocatedError)
    expect(() => pa.requestPort('0:0:0:0:0:0:0:0', 'tcp', 80)).toThrow(PortAlreadyAllocatedError)
    expect(pa.isAllocated(undefined, 'udp', 80)).toBe(true)
  })

  it('release is idempotent and releaseAll resets everything', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50010 } })
    pa.requestPort(undefined, 'tcp', 80)
    pa.releasePort(undefined, 'tcp', 80)
    pa.releasePort(undefined, 'tcp', 80)
    pa.releasePort('10.9.9.9', 'sctp', 81)
    expect(pa.requestPort(undefined, 'tcp', 80)).toBe(80)
    pa.requestPort(undefined, 'tcp', 0)
    pa.releaseAll()
    expect(pa.isAllocated(undefined, 'tcp', 80)).toBe(false)
    expect(pa.requestPort(undefined, 'tcp', 0)).toBe(50000)
  })

  it('unknown protocols and bad host IPs are typed errors', () => {
    const pa = portAllocator({ ephemeralRange: { start: 50000, end: 50010 } })
    expect(() => pa.requestPort(undefined, 'icmp' as Protocol, 1)).toThrow(UnknownProtocolError)
    expect(() => pa.requestPort(undefined, 'TCP' as Protocol, 1)).toThrow(/unknown protocol: TCP/)
    expect(() => pa.requestPort('300.1.1.1', 'tcp', 1)).toThrow(/invalid host IP/)
  })

  it('reads the ephemeral range from a file, falling back to 49153-65535', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cnm-ports-'))
    try {
      const file = join(dir, 'range')
      writeFileSync(file, '32768\t60999\n')
      expect(readEphemeralRange(file)).toEqual({ start: 32768, end: 60999 })
      expect(portAllocator({ ephemeralRangeFile: file }).ephemeralRange).toEqual({ start: 32768, end: 60999 })
      writeFileSync(file, 'garbage')
      expect(readEphemeralRange(file)).toEqual(DEFAULT_EPHEMERAL_RANGE)
      expect(readEphemeralRange(join(dir, 'missing'))).toEqual({ start: 49153, end: 65535 })
      expect(parsePortRange('60000 1000')).toBeUndefined()
      expect(() => portAllocator({ ephemeralRange: { start: 0, end: 10 } })).toThrow(InvalidPortRangeError)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
