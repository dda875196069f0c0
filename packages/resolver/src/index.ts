export { Resolver, resolver, DEFAULT_RESOLVER_INIT } from './resolver.js'
export type {
  ResolverInit,
  ResolverComponents,
  ResolverListen,
  ListenSpec,
  ResolverStats,
  UpstreamHealth,
} from './resolver.js'
export type { DnsRecordSource, NameRecords, ServiceRecord, ServiceProtocol } from './record-source.js'
export type {
  DnsFastPath,
  DnsFastPathAttachOptions,
  DnsFastPathAnswer,
  DnsFastPathResponder,
  DnsFastPathStats,
} from './fast-path.js'
export { hostSocketFactory } from './sockets.js'
export type { ForwardSocketFactory, UpstreamServer } from './sockets.js'
export {
  InvalidResolverOptionError,
  ResolverListenError,
  ResolverStoppedError,
  ResolverNetnsError,
  InvalidNdotsError,
  DnsFileError,
} from './errors.js'
export { NetworkRecords, SandboxRecords } from './records.js'
export type { NameRecordOptions, ServiceTargetInit, SandboxAttachment } from './records.js'
export {
  startSandboxResolver,
  SandboxResolver,
  netnsSocketFactory,
  dnsNatChanges,
  EMBEDDED_DNS_ADDRESS,
  DNS_OUTPUT_CHAIN,
  DNS_POSTROUTING_CHAIN,
} from './netns.js'
export type {
  SandboxResolverInit,
  SandboxResolverComponents,
  NetnsSocketOpener,
  NetnsSocketConnector,
  NatRules,
  NatChange,
} from './netns.js'
export {
  DEFAULT_HOSTS_RECORDS,
  buildHosts,
  addHosts,
  deleteHosts,
  updateHosts,
  hostsNames,
  hostsLine,
} from './hosts.js'
export type { HostsRecord, BuildHostsOptions } from './hosts.js'
export {
  parseResolvConf,
  getNameservers,
  nameserversAsCidr,
  buildResolvConf,
  hashResolvConf,
  filterResolvConf,
  hostResolvConfPath,
  hostUpstreams,
  ndotsOf,
  embeddedResolvConf,
  DEFAULT_IPV4_NAMESERVERS,
  DEFAULT_IPV6_NAMESERVERS,
  HOST_RESOLV_CONF,
  SYSTEMD_RESOLV_CONF,
} from './resolv-conf.js'
export type { ResolvConf, NameserverKind, EmbeddedResolvConf } from './resolv-conf.js'
export { DnsFiles, SandboxDnsFiles, applyParentUpdates, DEFAULT_DNS_FILES_INIT } from './dns-files.js'
export type {
  DnsFilesInit,
  DnsFilesComponents,
  SandboxDnsFilesInit,
  SandboxDnsFilesComponents,
  ParentHostsUpdate,
} from './dns-files.js'
