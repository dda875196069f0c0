// Controller overhead of the connect path (createEndpoint + join) and its undo (leave + delete), with
// the memory store, the real default IPAM persisted in that store, the in-memory reference driver and a
// no-op OS layer: what the controller itself costs per container attachment.
import { createController } from '@cnm/controller'
import { memoryStore } from '@cnm/datastore'
import { defaultIpam } from '@cnm/ipam'
import { MemoryDriver } from '@cnm/driverapi/testing'
import { noopLogger } from '@cnm/types'

const N = Number(process.env.CNM_BENCH_N ?? 500)
const osLayer = {
  async createSandbox() {},
  async deleteSandbox() {},
  async listSandboxes() {
    return []
  },
  async addInterface() {},
  async removeInterface() {},
  async setGateway() {},
}

async function run(concurrent) {
  const logger = noopLogger()
  const store = memoryStore()
  const ctl = createController()({
    logger,
    store,
    osLayer,
    drivers: { bridge: new MemoryDriver({ type: 'bridge' }) },
    ipams: { default: defaultIpam()({ store, logger }) },
  })
  await ctl.start()
  const net = await ctl.createNetwork({ name: 'n', type: 'bridge', ipam: { v4: [{ pool: '10.0.0.0/16' }] } })
  const sbs = []
  for (let i = 0; i < N; i++) sbs.push(await ctl.createSandbox({ containerId: `c${i}` }))
  const t0 = performance.now()
  let eps
  if (concurrent) eps = await Promise.all(sbs.map((sb, i) => ctl.connect(sb.id, net.id, { name: `c${i}` })))
  else {
    eps = []
    for (const [i, sb] of sbs.entries()) eps.push(await ctl.connect(sb.id, net.id, { name: `c${i}` }))
  }
  const t1 = performance.now()
  const h = await ctl.stop().then(async () => {
    // restart on the same store: recovery cost for N endpoints and sandboxes
    const ctl2 = createController()({
      logger,
      store,
      osLayer: { ...osLayer, listSandboxes: async () => sbs.map((s) => s.key) },
      drivers: { bridge: new MemoryDriver({ type: 'bridge' }) },
      ipams: { default: defaultIpam()({ store, logger }) },
    })
    const r0 = performance.now()
    await ctl2.start()
    const r1 = performance.now()
    return { ctl2, recoverMs: r1 - r0 }
  })
  const t2 = performance.now()
  if (concurrent) await Promise.all(eps.map((e, i) => h.ctl2.disconnect(sbs[i].id, e.id)))
  else for (const [i, e] of eps.entries()) await h.ctl2.disconnect(sbs[i].id, e.id)
  const t3 = performance.now()
  const unique = new Set(eps.map((e) => `${e.address.ip.value}`)).size
  await h.ctl2.stop()
  return {
    connects: N,
    uniqueAddresses: unique,
    connectMsPerOp: (t1 - t0) / N,
    connectOpsPerSec: N / ((t1 - t0) / 1000),
    disconnectMsPerOp: (t3 - t2) / N,
    recoverMs: h.recoverMs,
  }
}

const sequential = await run(false)
const concurrent = await run(true)
console.log(
  JSON.stringify({
    summary: {
      connectMsPerOp: +sequential.connectMsPerOp.toFixed(3),
      concurrentConnectOpsPerSec: Math.round(concurrent.connectOpsPerSec),
      disconnectMsPerOp: +sequential.disconnectMsPerOp.toFixed(3),
      recoverMsFor500: +sequential.recoverMs.toFixed(1),
    },
    sequential,
    concurrent,
  }),
)
