import { InvalidArgumentError, type Brand, type IpAddr } from '@cnm/types'

/** A MAC address in canonical form: six lowercase hex pairs joined by `:`. */
export type MacAddress = Brand<string, 'MacAddress'>

const MAC = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/

/** Parses `aa:bb:cc:dd:ee:ff` (or `-` separated, any case). Throws InvalidArgumentError `ERR_INVALID_MAC`. */
export function parseMac(raw: unknown): MacAddress {
  if (typeof raw !== 'string' || !MAC.test(raw.trim())) {
    throw new InvalidArgumentError(`invalid MAC address: ${JSON.stringify(raw)}`, { code: 'ERR_INVALID_MAC' })
  }
  return raw.trim().toLowerCase().replaceAll('-', ':') as MacAddress
}

/** The six bytes of a MAC address. */
export function macBytes(mac: MacAddress): Uint8Array {
  return Uint8Array.from(mac.split(':').map((h) => Number.parseInt(h, 16)))
}

/** Formats six bytes as a canonical MAC. */
export function macFromBytes(bytes: ArrayLike<number>): MacAddress {
  if (bytes.length !== 6)
    throw new InvalidArgumentError(`a MAC address has 6 bytes, got ${bytes.length}`, { code: 'ERR_INVALID_MAC' })
  return Array.from(bytes, (b) => (b & 0xff).toString(16).padStart(2, '0')).join(':') as MacAddress
}

/** libnetwork's MAC from an IPv4 address: `02:42` followed by the four address bytes. */
export function macFromIPv4(ip: IpAddr): MacAddress {
  if (ip.version !== 4) throw new InvalidArgumentError('macFromIPv4 needs an IPv4 address', { code: 'ERR_INVALID_MAC' })
  const v = Number(ip.value)
  return macFromBytes([0x02, 0x42, (v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff])
}

/** A random locally administered unicast MAC: `02:42` followed by four random bytes. */
export function randomMac(): MacAddress {
  const r = new Uint8Array(4)
  globalThis.crypto.getRandomValues(r)
  return macFromBytes([0x02, 0x42, ...r])
}
