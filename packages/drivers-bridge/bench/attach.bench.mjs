// Per-container attach cost of the bridge driver on the real kernel, in a namespace the bench owns that
// plays the host: endpoint create (veth pair on the bridge) + join into a sandbox (driver join, then the
// controller's part: interface moved in with its address and gateway, via @cnm/osl) + one published port
// (programExternalConnectivity). Reports median/p95 per attach for N = 1, 10, 100 containers on one
// network, processes started by Node per attach, commands the firewall's resident shell ran per attach,
// and firewall rules added per container.
// Needs root. Run: node tools/bench/run.mjs drivers-bridge (after building the packages).
import { randomBytes } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { addressAt, formatCidr, formatIp, noopLogger, parsePrefix } from '@cnm/types'
import { EndpointInterface, JoinInfoRecorder, generateId } from '@cnm/driverapi'
import { memoryStore } from '@cnm/datastore'
import { osl as makeOsl } from '@cnm/osl'
import { BridgeFirewall } from '@cnm/iptables'
import { bridgeDriver } from '@cnm/drivers-bridge'

const SIZES = [1, 10, 100]
const tag = `cnmbr${randomBytes(2).toString('hex')}`
const logger = noopLogger()

function stats(xs) {
  const s = [...xs].sort((a, b) => a - b)
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]
  const r = (x) => Math.round(x * 100) / 100
  return { n: s.length, medianMs: r(at(0.5)), p95Ms: r(at(0.95)), minMs: r(s[0]), maxMs: r(s[s.length - 1]) }
}

async function countRules(fw) {
  const ipt = await fw.iptables(4)
  const text = await ipt.save()
  return text.split('\n').filter((l) => l.startsWith('-A ')).length
}

async function runSize(n, round) {
  const admin = makeOsl()({ logger })
  const hostKey = `${tag}-h${round}`
  await admin.createSandbox(hostKey, { exist: 'error' })
  const o = makeOsl({ hostNetns: hostKey })({ logger })
  // the firewall as the driver makes it by default (resident shell + resident iptables writer); injected
  // here only to read its process counters
  const firewall = new BridgeFirewall({ netns: hostKey, ipv6: false }, { logger })
  const sandboxes = []
  try {
    const driver = bridgeDriver({ hostNetns: hostKey, enableIp6tables: false })({
      logger,
      store: memoryStore(),
      osl: o,
      firewall,
    })
    await driver.restore([])
    const nid = generateId()
    const pool = parsePrefix('198.18.0.0/16')
    await driver.createNetwork(
      nid,
      {
        name: 'bench',
        driverOptions: {},
        labels: {},
        enableIPv6: false,
        internal: false,
        attachable: false,
        ingress: false,
      },
      [{ addressSpace: 'LocalDefault', pool, gateway: { ip: addressAt(pool, 1n), prefix: pool }, auxAddresses: {} }],
      [],
    )
    for (let i = 0; i < n; i++) sandboxes.push(await o.createSandbox(`${tag}-s${round}-${i}`))
    const rulesBefore = await countRules(firewall)
    const times = []
    const launches = []
    const oslLaunches = []
    const phases = { createEndpoint: [], joinAndMove: [], publish: [] }
    const iptLaunches = []
    const v4 = await firewall.iptables(4)
    const saves0 = v4.stats.saves
    const restores0 = v4.stats.restores
    const residentRestores0 = v4.stats.residentRestores
    const publish = {
      labels: {},
      exposedPorts: [{ proto: 'tcp', port: 80 }],
      portBindings: [{ proto: 'tcp', containerPort: 80, hostPort: 0, hostPortEnd: 0 }],
    }
    for (let i = 0; i < n; i++) {
      const sb = sandboxes[i]
      const address = { ip: addressAt(pool, BigInt(i + 2)), prefix: pool }
      const eid = generateId()
      const l0 = o.stats.launches + firewall.stats.launches
      const o0 = o.stats.launches
      const i0 = firewall.stats.commands
      const t0 = performance.now()
      await driver.createEndpoint(nid, eid, new EndpointInterface({ address }), {
        name: `c${i}`,
        driverOptions: {},
        exposedPorts: [],
        portBindings: [],
        dnsServers: [],
      })
      const t1 = performance.now()
      const ji = new JoinInfoRecorder()
      await driver.join(nid, eid, sb.path, ji, publish)
      const r = ji.result()
      const tx = o.transaction()
      const plan = tx.on(sb)
      plan.addInterface({
        srcName: r.interfaceName.srcName,
        dstPrefix: r.interfaceName.dstPrefix,
        addresses: [formatCidr(address)],
      })
      plan.setGateway(formatIp(r.gateway))
      await tx.commit()
      const t2 = performance.now()
      await driver.programExternalConnectivity(nid, eid, publish)
      const t3 = performance.now()
      times.push(t3 - t0)
      phases.createEndpoint.push(t1 - t0)
      phases.joinAndMove.push(t2 - t1)
      phases.publish.push(t3 - t2)
      launches.push(o.stats.launches + firewall.stats.launches - l0)
      oslLaunches.push(o.stats.launches - o0)
      iptLaunches.push(firewall.stats.commands - i0)
    }
    const savesPerAttach = (v4.stats.saves - saves0) / n
    const restoresPerAttach = (v4.stats.restores - restores0) / n
    const residentRestoresPerAttach = (v4.stats.residentRestores - residentRestores0) / n
    const rulesAfter = await countRules(firewall)
    return {
      containers: n,
      attach: stats(times),
      phasesMedianMs: Object.fromEntries(Object.entries(phases).map(([k, v]) => [k, stats(v).medianMs])),
      // processes Node started (osl helpers, the firewall's resident shell) per attach
      launchesPerAttach: launches.reduce((a, b) => a + b, 0) / n,
      oslLaunchesPerAttach: oslLaunches.reduce((a, b) => a + b, 0) / n,
      // commands the firewall's resident shell ran per attach (each one exec of a small process)
      firewallCommandsPerAttach: iptLaunches.reduce((a, b) => a + b, 0) / n,
      iptablesSavesPerAttach: savesPerAttach,
      iptablesRestoresPerAttach: restoresPerAttach,
      // of those restores, the ones written to the resident iptables-nft-restore (no process at all)
      residentRestoresPerAttach,
      rulesPerContainer: (rulesAfter - rulesBefore) / n,
      rulesForNetwork: rulesBefore,
    }
  } finally {
    for (const sb of sandboxes) await sb.destroy().catch(() => undefined)
    await firewall.close()
    await o.close()
    // Deleting the namespace takes its bridge, veths and firewall with it.
    await admin.deleteSandbox(hostKey).catch(() => undefined)
    await admin.close()
  }
}

const results = []
let round = 0
for (const n of SIZES) {
  const r = await runSize(n, round++)
  process.stderr.write(
    `N=${n}: median ${r.attach.medianMs} ms, p95 ${r.attach.p95Ms} ms, ${r.launchesPerAttach} launches, ${r.rulesPerContainer} rules/container\n`,
  )
  results.push(r)
}
const byN = (f) => Object.fromEntries(results.map((r) => [String(r.containers), f(r)]))
console.log(
  JSON.stringify({
    summary: {
      attachMedianMs: byN((r) => r.attach.medianMs),
      attachP95Ms: byN((r) => r.attach.p95Ms),
      launchesPerAttach: byN((r) => r.launchesPerAttach),
      firewallCommandsPerAttach: byN((r) => r.firewallCommandsPerAttach),
      publishMedianMs: byN((r) => r.phasesMedianMs.publish),
      firewallRulesPerContainer: byN((r) => r.rulesPerContainer),
    },
    what: 'endpoint create + join (driver join + osl move with address and gateway) + publish one TCP port, per container, on one bridge network in a bench-owned host namespace',
    results,
  }),
)
