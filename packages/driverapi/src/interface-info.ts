import { InvalidArgumentError, formatCidr, type IpAddr, type IpCidr, type IpPrefix } from '@cnm/types'
import type { InterfaceInfo, JoinInfo, JoinVeth, RouteType, StaticRoute, TableEntry } from './driver.js'
import { InterfaceFieldSetError } from './errors.js'
import { parseMac, type MacAddress } from './mac.js'

/** Plain snapshot of an endpoint interface. */
export interface InterfaceSnapshot {
  readonly address?: IpCidr
  readonly addressIPv6?: IpCidr
  readonly macAddress?: MacAddress
}

function validCidr(cidr: unknown): IpCidr {
  const c = cidr as IpCidr | undefined
  if (
    c === undefined ||
    c === null ||
    typeof c !== 'object' ||
    typeof c.ip?.value !== 'bigint' ||
    (c.ip.version !== 4 && c.ip.version !== 6) ||
    c.prefix?.version !== c.ip.version
  ) {
    throw new InvalidArgumentError(`invalid interface address: ${String(cidr)}`, { code: 'ERR_DRIVER_BAD_REQUEST' })
  }
  return c
}

/**
 * The controller's InterfaceInfo implementation: pre-assigned values go in the constructor; setters
 * refuse to replace a present value (InterfaceFieldSetError, forbidden) and reject nil/invalid values
 * (InvalidArgumentError).
 */
export class EndpointInterface implements InterfaceInfo {
  #address: IpCidr | undefined
  #addressIPv6: IpCidr | undefined
  #mac: MacAddress | undefined

  constructor(init: InterfaceSnapshot = {}) {
    if (init.address !== undefined) {
      if (validCidr(init.address).ip.version !== 4)
        throw new InvalidArgumentError('address must be IPv4', { code: 'ERR_DRIVER_BAD_REQUEST' })
      this.#address = init.address
    }
    if (init.addressIPv6 !== undefined) {
      if (validCidr(init.addressIPv6).ip.version !== 6)
        throw new InvalidArgumentError('addressIPv6 must be IPv6', { code: 'ERR_DRIVER_BAD_REQUEST' })
      this.#addressIPv6 = init.addressIPv6
    }
    if (init.macAddress !== undefined) this.#mac = parseMac(init.macAddress)
  }

  get address(): IpCidr | undefined {
    return this.#address
  }

  get addressIPv6(): IpCidr | undefined {
    return this.#addressIPv6
  }

  get macAddress(): MacAddress | undefined {
    return this.#mac
  }

  setMacAddress(mac: MacAddress): void {
    if (this.#mac !== undefined) throw new InterfaceFieldSetError('MAC address', this.#mac)
    this.#mac = parseMac(mac)
  }

  setIpAddress(cidr: IpCidr): void {
    const c = validCidr(cidr)
    if (c.ip.version === 4) {
      if (this.#address !== undefined) throw new InterfaceFieldSetError('IPv4 address', formatCidr(this.#address))
      this.#address = c
    } else {
      if (this.#addressIPv6 !== undefined)
        throw new InterfaceFieldSetError('IPv6 address', formatCidr(this.#addressIPv6))
      this.#addressIPv6 = c
    }
  }

  snapshot(): InterfaceSnapshot {
    return {
      ...(this.#address !== undefined && { address: this.#address }),
      ...(this.#addressIPv6 !== undefined && { addressIPv6: this.#addressIPv6 }),
      ...(this.#mac !== undefined && { macAddress: this.#mac }),
    }
  }
}

/** Plain snapshot of what a driver reported through JoinInfo. */
export interface JoinResult {
  readonly interfaceName?: { readonly srcName: string; readonly dstPrefix: string }
  /** Set by `setVeth`: create this pair in place (then `interfaceName` is absent). */
  readonly veth?: { readonly spec: JoinVeth; readonly dstPrefix: string }
  readonly gateway?: IpAddr
  readonly gatewayIPv6?: IpAddr
  readonly staticRoutes: readonly StaticRoute[]
  readonly disableGatewayService: boolean
  readonly tableEntries: readonly TableEntry[]
}

const IFNAME = /^[^\s/:]{1,15}$/

/** The controller's JoinInfo implementation: records and validates what the driver sets. */
export class JoinInfoRecorder implements JoinInfo {
  readonly canCreateVeth: boolean
  #interfaceName: { srcName: string; dstPrefix: string } | undefined
  #veth: { spec: JoinVeth; dstPrefix: string } | undefined
  #gateway: IpAddr | undefined
  #gatewayIPv6: IpAddr | undefined
  readonly #routes: StaticRoute[] = []
  #disableGw = false
  readonly #entries: TableEntry[] = []

  /** `canCreateVeth`: whether the caller's sandbox layer can create veth pairs in place (`setVeth`). */
  constructor(opts: { canCreateVeth?: boolean } = {}) {
    this.canCreateVeth = opts.canCreateVeth === true
  }

  setVeth(veth: JoinVeth, dstPrefix: string): void {
    if (!this.canCreateVeth)
      throw new InvalidArgumentError('this sandbox layer cannot create veth pairs at join', {
        code: 'ERR_DRIVER_BAD_REQUEST',
      })
    if (
      typeof veth?.hostName !== 'string' ||
      !IFNAME.test(veth.hostName) ||
      typeof veth.master !== 'string' ||
      !IFNAME.test(veth.master)
    ) {
      throw new InvalidArgumentError(`invalid veth: ${JSON.stringify(veth)}`, { code: 'ERR_DRIVER_BAD_REQUEST' })
    }
    if (veth.mtu !== undefined && (!Number.isInteger(veth.mtu) || veth.mtu < 0)) {
      throw new InvalidArgumentError(`invalid veth MTU: ${String(veth.mtu)}`, { code: 'ERR_DRIVER_BAD_REQUEST' })
    }
    if (typeof dstPrefix !== 'string' || !/^[^\s/:]{1,12}$/.test(dstPrefix)) {
      throw new InvalidArgumentError(`invalid interface prefix: ${JSON.stringify(dstPrefix)}`, {
        code: 'ERR_DRIVER_BAD_REQUEST',
      })
    }
    this.#veth = { spec: { ...veth }, dstPrefix }
    this.#interfaceName = undefined
  }

  setInterfaceName(srcName: string, dstPrefix: string): void {
    if (typeof srcName !== 'string' || !IFNAME.test(srcName)) {
      throw new InvalidArgumentError(`invalid interface name: ${JSON.stringify(srcName)}`, {
        code: 'ERR_DRIVER_BAD_REQUEST',
      })
    }
    if (typeof dstPrefix !== 'string' || !/^[^\s/:]{1,12}$/.test(dstPrefix)) {
      throw new InvalidArgumentError(`invalid interface prefix: ${JSON.stringify(dstPrefix)}`, {
        code: 'ERR_DRIVER_BAD_REQUEST',
      })
    }
    this.#interfaceName = { srcName, dstPrefix }
    this.#veth = undefined
  }

  setGateway(ip: IpAddr): void {
    if (ip?.version !== 4)
      throw new InvalidArgumentError('IPv4 gateway must be an IPv4 address', { code: 'ERR_DRIVER_BAD_REQUEST' })
    this.#gateway = ip
  }

  setGatewayIPv6(ip: IpAddr): void {
    if (ip?.version !== 6)
      throw new InvalidArgumentError('IPv6 gateway must be an IPv6 address', { code: 'ERR_DRIVER_BAD_REQUEST' })
    this.#gatewayIPv6 = ip
  }

  addStaticRoute(destination: IpPrefix, routeType: RouteType, nextHop?: IpAddr): void {
    if (destination === undefined || (destination.version !== 4 && destination.version !== 6)) {
      throw new InvalidArgumentError('static route needs a destination prefix', { code: 'ERR_DRIVER_BAD_REQUEST' })
    }
    if (routeType === 'next-hop') {
      if (nextHop === undefined)
        throw new InvalidArgumentError('next-hop route needs a next hop', { code: 'ERR_DRIVER_BAD_REQUEST' })
      if (nextHop.version !== destination.version)
        throw new InvalidArgumentError('next hop family differs from destination', { code: 'ERR_DRIVER_BAD_REQUEST' })
      this.#routes.push({ destination, routeType, nextHop })
    } else if (routeType === 'connected') {
      if (nextHop !== undefined)
        throw new InvalidArgumentError('connected route takes no next hop', { code: 'ERR_DRIVER_BAD_REQUEST' })
      this.#routes.push({ destination, routeType })
    } else {
      throw new InvalidArgumentError(`invalid route type: ${String(routeType)}`, { code: 'ERR_DRIVER_BAD_REQUEST' })
    }
  }

  disableGatewayService(): void {
    this.#disableGw = true
  }

  addTableEntry(table: string, key: string, value: Uint8Array): void {
    if (
      typeof table !== 'string' ||
      table === '' ||
      typeof key !== 'string' ||
      key === '' ||
      !(value instanceof Uint8Array)
    ) {
      throw new InvalidArgumentError('table entry needs table, key and bytes', { code: 'ERR_DRIVER_BAD_REQUEST' })
    }
    this.#entries.push({ table, key, value: value.slice() })
  }

  result(): JoinResult {
    return {
      ...(this.#interfaceName !== undefined && { interfaceName: { ...this.#interfaceName } }),
      ...(this.#veth !== undefined && { veth: { spec: { ...this.#veth.spec }, dstPrefix: this.#veth.dstPrefix } }),
      ...(this.#gateway !== undefined && { gateway: this.#gateway }),
      ...(this.#gatewayIPv6 !== undefined && { gatewayIPv6: this.#gatewayIPv6 }),
      staticRoutes: [...this.#routes],
      disableGatewayService: this.#disableGw,
      tableEntries: [...this.#entries],
    }
  }
}
