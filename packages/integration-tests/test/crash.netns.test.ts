import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { netnsAvailable } from '@cnm/test-utils'
import { ApiResponseError, type CnmClient, type SandboxView } from '@cnm/cli'
import { CnmHarness } from '../src/index.js'

/** Kernel and daemon state must agree: one interface per endpoint, one namespace file per sandbox, one veth per endpoint. */
async function checkConsistent(h: CnmHarness, c: CnmClient): Promise<SandboxView[]> {
  const sbs = await c.listSandboxes()
  const eps = sbs.flatMap((s) => s.endpoints)
  const addrs = eps.map((e) => e.ipv4Address)
  expect(new Set(addrs).size, 'an address is allocated twice').toBe(addrs.length)
  expect(h.netnsFiles()).toEqual(sbs.map((s) => s.key.split('/').pop()).sort())
  const links = (await h.inHost('ip', ['-o', 'link'])).stdout
  expect((await h.hostVeths()).length, `orphan veths in the host namespace:\n${links}\n${h.daemonLog}`).toBe(eps.length)
  for (const s of sbs) {
    const r = await h.inSandbox(s.key, 'ip', ['-4', '-o', 'addr', 'show', 'scope', 'global'])
    const inKernel = [...r.stdout.matchAll(/inet (\S+)/g)].map((m) => m[1])
    expect(inKernel).toEqual(s.endpoints.map((e) => e.ipv4Address))
  }
  const net = await c.inspectNetwork('crashnet')
  expect(net.endpoints?.length).toBe(eps.length)
  return sbs
}

describe.skipIf(!netnsAvailable())('cnm daemon killed with SIGKILL during 50 concurrent connects', () => {
  let h: CnmHarness
  beforeEach(async () => {
    h = new CnmHarness()
    await h.start()
  })
  afterEach(async () => {
    await h.cleanup()
  })

  it('restarts with no address allocated twice and nothing orphaned', async () => {
    const c = h.client()
    // a /26: 62 hosts, the gateway takes one, so 61 endpoints fit
    await c.createNetwork({ name: 'crashnet', ipam: { config: [{ subnet: '10.124.0.0/26' }] } })
    const names = Array.from({ length: 50 }, (_, i) => `c${i}`)
    for (const name of names) await c.createSandbox({ name })

    let done = 0
    const killed = new Promise<void>((resolve) => {
      const attempts = names.map((name) =>
        c.connect('crashnet', { sandbox: name }).then(
          () => {
            done++
            if (done === 10) {
              // in the middle: 10 answered, the rest in flight
              h.daemon?.kill('SIGKILL')
              resolve()
            }
          },
          () => undefined,
        ),
      )
      void Promise.all(attempts).then(() => resolve())
    })
    await killed
    await h.stopDaemon('SIGKILL')
    expect(done).toBeGreaterThanOrEqual(10)
    expect(done).toBeLessThan(50)

    await h.startDaemon()
    const c2 = h.client()
    const after = await checkConsistent(h, c2)
    const connected = after.filter((s) => s.endpoints.length > 0).length
    expect(connected).toBeGreaterThanOrEqual(10)

    // every address that is not in use can still be handed out: connect the rest, then fill the /26
    for (const s of after) if (s.endpoints.length === 0) await c2.connect('crashnet', { sandbox: s.name })
    for (let i = 0; i < 11; i++) await c2.createSandbox({ name: `extra${i}`, networks: [{ network: 'crashnet' }] })
    const full = await checkConsistent(h, c2)
    expect(full.flatMap((s) => s.endpoints)).toHaveLength(61)
    const err = await c2
      .createSandbox({ name: 'one-too-many', networks: [{ network: 'crashnet' }] })
      .catch((e: unknown) => e)
    expect(err).toBeInstanceOf(ApiResponseError)
    expect((err as ApiResponseError).status).toBe(503)
    expect((await c2.listSandboxes()).map((s) => s.name)).not.toContain('one-too-many')

    // and everything goes away cleanly
    for (const s of full) await c2.removeSandbox(s.id)
    await c2.removeNetwork('crashnet')
    expect(h.netnsFiles()).toEqual([])
    expect(await h.hostVeths()).toEqual([])
    // only the default bridge network remains (the daemon makes it at start and never removes it)
    expect((await c2.listNetworks()).map((n) => n.name)).toEqual(['bridge'])
  })
})
