/** Every public async method takes this (or a subtype) as its last parameter. */
export interface AbortOptions {
  signal?: AbortSignal
}

/** Something with a background lifecycle. start/stop are idempotent; stop on a never-started object is safe. */
export interface Startable {
  start(options?: AbortOptions): Promise<void> | void
  stop(options?: AbortOptions): Promise<void> | void
}

/** Branded string: a nominal type over string. */
export type Brand<T, B extends string> = T & { readonly __brand: B }

export type NetworkId = Brand<string, 'NetworkId'>
export type EndpointId = Brand<string, 'EndpointId'>
export type SandboxId = Brand<string, 'SandboxId'>
export type PoolId = Brand<string, 'PoolId'>
