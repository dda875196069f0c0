import { afterEach, describe, expect, it } from 'vitest'
import { JoinError } from '../src/index.js'
import type { Memberlist } from '../src/index.js'
import { addrOf, aliveNames, shutdownAll, startNode, stateOf, waitFor } from './helpers.js'
import type { TestNode } from './helpers.js'

const K1 = new Uint8Array(16).map((_, i) => i)
const K2 = new Uint8Array(32).map((_, i) => 100 + i)
const WRONG = new Uint8Array(16).fill(0xee)

const nodes: Memberlist[] = []
afterEach(async () => {
  await shutdownAll(nodes)
})

async function keyedCluster(n: number, prefix: string, keys: Uint8Array[]): Promise<TestNode[]> {
  const out: TestNode[] = []
  for (let i = 0; i < n; i++) out.push(await startNode(`${prefix}${i}`, nodes, { keys }))
  for (let i = 1; i < n; i++) await out[i]!.ml.join([addrOf(out[0]!.ml)])
  await waitFor(() => out.every((t) => aliveNames(t.ml).length === n), 5000, `${n} alive everywhere`)
  return out
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array | undefined): string => new TextDecoder().decode(b)

describe('encrypted cluster', () => {
  it('works with keys: membership and user messages', async () => {
    const [a, b, c] = await keyedCluster(3, 'e', [K1])
    a!.ml.sendBestEffort(b!.ml.address, enc('udp secret'))
    await a!.ml.sendReliable(c!.ml.address, enc('tcp secret'))
    await waitFor(() => b!.rec.messages.length === 1 && c!.rec.messages.length === 1, 3000, 'messages')
    expect(dec(b!.rec.messages[0])).toBe('udp secret')
    expect(dec(c!.rec.messages[0])).toBe('tcp secret')
    for (const t of [a!, b!, c!]) expect(t.ml.stats().dropped).toBe(0)
  })

  it('a node without keys or with the wrong key cannot join', async () => {
    const [a] = await keyedCluster(2, 'w', [K1])
    const plain = await startNode('plain', nodes)
    await expect(plain.ml.join([addrOf(a!.ml)])).rejects.toBeInstanceOf(JoinError)
    const wrong = await startNode('wrong', nodes, { keys: [WRONG] })
    const err = await wrong.ml.join([addrOf(a!.ml)]).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JoinError)
    // Their gossip and pings are dropped too: give them time, they never show up.
    await new Promise((r) => setTimeout(r, 600))
    expect(
      a!.ml
        .nodes()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['w0', 'w1'])
    expect(a!.ml.stats().dropped).toBeGreaterThan(0)
  })

  it('key rotation at runtime (add everywhere, use everywhere, remove old) keeps messages flowing', async () => {
    const c = await keyedCluster(3, 'k', [K1])
    let sent = 0
    const roundTrip = async (label: string): Promise<void> => {
      sent++
      c[0]!.ml.sendBestEffort(c[1]!.ml.address, enc(`${label} udp`))
      await c[2]!.ml.sendReliable(c[0]!.ml.address, enc(`${label} tcp`))
      await waitFor(
        () => c[1]!.rec.messages.length === sent && c[0]!.rec.messages.length === sent,
        3000,
        `messages after ${label}`,
      )
      expect(dec(c[1]!.rec.messages.at(-1))).toBe(`${label} udp`)
      expect(dec(c[0]!.rec.messages.at(-1))).toBe(`${label} tcp`)
    }
    await roundTrip('start')
    for (const t of c) t.ml.keyring.addKey(K2)
    await roundTrip('added')
    for (const t of c) t.ml.keyring.useKey(K2)
    await roundTrip('used')
    for (const t of c) t.ml.keyring.removeKey(K1)
    await roundTrip('removed')
    for (const t of c) expect(t.ml.keyring.keys()).toEqual([K2])
    // Membership survived the rotation.
    await new Promise((r) => setTimeout(r, 1000))
    for (const t of c) expect(aliveNames(t.ml)).toEqual(['k0', 'k1', 'k2'])
    // Only the new key gets in now.
    const old = await startNode('old', nodes, { keys: [K1] })
    await expect(old.ml.join([addrOf(c[0]!.ml)])).rejects.toBeInstanceOf(JoinError)
    const fresh = await startNode('fresh', nodes, { keys: [K2] })
    await fresh.ml.join([addrOf(c[0]!.ml)])
    await waitFor(() => c.every((t) => stateOf(t.ml, 'fresh') === 'alive'), 5000, 'fresh joined everywhere')
  })
})
