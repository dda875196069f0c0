import { CnmError, InvalidArgumentError } from '@cnm/types'
import type { CnmErrorOptions } from '@cnm/types'

/** An option passed to a factory or constructor of this package is invalid (the message names the field). */
export class InvalidResolverOptionError extends InvalidArgumentError {
  constructor(message: string, options?: CnmErrorOptions) {
    super(message, { ...options, code: 'ERR_RESOLVER_INVALID_OPTION' })
  }
}

/** The resolver could not bind or adopt its listening sockets. */
export class ResolverListenError extends CnmError<'ERR_RESOLVER_LISTEN'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_RESOLVER_LISTEN', 'unavailable', message, options)
  }
}

/** `start()` on a resolver that was stopped (a resolver's adopted sockets cannot be reopened: make a new one). */
export class ResolverStoppedError extends CnmError<'ERR_RESOLVER_STOPPED'> {
  constructor(message = 'the resolver was stopped; create a new one', options?: CnmErrorOptions) {
    super('ERR_RESOLVER_STOPPED', 'forbidden', message, options)
  }
}

/** Placing a resolver into a sandbox namespace failed (sockets or NAT rules); nothing is left behind. */
export class ResolverNetnsError extends CnmError<'ERR_RESOLVER_NETNS'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_RESOLVER_NETNS', 'unavailable', message, options)
  }
}

/** `options ndots:<n>` in resolv.conf with a non-number or a negative number. */
export class InvalidNdotsError extends CnmError<'ERR_RESOLVCONF_INVALID_NDOTS'> {
  constructor(message: string, options?: CnmErrorOptions) {
    super('ERR_RESOLVCONF_INVALID_NDOTS', 'invalid-argument', message, options)
  }
}

/** Reading or writing a hosts / resolv.conf file failed (the fs error is the cause). */
export class DnsFileError extends CnmError<'ERR_DNS_FILE_IO'> {
  readonly path: string
  constructor(message: string, path: string, options?: CnmErrorOptions) {
    super('ERR_DNS_FILE_IO', 'internal', message, options)
    this.path = path
  }
}
