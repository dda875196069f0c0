import { randomBytes } from 'node:crypto'
import dgram from 'node:dgram'
import net from 'node:net'
import { isCnmError } from '@cnm/types'
import { afterEach, describe, expect, it, vi } from 'vitest'
import {
  ConfigError,
  JoinError,
  ShutdownError,
  createMemberlist,
  defaultConfig,
  parseJoinAddress,
  pushPullScaleMs,
} from '../src/index.js'
import type { Delegate, Memberlist } from '../src/index.js'
import { KeyringImpl, encodeMessage, ipToBytes, unpackPacket } from '../src/wire/index.js'
import { FAST, shutdownAll, startNode, waitFor } from './helpers.js'

const nodes: Memberlist[] = []
const sockets: dgram.Socket[] = []
afterEach(async () => {
  vi.useRealTimers()
  for (const s of sockets.splice(0)) s.close()
  await shutdownAll(nodes)
})

const KEY = new Uint8Array(16).fill(7)

describe('config', () => {
  it('defaults are the LAN profile networkdb uses', () => {
    const d = defaultConfig()
    expect(d).toMatchObject({
      bindPort: 7946,
      udpBufferSize: 1400,
      probeIntervalMs: 1000,
      probeTimeoutMs: 500,
      indirectChecks: 3,
      suspicionMult: 4,
      suspicionMaxTimeoutMult: 6,
      retransmitMult: 4,
      gossipIntervalMs: 200,
      gossipNodes: 3,
      gossipToTheDeadMs: 30_000,
      pushPullIntervalMs: 30_000,
      tcpTimeoutMs: 10_000,
      awarenessMaxMultiplier: 8,
      enableCompression: true,
    })
    d.keys.push(KEY)
    expect(defaultConfig().keys).toEqual([])
  })

  it('rejects bad fields with ConfigError naming the field', async () => {
    await expect(createMemberlist({ name: '' })).rejects.toBeInstanceOf(ConfigError)
    await expect(createMemberlist({ name: 'a', keys: [new Uint8Array(15)] })).rejects.toThrow(/keys\[0\]/)
    await expect(createMemberlist({ name: 'a', probeIntervalMs: 0 })).rejects.toThrow(/probeIntervalMs/)
    await expect(createMemberlist({ name: 'a', bindAddr: '0.0.0.0', bindPort: 0 })).rejects.toThrow(/advertiseAddr/)
  })

  it('parses join addresses and scales push-pull above 32 nodes', () => {
    expect(parseJoinAddress('10.0.0.1', 7946)).toEqual({ addr: '10.0.0.1', port: 7946 })
    expect(parseJoinAddress('10.0.0.1:17941', 7946)).toEqual({ addr: '10.0.0.1', port: 17941 })
    expect(parseJoinAddress('[::1]:5', 7946)).toEqual({ addr: '::1', port: 5 })
    expect(parseJoinAddress('::1', 7946)).toEqual({ addr: '::1', port: 7946 })
    expect(() => parseJoinAddress('1.2.3.4:0', 7946)).toThrow(/invalid join address/)
    expect(pushPullScaleMs(30_000, 32)).toBe(30_000)
    expect(pushPullScaleMs(30_000, 33)).toBe(60_000)
    expect(pushPullScaleMs(30_000, 64)).toBe(60_000)
    expect(pushPullScaleMs(30_000, 65)).toBe(90_000)
  })
})

describe('lifecycle', () => {
  it('binds UDP and TCP on the same port; a fixed port in use fails', async () => {
    const { ml } = await startNode('a', nodes)
    expect(ml.address.port).toBeGreaterThan(0)
    await new Promise<void>((resolve, reject) => {
      const s = net.connect({ host: '127.0.0.1', port: ml.address.port }, () => {
        s.destroy()
        resolve()
      })
      s.on('error', reject)
    })
    const err = await createMemberlist({ ...FAST, name: 'b', bindPort: ml.address.port }).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_MEMBERLIST_BIND')).toBe(true)
    expect(ml.localNode()).toMatchObject({ name: 'a', state: 'alive', incarnation: 1, port: ml.address.port })
    expect([...ml.localNode().vsn]).toEqual([1, 5, 2, 0, 0, 0])
  })

  it('shutdown clears every timer and closes the sockets; it is idempotent and later calls fail', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'setInterval', 'clearTimeout', 'clearInterval'] })
    const ml = await createMemberlist({ ...FAST, name: 'a' })
    vi.advanceTimersByTime(1000)
    expect(vi.getTimerCount()).toBeGreaterThan(0)
    const port = ml.address.port
    await ml.shutdown()
    await ml.shutdown()
    expect(vi.getTimerCount()).toBe(0)
    vi.useRealTimers()
    await new Promise((r) => setTimeout(r, 20))
    const kinds = process.getActiveResourcesInfo()
    expect(kinds.filter((k) => k === 'UDPWrap' || k === 'TCPServerWrap')).toEqual([])
    // The port is free again for both protocols.
    const again = await createMemberlist({ ...FAST, name: 'a2', bindPort: port })
    nodes.push(again)
    expect(() => ml.sendBestEffort(again.address, new Uint8Array([1]))).toThrow(ShutdownError)
    await expect(ml.join(['127.0.0.1:1'])).rejects.toBeInstanceOf(ShutdownError)
  })

  it('join rejects with JoinError when no address answers, and counts successes otherwise', async () => {
    const { ml: a } = await startNode('a', nodes)
    const { ml: b } = await startNode('b', nodes)
    const closed = net.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', () => r()))
    const deadPort = (closed.address() as net.AddressInfo).port
    await new Promise<void>((r) => closed.close(() => r()))
    const err = await a.join([`127.0.0.1:${deadPort}`, 'not an address:x']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JoinError)
    expect((err as JoinError).errors.size).toBe(2)
    expect(await a.join([`127.0.0.1:${deadPort}`, `127.0.0.1:${b.address.port}`])).toBe(1)
    expect(
      a
        .members()
        .map((n) => n.name)
        .sort(),
    ).toEqual(['a', 'b'])
  })

  it('join honours an aborted signal', async () => {
    const { ml } = await startNode('a', nodes)
    await expect(ml.join(['127.0.0.1:1'], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: 'ERR_ABORTED',
    })
  })

  it('maxStreamBytes bounds what a plaintext stream may carry', async () => {
    const { ml: a } = await startNode('a', nodes)
    const { ml: b, rec } = await startNode('b', nodes, { maxStreamBytes: 4096 })
    await a.sendReliable(b.address, randomBytes(1000))
    await waitFor(() => rec.messages.length === 1, 2000, 'small message')
    await a.sendReliable(b.address, randomBytes(64 * 1024)).catch(() => undefined)
    await new Promise((r) => setTimeout(r, 300))
    expect(rec.messages).toHaveLength(1)
    expect(b.stats().dropped).toBeGreaterThan(0)
  })

  it('with keys, sendReliable refuses a frame over 10 MiB', async () => {
    const { ml } = await startNode('a', nodes, { keys: [KEY] })
    await expect(ml.sendReliable(ml.address, randomBytes(11 * 1024 * 1024))).rejects.toMatchObject({
      kind: 'invalid-argument',
      message: expect.stringMatching(/larger than limit|exceeds/) as unknown,
    })
    expect(ml.stats().streamsOpened).toBe(0)
  })
})

describe('gossip packets', () => {
  /** A raw UDP peer that announces itself to `ml` with protocol max `pmax`; returns what it receives. */
  async function rawPeer(ml: Memberlist, pmax: number, keys: Uint8Array[] = []) {
    const sock = dgram.createSocket('udp4')
    sockets.push(sock)
    const got: Buffer[] = []
    sock.on('message', (m) => got.push(m))
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    const port = sock.address().port
    const alive = encodeMessage({
      type: 'alive',
      node: `raw${port}`,
      incarnation: 1,
      addr: ipToBytes('127.0.0.1'),
      port,
      meta: new Uint8Array(0),
      vsn: new Uint8Array([1, pmax, 2, 0, 0, 0]),
    })
    const { packPacket } = await import('../src/wire/index.js')
    sock.send(
      packPacket([alive], { compress: false, crc: false, keyring: new KeyringImpl(keys) }),
      ml.address.port,
      '127.0.0.1',
    )
    return { got, port }
  }

  function floodDelegate(): Delegate & { calls: number } {
    const d = {
      calls: 0,
      nodeMeta: () => new Uint8Array(0),
      notifyMsg: () => undefined,
      getBroadcasts: (_overhead: number, _limit: number) => {
        d.calls++
        // 400 tiny messages (far more than 127 parts) and one that can never fit.
        return [new Uint8Array(2000).fill(1), ...Array.from({ length: 400 }, (_, i) => new Uint8Array([i & 0xff, 2]))]
      },
      localState: () => new Uint8Array(0),
      mergeRemoteState: () => undefined,
    }
    return d
  }

  for (const encrypted of [false, true]) {
    it(`datagrams stay within udpBufferSize and 127 parts, with CRC for pmax 5 (${encrypted ? 'encrypted' : 'plain'})`, async () => {
      const keys = encrypted ? [KEY] : []
      const d = floodDelegate()
      const { ml } = await startNode('g', nodes, { delegate: d, keys })
      const p5 = await rawPeer(ml, 5, keys)
      const p4 = await rawPeer(ml, 4, keys)
      await waitFor(() => p5.got.length >= 3 && p4.got.length >= 3, 3000, 'gossip packets')
      const keyring = new KeyringImpl(keys)
      for (const [peer, crc] of [
        [p5, true],
        [p4, false],
      ] as const) {
        for (const buf of peer.got) {
          expect(buf.length).toBeLessThanOrEqual(1400)
          const res = unpackPacket(buf, { keyring })
          expect(res.errors).toEqual([])
          expect(res.messages.length).toBeLessThanOrEqual(127)
          expect(res.messages.length).toBeGreaterThan(0)
          if (res.messages.some((m) => m.type === 'user')) expect(res.crc).toBe(crc)
        }
      }
      expect(d.calls).toBeGreaterThan(0)
    })
  }

  it('sendBestEffort adds hasCrc only for peers advertising pmax >= 5 and skips compression when it does not help', async () => {
    const { ml } = await startNode('c', nodes, { gossipIntervalMs: 0 })
    const p5 = await rawPeer(ml, 5)
    const p4 = await rawPeer(ml, 4)
    await waitFor(() => ml.numMembers() === 3, 2000, 'raw peers known')
    const small = new Uint8Array([1, 2, 3])
    const big = new Uint8Array(1000).fill(0x61)
    for (const p of [p5, p4]) {
      ml.sendBestEffort({ addr: '127.0.0.1', port: p.port }, small)
      ml.sendBestEffort({ addr: '127.0.0.1', port: p.port }, big)
    }
    const users = (got: Buffer[]) =>
      got.map((b) => ({ b, res: unpackPacket(b, {}) })).filter(({ res }) => res.messages.some((m) => m.type === 'user'))
    await waitFor(() => users(p5.got).length === 2 && users(p4.got).length === 2, 2000, 'user packets')
    for (const { b, res } of users(p5.got)) {
      expect(res.crc).toBe(true)
      expect(b[0]).toBe(12)
    }
    for (const { b, res } of users(p4.got)) {
      expect(res.crc).toBe(false)
      expect([8, 9]).toContain(b[0])
    }
    // 1000 × 'a' shrinks under LZW (type 9), 3 bytes do not (type 8).
    expect(
      users(p4.got)
        .map(({ b }) => b[0])
        .sort(),
    ).toEqual([8, 9])
  })

  it('runtime key rotation takes effect for the next packet', async () => {
    const k2 = new Uint8Array(32).fill(9)
    const { ml } = await startNode('k', nodes, { keys: [KEY] })
    const peer = await rawPeer(ml, 5, [KEY])
    ml.sendBestEffort({ addr: '127.0.0.1', port: peer.port }, new Uint8Array([1, 2, 3]))
    ml.keyring.addKey(k2)
    ml.keyring.useKey(k2)
    ml.sendBestEffort({ addr: '127.0.0.1', port: peer.port }, new Uint8Array([4, 5, 6]))
    await waitFor(
      () => peer.got.some((b) => b.length < 100 && b.length > 0) && peer.got.length >= 2,
      2000,
      'two packets',
    )
    const users = peer.got
      .map((b) => {
        for (const [name, keys] of [
          ['old', [KEY]],
          ['new', [k2]],
        ] as const) {
          try {
            const m = unpackPacket(b, { keyring: new KeyringImpl(keys) }).messages.find((x) => x.type === 'user')
            if (m?.type === 'user') return `${name}:${[...m.payload].join('')}`
          } catch {
            // not this key
          }
        }
        return undefined
      })
      .filter((x) => x !== undefined)
    expect(users).toContain('old:123')
    expect(users).toContain('new:456')
    ml.keyring.removeKey(KEY)
    expect(ml.keyring.keys()).toEqual([k2])
  })

  it('awareness: a failed probe without nack-capable helpers raises the health score, acks lower it', async () => {
    const { ml } = await startNode('aw', nodes, { probeIntervalMs: 100, probeTimeoutMs: 50 })
    // A silent peer (pmax 2: no TCP fallback, no nacks).
    await rawPeer(ml, 2)
    await waitFor(() => ml.healthScore() >= 1, 3000, 'health score to rise')
    await waitFor(
      () => ml.nodes().some((n) => n.name.startsWith('raw') && n.state === 'dead'),
      5000,
      'silent peer dead',
    )
    const raised = ml.healthScore()
    // A peer that answers every ping: successful probes bring the score back down.
    const sock = dgram.createSocket('udp4')
    sockets.push(sock)
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
    const port = sock.address().port
    sock.on('message', (m, rinfo) => {
      for (const msg of unpackPacket(m, {}).messages) {
        if (msg.type === 'ping')
          sock.send(encodeMessage({ type: 'ack', seqNo: msg.seqNo, payload: null }), rinfo.port, rinfo.address)
      }
    })
    const { packPacket } = await import('../src/wire/index.js')
    const alive = encodeMessage({
      type: 'alive',
      node: 'responder',
      incarnation: 1,
      addr: ipToBytes('127.0.0.1'),
      port,
      meta: new Uint8Array(0),
      vsn: new Uint8Array([1, 5, 2, 0, 0, 0]),
    })
    sock.send(packPacket([alive], { compress: false, crc: false }), ml.address.port, '127.0.0.1')
    await waitFor(() => ml.healthScore() < raised, 5000, 'health score to fall')
    expect(ml.nodes().find((n) => n.name === 'responder')?.state).toBe('alive')
  })
})
