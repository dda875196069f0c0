import { Command, CommanderError, Option } from 'commander'
import { isCnmError } from '@cnm/types'
import { defaultLogger } from '@cnm/logger'
import { CnmClient, DEFAULT_SOCKET } from './client.js'
import { Daemon, DEFAULT_DAEMON_INIT, type DaemonInit } from './daemon.js'
import { runDemo } from './demo.js'
import { ApiResponseError, DaemonUnreachableError, UsageError } from './errors.js'
import { endpointsTable, networksTable, sandboxesTable, shortId } from './format.js'
import { execInSandbox, runInSandbox } from './run.js'
import type { CreateNetworkBody } from './schemas.js'
import { VERSION } from './version.js'

/** Exit codes of the `cnm` command (stable: scripts may rely on them). */
export const EXIT = Object.freeze({
  ok: 0,
  /** The daemon answered with an error (the message and code are printed on stderr). */
  daemonError: 1,
  /** Bad command-line usage: unknown flag, missing argument, malformed value. */
  usage: 2,
  /** The daemon cannot be reached (not running, wrong --host, no permission on the socket). */
  unreachable: 3,
  /** `cnm run`: cnm failed before the command could start (Docker's 125). */
  runFailed: 125,
})

export interface CliIo {
  stdout: (s: string) => void
  stderr: (s: string) => void
  env: Readonly<Record<string, string | undefined>>
}

const defaultIo: CliIo = {
  stdout: (s) => process.stdout.write(s),
  stderr: (s) => process.stderr.write(s),
  env: process.env,
}

const collect = (v: string, prev: string[] = []): string[] => [...prev, v]

function keyValues(list: readonly string[] | undefined, what: string): Record<string, string> | undefined {
  if (list === undefined || list.length === 0) return undefined
  const out: Record<string, string> = {}
  for (const kv of list) {
    const i = kv.indexOf('=')
    if (i <= 0) throw new UsageError(`${what} must be key=value, got ${JSON.stringify(kv)}`)
    out[kv.slice(0, i)] = kv.slice(i + 1)
  }
  return out
}

/** `--add-host name:ip` values (the IP may be IPv6: split at the first colon). */
function addHosts(list: readonly string[] | undefined): Array<{ name: string; ip: string }> | undefined {
  if (list === undefined || list.length === 0) return undefined
  return list.map((v) => {
    const i = v.indexOf(':')
    if (i <= 0 || i === v.length - 1) throw new UsageError(`--add-host must be name:ip, got ${JSON.stringify(v)}`)
    return { name: v.slice(0, i), ip: v.slice(i + 1) }
  })
}

const formatOption = (): Option =>
  new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table')

/** Exit code and stderr text for an error. */
function report(err: unknown, io: CliIo): number {
  if (err instanceof ApiResponseError) {
    io.stderr(`Error response from daemon: ${err.message} [${err.code}]\n`)
    return EXIT.daemonError
  }
  if (err instanceof DaemonUnreachableError) {
    io.stderr(`Error: ${err.message}\n`)
    return EXIT.unreachable
  }
  if (err instanceof UsageError || (isCnmError(err) && err.kind === 'invalid-argument')) {
    io.stderr(`Error: ${(err as Error).message}\n`)
    return EXIT.usage
  }
  io.stderr(`Error: ${err instanceof Error ? err.message : String(err)}\n`)
  return EXIT.daemonError
}

/**
 * Runs the `cnm` command line with `argv` (without `node` and the script). Resolves the exit code
 * instead of exiting, so tests and embedders can call it.
 */
export async function main(argv: readonly string[], io: CliIo = defaultIo): Promise<number> {
  let code: number = EXIT.ok
  const program = new Command('cnm')
  program
    .description('cnm: container networking (CNM) daemon and client')
    .version(VERSION, '-v, --version')
    .option(
      '-H, --host <address>',
      `daemon socket (unix path, unix:///path or tcp://host:port) [env CNM_HOST, default ${DEFAULT_SOCKET}]`,
    )
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError('(run with --help for usage)')

  const client = (): CnmClient => {
    const host = (program.opts<{ host?: string }>().host ?? io.env['CNM_HOST']) || DEFAULT_SOCKET
    return new CnmClient({ host })
  }
  const withClient = async (fn: (c: CnmClient) => Promise<void>): Promise<void> => {
    const c = client()
    try {
      await fn(c)
    } finally {
      c.close()
    }
  }
  const out = (s: string): void => io.stdout(s.endsWith('\n') ? s : `${s}\n`)
  const json = (v: unknown): void => out(JSON.stringify(v, null, 2))

  // ---------------------------------------------------------------- daemon
  program
    .command('daemon')
    .description('run the cnm daemon (JSON HTTP API on a unix socket, mode 0600)')
    .option('--root <dir>', 'state directory', DEFAULT_DAEMON_INIT.root)
    .option(
      '--exec-root <dir>',
      'runtime directory (socket, sandbox namespaces, hosts/resolv.conf)',
      DEFAULT_DAEMON_INIT.execRoot,
    )
    .option('--socket <path>', 'API socket (default <exec-root>/cnm.sock)')
    .option('--host-netns <name>', 'act as if this namespace (/run/netns/<name>) were the host')
    .option('--tcp <host:port>', 'also listen on TCP (no authentication; off by default)')
    .option('--no-dns', 'do not start the embedded DNS resolver in sandboxes')
    .option('--dns-upstream <ip>', 'upstream DNS server for the embedded resolver (repeatable)', collect)
    .option(
      '--resolv-conf <path>',
      "the host's resolv.conf sandboxes start from (default /etc/resolv.conf; none with --host-netns)",
    )
    .option(
      '--dns-hedge-delay <ms>',
      'ask the next upstream after this long without an answer',
      String(DEFAULT_DAEMON_INIT.dnsHedgeDelayMs),
    )
    .option('--no-dns-fast-path', 'answer DNS from JavaScript only (no native responder thread)')
    .option(
      '--dns-realtime-priority <n>',
      'run the native DNS responder at SCHED_FIFO priority n (0 = normal scheduling)',
      '0',
    )
    .option('--host-address <ip>', 'address answered for _host_<port> SRV records of ports published on all addresses')
    .option('--no-default-bridge', 'do not create the default bridge network')
    .option(
      '--bridge <name>',
      'device of the default bridge network (created when missing)',
      DEFAULT_DAEMON_INIT.bridge,
    )
    .option('--bip <cidr>', 'gateway address and prefix of the default bridge, e.g. 172.17.0.1/16')
    .option('--debug', 'debug logging (all cnm:* namespaces)')
    .action(
      async (o: {
        root: string
        execRoot: string
        socket?: string
        hostNetns?: string
        tcp?: string
        dns: boolean
        dnsUpstream?: string[]
        resolvConf?: string
        dnsHedgeDelay: string
        dnsFastPath: boolean
        dnsRealtimePriority: string
        hostAddress?: string
        defaultBridge: boolean
        bridge: string
        bip?: string
        debug?: boolean
      }) => {
        const hedge = Number(o.dnsHedgeDelay)
        if (!Number.isInteger(hedge))
          throw new UsageError(
            `--dns-hedge-delay must be a number of milliseconds, got ${JSON.stringify(o.dnsHedgeDelay)}`,
          )
        const rt = Number(o.dnsRealtimePriority)
        if (!Number.isInteger(rt) || rt < 0 || rt > 99)
          throw new UsageError(
            `--dns-realtime-priority must be an integer 0..99, got ${JSON.stringify(o.dnsRealtimePriority)}`,
          )
        const logger = defaultLogger({ enabled: o.debug === true ? 'cnm:*' : (io.env['DEBUG'] ?? '') })
        const init: DaemonInit = {
          root: o.root,
          execRoot: o.execRoot,
          ...(o.socket !== undefined && { socket: o.socket }),
          ...(o.hostNetns !== undefined && { hostNetns: o.hostNetns }),
          ...(o.tcp !== undefined && { tcp: o.tcp }),
          embeddedDns: o.dns,
          ...(o.dnsUpstream !== undefined && { dnsUpstreams: o.dnsUpstream }),
          ...(o.resolvConf !== undefined && { resolvConf: o.resolvConf }),
          dnsHedgeDelayMs: hedge,
          dnsFastPath: o.dnsFastPath,
          dnsRealtimePriority: rt,
          ...(o.hostAddress !== undefined && { hostAddress: o.hostAddress }),
          defaultBridge: o.defaultBridge,
          bridge: o.bridge,
          ...(o.bip !== undefined && { bip: o.bip }),
        }
        const d = new Daemon(init, { logger })
        await d.start()
        io.stderr(
          `cnm daemon ${VERSION} listening on ${d.config.socket}${d.tcpPort === undefined ? '' : ` and tcp port ${d.tcpPort}`} (pid ${process.pid})\n`,
        )
        await new Promise<void>((resolve) => {
          const stop = (sig: NodeJS.Signals): void => {
            io.stderr(`cnm daemon: ${sig}, shutting down\n`)
            process.off('SIGTERM', stop)
            process.off('SIGINT', stop)
            d.stop().then(resolve, (err: unknown) => {
              io.stderr(`cnm daemon: shutdown failed: ${(err as Error).message}\n`)
              resolve()
            })
          }
          process.on('SIGTERM', stop)
          process.on('SIGINT', stop)
        })
      },
    )

  program
    .command('version')
    .description('client and daemon versions')
    .addOption(formatOption())
    .action(async (o: { format: string }) => {
      await withClient(async (c) => {
        const v = await c.version()
        if (o.format === 'json') json({ client: { version: VERSION }, daemon: v })
        else
          out(
            `Client: ${VERSION}\nDaemon: ${v.version} (API ${v.apiVersion}, pid ${v.pid}, drivers ${v.drivers.join(',')}, host netns ${v.hostNetns ?? '-'})`,
          )
      })
    })

  // ---------------------------------------------------------------- network
  const network = program.command('network').description('manage networks')
  network
    .command('create')
    .description('create a network')
    .argument('<name>')
    .option('-d, --driver <driver>', 'network driver', 'bridge')
    .option('--subnet <cidr>', 'subnet (repeatable: one per address family)', collect)
    .option('--gateway <ip>', 'gateway of the subnet (repeatable, in --subnet order)', collect)
    .option('--ip-range <cidr>', 'allocate container addresses from this range (repeatable)', collect)
    .option('--internal', 'no route out of the network')
    .option('--ipv6', 'enable IPv6')
    .option('--attachable', 'attachable (recorded)')
    .option('--ipam-driver <name>', 'IPAM driver')
    .option('-o, --opt <key=value>', 'driver option (repeatable)', collect)
    .option('--label <key=value>', 'label (repeatable)', collect)
    .action(
      async (
        name: string,
        o: {
          driver: string
          subnet?: string[]
          gateway?: string[]
          ipRange?: string[]
          internal?: boolean
          ipv6?: boolean
          attachable?: boolean
          ipamDriver?: string
          opt?: string[]
          label?: string[]
        },
      ) => {
        const subnets = o.subnet ?? []
        if ((o.gateway ?? []).length > subnets.length) throw new UsageError('every --gateway needs a --subnet')
        if ((o.ipRange ?? []).length > subnets.length) throw new UsageError('every --ip-range needs a --subnet')
        const config = subnets.map((subnet, i) => ({
          subnet,
          ...(o.gateway?.[i] !== undefined && { gateway: o.gateway[i] }),
          ...(o.ipRange?.[i] !== undefined && { ipRange: o.ipRange[i] }),
        }))
        const options = keyValues(o.opt, '--opt')
        const labels = keyValues(o.label, '--label')
        const body: CreateNetworkBody = {
          name,
          driver: o.driver,
          ...(o.internal === true && { internal: true }),
          ...(o.ipv6 === true && { enableIPv6: true }),
          ...(o.attachable === true && { attachable: true }),
          ...(options !== undefined && { options }),
          ...(labels !== undefined && { labels }),
          ...(config.length > 0 || o.ipamDriver !== undefined
            ? {
                ipam: {
                  ...(o.ipamDriver !== undefined && { driver: o.ipamDriver }),
                  ...(config.length > 0 && { config }),
                },
              }
            : {}),
        }
        await withClient(async (c) => out((await c.createNetwork(body)).id))
      },
    )
  network
    .command('ls')
    .alias('list')
    .description('list networks')
    .addOption(formatOption())
    .option('-q, --quiet', 'only ids')
    .action(async (o: { format: string; quiet?: boolean }) => {
      await withClient(async (c) => {
        const nets = await c.listNetworks()
        if (o.format === 'json') json(nets)
        else if (o.quiet === true) for (const n of nets) out(shortId(n.id))
        else out(networksTable(nets))
      })
    })
  network
    .command('inspect')
    .description('show networks in detail (JSON by default)')
    .argument('<network...>')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['json', 'table']).default('json'))
    .action(async (refs: string[], o: { format: string }) => {
      await withClient(async (c) => {
        const nets = []
        for (const r of refs) nets.push(await c.inspectNetwork(r))
        if (o.format === 'json') json(nets)
        else for (const n of nets) out(`${networksTable([n])}\n\n${endpointsTable(n.endpoints ?? [])}`)
      })
    })
  network
    .command('rm')
    .alias('remove')
    .description('remove networks')
    .argument('<network...>')
    .action(async (refs: string[]) => {
      await withClient(async (c) => {
        let failed: unknown
        for (const r of refs) {
          try {
            await c.removeNetwork(r)
            out(r)
          } catch (err) {
            failed ??= err
            if (!(err instanceof ApiResponseError)) throw err
            io.stderr(`Error response from daemon: ${err.message} [${err.code}]\n`)
          }
        }
        if (failed !== undefined) code = EXIT.daemonError
      })
    })
  network
    .command('connect')
    .description('connect a sandbox to a network')
    .argument('<network>')
    .argument('<sandbox>')
    .option('--ip <ipv4>', 'IPv4 address')
    .option('--ip6 <ipv6>', 'IPv6 address')
    .option('--alias <name>', 'DNS alias on this network (repeatable)', collect)
    .option('-p, --publish <spec>', 'publish a port: [ip:]hostPort:containerPort[/proto] (repeatable)', collect)
    .addOption(formatOption().default(undefined).choices(['json']))
    .action(
      async (
        net: string,
        sb: string,
        o: { ip?: string; ip6?: string; alias?: string[]; publish?: string[]; format?: string },
      ) => {
        await withClient(async (c) => {
          const ep = await c.connect(net, {
            sandbox: sb,
            ...(o.ip !== undefined && { ipv4Address: o.ip }),
            ...(o.ip6 !== undefined && { ipv6Address: o.ip6 }),
            ...(o.alias !== undefined && { aliases: o.alias }),
            ...(o.publish !== undefined && { portBindings: o.publish }),
          })
          if (o.format === 'json') json(ep)
        })
      },
    )
  network
    .command('disconnect')
    .description('disconnect a sandbox from a network')
    .argument('<network>')
    .argument('<sandbox>')
    .option('--force', 'remove the endpoint even if the driver refuses')
    .action(async (net: string, sb: string, o: { force?: boolean }) => {
      await withClient(async (c) => c.disconnect(net, { sandbox: sb, ...(o.force === true && { force: true }) }))
    })

  // ---------------------------------------------------------------- sandbox
  const sandbox = program.command('sandbox').description('manage sandboxes (network namespaces)')
  sandbox
    .command('create')
    .description('create a sandbox; prints its id')
    .option('--name <name>', 'sandbox name')
    .option('--hostname <name>', 'host name')
    .option('--dns <ip>', 'nameserver (repeatable)', collect)
    .option('--network <network>', 'connect to this network')
    .option('--ip <ipv4>', 'IPv4 address on --network')
    .option('--alias <name>', 'DNS alias on --network (repeatable)', collect)
    .option('-p, --publish <spec>', 'publish a port on --network (repeatable)', collect)
    .option('--label <key=value>', 'label (repeatable)', collect)
    .option('--domainname <name>', 'domain name')
    .option('--dns-search <domain>', 'DNS search domain (repeatable)', collect)
    .option('--dns-option <option>', 'resolv.conf option, e.g. ndots:2 (repeatable)', collect)
    .option('--add-host <name:ip>', 'an /etc/hosts entry (repeatable)', collect)
    .option('--link <name[:alias]>', 'legacy link to a sandbox on the default bridge (repeatable)', collect)
    .addOption(formatOption().default(undefined).choices(['json']))
    .action(
      async (o: {
        name?: string
        hostname?: string
        dns?: string[]
        network?: string
        ip?: string
        alias?: string[]
        publish?: string[]
        label?: string[]
        format?: string
        domainname?: string
        dnsSearch?: string[]
        dnsOption?: string[]
        addHost?: string[]
        link?: string[]
      }) => {
        if (o.network === undefined && (o.ip !== undefined || o.alias !== undefined || o.publish !== undefined)) {
          throw new UsageError('--ip, --alias and --publish need --network')
        }
        const labels = keyValues(o.label, '--label')
        const extraHosts = addHosts(o.addHost)
        await withClient(async (c) => {
          const sb = await c.createSandbox({
            ...(o.name !== undefined && { name: o.name }),
            ...(o.hostname !== undefined && { hostname: o.hostname }),
            ...(o.domainname !== undefined && { domainname: o.domainname }),
            ...(o.dns !== undefined && { dns: o.dns }),
            ...(o.dnsSearch !== undefined && { dnsSearch: o.dnsSearch }),
            ...(o.dnsOption !== undefined && { dnsOptions: o.dnsOption }),
            ...(extraHosts !== undefined && { extraHosts }),
            ...(o.link !== undefined && { links: o.link }),
            ...(labels !== undefined && { labels }),
            ...(o.network !== undefined && {
              networks: [
                {
                  network: o.network,
                  ...(o.ip !== undefined && { ipv4Address: o.ip }),
                  ...(o.alias !== undefined && { aliases: o.alias }),
                  ...(o.publish !== undefined && { portBindings: o.publish }),
                },
              ],
            }),
          })
          if (o.format === 'json') json(sb)
          else out(sb.id)
        })
      },
    )
  sandbox
    .command('ls')
    .alias('list')
    .description('list sandboxes')
    .addOption(formatOption())
    .option('-q, --quiet', 'only ids')
    .action(async (o: { format: string; quiet?: boolean }) => {
      await withClient(async (c) => {
        const sbs = await c.listSandboxes()
        if (o.format === 'json') json(sbs)
        else if (o.quiet === true) for (const s of sbs) out(s.id === '' ? s.name : shortId(s.id))
        else out(sandboxesTable(sbs))
      })
    })
  sandbox
    .command('inspect')
    .description('show sandboxes in detail (JSON by default)')
    .argument('<sandbox...>')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['json', 'table']).default('json'))
    .action(async (refs: string[], o: { format: string }) => {
      await withClient(async (c) => {
        const sbs = []
        for (const r of refs) sbs.push(await c.inspectSandbox(r))
        if (o.format === 'json') json(sbs)
        else for (const s of sbs) out(`${sandboxesTable([s])}\n\n${endpointsTable(s.endpoints)}`)
      })
    })
  sandbox
    .command('rm')
    .alias('remove')
    .description('remove sandboxes (and their endpoints)')
    .argument('<sandbox...>')
    .action(async (refs: string[]) => {
      await withClient(async (c) => {
        let failed = false
        for (const r of refs) {
          try {
            await c.removeSandbox(r)
            out(r)
          } catch (err) {
            if (!(err instanceof ApiResponseError)) throw err
            failed = true
            io.stderr(`Error response from daemon: ${err.message} [${err.code}]\n`)
          }
        }
        if (failed) code = EXIT.daemonError
      })
    })

  const lifecycle = (verb: 'stop' | 'start' | 'restart', what: string): void => {
    sandbox
      .command(verb)
      .description(what)
      .argument('<sandbox...>')
      .action(async (refs: string[]) => {
        await withClient(async (c) => {
          let failed = false
          for (const r of refs) {
            try {
              if (verb !== 'start') await c.stopSandbox(r)
              if (verb !== 'stop') await c.startSandbox(r)
              out(r)
            } catch (err) {
              if (!(err instanceof ApiResponseError)) throw err
              failed = true
              io.stderr(`Error response from daemon: ${err.message} [${err.code}]\n`)
            }
          }
          if (failed) code = EXIT.daemonError
        })
      })
  }
  lifecycle('stop', 'stop sandboxes: endpoints leave, keeping their addresses and host ports')
  lifecycle('start', 'start stopped sandboxes (same addresses and host ports)')
  lifecycle('restart', 'stop then start sandboxes')

  // ---------------------------------------------------------------- run
  program
    .command('run')
    .description('run a command in a new sandbox attached to a network; removed when the command exits')
    .option(
      '--network <network>',
      'network to attach to ("default": the default bridge, "none": loopback only)',
      'default',
    )
    .option('--name <name>', 'sandbox (and endpoint) name')
    .option('--hostname <name>', 'host name')
    .option('--ip <ipv4>', 'IPv4 address')
    .option('--alias <name>', 'DNS alias (repeatable)', collect)
    .option('-p, --publish <spec>', 'publish a port: [ip:]hostPort:containerPort[/proto] (repeatable)', collect)
    .option('--dns <ip>', 'nameserver (repeatable)', collect)
    .option('--dns-search <domain>', 'DNS search domain (repeatable)', collect)
    .option('--dns-option <option>', 'resolv.conf option, e.g. ndots:2 (repeatable)', collect)
    .option('--domainname <name>', 'domain name')
    .option('--add-host <name:ip>', 'an /etc/hosts entry (repeatable)', collect)
    .option('--link <name[:alias]>', 'legacy link to a sandbox on the default bridge (repeatable)', collect)
    .option('--keep', 'when the command ends, stop the sandbox (keeping addresses and ports) instead of removing it')
    .argument('<command...>', 'command and arguments (put them after --)')
    .action(
      async (
        command: string[],
        o: {
          network: string
          name?: string
          hostname?: string
          ip?: string
          alias?: string[]
          publish?: string[]
          dns?: string[]
          dnsSearch?: string[]
          dnsOption?: string[]
          domainname?: string
          addHost?: string[]
          link?: string[]
          keep?: boolean
        },
      ) => {
        const extraHosts = addHosts(o.addHost)
        const c = client()
        try {
          const r = await runInSandbox(c, {
            ...(o.dnsSearch !== undefined && { dnsSearch: o.dnsSearch }),
            ...(o.dnsOption !== undefined && { dnsOptions: o.dnsOption }),
            ...(o.domainname !== undefined && { domainname: o.domainname }),
            ...(extraHosts !== undefined && { extraHosts }),
            ...(o.link !== undefined && { links: o.link }),
            ...(o.keep === true && { keep: true }),
            network: o.network,
            command,
            ...(o.name !== undefined && { name: o.name }),
            ...(o.hostname !== undefined && { hostname: o.hostname }),
            ...(o.ip !== undefined && { ip: o.ip }),
            ...(o.alias !== undefined && { aliases: o.alias }),
            ...(o.publish !== undefined && { publish: o.publish }),
            ...(o.dns !== undefined && { dns: o.dns }),
            onCleanupError: (err) => io.stderr(`cnm run: removing the sandbox failed: ${(err as Error).message}\n`),
          })
          code = r.code
        } catch (err) {
          report(err, io)
          code = err instanceof DaemonUnreachableError ? EXIT.unreachable : EXIT.runFailed
        } finally {
          c.close()
        }
      },
    )

  // ---------------------------------------------------------------- exec, events, info
  program
    .command('exec')
    .description('run a command in a running sandbox (its namespace, hosts, resolv.conf and host name)')
    .argument('<sandbox>')
    .argument('<command...>', 'command and arguments (put them after --)')
    .action(async (ref: string, command: string[]) => {
      const c = client()
      try {
        code = (await execInSandbox(c, ref, { command })).code
      } catch (err) {
        report(err, io)
        code = err instanceof DaemonUnreachableError ? EXIT.unreachable : EXIT.runFailed
      } finally {
        c.close()
      }
    })
  program
    .command('events')
    .description('stream the daemon events as JSON lines until interrupted')
    .action(async () => {
      const c = client()
      const ac = new AbortController()
      const stop = (): void => ac.abort()
      process.once('SIGINT', stop)
      process.once('SIGTERM', stop)
      try {
        for await (const e of c.events({ signal: ac.signal })) out(JSON.stringify(e))
      } finally {
        process.off('SIGINT', stop)
        process.off('SIGTERM', stop)
        c.close()
      }
    })
  program
    .command('info')
    .description('what the daemon holds and what it costs (sandboxes, resolvers, memory)')
    .addOption(formatOption().default('json').choices(['json']))
    .action(async () => {
      await withClient(async (c) => json(await c.info()))
    })

  // ---------------------------------------------------------------- demo
  program
    .command('demo')
    .description('build a network with two sandboxes talking TCP and a published port, show it, remove it all')
    .option('--use-daemon', 'use the running daemon (--host) instead of a private one in a demo-made namespace')
    .action(async (o: { useDaemon?: boolean }) => {
      const host = (program.opts<{ host?: string }>().host ?? io.env['CNM_HOST']) || undefined
      code = await runDemo({
        useDaemon: o.useDaemon === true,
        ...(host !== undefined && { host }),
        out: io.stdout,
        err: io.stderr,
      })
    })

  try {
    await program.parseAsync([...argv], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help')
        return EXIT.ok
      return EXIT.usage
    }
    return report(err, io)
  }
  return code
}
