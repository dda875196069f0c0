import { InvalidArgumentError, type EndpointId, type NetworkId, type SandboxId } from '@cnm/types'

const FULL_ID = /^[0-9a-f]{64}$/

/** True for a full libnetwork id: 64 lowercase hex characters. */
export function isFullId(s: unknown): s is string {
  return typeof s === 'string' && FULL_ID.test(s)
}

/** A fresh random 64-hex id (32 random bytes from Web Crypto). */
export function generateId(): string {
  const bytes = new Uint8Array(32)
  globalThis.crypto.getRandomValues(bytes)
  let out = ''
  for (const b of bytes) out += b.toString(16).padStart(2, '0')
  return out
}

function check(kind: string, raw: unknown): string {
  if (typeof raw !== 'string' || raw.trim() === '') {
    throw new InvalidArgumentError(`invalid ${kind} id: ${JSON.stringify(raw)}`, { code: 'ERR_INVALID_ID' })
  }
  return raw
}

/** Brands a non-empty string as a NetworkId (throws InvalidArgumentError `ERR_INVALID_ID` otherwise). */
export function networkId(raw: unknown): NetworkId {
  return check('network', raw) as NetworkId
}

/** Brands a non-empty string as an EndpointId (throws InvalidArgumentError `ERR_INVALID_ID` otherwise). */
export function endpointId(raw: unknown): EndpointId {
  return check('endpoint', raw) as EndpointId
}

/** Brands a non-empty string as a SandboxId (throws InvalidArgumentError `ERR_INVALID_ID` otherwise). */
export function sandboxId(raw: unknown): SandboxId {
  return check('sandbox', raw) as SandboxId
}
