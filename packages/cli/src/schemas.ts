import { z } from 'zod'
import { parseIp, parsePrefix } from '@cnm/types'
import { parsePortBindings } from '@cnm/driverapi'
import { BadRequestError } from './errors.js'

const ok =
  (f: (s: string) => unknown) =>
  (s: string): boolean => {
    try {
      f(s)
      return true
    } catch {
      return false
    }
  }

/** A name (network, sandbox, endpoint, alias): what Docker accepts for container names. */
const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/
const name = (what: string) =>
  z
    .string()
    .min(1, `${what} must not be empty`)
    .max(128, `${what} must be at most 128 characters`)
    .regex(NAME, `${what} may contain only [a-zA-Z0-9_.-] and must start with a letter or digit`)

const ref = (what: string) => z.string().min(1, `${what} must not be empty`).max(128)

const cidr = (what: string) =>
  z.string().refine(ok(parsePrefix), { message: `${what} is not a valid CIDR (e.g. 10.1.0.0/24)` })
const ip = (what: string) => z.string().refine(ok(parseIp), { message: `${what} is not a valid IP address` })
const strMap = z.record(z.string().min(1).max(256), z.string().max(4096))

const portBinding = z.union([
  z.string().refine(
    ok((s) => parsePortBindings([s])),
    { message: 'port binding must look like [ip:]hostPort[-end]:containerPort[/tcp|udp|sctp]' },
  ),
  z.strictObject({
    proto: z.enum(['tcp', 'udp', 'sctp']).optional(),
    containerPort: z.number().int().min(1).max(65535),
    hostIp: ip('hostIp').optional(),
    hostPort: z.number().int().min(0).max(65535).optional(),
    hostPortEnd: z.number().int().min(0).max(65535).optional(),
  }),
])

export const ipamConfigSchema = z
  .strictObject({
    subnet: cidr('subnet').optional(),
    ipRange: cidr('ipRange').optional(),
    gateway: ip('gateway').optional(),
    auxAddresses: z.record(z.string().min(1), ip('auxAddresses value')).optional(),
  })
  .refine((c) => c.subnet !== undefined || (c.ipRange === undefined && c.gateway === undefined), {
    message: 'ipRange and gateway need a subnet',
  })

export const createNetworkSchema = z.strictObject({
  name: name('network name'),
  driver: z.string().min(1).max(64).optional(),
  internal: z.boolean().optional(),
  enableIPv6: z.boolean().optional(),
  attachable: z.boolean().optional(),
  options: strMap.optional(),
  labels: strMap.optional(),
  ipam: z
    .strictObject({
      driver: z.string().min(1).max(64).optional(),
      options: strMap.optional(),
      config: z.array(ipamConfigSchema).max(8).optional(),
    })
    .optional(),
})
export type CreateNetworkBody = z.infer<typeof createNetworkSchema>

export const endpointSpecSchema = z.strictObject({
  /** Endpoint name. @default the sandbox name */
  name: name('endpoint name').optional(),
  ipv4Address: ip('ipv4Address').optional(),
  ipv6Address: ip('ipv6Address').optional(),
  aliases: z.array(name('alias')).max(64).optional(),
  portBindings: z.array(portBinding).max(256).optional(),
  macAddress: z
    .string()
    .regex(/^([0-9a-fA-F]{2}[:-]){5}[0-9a-fA-F]{2}$/, 'macAddress is not a MAC address')
    .optional(),
})
export type EndpointSpec = z.infer<typeof endpointSpecSchema>

export const connectSchema = endpointSpecSchema.extend({ sandbox: ref('sandbox') })
export type ConnectBody = z.infer<typeof connectSchema>

export const disconnectSchema = z.strictObject({ sandbox: ref('sandbox'), force: z.boolean().optional() })
export type DisconnectBody = z.infer<typeof disconnectSchema>

export const createSandboxSchema = z.strictObject({
  /** Sandbox name (the container id in CNM terms). @default a generated name */
  name: name('sandbox name').optional(),
  hostname: z
    .string()
    .regex(/^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$/, 'hostname is not a valid host name')
    .optional(),
  domainname: z.string().max(253).optional(),
  labels: strMap.optional(),
  dns: z.array(ip('dns')).max(8).optional(),
  dnsSearch: z.array(z.string().min(1).max(253)).max(8).optional(),
  dnsOptions: z.array(z.string().min(1).max(64)).max(16).optional(),
  extraHosts: z
    .array(z.strictObject({ name: z.string().min(1).max(253), ip: ip('extraHosts ip') }))
    .max(64)
    .optional(),
  /** Legacy links `name[:alias]` to sandboxes on the default bridge (hosts file entries, rewritten when the target changes). */
  links: z
    .array(
      z
        .string()
        .regex(/^\/?[a-zA-Z0-9][a-zA-Z0-9_.-]*(:[a-zA-Z0-9][a-zA-Z0-9_.-]*)?$/, 'link must look like name[:alias]'),
    )
    .max(64)
    .optional(),
  /** Networks to connect right away (rolled back with the sandbox on failure). */
  networks: z
    .array(endpointSpecSchema.extend({ network: ref('network') }))
    .max(16)
    .optional(),
})
export type CreateSandboxBody = z.infer<typeof createSandboxSchema>

/** Validates `body` against `schema`, throwing BadRequestError with every issue in one message. */
export function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body)
  if (r.success) return r.data
  const issues = r.error.issues.map((i) => {
    const path = i.path.map(String).join('.')
    if (i.code === 'unrecognized_keys') {
      return `unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(path === '' ? k : `${path}.${k}`)).join(', ')}`
    }
    return path === '' ? i.message : `${path}: ${i.message}`
  })
  throw new BadRequestError(`invalid request: ${issues.join('; ')}`)
}
