// Time to create a sandbox and attach one veth (bridge port on the host side, address and default route
// inside), per container, for 1, 10 and 100 sandboxes in a row. The "host" is a namespace this bench owns.
// Modes: `default` (default options: the veth born inside the sandbox, everything over the addon's rtnetlink:
// 0 launches), `ipBatch` (nativeNetlink and residentHost off: one `ip -batch -` per side, 2 launches),
// `move` (libnetwork's shape: veth made in the host, one end moved in; default options, so the cost is the
// kernel's namespace move) and `naive` (one `ip` launch per command, 10 per attach).
// Prints one JSON object as its last stdout line. Needs root and a built @cnm/osl.
import { execFile } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { loadavg } from 'node:os'
import { promisify } from 'node:util'
import { osl } from '@cnm/osl'

const run = promisify(execFile)
const tag = `cnmb${randomBytes(2).toString('hex')}`
const hostNs = `${tag}-host`
const SIZES = [1, 10, 100]
const ROUNDS = { 1: 30, 10: 3, 100: 1 }
const WARMUP = 5

const pct = (xs, p) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]
}
const r2 = (x) => Math.round(x * 100) / 100

let seq = 0
const addr = (i) => `10.200.${1 + (i >> 8)}.${i & 255}/16`
const mac = (i) =>
  `02:42:0a:c8:${(1 + (i >> 8)).toString(16).padStart(2, '0')}:${(i & 255).toString(16).padStart(2, '0')}`

/** The fast path: the veth's sandbox end is born inside the sandbox (no namespace move). */
async function attachOsl(o, i) {
  const id = `${tag}${(seq++).toString(36)}`
  const t0 = performance.now()
  const sb = await o.createSandbox(`${tag}-s${i}`)
  const tx = o.transaction()
  tx.on(sb).addInterface({ veth: { hostName: `${id}h`, master: 'br0' }, addresses: [addr(i)], mac: mac(i), mtu: 1500 })
  tx.on(sb).setGateway('10.200.0.1')
  await tx.commit()
  return performance.now() - t0
}

/** libnetwork's shape: veth pair created in the host, then its end moved into the sandbox. */
async function attachMove(o, i) {
  const id = `${tag}${(seq++).toString(36)}`
  const t0 = performance.now()
  const sb = await o.createSandbox(`${tag}-s${i}`)
  const tx = o.transaction()
  tx.on(o.host).createVeth({ name: `${id}h`, peerName: `${id}p`, master: 'br0', mtu: 1500 })
  tx.on(sb).addInterface({ srcName: `${id}p`, addresses: [addr(i)], mac: mac(i), mtu: 1500 })
  tx.on(sb).setGateway('10.200.0.1')
  await tx.commit()
  return performance.now() - t0
}

async function attachNaive(o, i) {
  const id = `${tag}${(seq++).toString(36)}`
  const key = `${tag}-s${i}`
  const ip = async (...args) => await run('ip', args)
  const t0 = performance.now()
  await ip('netns', 'add', key)
  await ip('-n', key, 'link', 'set', 'lo', 'up')
  await ip('-n', hostNs, 'link', 'add', `${id}h`, 'type', 'veth', 'peer', 'name', `${id}p`)
  await ip('-n', hostNs, 'link', 'set', `${id}h`, 'master', 'br0')
  await ip('-n', hostNs, 'link', 'set', `${id}h`, 'up')
  await ip('-n', hostNs, 'link', 'set', `${id}p`, 'netns', key)
  await ip('-n', key, 'link', 'set', `${id}p`, 'name', 'eth0')
  await ip('-n', key, 'addr', 'add', addr(i), 'dev', 'eth0')
  await ip('-n', key, 'link', 'set', 'eth0', 'up')
  await ip('-n', key, 'route', 'add', 'default', 'via', '10.200.0.1')
  return performance.now() - t0
}
const NAIVE_LAUNCHES = 10

// Deleted namespaces are torn down by a kernel worker that holds the rtnl lock for a while; let it finish
// before the next timed round so a round measures attaching, not the previous round's teardown.
const SETTLE_MS = 1000
async function cleanup(o) {
  await o.gc({ prefix: `${tag}-s`, linkPrefix: tag })
  await new Promise((r) => setTimeout(r, SETTLE_MS))
}

async function measure(mode) {
  const o = osl(
    mode === 'ipBatch' ? { hostNetns: hostNs, nativeNetlink: false, residentHost: false } : { hostNetns: hostNs },
  )()
  const attach = mode === 'naive' ? attachNaive : mode === 'move' ? attachMove : attachOsl
  for (let i = 0; i < WARMUP; i++) await attach(o, i)
  await cleanup(o)
  const result = {}
  for (const n of SIZES) {
    const samples = []
    let launches = 0
    let native = 0
    for (let r = 0; r < ROUNDS[n]; r++) {
      const l0 = o.stats.launches
      const n0 = o.stats.nativeCalls
      for (let i = 0; i < n; i++) samples.push(await attach(o, i))
      launches += o.stats.launches - l0
      native += o.stats.nativeCalls - n0
      await cleanup(o) // not timed
    }
    result[n] = {
      attaches: samples.length,
      medianMs: r2(pct(samples, 50)),
      p95Ms: r2(pct(samples, 95)),
      maxMs: r2(Math.max(...samples)),
      processesPerAttach: mode === 'naive' ? NAIVE_LAUNCHES : r2(launches / samples.length),
      nativeCallsPerAttach: r2(native / samples.length),
    }
  }
  await o.close()
  return result
}

async function main() {
  await run('ip', ['netns', 'add', hostNs])
  try {
    const o = osl({ hostNetns: hostNs })()
    await o.host.setLinkUp('lo')
    await o.host.createBridge({ name: 'br0', addresses: ['10.200.0.1/16'] })
    await o.close()
    const modes = {}
    for (const mode of ['default', 'ipBatch', 'move', 'naive']) {
      modes[mode] = await measure(mode)
      process.stderr.write(`${mode}: ${JSON.stringify(modes[mode])}\n`)
    }
    const d = modes.default
    const b = modes.ipBatch
    const summary = {
      medianMsPerAttach_1: d[1].medianMs,
      medianMsPerAttach_10: d[10].medianMs,
      medianMsPerAttach_100: d[100].medianMs,
      p95MsPerAttach_100: d[100].p95Ms,
      processesPerAttach: d[100].processesPerAttach,
      flat: d[100].p95Ms <= 1.5 * d[1].medianMs,
      ipBatchMedianMs_1: b[1].medianMs,
      ipBatchMedianMs_100: b[100].medianMs,
      ipBatchP95Ms_100: b[100].p95Ms,
      ipBatchProcessesPerAttach: b[100].processesPerAttach,
      moveMedianMs_100: modes.move[100].medianMs,
      naiveMedianMs_100: modes.naive[100].medianMs,
      naiveProcessesPerAttach: NAIVE_LAUNCHES,
      targetMedianMs: 15,
      loadavg1m: r2(loadavg()[0]),
    }
    console.log(JSON.stringify({ summary, modes, sizes: SIZES, rounds: ROUNDS, warmup: WARMUP, settleMs: SETTLE_MS }))
  } finally {
    const o = osl({ hostNetns: hostNs })()
    await o.gc({ prefix: `${tag}-s`, linkPrefix: tag }).catch(() => undefined)
    await o.close()
    await run('ip', ['netns', 'del', hostNs]).catch(() => undefined)
  }
}

await main()
