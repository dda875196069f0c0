import { CnmError } from '@cnm/types'
import type { CnmErrorOptions } from '@cnm/types'

/**
 * What a failed external command left behind; attached as `cause` to IptablesCommandError so a
 * caller (or a log line) can see the exact argv, exit status and stderr.
 */
export class CommandFailure extends Error {
  readonly argv: readonly string[]
  readonly exitCode: number | null
  readonly stderr: string
  readonly stdout: string

  constructor(argv: readonly string[], exitCode: number | null, stderr: string, stdout = '', cause?: unknown) {
    super(
      `${argv.join(' ')} exited ${exitCode === null ? 'by signal' : exitCode}: ${stderr.trim()}`,
      cause === undefined ? undefined : { cause },
    )
    this.name = 'CommandFailure'
    this.argv = argv
    this.exitCode = exitCode
    this.stderr = stderr
    this.stdout = stdout
  }
}

/** A bad table, chain name, rule argument or change set. Nothing was changed. */
export class InvalidRuleError extends CnmError<'ERR_IPTABLES_INVALID_RULE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_INVALID_RULE', 'invalid-argument', message, options)
  }
}

/** A chain name that iptables would reject or that could inject commands. Nothing was changed. */
export class InvalidChainError extends CnmError<'ERR_IPTABLES_INVALID_CHAIN'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_INVALID_CHAIN', 'invalid-argument', message, options)
  }
}

/** A rule refers to a chain that neither exists nor is created earlier in the same change set. */
export class ChainNotFoundError extends CnmError<'ERR_IPTABLES_NO_CHAIN'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_NO_CHAIN', 'not-found', message, options)
  }
}

/** No usable iptables binary (or ip6tables for family 6) was found. */
export class IptablesNotFoundError extends CnmError<'ERR_IPTABLES_NOT_FOUND'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_NOT_FOUND', 'unavailable', message, options)
  }
}

/** iptables-save / iptables-restore / iptables / sysctl failed; `cause` is a CommandFailure with stderr. */
export class IptablesCommandError extends CnmError<'ERR_IPTABLES_COMMAND'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_COMMAND', 'internal', message, options)
  }
}

/** An invalid option passed to a factory or a bridge/port call (bad address, interface name, prefix...). */
export class InvalidFirewallOptionError extends CnmError<'ERR_IPTABLES_INVALID_OPTION'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_IPTABLES_INVALID_OPTION', 'invalid-argument', message, options)
  }
}

/** `Bind for <ip>:<port> failed: port is already allocated` (libnetwork's ErrPortAlreadyAllocated). */
export class PortAlreadyAllocatedError extends CnmError<'ERR_PORT_ALREADY_ALLOCATED'> {
  readonly ip: string
  readonly port: number
  constructor(ip: string, port: number, options?: CnmErrorOptions) {
    super('ERR_PORT_ALREADY_ALLOCATED', 'conflict', `Bind for ${ip}:${port} failed: port is already allocated`, options)
    this.ip = ip
    this.port = port
  }
}

/** Every port of the requested (or ephemeral) range is taken. */
export class AllPortsAllocatedError extends CnmError<'ERR_PORT_ALL_ALLOCATED'> {
  constructor(message = 'all ports are allocated', options?: CnmErrorOptions) {
    super('ERR_PORT_ALL_ALLOCATED', 'unavailable', message, options)
  }
}

/** A port range with start 0, end 0, end < start, or a port outside 0–65535. */
export class InvalidPortRangeError extends CnmError<'ERR_PORT_INVALID_RANGE'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_PORT_INVALID_RANGE', 'invalid-argument', message, options)
  }
}

/** A protocol other than tcp, udp or sctp. */
export class UnknownProtocolError extends CnmError<'ERR_PORT_UNKNOWN_PROTOCOL'> {
  constructor(proto: unknown, options?: CnmErrorOptions) {
    super('ERR_PORT_UNKNOWN_PROTOCOL', 'invalid-argument', `unknown protocol: ${String(proto)}`, options)
  }
}

/** The host ip:port/proto is already mapped (libnetwork's "port is already mapped to ip"). */
export class PortAlreadyMappedError extends CnmError<'ERR_PORT_ALREADY_MAPPED'> {
  constructor(key: string, options?: CnmErrorOptions) {
    super('ERR_PORT_ALREADY_MAPPED', 'conflict', `port is already mapped to ip: ${key}`, options)
  }
}

/** unmap/release of a host ip:port/proto (or an owner) that is not mapped. */
export class PortNotMappedError extends CnmError<'ERR_PORT_NOT_MAPPED'> {
  constructor(key: string, options?: CnmErrorOptions) {
    super('ERR_PORT_NOT_MAPPED', 'not-found', `port is not mapped: ${key}`, options)
  }
}
