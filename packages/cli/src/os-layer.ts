import { basename, dirname } from 'node:path'
import {
  formatCidr,
  formatIp,
  formatPrefix,
  isCnmError,
  parseCidr,
  parseIp,
  prefixContains,
  type AbortOptions,
} from '@cnm/types'
import type { SandboxGateway, SandboxInterface, SandboxOsLayer } from '@cnm/controller'
import type { Osl, Sandbox } from '@cnm/osl'
import { DaemonConfigError } from './errors.js'

/**
 * The controller's SandboxOsLayer backed by @cnm/osl: sandbox keys are files `<netnsDir>/<name>`, one
 * Sandbox handle is kept per key (re-opened from the kernel after a restart).
 */
export class OslSandboxLayer implements SandboxOsLayer {
  readonly #osl: Osl
  readonly #handles = new Map<string, Promise<Sandbox>>()
  /**
   * The host-side name (srcName) an interface had before it moved into sandbox `key` as `dstName`.
   * A handle re-opened after a daemon restart does not know it; with it, a leave moves the interface
   * back to the host namespace (so a later join finds it) instead of destroying the pair.
   */
  srcNameLookup: ((key: string, dstName: string) => Promise<string | undefined>) | undefined
  /** Sandboxes being removed with their endpoints: their interfaces are destroyed, not moved back. */
  readonly #removing = new Map<string, number>()

  /**
   * Marks sandbox `key` as being removed for good (its endpoints are deleted next): a leave then
   * destroys the veth pair in the same step instead of moving it back for a later join. Returns the
   * function that clears the mark.
   */
  removing(key: string): () => void {
    this.#removing.set(key, (this.#removing.get(key) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const n = (this.#removing.get(key) ?? 1) - 1
      if (n <= 0) this.#removing.delete(key)
      else this.#removing.set(key, n)
    }
  }

  /** addInterface creates veth pairs in place (`SandboxInterface.veth`). */
  readonly vethInPlace = true
  /** `<key>\0<dstName>` of the pairs this process made in place: removing one destroys it, never moves it back. */
  readonly #inPlace = new Set<string>()

  constructor(osl: Osl) {
    this.#osl = osl
  }

  #name(key: string): string {
    if (dirname(key) !== this.#osl.netnsDir) {
      throw new DaemonConfigError(`sandbox key ${key} is not under ${this.#osl.netnsDir}`)
    }
    return basename(key)
  }

  async #handle(key: string, options?: AbortOptions): Promise<Sandbox> {
    let h = this.#handles.get(key)
    if (h === undefined) {
      h = this.#osl.openSandbox(this.#name(key), options)
      this.#handles.set(key, h)
      h.catch(() => this.#handles.delete(key))
    }
    return await h
  }

  async createSandbox(key: string, options?: AbortOptions): Promise<void> {
    const p = this.#osl.createSandbox(this.#name(key), {
      exist: 'replace',
      ...(options?.signal !== undefined && { signal: options.signal }),
    })
    this.#handles.set(key, p)
    try {
      await p
    } catch (err) {
      this.#handles.delete(key)
      throw err
    }
  }

  async deleteSandbox(key: string, options?: AbortOptions): Promise<void> {
    this.#handles.delete(key)
    for (const k of this.#inPlace) if (k.startsWith(`${key}\0`)) this.#inPlace.delete(k)
    try {
      await this.#osl.deleteSandbox(this.#name(key), options)
    } catch (err) {
      if (isCnmError(err) && err.kind === 'not-found') return
      throw err
    }
  }

  async listSandboxes(options?: AbortOptions): Promise<string[]> {
    const names = await this.#osl.listSandboxes(options)
    return names.map((n) => `${this.#osl.netnsDir}/${n}`)
  }

  async addInterface(key: string, iface: SandboxInterface, options?: AbortOptions): Promise<void> {
    const sb = await this.#handle(key, options)
    const tx = this.#osl.transaction()
    const plan = tx.on(sb)
    const addresses = [iface.address, iface.addressIPv6].filter((a) => a !== undefined).map((a) => formatCidr(a))
    const veth = iface.veth
    plan.addInterface({
      // a pair made in place has no source name: removing it destroys the pair
      ...(veth === undefined ? { srcName: iface.srcName } : { veth: { hostName: veth.hostName, master: veth.master } }),
      ...(veth?.mtu !== undefined && veth.mtu > 0 && { mtu: veth.mtu }),
      dstName: iface.dstName,
      ...(iface.macAddress !== undefined && { mac: String(iface.macAddress) }),
      addresses,
      linkLocalAddresses: iface.linkLocalAddresses.map((a) => formatCidr(a)),
      routes: iface.routes.filter((r) => r.routeType === 'connected').map((r) => formatPrefix(r.destination)),
    })
    for (const r of iface.routes) {
      if (r.routeType === 'next-hop' && r.nextHop !== undefined) {
        plan.addStaticRoute({ destination: formatPrefix(r.destination), nextHop: formatIp(r.nextHop) })
      }
    }
    if (veth?.hairpin === true) tx.on(this.#osl.host).setLink(veth.hostName, { hairpin: true })
    await tx.commit(options)
    if (veth !== undefined) this.#inPlace.add(`${key}\0${iface.dstName}`)
  }

  async removeInterface(key: string, dstName: string, options?: AbortOptions): Promise<void> {
    let sb: Sandbox
    try {
      sb = await this.#handle(key, options)
    } catch (err) {
      if (isCnmError(err) && err.kind === 'not-found') return
      throw err
    }
    let iface = sb.findInterface(dstName)
    const inPlace = this.#inPlace.delete(`${key}\0${dstName}`)
    if (iface === undefined) return
    // a pair made in place is destroyed now (not left to the namespace's asynchronous teardown)
    const destroy = this.#removing.has(key) || inPlace
    if (!destroy && iface.srcName === undefined && !iface.bridge && this.srcNameLookup !== undefined) {
      const src = await this.srcNameLookup(key, dstName)
      if (src !== undefined) {
        const srcNames: Record<string, string> = {}
        for (const i of sb.interfaces) if (i.srcName !== undefined) srcNames[i.dstName] = i.srcName
        srcNames[dstName] = src
        const reopened = this.#osl.openSandbox(this.#name(key), {
          srcNames,
          ...(options?.signal !== undefined && { signal: options.signal }),
        })
        this.#handles.set(key, reopened)
        reopened.catch(() => this.#handles.delete(key))
        sb = await reopened
        iface = sb.findInterface(dstName)
        if (iface === undefined) return
      }
    }
    // the default route through this interface goes with it: drop it in the same transaction so the
    // sandbox's bookkeeping agrees with the kernel when the controller then updates the gateway
    const through = (gw: string | undefined): boolean => {
      if (gw === undefined) return false
      const ip = parseIp(gw)
      return iface.addresses.some((a) => prefixContains(parseCidr(a).prefix, ip))
    }
    const tx = this.#osl.transaction()
    const plan = tx.on(sb)
    if (through(sb.gateway)) plan.unsetGateway(4)
    if (through(sb.gateway6)) plan.unsetGateway(6)
    // a leave keeps the endpoint (and its veth pair) for a later join: move the interface back to the
    // host namespace under its srcName; the driver deletes the pair when the endpoint is deleted. A
    // sandbox being removed destroys the pair right away (one step less).
    plan.removeInterface(dstName, { destroy })
    await tx.commit(options)
  }

  async setGateway(key: string, gateway: SandboxGateway, options?: AbortOptions): Promise<void> {
    const sb = await this.#handle(key, options)
    const want4 = gateway.ipv4 === undefined ? undefined : formatIp(gateway.ipv4)
    const want6 = gateway.ipv6 === undefined ? undefined : formatIp(gateway.ipv6)
    if (sb.gateway === want4 && sb.gateway6 === want6) return
    const tx = this.#osl.transaction()
    const plan = tx.on(sb)
    if (sb.gateway !== want4) {
      plan.unsetGateway(4)
      if (want4 !== undefined) plan.setGateway(want4)
    }
    if (sb.gateway6 !== want6) {
      plan.unsetGateway(6)
      if (want6 !== undefined) plan.setGateway(want6)
    }
    await tx.commit(options)
  }
}
