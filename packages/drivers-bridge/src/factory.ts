import type { ComponentLogger } from '@cnm/types'
import type { Store } from '@cnm/storeapi'
import { netnsPath, type Osl } from '@cnm/osl'
import { BridgeFirewall, PortAllocator, type PortHolder } from '@cnm/iptables'
import {
  BridgeDriver,
  resolveBridgeDriverConfig,
  type BridgeDriverConfig,
  type BridgeDriverInit,
} from './bridge-driver.js'
import { InvalidBridgeConfigError } from './errors.js'
import { OslBridgeKernel } from './internal/kernel-osl.js'

/** What the host injects into the bridge driver. */
export interface BridgeDriverComponents {
  logger: ComponentLogger
  /** Local store for `bridge/<nid>` and `bridge-endpoint/<eid>` records; without it nothing survives a restart. */
  store?: Store
  /** The OS layer. Its `hostNetns` must be the driver's `hostNetns`. */
  osl: Osl
  /**
   * The host namespace's firewall. @default a BridgeFirewall for `hostNetns` with the driver's `chainPrefix`
   * (ip6tables only with `enableIp6tables`). Ignored when `enableIptables` is false.
   */
  firewall?: BridgeFirewall
  /** Host-port allocator shared with anything else publishing ports in the host namespace. @default a new one */
  portAllocator?: PortAllocator
}

/**
 * The bridge driver factory: `bridgeDriver(init)` validates the configuration at once (throwing
 * InvalidBridgeConfigError) and returns `(components) => BridgeDriver`.
 */
export function bridgeDriver(init: BridgeDriverInit = {}): (components: BridgeDriverComponents) => BridgeDriver {
  const config = resolveBridgeDriverConfig(init)
  return (components) => createBridgeDriver(config, components)
}

function createBridgeDriver(config: BridgeDriverConfig, components: BridgeDriverComponents): BridgeDriver {
  const { osl, logger } = components
  if (osl === undefined || osl === null || typeof osl.transaction !== 'function') {
    throw new InvalidBridgeConfigError('osl', 'components.osl (an @cnm/osl Osl) is required')
  }
  const wantPath = config.hostNetns === undefined ? undefined : netnsPath(config.hostNetns)
  if (osl.host.path !== wantPath) {
    throw new InvalidBridgeConfigError(
      'hostNetns',
      `the driver's hostNetns (${config.hostNetns ?? 'this process'}) differs from the osl's host namespace (${osl.host.label})`,
    )
  }
  let firewall: BridgeFirewall | undefined
  let ownsFirewall = false
  if (config.enableIptables) {
    firewall = components.firewall
    if (firewall === undefined) {
      ownsFirewall = true
      firewall = new BridgeFirewall(
        {
          ...(config.hostNetns !== undefined && { netns: config.hostNetns }),
          chainPrefix: config.chainPrefix,
          hairpin: true,
          ipv6: config.enableIp6tables,
        },
        { logger },
      )
    } else if (firewall.netns !== config.hostNetns) {
      throw new InvalidBridgeConfigError(
        'firewall',
        `components.firewall manages ${firewall.netns ?? 'this process'}'s namespace, not hostNetns`,
      )
    }
  }
  const allocator =
    components.portAllocator ??
    new PortAllocator(config.portRange === undefined ? {} : { ephemeralRange: config.portRange })
  const holdPort: PortHolder | undefined = config.holdHostPorts
    ? async (_netns, spec) => {
        if (spec.type === 'sctp') return {}
        const v6 = spec.address.includes(':')
        const s = await osl.host.openSocket({
          type: `${spec.type}${v6 ? '6' : '4'}`,
          address: spec.address,
          port: spec.port,
          reuseAddr: true,
        })
        return { fd: s.fd, port: s.port }
      }
    : undefined
  const log = logger.forComponent('cnm:drivers-bridge').child('kernel')
  const kernel = new OslBridgeKernel({
    osl,
    firewall,
    allocator,
    logger,
    log,
    forwarding: config.enableIpForwarding,
    ip6tables: config.enableIp6tables,
    holdPort,
    ownsFirewall,
  })
  return new BridgeDriver(
    config,
    { logger, ...(components.store !== undefined && { store: components.store }) },
    kernel,
  )
}
