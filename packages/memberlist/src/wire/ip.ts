import { formatIp, parseIp } from '@cnm/types'
import { WireError } from './errors.js'

const V4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

/** IP text to wire bytes: IPv4 → 4 bytes (never the 16-byte mapped form), IPv6 → 16 bytes. */
export function ipToBytes(ip: string): Uint8Array {
  const m = V4.exec(ip)
  if (m !== null) {
    const out = new Uint8Array(4)
    for (let i = 0; i < 4; i++) {
      const v = Number(m[i + 1])
      if (v > 255) throw new WireError(`invalid IP address ${JSON.stringify(ip)}`)
      out[i] = v
    }
    return out
  }
  let value: bigint
  try {
    const parsed = parseIp(ip)
    if (parsed.version !== 6) throw new Error('not IPv6')
    value = parsed.value
  } catch (cause) {
    throw new WireError(`invalid IP address ${JSON.stringify(ip)}`, { cause })
  }
  const out = new Uint8Array(16)
  for (let i = 15; i >= 0; i--) {
    out[i] = Number(value & 0xffn)
    value >>= 8n
  }
  return out
}

/** Wire bytes to IP text, as Go's net.IP.String: 4 bytes or a v4-mapped 16 → dotted, else IPv6 text. */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return `${b[0]}.${b[1]}.${b[2]}.${b[3]}`
  if (b.length !== 16) throw new WireError(`invalid IP address length ${b.length}`)
  let mapped = b[10] === 0xff && b[11] === 0xff
  for (let i = 0; i < 10 && mapped; i++) if (b[i] !== 0) mapped = false
  if (mapped) return `${b[12]}.${b[13]}.${b[14]}.${b[15]}`
  let value = 0n
  for (let i = 0; i < 16; i++) value = (value << 8n) | BigInt(b[i]!)
  return formatIp({ version: 6, value })
}
