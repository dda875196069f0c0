/**
 * @cnm/ipam: the built-in IPAMs of cnm. `defaultIpam()` is libnetwork's `default` IPAM (address spaces,
 * default pools, explicit pools and sub-pools, address bitmaps, optional persistence); `nullIpam()` is the
 * `null` IPAM that hands out no addresses.
 */
import { noopLogger, type ComponentLogger } from '@cnm/types'
import { DefaultIpam, type DefaultIpamComponents, type DefaultIpamInit } from './default-ipam.js'
import { NullIpam } from './null-ipam.js'

export {
  DefaultIpam,
  DEFAULT_IPAM_INIT,
  LOCAL_ADDRESS_SPACE,
  GLOBAL_ADDRESS_SPACE,
  CONFIG_KEY_PREFIX,
  DATA_KEY_PREFIX,
} from './default-ipam.js'
export type { DefaultIpamInit, DefaultIpamComponents } from './default-ipam.js'
export { NullIpam, NULL_ADDRESS_SPACE, NULL_POOL_ID } from './null-ipam.js'
export { LOCAL_DEFAULT_POOLS, GLOBAL_DEFAULT_POOLS } from './internal/predefined.js'
export type { PoolBase } from './internal/predefined.js'
export * from './errors.js'

/**
 * The built-in IPAM. Validates `init` immediately (InvalidIpamConfigError).
 *
 * ```ts
 * const ipam = defaultIpam()({ store: lmdbStore({ path }), logger })
 * ```
 */
export function defaultIpam(init?: DefaultIpamInit): (components: DefaultIpamComponents) => DefaultIpam {
  // Validate the options now, not when the host wires components.
  new DefaultIpam(init, { logger: noopLogger() })
  return (components) => new DefaultIpam(init, components)
}

/** What the host may pass to the null IPAM (it needs nothing). */
export interface NullIpamComponents {
  logger?: ComponentLogger
}

/** The null IPAM: pool `0.0.0.0/0` in address space `null`, no addresses. */
export function nullIpam(): (components?: NullIpamComponents) => NullIpam {
  return () => new NullIpam()
}
