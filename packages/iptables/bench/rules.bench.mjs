// Cost of programming bridge networks and port mappings with @cnm/iptables, in a namespace the
// bench creates and deletes. Needs root. Prints one JSON object as its last stdout line.
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { noopLogger } from '@cnm/types'
import { bridgeFirewall, portAllocator, portMapper } from '@cnm/iptables'

const NETWORKS = 20
const MAPPINGS = 50
const ns = `cnmbench-${randomBytes(3).toString('hex')}`
const sh = (...args) => execFileSync(args[0], args.slice(1), { encoding: 'utf8' })

function stats(samples) {
  const s = [...samples].sort((a, b) => a - b)
  const pick = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))]
  const round = (x) => Math.round(x * 100) / 100
  return {
    n: s.length,
    medianMs: round(pick(0.5)),
    p90Ms: round(pick(0.9)),
    minMs: round(s[0]),
    maxMs: round(s[s.length - 1]),
  }
}

function ruleCount() {
  let n = 0
  for (const bin of ['iptables-save', 'ip6tables-save']) {
    n += sh('ip', 'netns', 'exec', ns, bin)
      .split('\n')
      .filter((l) => l.startsWith('-A ')).length
  }
  return n
}

async function time(fn) {
  const t = performance.now()
  await fn()
  return performance.now() - t
}

async function main() {
  if (process.getuid?.() !== 0) throw new Error('the rules bench needs root (network namespaces)')
  sh('ip', 'netns', 'add', ns)
  try {
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up')
    for (let i = 0; i < NETWORKS; i++) sh('ip', '-n', ns, 'link', 'add', `br-${i}`, 'type', 'bridge')
    const logger = noopLogger()
    // The firewall as the bridge driver makes it (defaults): one resident shell for reads, sysctl and
    // conntrack, and per family one resident iptables-nft-restore acknowledged by nft monitor for writes.
    // Count what each operation costs: processes started (Node spawns + commands the shell runs) and
    // iptables reads/writes.
    const fw = bridgeFirewall({ netns: ns }, { logger })
    const v4 = await fw.iptables(4)
    const v6 = await fw.iptables(6)
    const snapshot = () => {
      const a = v4.stats
      const b = v6?.stats ?? { saves: 0, restores: 0, residentRestores: 0 }
      return {
        processes: fw.stats.launches + fw.stats.commands,
        saves: a.saves + b.saves,
        restores: a.restores + b.restores,
        residentRestores: a.residentRestores + b.residentRestores,
      }
    }
    const costs = {}
    const counted = async (name, fn) => {
      const s0 = snapshot()
      await fn()
      const s1 = snapshot()
      costs[name] = Object.fromEntries(Object.keys(s1).map((k) => [k, s1[k] - s0[k]]))
      return costs[name].processes
    }
    const net = (i) => ({ bridge: `br-${i}`, subnet: `10.${100 + i}.0.0/24`, subnet6: `fd00:${i + 1}::/64` })

    // first network: also creates the chains and jumps (and detects the backend)
    const firstNetworkMs = await time(() => fw.programBridgeNetwork(net(0)))
    const commands = {}
    const program = []
    for (let i = 1; i < NETWORKS; i++) {
      if (i === 1)
        commands.programNetwork = await counted('programNetwork', async () =>
          program.push(await time(() => fw.programBridgeNetwork(net(i)))),
        )
      else program.push(await time(() => fw.programBridgeNetwork(net(i))))
    }
    commands.reprogramNetworkNoop = await counted('reprogramNetworkNoop', () => fw.programBridgeNetwork(net(1)))
    const noop = []
    for (let i = 0; i < NETWORKS; i++) noop.push(await time(() => fw.programBridgeNetwork(net(i))))
    const rulesWithNetworks = ruleCount()

    // per container: nothing unless it publishes ports
    const allocator = portAllocator({ ephemeralRange: { start: 42000, end: 42999 } })
    const mapper = portMapper({ bridge: 'br-0' }, { logger, firewall: fw, allocator })
    const before = ruleCount()
    await mapper.map('no-ports', [])
    const rulesPerContainerNoPorts = ruleCount() - before
    await mapper.release('no-ports')

    const add = []
    const remove = []
    const leave = []
    const rejoin = []
    let rulesPerTcpMapping = 0
    for (let i = 0; i < MAPPINGS; i++) {
      const owner = `ep${i}`
      const binding = [{ proto: 'tcp', containerIp: `10.100.0.${i + 2}`, containerPort: 80 }]
      const r0 = i === 0 ? ruleCount() : 0
      if (i === 0) {
        commands.addMapping = await counted('addMapping', async () =>
          add.push(await time(() => mapper.map(owner, binding))),
        )
        rulesPerTcpMapping = ruleCount() - r0
        commands.unmapForLeave = await counted('unmapForLeave', async () =>
          leave.push(await time(() => mapper.unmap(owner))),
        )
        commands.remapOnRejoin = await counted('remapOnRejoin', async () =>
          rejoin.push(await time(() => mapper.map(owner, binding))),
        )
        continue
      }
      add.push(await time(() => mapper.map(owner, binding)))
      leave.push(await time(() => mapper.unmap(owner)))
      rejoin.push(await time(() => mapper.map(owner, binding)))
    }
    for (let i = 0; i < MAPPINGS; i++) remove.push(await time(() => mapper.release(`ep${i}`)))

    const removeNet = []
    await mapper.map('probe', [{ proto: 'tcp', containerIp: '10.100.0.250', containerPort: 80 }])
    commands.releaseMapping = await counted('releaseMapping', () => mapper.release('probe'))
    for (let i = 0; i < NETWORKS; i++) {
      if (i === 0)
        commands.removeNetwork = await counted('removeNetwork', async () =>
          removeNet.push(await time(() => fw.removeBridgeNetwork(net(i)))),
        )
      else removeNet.push(await time(() => fw.removeBridgeNetwork(net(i))))
    }
    const cleanupMs = await time(() => fw.cleanupAll())
    const leftover = ruleCount()
    await fw.close()

    // reference: the same 100 rules one by one vs one iptables-restore (TOOLING.md's comparison)
    sh('ip', 'netns', 'exec', ns, 'iptables', '-N', 'REF')
    const t1 = performance.now()
    for (let i = 0; i < 100; i++)
      sh('ip', 'netns', 'exec', ns, 'iptables', '-w', '-A', 'REF', '-s', `10.0.${i}.1`, '-j', 'RETURN')
    const oneByOne100Ms = performance.now() - t1
    sh('ip', 'netns', 'exec', ns, 'iptables', '-F', 'REF')
    const script = `*filter\n${Array.from({ length: 100 }, (_, i) => `-A REF -s 10.0.${i}.1 -j RETURN`).join('\n')}\nCOMMIT\n`
    const t2 = performance.now()
    const r = spawnSync('ip', ['netns', 'exec', ns, 'iptables-restore', '--noflush'], { input: script })
    const restore100Ms = performance.now() - t2
    if (r.status !== 0) throw new Error(`restore failed: ${r.stderr}`)

    const round = (x) => Math.round(x * 100) / 100
    const details = {
      backend: await v4.backend(),
      networks: NETWORKS,
      mappings: MAPPINGS,
      firstNetworkMs: round(firstNetworkMs),
      programNetwork: stats(program),
      reprogramNetworkNoop: stats(noop),
      removeNetwork: stats(removeNet),
      addMapping: stats(add),
      unmapForLeave: stats(leave),
      remapOnRejoin: stats(rejoin),
      releaseMapping: stats(remove),
      cleanupAllMs: round(cleanupMs),
      rulesWithNetworks,
      // processes started per operation (Node spawns + execs by the resident shell; 0 = resident writer only)
      processesPerOperation: commands,
      costPerOperation: costs,
      loadAverage1m: (await import('node:os')).loadavg()[0],
      rulesLeftAfterCleanup: leftover,
      reference: { oneByOne100Ms: round(oneByOne100Ms), restore100Ms: round(restore100Ms) },
    }
    const summary = {
      programNetworkMedianMs: details.programNetwork.medianMs,
      removeNetworkMedianMs: details.removeNetwork.medianMs,
      addMappingMedianMs: details.addMapping.medianMs,
      releaseMappingMedianMs: details.releaseMapping.medianMs,
      rulesPerContainerNoPorts,
      rulesPerTcpMapping,
      rulesLeftAfterCleanup: leftover,
      processesPerNetwork: commands.programNetwork,
      processesPerMapping: commands.addMapping,
      processesPerRelease: commands.releaseMapping,
    }
    console.log(JSON.stringify({ summary, ...details }))
  } finally {
    spawnSync('ip', ['netns', 'del', ns])
  }
}

await main()
