/**
 * @cnm/cli: the `cnm` daemon (controller + bridge driver + IPAM + per-sandbox DNS behind a JSON HTTP
 * API on a unix socket) and the `cnm` client (library and command line).
 */
export { Daemon, daemon, DEFAULT_DAEMON_INIT, removeExecRoot } from './daemon.js'
export type { DaemonInit, DaemonComponents } from './daemon.js'
export { CnmClient, DEFAULT_SOCKET, parseHost } from './client.js'
export type { ClientInit, VersionInfo, DaemonEvent } from './client.js'
export { main, EXIT } from './cli.js'
export type { CliIo } from './cli.js'
export { runInSandbox, execInSandbox, sandboxArgv, exitCodeOf, FORWARDED_SIGNALS } from './run.js'
export type { RunOptions, ExecOptions } from './run.js'
export { runDemo } from './demo.js'
export type { DemoOptions } from './demo.js'
export { ROUTES, API_VERSION } from './api.js'
export type { DaemonStats } from './api.js'
export { DEFAULT_NETWORK, parseLinks } from './service.js'
export { DEFAULT_BRIDGE_OPTION, isDefaultBridge, isDnsNetwork } from './sandbox-dns.js'
export type { LinkSpec } from './containers.js'
export { OslSandboxLayer } from './os-layer.js'
export {
  createNetworkSchema,
  createSandboxSchema,
  connectSchema,
  disconnectSchema,
  endpointSpecSchema,
  parseBody,
} from './schemas.js'
export type { CreateNetworkBody, CreateSandboxBody, ConnectBody, DisconnectBody, EndpointSpec } from './schemas.js'
export type { NetworkView, SandboxView, EndpointView, PortView } from './service.js'
export { VERSION } from './version.js'
export * from './errors.js'
