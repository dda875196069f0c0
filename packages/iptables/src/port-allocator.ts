import { readFileSync } from 'node:fs'
import { formatIp, tryParseIp } from '@cnm/types'
import {
  AllPortsAllocatedError,
  InvalidFirewallOptionError,
  InvalidPortRangeError,
  PortAlreadyAllocatedError,
  UnknownProtocolError,
} from './errors.js'

export type Protocol = 'tcp' | 'udp' | 'sctp'
export const PROTOCOLS: readonly Protocol[] = Object.freeze(['tcp', 'udp', 'sctp'])

export interface PortRange {
  readonly start: number
  readonly end: number
}

/** libnetwork's fallback when the kernel's range cannot be read. */
export const DEFAULT_EPHEMERAL_RANGE: PortRange = Object.freeze({ start: 49153, end: 65535 })
export const PORT_RANGE_FILE = '/proc/sys/net/ipv4/ip_local_port_range'

export interface PortAllocatorInit {
  /**
   * Range used for ephemeral requests (port 0). When not given it is read once from
   * `ephemeralRangeFile`, falling back to 49153–65535.
   */
  ephemeralRange?: PortRange
  /** @default '/proc/sys/net/ipv4/ip_local_port_range' */
  ephemeralRangeFile?: string
}

/** Parses the kernel's `ip_local_port_range` text (`"32768\t60999\n"`); undefined if malformed. */
export function parsePortRange(text: string): PortRange | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text)
  if (m === null) return undefined
  const start = Number(m[1])
  const end = Number(m[2])
  if (start < 1 || end > 65535 || end < start) return undefined
  return { start, end }
}

/** Reads an ip_local_port_range file; DEFAULT_EPHEMERAL_RANGE on any failure. */
export function readEphemeralRange(file: string = PORT_RANGE_FILE): PortRange {
  try {
    return parsePortRange(readFileSync(file, 'utf8')) ?? DEFAULT_EPHEMERAL_RANGE
  } catch {
    // no /proc (or not readable): libnetwork falls back the same way
    return DEFAULT_EPHEMERAL_RANGE
  }
}

/** `undefined`, `''` and `0.0.0.0` become `0.0.0.0`; other addresses their canonical text. `::` stays `::`. */
export function normalizeHostIp(ip: string | undefined): string {
  if (ip === undefined || ip === '') return '0.0.0.0'
  const a = tryParseIp(ip)
  if (a === undefined) throw new InvalidFirewallOptionError(`invalid host IP ${JSON.stringify(ip)}`)
  return formatIp(a)
}

export function assertProtocol(proto: unknown): asserts proto is Protocol {
  if (!(PROTOCOLS as readonly unknown[]).includes(proto)) throw new UnknownProtocolError(proto)
}

function assertPort(port: unknown, field: string): asserts port is number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidPortRangeError(`${field} must be an integer in 0..65535, got ${String(port)}`)
  }
}

interface ProtoState {
  used: Set<number>
  /** Round-robin cursor per range key `"start-end"`. */
  last: Map<string, number>
}

/**
 * Host port bookkeeping (libnetwork's portallocator), pure and synchronous: per host IP and per
 * protocol, exact ports, ranges searched round-robin, and the ephemeral range. It does not bind
 * anything; the kernel catches real clashes (0.0.0.0, :: and specific IPs are independent keys).
 */
export class PortAllocator {
  readonly ephemeralRange: PortRange
  private readonly ips = new Map<string, Map<Protocol, ProtoState>>()

  constructor(init: PortAllocatorInit = {}) {
    if (init.ephemeralRange !== undefined) {
      const { start, end } = init.ephemeralRange
      assertPort(start, 'ephemeralRange.start')
      assertPort(end, 'ephemeralRange.end')
      if (start === 0 || end < start) throw new InvalidPortRangeError(`invalid ephemeral range ${start}-${end}`)
      this.ephemeralRange = Object.freeze({ start, end })
    } else {
      this.ephemeralRange = readEphemeralRange(init.ephemeralRangeFile)
    }
  }

  /** Allocates `port` exactly, or an ephemeral port when `port` is 0. */
  requestPort(ip: string | undefined, proto: Protocol, port: number): number {
    return this.requestPortInRange(ip, proto, port, port)
  }

  /**
   * `start == end > 0`: exactly that port; `0, 0`: the next free ephemeral port; otherwise the
   * next free port of the range after the range's cursor (round robin).
   */
  requestPortInRange(ip: string | undefined, proto: Protocol, start: number, end: number): number {
    assertProtocol(proto)
    assertPort(start, 'start')
    assertPort(end, 'end')
    const key = normalizeHostIp(ip)
    if (start !== 0 || end !== 0) {
      if (start === 0 || end === 0 || end < start)
        throw new InvalidPortRangeError(`invalid port range: ${start}-${end}`)
    }
    const state = this.state(key, proto)
    if (start === end && start !== 0) {
      if (state.used.has(start)) throw new PortAlreadyAllocatedError(key, start)
      state.used.add(start)
      return start
    }
    const range = start === 0 ? this.ephemeralRange : { start, end }
    const port = this.findInRange(state, range)
    if (port === undefined) {
      throw new AllPortsAllocatedError(
        start === 0 ? 'all ports are allocated' : `all ports are allocated in range ${range.start}-${range.end}`,
      )
    }
    state.used.add(port)
    return port
  }

  /** Frees a port; releasing a port that is not allocated is a no-op. */
  releasePort(ip: string | undefined, proto: Protocol, port: number): void {
    assertProtocol(proto)
    assertPort(port, 'port')
    this.ips.get(normalizeHostIp(ip))?.get(proto)?.used.delete(port)
  }

  isAllocated(ip: string | undefined, proto: Protocol, port: number): boolean {
    assertProtocol(proto)
    return this.ips.get(normalizeHostIp(ip))?.get(proto)?.used.has(port) ?? false
  }

  /** Forgets every allocation and cursor. */
  releaseAll(): void {
    this.ips.clear()
  }

  private state(ip: string, proto: Protocol): ProtoState {
    let protos = this.ips.get(ip)
    if (protos === undefined) {
      protos = new Map()
      this.ips.set(ip, protos)
    }
    let s = protos.get(proto)
    if (s === undefined) {
      s = { used: new Set(), last: new Map() }
      protos.set(proto, s)
    }
    return s
  }

  private findInRange(state: ProtoState, range: PortRange): number | undefined {
    const rangeKey = `${range.start}-${range.end}`
    const last = state.last.get(rangeKey) ?? range.end
    const size = range.end - range.start + 1
    let port = last
    for (let i = 0; i < size; i++) {
      port = port >= range.end ? range.start : port + 1
      if (!state.used.has(port)) {
        state.last.set(rangeKey, port)
        return port
      }
    }
    return undefined
  }
}

/** Creates a PortAllocator (one per process, or one per host namespace in tests). */
export function portAllocator(init: PortAllocatorInit = {}): PortAllocator {
  return new PortAllocator(init)
}
