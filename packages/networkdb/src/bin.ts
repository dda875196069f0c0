#!/usr/bin/env node
// cnm-gossip: one networkdb node plus its diagnostic HTTP server, driven from the command line.
// This is the CLI layer: it alone talks to process (argv, stdout/stderr, signals, exit codes).
import { lookup } from 'node:dns/promises'
import { isIP } from 'node:net'
import { format } from 'node:util'
import type { Logger } from '@cnm/types'
import { createNetworkDB } from './index.js'
import type { NetworkDB } from './types.js'
import { startDiagnosticServer } from './diagnostic/index.js'
import type { DiagnosticServer } from './diagnostic/index.js'
import { GOSSIP_USAGE, UsageError, formatHostPort, parseGossipArgs } from './diagnostic/gossip-args.js'
import type { GossipArgs, HostPort } from './diagnostic/gossip-args.js'

const EXIT_OK = 0
const EXIT_FAILURE = 1
const EXIT_USAGE = 2
/** A graceful close that takes longer than this is cut short. */
const CLOSE_DEADLINE_MS = 15_000

function stderrLogger(namespace: string, verbose: boolean): Logger {
  const emit = (level: string, fmt: string, args: unknown[]): void => {
    process.stderr.write(`${new Date().toISOString()} ${namespace}${level} ${format(fmt, ...args)}\n`)
  }
  const log = ((fmt: string, ...args: unknown[]) => emit('', fmt, args)) as Logger
  log.error = (fmt: string, ...args: unknown[]) => emit(':error', fmt, args)
  log.trace = (fmt: string, ...args: unknown[]) => {
    if (verbose) emit(':trace', fmt, args)
  }
  log.enabled = true
  log.child = (scope: string) => stderrLogger(`${namespace}:${scope}`, verbose)
  return log
}

/** Host names in --join are resolved here (the library takes IP literals). */
async function resolveMember(m: HostPort): Promise<string> {
  const ip = isIP(m.host) !== 0 ? m.host : (await lookup(m.host)).address
  return m.port === undefined ? ip : formatHostPort(ip, m.port)
}

async function run(args: GossipArgs): Promise<number> {
  const log = stderrLogger('cnm:gossip', args.verbose)
  let db: NetworkDB | undefined
  let diag: DiagnosticServer | undefined
  let stopping: Promise<number> | undefined
  const started = new AbortController()

  const stop = (why: string): Promise<number> => {
    stopping ??= (async () => {
      log('%s: leaving the cluster', why)
      started.abort()
      const deadline = setTimeout(() => {
        log.error('close took longer than %d ms, exiting', CLOSE_DEADLINE_MS)
        process.exit(EXIT_FAILURE)
      }, CLOSE_DEADLINE_MS)
      deadline.unref()
      let code = EXIT_OK
      try {
        await diag?.close()
        await db?.close()
      } catch (err) {
        log.error('close failed: %s', err instanceof Error ? err.message : String(err))
        code = EXIT_FAILURE
      }
      clearTimeout(deadline)
      log('stopped')
      return code
    })()
    return stopping
  }
  let signals = 0
  const onSignal = (sig: NodeJS.Signals): void => {
    if (++signals > 1) {
      log.error('second %s: exiting without a graceful leave', sig)
      process.exit(EXIT_FAILURE)
    }
    void stop(sig).then((code) => process.exit(code))
  }
  process.on('SIGTERM', onSignal)
  process.on('SIGINT', onSignal)

  try {
    db = await createNetworkDB({
      nodeId: args.name,
      bindAddr: args.bind.addr,
      bindPort: args.bind.port,
      ...(args.advertise === undefined ? {} : { advertiseAddr: args.advertise.host }),
      ...(args.advertise?.port === undefined ? {} : { advertisePort: args.advertise.port }),
      keys: [...args.keys],
      logger: log.child('networkdb'),
    })
    if (started.signal.aborted) return await stop('signal during start')
    diag = await startDiagnosticServer(db, {
      host: args.diagHost,
      port: args.diagPort,
      logger: log.child('diagnostic'),
    })

    if (args.join.length > 0) {
      try {
        const members = await Promise.all(args.join.map(resolveMember))
        await db.join(members, { signal: started.signal })
        log('joined %s', members.join(','))
      } catch (err) {
        // As Docker does: a failed join is logged; the background tasks keep retrying the bootstrap list.
        log.error(
          'join %s failed: %s',
          args.join.map((m) => `${m.host}${m.port === undefined ? '' : `:${m.port}`}`).join(','),
          err instanceof Error ? err.message : String(err),
        )
      }
    }
    for (const nid of args.networks) {
      if (started.signal.aborted) break
      await db.joinNetwork(nid, { signal: started.signal })
      log('joined network %s', nid)
    }
    if (started.signal.aborted) return await (stopping ?? stop('signal during start'))

    const ready = { name: db.nodeId, gossip: formatHostPort(db.address.addr, db.address.port), diagnostic: diag.url }
    process.stdout.write(`${JSON.stringify(ready)}\n`)
  } catch (err) {
    if (stopping !== undefined) return await stopping
    log.error('start failed: %s', err instanceof Error ? err.message : String(err))
    await stop('start failed')
    return EXIT_FAILURE
  }
  // Runs until a signal; the signal handler exits the process.
  return await new Promise<number>(() => {})
}

async function main(argv: readonly string[]): Promise<number> {
  let args
  try {
    args = parseGossipArgs(argv)
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`cnm-gossip: ${err.message}\n\n${GOSSIP_USAGE}`)
      return EXIT_USAGE
    }
    throw err
  }
  if (args.help) {
    process.stdout.write(GOSSIP_USAGE)
    return EXIT_OK
  }
  return run(args)
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`cnm-gossip: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    process.exit(EXIT_FAILURE)
  },
)
