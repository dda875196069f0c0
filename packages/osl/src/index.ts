export { Osl, osl, DEFAULT_OSL_INIT } from './osl.js'
export type { CreateSandboxOptions, OpenSandboxOptions, GcOptions, GcResult } from './osl.js'
export { Netns } from './netns.js'
export { Sandbox, SandboxPlan } from './sandbox.js'
export type { AddInterfaceOptions, SandboxInterface, StaticRoute, SandboxNeighbor } from './sandbox.js'
export { NetnsPlan } from './plan.js'
export { Transaction } from './transaction.js'
export type { Step, Undo } from './transaction.js'
export { spawnExec, countingExec } from './exec.js'
export type { Exec, ExecOptions, ExecResult, ExecStats } from './exec.js'
export type { NativeOps } from './native.js'
export { openSocketInNetns, connectSocketInNetns, netnsPath, IP_NETNS_DIR } from './socket.js'
export type { OpenSocketOptions, ConnectSocketOptions, NetnsSocket, SocketType } from './socket.js'
export { validateIfName, validateMac, validateMtu, MAX_IFNAME_LENGTH } from './validate.js'
export { parseBatchOutput, splitJsonOutput } from './batch.js'
export type { BatchOutcome, NsTarget } from './batch.js'
export type * from './types.js'
export * from './errors.js'
export {
  DnsResponderEngine,
  DnsResponder,
  dnsResponderEngine,
  DEFAULT_DNS_RESPONDER_ENGINE_INIT,
} from './dns-responder.js'
export type {
  DnsResponderEngineInit,
  DnsResponderEngineComponents,
  DnsResponderOptions,
  DnsTableAnswer,
  DnsResponderStats,
  ResponderNativeOps,
} from './dns-responder.js'
