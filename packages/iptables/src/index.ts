export { Iptables, iptables, DEFAULT_IPTABLES_INIT } from './iptables.js'
export { spawnCommand } from './internal/exec.js'
export { residentCommandRunner, DEFAULT_RESIDENT_RUNNER_INIT } from './internal/resident.js'
export type { ResidentCommandRunner, ResidentRunnerInit, ResidentRunnerStats } from './internal/resident.js'
export type {
  IptablesInit,
  IptablesComponents,
  IptablesBackend,
  Table,
  Change,
  RuleChange,
  EnsureRuleChange,
  DeleteRuleChange,
  DeleteWhereChange,
  InsertRuleChange,
  EnsureChainChange,
  DeleteChainChange,
  FlushChainChange,
  PolicyChange,
  ApplyOptions,
  ApplyResult,
  SaveOptions,
  IptablesStats,
  CommandRunner,
  CommandResult,
  RunOptions,
} from './iptables.js'
export {
  CommandFailure,
  InvalidRuleError,
  InvalidChainError,
  ChainNotFoundError,
  IptablesNotFoundError,
  IptablesCommandError,
  InvalidFirewallOptionError,
  PortAlreadyAllocatedError,
  AllPortsAllocatedError,
  InvalidPortRangeError,
  UnknownProtocolError,
  PortAlreadyMappedError,
  PortNotMappedError,
} from './errors.js'
export { BridgeFirewall, bridgeFirewall, DEFAULT_BRIDGE_FIREWALL_INIT } from './bridge.js'
export type {
  BridgeFirewallInit,
  BridgeFirewallComponents,
  BridgeNetworkConfig,
  BridgeChains,
  ProgramResult,
  ForwardingOptions,
  BridgeFirewallStats,
  ForwardingResult,
  ConntrackFlow,
} from './bridge.js'
export {
  PortAllocator,
  portAllocator,
  parsePortRange,
  readEphemeralRange,
  normalizeHostIp,
  DEFAULT_EPHEMERAL_RANGE,
  PORT_RANGE_FILE,
  PROTOCOLS,
} from './port-allocator.js'
export type { Protocol, PortRange, PortAllocatorInit } from './port-allocator.js'
export { PortMapper, portMapper, DEFAULT_PORT_MAPPER_INIT } from './port-mapper.js'
export type {
  PortBinding,
  PortMapping,
  HeldPort,
  PortHolder,
  PortMapperInit,
  PortMapperComponents,
  ReleaseOptions,
} from './port-mapper.js'
