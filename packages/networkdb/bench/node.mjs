// One networkdb node in its own process, driven by the benchmark over IPC.
// Messages in: {cmd:'join', members}, {cmd:'joinNetwork', nid}, {cmd:'create'|'update'|'delete', table, nid, key, value?},
// {cmd:'createMany', table, nid, count, size}, {cmd:'stats'}, {cmd:'close'}, {cmd:'watch', table}.
// Messages out: {ready, address}, {ok, id, ...}, {event, key, type, at} (at = wall clock in ms, sub-ms precision).
import { createNetworkDB } from '@cnm/networkdb'

const now = () => performance.timeOrigin + performance.now()
const options = JSON.parse(process.argv[2] ?? '{}')
const db = await createNetworkDB({ bindAddr: '127.0.0.1', bindPort: 0, ...options })
const send = (msg) => process.send?.(msg)
const watchers = []

process.on('message', async (msg) => {
  const reply = (extra = {}) => send({ ok: true, id: msg.id, ...extra })
  try {
    switch (msg.cmd) {
      case 'join':
        await db.join(msg.members)
        return reply()
      case 'joinNetwork':
        await db.joinNetwork(msg.nid)
        return reply()
      case 'watch': {
        const watch = db.watch({ table: msg.table })
        watchers.push(watch)
        reply()
        for await (const event of watch) {
          send({ event: true, key: event.key, type: event.type, network: event.networkId, at: now() })
        }
        return
      }
      case 'watchCount': {
        // Reports once when `count` creates of a table have been seen (for big syncs).
        const watch = db.watch({ table: msg.table })
        watchers.push(watch)
        reply()
        let seen = 0
        for await (const event of watch) {
          if (event.type === 'create' && ++seen === msg.count) {
            send({ counted: true, count: seen, at: now() })
            watch.close()
          }
        }
        return
      }
      case 'create':
        db.createEntry(msg.table, msg.nid, msg.key, Buffer.from(msg.value ?? ''))
        return reply({ at: now() })
      case 'update':
        db.updateEntry(msg.table, msg.nid, msg.key, Buffer.from(msg.value ?? ''))
        return reply({ at: now() })
      case 'delete':
        db.deleteEntry(msg.table, msg.nid, msg.key)
        return reply({ at: now() })
      case 'createMany': {
        const value = Buffer.alloc(msg.size, 0x61)
        for (let i = 0; i < msg.count; i++) db.createEntry(msg.table, msg.nid, `${msg.prefix ?? 'k'}${i}`, value)
        return reply({ at: now() })
      }
      case 'count':
        return reply({ count: db.getTableByNetwork(msg.table, msg.nid).size })
      case 'stats':
        return reply({
          stats: JSON.parse(JSON.stringify(db.stats(), (_k, v) => (typeof v === 'bigint' ? v.toString() : v))),
          memory: process.memoryUsage(),
          cpu: process.cpuUsage(),
        })
      case 'close':
        for (const w of watchers) w.close()
        await db.close()
        reply()
        return process.exit(0)
      default:
        return send({ ok: false, id: msg.id, error: `unknown command ${msg.cmd}` })
    }
  } catch (err) {
    send({ ok: false, id: msg.id, error: String(err?.stack ?? err) })
  }
})

send({ ready: true, name: db.nodeId, address: db.address })
