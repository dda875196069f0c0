#!/usr/bin/env node
// memory.bench.mjs — memory per sandbox when one process serves many sandboxes' resolvers.
// N resolvers (UDP + TCP listeners on 127.0.0.1, as in a daemon where each adopts two descriptors),
// each with its own SandboxRecords view over one shared NetworkRecords table (RECORDS names).
// Phases, each measured after a full GC: idle (started), after one local answer each (cache entry),
// after one forwarded query each (forwarding socket open, to an in-process stub upstream), after
// stop (leak check). Figures are deltas from the baseline divided by N.
// Env: N=500 RECORDS=50. Prints one JSON object as its last stdout line.
import dgram from 'node:dgram'
import v8 from 'node:v8'
import vm from 'node:vm'
import { NetworkRecords, Resolver, SandboxRecords } from '@cnm/resolver'

v8.setFlagsFromString('--expose-gc')
const gc = vm.runInNewContext('gc')
const N = Number(process.env.N ?? 500)
const RECORDS = Number(process.env.RECORDS ?? 50)
const logger = {
  forComponent: () =>
    Object.assign(() => undefined, {
      error: () => undefined,
      trace: () => undefined,
      enabled: false,
      child() {
        return this
      },
    }),
}

async function snapshot() {
  for (let i = 0; i < 4; i++) {
    gc()
    await new Promise((r) => setImmediate(r))
  }
  const m = process.memoryUsage()
  return { heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, rss: m.rss }
}
const per = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [`${k}Bytes`, Math.round((a[k] - b[k]) / N)]))

// stub upstream: answers every query with its header flipped to a NOERROR response
const stub = dgram.createSocket('udp4')
stub.on('message', (m, r) => {
  m[2] |= 0x80
  m[3] = 0x80
  stub.send(m, r.port, r.address)
})
await new Promise((r) => stub.bind(0, '127.0.0.1', r))
const upstreams = [{ address: '127.0.0.1', port: stub.address().port }]

const network = new NetworkRecords('net1')
for (let i = 0; i < RECORDS; i++) network.addName(`c${i}`, `10.1.${i >> 8}.${i & 255}`)

const client = dgram.createSocket('udp4')
await new Promise((r) => client.bind(0, '127.0.0.1', r))
const waiting = new Map()
client.on('message', (m) => waiting.get(m.readUInt16BE(0))?.())
function ask(port, name, id) {
  const labels = name.split('.').map((l) => Buffer.concat([Buffer.from([l.length]), Buffer.from(l)]))
  const q = Buffer.concat([
    Buffer.from([id >> 8, id & 255, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0]),
    ...labels,
    Buffer.from([0, 0, 1, 0, 1]),
  ])
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no reply from ${port} for ${name}`)), 3000)
    waiting.set(id, () => {
      clearTimeout(t)
      waiting.delete(id)
      resolve()
    })
    client.send(q, port, '127.0.0.1')
  })
}

const base = await snapshot()
const resolvers = []
async function cycle() {
  // a full create/answer/forward/stop cycle; repeated to tell leaks from one-time growth
  const rs = []
  for (let i = 0; i < N; i++) {
    const r = new Resolver(
      { upstreams },
      {
        logger,
        records: new SandboxRecords([{ network }]),
        listen: { udp: { address: '127.0.0.1', port: 0 }, tcp: { address: '127.0.0.1', port: 0 } },
      },
    )
    await r.start()
    rs.push(r)
  }
  for (let i = 0; i < N; i += 50) {
    await Promise.all(
      rs.slice(i, i + 50).map((r, k) => ask(r.addresses().udp.port, `x${i + k}.example`, 30000 + i + k)),
    )
  }
  for (const r of rs) await r.stop()
}
const t0 = performance.now()
for (let i = 0; i < N; i++) {
  const r = new Resolver(
    { upstreams },
    {
      logger,
      records: new SandboxRecords([{ network }]),
      listen: { udp: { address: '127.0.0.1', port: 0 }, tcp: { address: '127.0.0.1', port: 0 } },
    },
  )
  await r.start()
  resolvers.push(r)
}
const startMs = performance.now() - t0
const idle = await snapshot()
for (let i = 0; i < N; i += 50) {
  await Promise.all(
    resolvers.slice(i, i + 50).map((r, k) => ask(r.addresses().udp.port, `c${(i + k) % RECORDS}`, i + k)),
  )
}
const answered = await snapshot()
for (let i = 0; i < N; i += 50) {
  await Promise.all(
    resolvers.slice(i, i + 50).map((r, k) => ask(r.addresses().udp.port, `x${i + k}.example`, 20000 + i + k)),
  )
}
const forwarded = await snapshot()
const t1 = performance.now()
for (const r of resolvers) await r.stop()
const stopMs = performance.now() - t1
resolvers.length = 0
const stopped = await snapshot()
const cycles = []
for (let c = 0; c < 4; c++) {
  await cycle()
  cycles.push(await snapshot())
}
client.close()
stub.close()

const summary = {
  sandboxes: N,
  idleHeapBytesPerSandbox: per(idle, base).heapUsedBytes,
  idleRssBytesPerSandbox: per(idle, base).rssBytes,
  afterLocalAnswerHeapBytesPerSandbox: per(answered, base).heapUsedBytes,
  afterForwardHeapBytesPerSandbox: per(forwarded, base).heapUsedBytes,
  afterForwardRssBytesPerSandbox: per(forwarded, base).rssBytes,
  heapLeftAfterStopBytesPerSandbox: per(stopped, base).heapUsedBytes,
  // heap (KiB) after each of 4 more full create/forward/stop cycles of N sandboxes: a leak would grow
  // by N x leak per cycle; V8 noise moves it by a few hundred KiB either way
  heapKiBAfterEachCycle: cycles.map((c) => Math.round(c.heapUsed / 1024)),
  startMsPerSandbox: Math.round((startMs / N) * 1000) / 1000,
  stopMsPerSandbox: Math.round((stopMs / N) * 1000) / 1000,
}
console.log(
  JSON.stringify({
    summary,
    perSandbox: {
      idle: per(idle, base),
      answered: per(answered, base),
      forwarded: per(forwarded, base),
      stopped: per(stopped, base),
    },
    absolute: { base, idle, answered, forwarded, stopped, cycles },
    records: RECORDS,
  }),
)
