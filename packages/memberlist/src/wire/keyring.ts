import { ForbiddenError, InvalidArgumentError, NotFoundError } from '@cnm/types'
import type { Keyring } from '../types.js'

function validateKey(key: Uint8Array): void {
  if (!(key instanceof Uint8Array) || (key.length !== 16 && key.length !== 24 && key.length !== 32)) {
    const len = key instanceof Uint8Array ? `${key.length} bytes` : typeof key
    throw new InvalidArgumentError(`key size must be 16, 24 or 32 bytes, got ${len}`, { code: 'ERR_MEMBERLIST_KEY' })
  }
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/**
 * memberlist's keyring: AES keys (16/24/32 bytes), the primary first. The primary encrypts; every key is
 * tried to decrypt. Changing the primary only reorders; the primary cannot be removed.
 */
export class KeyringImpl implements Keyring {
  #keys: Uint8Array[] = []

  /** `keys[0]` becomes the primary; duplicates are dropped. Throws InvalidArgumentError for a bad length. */
  constructor(keys: readonly Uint8Array[] = []) {
    for (const k of keys) this.addKey(k)
  }

  keys(): Uint8Array[] {
    return this.#keys.map((k) => new Uint8Array(k))
  }

  /** The installed keys without copying (hot path). Do not modify. */
  keysView(): readonly Uint8Array[] {
    return this.#keys
  }

  primaryKey(): Uint8Array | undefined {
    const k = this.#keys[0]
    return k === undefined ? undefined : new Uint8Array(k)
  }

  addKey(key: Uint8Array): void {
    validateKey(key)
    if (this.#keys.some((k) => equal(k, key))) return
    this.#keys = [...this.#keys, new Uint8Array(key)]
  }

  useKey(key: Uint8Array): void {
    const i = this.#keys.findIndex((k) => equal(k, key))
    if (i < 0) throw new NotFoundError('requested key is not in the keyring', { code: 'ERR_MEMBERLIST_KEY' })
    if (i === 0) return
    const k = this.#keys[i]!
    this.#keys = [k, ...this.#keys.slice(0, i), ...this.#keys.slice(i + 1)]
  }

  removeKey(key: Uint8Array): void {
    const i = this.#keys.findIndex((k) => equal(k, key))
    if (i < 0) return
    if (i === 0) throw new ForbiddenError('removing the primary key is not allowed', { code: 'ERR_MEMBERLIST_KEY' })
    this.#keys = this.#keys.filter((_, j) => j !== i)
  }
}

/** The keys of an optional keyring, primary first, copying nothing when it is a KeyringImpl. */
export function keysOf(keyring: Keyring | undefined): readonly Uint8Array[] {
  if (keyring === undefined) return []
  if (keyring instanceof KeyringImpl) return keyring.keysView()
  return keyring.keys()
}

/** The primary key of an optional keyring, without a copy when possible. */
export function primaryOf(keyring: Keyring | undefined): Uint8Array | undefined {
  if (keyring === undefined) return undefined
  if (keyring instanceof KeyringImpl) return keyring.keysView()[0]
  return keyring.primaryKey()
}
