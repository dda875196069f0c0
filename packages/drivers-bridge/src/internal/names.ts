import { randomBytes } from 'node:crypto'
import { hostBits, type IpAddr, type IpCidr, type IpPrefix } from '@cnm/types'
import { EndpointAddressError, InvalidBridgeOptionError } from '../errors.js'

/** Default device of Docker's default bridge network. */
export const DEFAULT_BRIDGE_NAME = 'docker0'

/** `br-<first 12 chars of the network id>`. */
export function bridgeNameFor(nid: string): string {
  return `br-${nid.slice(0, 12)}`
}

/** `veth` + 7 random hex characters (the host or the container end of a pair). */
export function randomVethName(random: (n: number) => Uint8Array = randomBytes): string {
  return `veth${Buffer.from(random(4)).toString('hex').slice(0, 7)}`
}

/** A pair of distinct random veth names. */
export function randomVethPair(random: (n: number) => Uint8Array = randomBytes): { host: string; peer: string } {
  const host = randomVethName(random)
  let peer = randomVethName(random)
  for (let i = 0; peer === host && i < 8; i++) peer = randomVethName(random)
  return { host, peer }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0')
}

/** `02:42:` followed by the four bytes of the IPv4 address (libnetwork's MAC for a container). */
export function macFromIpv4(ip: IpAddr): string {
  if (ip.version !== 4) throw new InvalidBridgeOptionError('address', 'a MAC can only be derived from an IPv4 address')
  const v = Number(ip.value)
  return ['02', '42', hex2((v >>> 24) & 0xff), hex2((v >>> 16) & 0xff), hex2((v >>> 8) & 0xff), hex2(v & 0xff)].join(
    ':',
  )
}

/** `02:42:` + 4 random bytes (the bridge device's MAC). */
export function randomBridgeMac(random: (n: number) => Uint8Array = randomBytes): string {
  const b = random(4)
  return ['02', '42', ...Array.from(b.subarray(0, 4), hex2)].join(':')
}

const MAC_RE = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/

/** Canonical lower-case `aa:bb:cc:dd:ee:ff`, or undefined when it is not a 6-byte MAC. */
export function normalizeMac(mac: string): string | undefined {
  const s = mac.trim()
  if (!MAC_RE.test(s)) return undefined
  return s.toLowerCase()
}

/**
 * Writes the 6 MAC bytes into bytes 10–15 of the IPv6 prefix (libnetwork's bridge IPv6 from MAC):
 * fe90::/64 + aa:bb:cc:dd:ee:ff → fe90::aabb:ccdd:eeff/64. Needs at least 48 host bits.
 */
export function ipv6FromMac(prefix: IpPrefix, mac: string): IpCidr {
  if (prefix.version !== 6) throw new EndpointAddressError('ERR_BRIDGE_NO_ADDRESS', 'IPv6 prefix required')
  if (hostBits(prefix) < 48) {
    throw new EndpointAddressError(
      'ERR_BRIDGE_IPV6_PREFIX_TOO_LONG',
      `IPv6 prefix /${prefix.bits} is too long to derive an address from a MAC (need /80 or shorter)`,
    )
  }
  const norm = normalizeMac(mac)
  if (norm === undefined) throw new InvalidBridgeOptionError('macAddress', `invalid MAC address ${mac}`)
  const macValue = BigInt(`0x${norm.replaceAll(':', '')}`)
  const value = prefix.network | macValue
  return { ip: { version: 6, value }, prefix }
}
