// Command line of the `cnm-gossip` executable (src/bin.ts), parsed and validated without side effects so
// tests can check every rejection. Not part of the package's public surface.
import { isIP } from 'node:net'
import { parseArgs } from 'node:util'
import { InvalidArgumentError } from '@cnm/types'
import { decodeGoBase64 } from './go-base64.js'

export const GOSSIP_USAGE = `Usage: cnm-gossip --name NAME --bind IP:PORT [options]

Runs one networkdb (Docker-compatible gossip) node with a Docker-compatible diagnostic HTTP server.
When ready it prints one JSON line on stdout: {"name":…,"gossip":"IP:PORT","diagnostic":"http://…"}.
Logs go to stderr. SIGTERM or SIGINT leaves the cluster gracefully and exits.

Options:
  --name NAME            node name (unique in the cluster)
  --bind IP:PORT         gossip address, UDP and TCP (port 0 picks a free one)
  --advertise IP[:PORT]  address announced to peers (default: the bound one)
  --join HOST:PORT,...   members to join at start (failure is logged; retried in the background)
  --keys KEY,...         gossip encryption keys, standard base64 of 16, 24 or 32 bytes, primary first
  --networks NID,...     networks to join at start
  --diag-port N          diagnostic HTTP port on 127.0.0.1 (default 0: a free port, printed)
  --diag-host IP         diagnostic listen address (default 127.0.0.1)
  --verbose              also log trace lines
  -h, --help             this text
`

export interface HostPort {
  readonly host: string
  readonly port: number | undefined
}

export interface GossipArgs {
  readonly name: string
  readonly bind: { readonly addr: string; readonly port: number }
  readonly advertise: HostPort | undefined
  readonly join: readonly HostPort[]
  readonly keys: readonly Uint8Array[]
  readonly networks: readonly string[]
  readonly diagPort: number
  readonly diagHost: string
  readonly verbose: boolean
}

export type ParsedCommand = { readonly help: true } | ({ readonly help: false } & GossipArgs)

/** A bad command line; the executable prints the message and exits with status 2. */
export class UsageError extends InvalidArgumentError {
  constructor(message: string) {
    super(message, { code: 'ERR_NETWORKDB_USAGE' })
  }
}

const HOSTNAME =
  /^(?=.{1,253}$)[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/

function parsePort(flag: string, text: string, min = 0): number {
  if (!/^\d{1,5}$/.test(text)) throw new UsageError(`${flag}: port ${JSON.stringify(text)} is not a number`)
  const port = Number(text)
  if (port < min || port > 65535) throw new UsageError(`${flag}: port ${port} is out of range ${min}..65535`)
  return port
}

/** `IP`, `IP:PORT`, `[IPv6]` or `[IPv6]:PORT` (a bare IPv6 address has no port). */
function splitHostPort(flag: string, text: string): HostPort {
  const v6 = /^\[([^\]]*)\](?::(.*))?$/.exec(text)
  if (v6 !== null) {
    return { host: v6[1] ?? '', port: v6[2] === undefined ? undefined : parsePort(flag, v6[2]) }
  }
  const colons = text.split(':').length - 1
  if (colons === 1) {
    const i = text.indexOf(':')
    return { host: text.slice(0, i), port: parsePort(flag, text.slice(i + 1)) }
  }
  return { host: text, port: undefined }
}

function requireIp(flag: string, host: string, text: string): void {
  if (isIP(host) === 0) throw new UsageError(`${flag}: ${JSON.stringify(text)} is not an IP address (IP:PORT)`)
}

function list(text: string | undefined): string[] {
  if (text === undefined) return []
  return text.split(',').map((s) => s.trim())
}

function isUnspecified(ip: string): boolean {
  return ip === '0.0.0.0' || /^[0:]+$/.test(ip)
}

/** Parses argv (without `node` and the script). Throws UsageError. */
export function parseGossipArgs(argv: readonly string[]): ParsedCommand {
  let values: Record<string, string | boolean | undefined>
  try {
    ;({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        name: { type: 'string' },
        bind: { type: 'string' },
        advertise: { type: 'string' },
        join: { type: 'string' },
        keys: { type: 'string' },
        networks: { type: 'string' },
        'diag-port': { type: 'string' },
        'diag-host': { type: 'string' },
        verbose: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }))
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err))
  }
  if (values.help === true) return { help: true }
  const str = (k: string): string | undefined => {
    const v = values[k]
    return typeof v === 'string' ? v : undefined
  }

  const name = str('name')
  if (name === undefined) throw new UsageError('--name is required')
  if (name.trim() === '' || /\s/.test(name))
    throw new UsageError(`--name: ${JSON.stringify(name)} must be non-empty without spaces`)

  const bindText = str('bind')
  if (bindText === undefined) throw new UsageError('--bind is required (IP:PORT, port 0 picks a free one)')
  const bind = splitHostPort('--bind', bindText)
  requireIp('--bind', bind.host, bindText)
  if (bind.port === undefined) throw new UsageError(`--bind: ${JSON.stringify(bindText)} has no port (IP:PORT)`)

  let advertise: HostPort | undefined
  const advText = str('advertise')
  if (advText !== undefined) {
    advertise = splitHostPort('--advertise', advText)
    requireIp('--advertise', advertise.host, advText)
    if (isUnspecified(advertise.host)) throw new UsageError(`--advertise: ${advText} is not a routable address`)
    if (advertise.port === 0) throw new UsageError('--advertise: port 0 cannot be announced')
  } else if (isUnspecified(bind.host)) {
    throw new UsageError(`--bind ${bindText} is a wildcard address: give --advertise IP[:PORT]`)
  }

  const join = list(str('join')).map((item) => {
    if (item === '') throw new UsageError('--join: empty member in the list')
    const hp = splitHostPort('--join', item)
    if (isIP(hp.host) === 0 && !HOSTNAME.test(hp.host)) {
      throw new UsageError(`--join: ${JSON.stringify(item)} is not HOST:PORT`)
    }
    if (hp.port === 0) throw new UsageError(`--join: ${item} has port 0`)
    return hp
  })

  const keys = list(str('keys')).map((item, i) => {
    let key: Uint8Array
    try {
      key = decodeGoBase64(item)
    } catch (err) {
      throw new UsageError(
        `--keys: key ${i + 1} is not valid base64 (${err instanceof Error ? err.message : String(err)})`,
      )
    }
    if (key.length !== 16 && key.length !== 24 && key.length !== 32) {
      throw new UsageError(`--keys: key ${i + 1} is ${key.length} bytes; AES keys are 16, 24 or 32 bytes`)
    }
    return key
  })
  const seen = new Set<string>()
  for (const k of keys) {
    const hex = Buffer.from(k).toString('hex')
    if (seen.has(hex)) throw new UsageError('--keys: the same key is given twice')
    seen.add(hex)
  }

  const networks = list(str('networks'))
  if (networks.some((n) => n === '')) throw new UsageError('--networks: empty network id in the list')

  const diagPortText = str('diag-port')
  const diagPort = diagPortText === undefined ? 0 : parsePort('--diag-port', diagPortText)
  const diagHost = str('diag-host') ?? '127.0.0.1'
  if (isIP(diagHost) === 0) throw new UsageError(`--diag-host: ${JSON.stringify(diagHost)} is not an IP address`)

  return {
    help: false,
    name,
    bind: { addr: bind.host, port: bind.port },
    advertise,
    join,
    keys,
    networks: [...new Set(networks)],
    diagPort,
    diagHost,
    verbose: values.verbose === true,
  }
}

/** `IP:PORT`, bracketing IPv6. */
export function formatHostPort(host: string, port: number): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`
}
