#!/usr/bin/env node
// Allocator demonstration: opens the embedded store in a temporary directory, requests the first
// default pool and a /24 pool through the built-in IPAM, fills the /24, shows that a restart
// (a new IPAM on the same store) sees every address, releases everything and cleans up.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { lmdbStore } from '@cnm/datastore'
import { defaultIpam } from '@cnm/ipam'
import { Idm } from '@cnm/idm'
import { formatCidr, formatPrefix, noopLogger } from '@cnm/types'

const dir = mkdtempSync(join(tmpdir(), 'cnm-demo-'))
const say = (s) => process.stdout.write(s + '\n')
try {
  const store = lmdbStore({ path: join(dir, 'local-kv.db') })
  const ipam = defaultIpam()({ store, logger: noopLogger() })
  const { local } = await ipam.getDefaultAddressSpaces()

  const auto = await ipam.requestPool({ addressSpace: local })
  say(`default pool for a new network: ${formatPrefix(auto.pool)} (id ${auto.poolId})`)

  const pool = await ipam.requestPool({ addressSpace: local, pool: '10.99.0.0/24' })
  const gw = await ipam.requestAddress(pool.poolId, { options: { RequestAddressType: 'com.docker.network.gateway' } })
  say(`pool ${formatPrefix(pool.pool)}: gateway ${formatCidr(gw.address)}`)
  const t0 = performance.now()
  const addrs = []
  for (;;) {
    try {
      addrs.push((await ipam.requestAddress(pool.poolId)).address)
    } catch (err) {
      say(`after ${addrs.length} more addresses: ${err.code} (${err.message})`)
      break
    }
  }
  const ms = performance.now() - t0
  say(
    `first ${formatCidr(addrs[0])}, last ${formatCidr(addrs.at(-1))}; ${((ms * 1000) / addrs.length).toFixed(1)} µs per durable allocation`,
  )

  const again = defaultIpam()({ store, logger: noopLogger() })
  try {
    await again.requestAddress(pool.poolId, { preferred: '10.99.0.77' })
  } catch (err) {
    say(`a second IPAM on the same store sees 10.99.0.77 taken: ${err.code}`)
  }

  for (const a of addrs) await ipam.releaseAddress(pool.poolId, a.ip)
  await ipam.releaseAddress(pool.poolId, gw.address.ip)
  const reused = await again.requestAddress(pool.poolId)
  say(`released all; the next request gets ${formatCidr(reused.address)}`)
  await again.releaseAddress(pool.poolId, reused.address.ip)
  await ipam.releasePool(pool.poolId)
  await ipam.releasePool(auto.poolId)

  const vni = await Idm.create({ id: 'vxlan-id', start: 4096n, end: 16777215n, store })
  const ids = [await vni.getId(true), await vni.getId(true), await vni.getId(true)]
  say(`idm vxlan-id: serial ids ${ids.join(', ')}`)
  for (const id of ids) await vni.release(id)
  await store.close()
  say('done: every address, pool and id released')
} finally {
  rmSync(dir, { recursive: true, force: true })
}
