import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isCnmError } from '@cnm/types'
import { lmdbStore } from '@cnm/datastore'

const store = lmdbStore({ path: mkdtempSync(join(tmpdir(), 'cnm-store-')) })
const enc = new TextEncoder()
const dec = new TextDecoder()

// Watch a directory; the subscription exists as soon as watch() returns.
const ac = new AbortController()
const watching = (async () => {
  try {
    for await (const ev of store.watch('demo/net/', { prefix: true, signal: ac.signal })) {
      console.log('event', ev.type, ev.key, ev.index)
    }
  } catch (err) {
    if (!isCnmError(err, 'ERR_ABORTED')) throw err
  }
})()

// Create-only, then a compare-and-swap read-modify-write with retry.
await store.create('demo/net/n1/', enc.encode(JSON.stringify({ name: 'n1', endpoints: 0 })))
async function addEndpoint(key) {
  for (;;) {
    const cur = await store.get(key)
    const net = JSON.parse(dec.decode(cur.value))
    net.endpoints++
    try {
      return await store.update(key, enc.encode(JSON.stringify(net)), cur.index)
    } catch (err) {
      if (!isCnmError(err, 'ERR_STORE_KEY_MODIFIED')) throw err // someone else won: re-read, retry
    }
  }
}
await Promise.all([addEndpoint('demo/net/n1/'), addEndpoint('demo/net/n1/')])

for (const { key, value, index } of await store.list('demo/net/')) {
  console.log(key, dec.decode(value), index) // demo/net/n1/ {"name":"n1","endpoints":2} 3n
}

ac.abort()
await watching
await store.close()
