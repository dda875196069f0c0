import { existsSync } from 'node:fs'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'
import { NativeAddonMissingError } from './errors.js'

/**
 * The native addon's surface (native/cnm_osl.c). Each call runs on a throw-away thread that enters
 * (setns) or creates (unshare) the namespace; the calling thread never changes namespace.
 * Rejections are Errors with `code` (`ENOENT`, `EEXIST`, `EINVAL`, …) and `errno`.
 */
export interface NativeOps {
  /** Bound (tcp: listening) non-blocking, close-on-exec socket inside `nsPath` (null = this process's namespace). */
  openSocket(
    nsPath: string | null,
    family: 4 | 6,
    tcp: 0 | 1,
    address: string,
    port: number,
    /** bit 1: SO_REUSEADDR, bit 2: SO_REUSEPORT */
    reuse: 0 | 1 | 2 | 3,
    backlog: number,
  ): Promise<{ fd: number; port: number }>
  /** A non-blocking, close-on-exec TCP socket made inside `nsPath` and connected within `timeoutMs` (own thread). */
  connectSocket(
    nsPath: string | null,
    family: 4 | 6,
    address: string,
    port: number,
    timeoutMs: number,
  ): Promise<{ fd: number; port: number }>
  /** Creates `path` (must not exist), binds a new network namespace on it, optionally sets lo up, writes sysctls. */
  createNetns(path: string, loUp: 0 | 1, sysctlKeys: string[], sysctlValues: string[]): Promise<void>
  /** Reads `readKeys` then writes (paths below /proc/sys) inside `nsPath`; resolves the values read before the writes. */
  sysctl(nsPath: string | null, writeKeys: string[], writeValues: string[], readKeys: string[]): Promise<string[]>
  /** Lazily unmounts a namespace file (MNT_DETACH). */
  unmount(path: string): Promise<void>
  /**
   * rtnetlink requests inside `nsPath`, in order, stopping at the first failure (rejects with `index` = that
   * op, -1 before any; message `RTNETLINK answers: …` or `Cannot find device "x"`). Ops (all strings):
   * `['up', dev]`, `['addr', dev, ip, prefixlen, nodad '1'|'0']`,
   * `['route', dst ip or '' for default, prefixlen, family '4'|'6', gateway or '', dev or '', scope 'link'|'universe', onlink '1'|'0']`,
   * `['veth', name, mac, mtu, master, up '1'|'0', peer, peerMac, peerMtu, peerNetnsPath]` ('' = unset).
   */
  netlink(nsPath: string | null, ops: string[][]): Promise<void>
}

const ADDON = 'cnm_osl.node'

/** Where the addon is looked for, relative to this module (src/ or dist/, both one level below the package). */
export function nativeCandidates(): string[] {
  return [
    new URL(`../native/build/Release/${ADDON}`, import.meta.url),
    new URL(`../native/build/Debug/${ADDON}`, import.meta.url),
  ].map((u) => fileURLToPath(u))
}

const BUILD_HINT =
  'build it with `npx -y pnpm@10.34.9 --filter @cnm/osl build` (or `node native/build.mjs` in packages/osl); ' +
  'it needs python3, make, a C compiler and the Node.js headers'

/**
 * Loads the addon. `path` overrides the search (OslInit.nativeAddonPath). Throws NativeAddonMissingError
 * saying how to build it.
 */
export function loadNative(path?: string): NativeOps {
  const require = createRequire(import.meta.url)
  const candidates = path === undefined ? nativeCandidates() : [path]
  const found = candidates.find((p) => existsSync(p))
  if (found === undefined) {
    throw new NativeAddonMissingError(
      `@cnm/osl native addon not found (looked in ${candidates.join(', ')}); ${BUILD_HINT}`,
    )
  }
  try {
    return require(found) as NativeOps
  } catch (err) {
    throw new NativeAddonMissingError(`@cnm/osl native addon at ${found} failed to load; ${BUILD_HINT}`, { cause: err })
  }
}

/** Loads the addon once per call site that asks; callers keep the returned object (no module state). */
export function tryLoadNative(path?: string): NativeOps | NativeAddonMissingError {
  try {
    return loadNative(path)
  } catch (err) {
    if (err instanceof NativeAddonMissingError) return err
    throw err
  }
}
