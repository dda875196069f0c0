import { formatIp, formatPrefix, parseCidr, parseIp, type IpCidr, type IpPrefix } from '@cnm/types'
import {
  InvalidAddressError,
  InvalidInterfaceNameError,
  InvalidMacError,
  InvalidMtuError,
  InvalidOptionError,
} from './errors.js'

/** Longest interface name the kernel accepts (IFNAMSIZ - 1). */
export const MAX_IFNAME_LENGTH = 15

/**
 * Throws InvalidInterfaceNameError unless `name` is a valid Linux interface name that is also safe in an
 * `ip -batch` line: 1..15 bytes of letters, digits, `_`, `-` and `.`, not starting with `-` or `.`, and not
 * a word `ip` would parse as a keyword.
 */
export function validateIfName(name: unknown, field = 'name'): string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new InvalidInterfaceNameError(`${field}: interface name must be a non-empty string`)
  }
  if (Buffer.byteLength(name) > MAX_IFNAME_LENGTH) {
    throw new InvalidInterfaceNameError(
      `${field}: interface name ${JSON.stringify(name)} is longer than ${MAX_IFNAME_LENGTH} characters`,
    )
  }
  if (!/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/.test(name) || name === '.' || name === '..') {
    throw new InvalidInterfaceNameError(
      `${field}: interface name ${JSON.stringify(name)} may contain only letters, digits, '_', '-' and '.' and must not start with '-' or '.'`,
    )
  }
  if (['dev', 'name', 'type', 'help', 'all', 'default'].includes(name)) {
    throw new InvalidInterfaceNameError(`${field}: interface name ${JSON.stringify(name)} is a reserved word`)
  }
  return name
}

/** A prefix for generated interface names (`eth` → `eth0`, `eth1`…): same rules, and room for an index. */
export function validateIfPrefix(prefix: unknown, field = 'dstPrefix'): string {
  if (typeof prefix !== 'string' || prefix.length === 0 || Buffer.byteLength(prefix) > MAX_IFNAME_LENGTH - 1) {
    throw new InvalidInterfaceNameError(
      `${field}: interface name prefix must be 1..${MAX_IFNAME_LENGTH - 1} characters, got ${JSON.stringify(prefix)}`,
    )
  }
  validateIfName(`${prefix}0`, field)
  return prefix
}

/** Normalises a unicast MAC (`02:42:AC:11:00:02` → lower case). Throws InvalidMacError. */
export function validateMac(mac: unknown, field = 'mac'): string {
  if (typeof mac !== 'string' || !/^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/.test(mac)) {
    throw new InvalidMacError(`${field}: invalid MAC address ${JSON.stringify(mac)} (want xx:xx:xx:xx:xx:xx)`)
  }
  const lower = mac.toLowerCase()
  if ((parseInt(lower.slice(0, 2), 16) & 1) === 1) {
    throw new InvalidMacError(`${field}: MAC address ${lower} is a multicast address`)
  }
  if (lower === '00:00:00:00:00:00') throw new InvalidMacError(`${field}: MAC address must not be all zeros`)
  return lower
}

/** MTU in 68..65535. Throws InvalidMtuError. */
export function validateMtu(mtu: unknown, field = 'mtu'): number {
  if (typeof mtu !== 'number' || !Number.isInteger(mtu) || mtu < 68 || mtu > 65535) {
    throw new InvalidMtuError(`${field}: MTU must be an integer in 68..65535, got ${String(mtu)}`)
  }
  return mtu
}

/** An address with prefix length (`10.0.0.2/24`, `fd00::2/64`). Throws InvalidAddressError. */
export function validateCidr(cidr: unknown, field = 'address'): IpCidr {
  try {
    return parseCidr(cidr as string)
  } catch (err) {
    throw new InvalidAddressError(`${field}: invalid address ${JSON.stringify(cidr)} (want ip/prefixlen)`, {
      cause: err,
    })
  }
}

/** A plain IP address. Returns its canonical text. Throws InvalidAddressError. */
export function validateIp(ip: unknown, field = 'ip'): string {
  try {
    return formatIp(parseIp(ip as string))
  } catch (err) {
    throw new InvalidAddressError(`${field}: invalid IP address ${JSON.stringify(ip)}`, { cause: err })
  }
}

/** A route destination `network/len`, canonicalised (`10.1.2.3/16` → `10.1.0.0/16`). */
export function validateDestination(dst: unknown, field = 'destination'): { text: string; prefix: IpPrefix } {
  try {
    const p = parseCidr(dst as string).prefix
    return { text: formatPrefix(p), prefix: p }
  } catch (err) {
    throw new InvalidAddressError(
      `${field}: invalid route destination ${JSON.stringify(dst)} (want network/prefixlen)`,
      {
        cause: err,
      },
    )
  }
}

/**
 * A sysctl key in dotted (`net.ipv4.ip_forward`) or slash form (`net/ipv4/conf/eth0.100/forwarding`);
 * returns the path below /proc/sys. Use the slash form when an interface name contains a dot.
 */
export function sysctlPath(key: unknown, field = 'sysctl'): string {
  if (typeof key !== 'string' || key.length === 0 || key.length > 256) {
    throw new InvalidOptionError(`${field}: sysctl key must be a non-empty string`)
  }
  const path = key.includes('/') ? key : key.replaceAll('.', '/')
  if (!/^[A-Za-z0-9_\-./]+$/.test(path) || path.split('/').some((p) => p === '' || p === '.' || p === '..')) {
    throw new InvalidOptionError(`${field}: invalid sysctl key ${JSON.stringify(key)}`)
  }
  return path
}

/** A sysctl value: number or string without newlines. */
export function sysctlValue(value: unknown, field = 'sysctl value'): string {
  if (typeof value === 'number' && Number.isFinite(value)) return String(value)
  if (typeof value === 'string' && !/[\n\0]/.test(value) && value.length <= 1024) return value
  throw new InvalidOptionError(`${field}: invalid sysctl value ${JSON.stringify(value)}`)
}

/** A sandbox key or namespace name: file name characters only. */
export function validateNsName(name: unknown, field = 'key'): string {
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,200}$/.test(name)) {
    throw new InvalidOptionError(
      `${field}: namespace name must be 1..201 characters of letters, digits, '_', '-', '.', got ${JSON.stringify(name)}`,
    )
  }
  return name
}

/** A name prefix for gc(): same characters as names, may be short but not empty. */
export function validateNamePrefix(prefix: unknown, field = 'prefix'): string {
  if (typeof prefix !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$/.test(prefix)) {
    throw new InvalidOptionError(`${field}: prefix must be 1..64 name characters, got ${JSON.stringify(prefix)}`)
  }
  return prefix
}
