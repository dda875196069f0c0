import { ConflictError, InvalidArgumentError, NotFoundError, UnavailableError } from '@cnm/types'

/** createEntry on a key that holds a live entry. */
export class EntryExistsError extends ConflictError {
  constructor(table: string, networkId: string, key: string) {
    super(`entry ${table}/${networkId}/${key} already exists`, { code: 'ERR_NETWORKDB_ENTRY_EXISTS' })
  }
}

/** update/delete/get of a key that is missing (or, for delete and get, already deleted). */
export class EntryNotFoundError extends NotFoundError {
  constructor(table: string, networkId: string, key: string) {
    super(`entry ${table}/${networkId}/${key} not found`, { code: 'ERR_NETWORKDB_ENTRY_NOT_FOUND' })
  }
}

/** leaveNetwork of a network this node never joined. */
export class NetworkNotJoinedError extends NotFoundError {
  constructor(networkId: string) {
    super(`network ${networkId} was never joined`, { code: 'ERR_NETWORKDB_NETWORK_NOT_JOINED' })
  }
}

/** A call on a networkdb that is closed. */
export class NetworkDBClosedError extends UnavailableError {
  constructor() {
    super('networkdb is closed', { code: 'ERR_NETWORKDB_CLOSED' })
  }
}

/** None of the addresses given to join() could be reached. */
export class JoinFailedError extends UnavailableError {
  constructor(members: readonly string[], cause: unknown) {
    super(`could not join any of ${members.join(', ')}`, { code: 'ERR_NETWORKDB_JOIN_FAILED', cause })
  }
}

/** A configuration field with a bad value. */
export class InvalidConfigError extends InvalidArgumentError {
  constructor(field: string, why: string) {
    super(`networkdb config: ${field} ${why}`, { code: 'ERR_NETWORKDB_INVALID_CONFIG' })
  }
}
