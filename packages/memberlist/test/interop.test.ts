import dgram from 'node:dgram'
import { readFileSync } from 'node:fs'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import type { Memberlist } from '../src/index.js'
import {
  KeyringImpl,
  encodeMessage,
  ipToBytes,
  lzwDecompress,
  packStream,
  readStreamMessage,
  unpackPacket,
} from '../src/wire/index.js'
import type { Message } from '../src/wire/index.js'
import { shutdownAll, startNode, stateOf, waitFor } from './helpers.js'

const VECTORS = new URL('../../../../shared/vectors/memberlist/', import.meta.url)
function vector(id: string): Buffer {
  const v = JSON.parse(readFileSync(new URL(`${id}.json`, VECTORS), 'utf8')) as { hex: string }
  return Buffer.from(v.hex, 'hex')
}
function decompressedHex(id: string): string {
  const v = JSON.parse(readFileSync(new URL(`${id}.json`, VECTORS), 'utf8')) as {
    decoded: { compress: { decompressed_hex: string } }
  }
  return v.decoded.compress.decompressed_hex
}
const K16 = Buffer.from('000102030405060708090a0b0c0d0e0f', 'hex')
const K32 = Buffer.from('000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f', 'hex')

const nodes: Memberlist[] = []
const sockets: dgram.Socket[] = []
afterEach(async () => {
  for (const s of sockets.splice(0)) s.close()
  await shutdownAll(nodes)
})

/** A UDP socket on an ephemeral port that records what it receives. */
async function udpPeer(): Promise<{ sock: dgram.Socket; port: number; got: Buffer[] }> {
  const sock = dgram.createSocket('udp4')
  sockets.push(sock)
  const got: Buffer[] = []
  sock.on('message', (m) => got.push(m))
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', () => r()))
  return { sock, port: sock.address().port, got }
}

function send(sock: dgram.Socket, buf: Uint8Array, ml: Memberlist): void {
  sock.send(buf, ml.address.port, ml.address.addr)
}

/** Writes `bytes` on a new connection and returns everything the node writes back until it closes. */
async function exchange(ml: Memberlist, bytes: Uint8Array): Promise<Buffer> {
  return new Promise<Buffer>((resolve, reject) => {
    const chunks: Buffer[] = []
    const s = net.connect({ host: ml.address.addr, port: ml.address.port }, () => s.write(bytes))
    s.on('data', (c: Buffer) => chunks.push(c))
    s.on('error', reject)
    s.on('close', () => resolve(Buffer.concat(chunks)))
    setTimeout(() => s.destroy(), 3000).unref()
  })
}

function readStream(buf: Uint8Array, keys: Uint8Array[] = []): Message {
  const r = readStreamMessage(buf, { keyring: new KeyringImpl(keys) })
  if (r === undefined) expect.fail('incomplete stream reply')
  return r.message
}

describe('interop with recorded Go traffic (real UDP/TCP)', () => {
  it('udp-03 ping addressed to node1 gets an ack with the same SeqNo', async () => {
    const { ml } = await startNode('node1', nodes)
    const peer = await udpPeer()
    send(peer.sock, vector('udp-03-ping'), ml)
    await waitFor(() => peer.got.length > 0, 2000, 'ack')
    const { messages } = unpackPacket(peer.got[0]!, {})
    expect(messages[0]).toEqual({ type: 'ack', seqNo: 1, payload: null })
    // Our own alive (incarnation 1, 4-byte address, full Vsn) rides along as a piggybacked broadcast.
    const alive = messages.find((m) => m.type === 'alive')
    expect(alive).toMatchObject({ node: 'node1', incarnation: 1, port: ml.address.port })
    if (alive?.type === 'alive') {
      expect([...alive.addr]).toEqual([127, 0, 0, 1])
      expect([...alive.vsn]).toEqual([1, 5, 2, 0, 0, 0])
    }
  })

  it('a ping for another node name is ignored', async () => {
    const { ml } = await startNode('nodeX', nodes)
    const peer = await udpPeer()
    send(peer.sock, vector('udp-03-ping'), ml)
    send(peer.sock, encodeMessage({ type: 'ping', seqNo: 77, node: '' }), ml)
    await waitFor(() => peer.got.length > 0, 2000, 'ack for the ping without a name')
    await new Promise((r) => setTimeout(r, 200))
    expect(peer.got).toHaveLength(1)
    expect(unpackPacket(peer.got[0]!, {}).messages[0]).toEqual({ type: 'ack', seqNo: 77, payload: null })
  })

  it('tcp-07 stream ping gets the tcp-08 ack, byte for byte', async () => {
    const { ml } = await startNode('node1', nodes)
    const reply = await exchange(ml, vector('tcp-07-stream-ping-request'))
    expect(reply.toString('hex')).toBe(vector('tcp-08-stream-ack-response').toString('hex'))
  })

  it('tcp-01 push-pull join request gets a push-pull reply with Join=true listing us, and node2 is merged', async () => {
    const { ml } = await startNode('node1', nodes)
    const reply = readStream(await exchange(ml, vector('tcp-01-pushpull-join-request')))
    expect(reply.type).toBe('pushPull')
    if (reply.type !== 'pushPull') return
    expect(reply.join).toBe(true)
    const me = reply.nodes.find((n) => n.name === 'node1')
    expect(me).toMatchObject({ incarnation: 1, state: 0, port: ml.address.port })
    expect([...me!.addr]).toEqual([127, 0, 0, 1])
    expect([...me!.vsn]).toEqual([1, 5, 2, 0, 0, 0])
    await waitFor(() => stateOf(ml, 'node2') === 'alive', 2000, 'node2 merged')
    expect(ml.nodes().find((n) => n.name === 'node2')).toMatchObject({ addr: '127.0.0.1', port: 17942, incarnation: 1 })
  })

  it('tcp-05 bulk sync (TCP user message) and udp-05 (hasCrc user message) reach notifyMsg', async () => {
    const { ml, rec } = await startNode('node1', nodes)
    const reply = await exchange(ml, vector('tcp-05-user-bulksync-unsolicited'))
    expect(reply.length).toBe(0)
    await waitFor(() => rec.messages.length === 1, 2000, 'bulk sync payload')
    expect(Buffer.from(rec.messages[0]!).toString('hex')).toBe('08041215080810011a056e6f64653222046e6574312a020805')
    const peer = await udpPeer()
    send(peer.sock, vector('udp-05-user-network-event-join'), ml)
    await waitFor(() => rec.messages.length === 2, 2000, 'udp user payload')
    expect(Buffer.from(rec.messages[1]!).toString('hex')).toBe('08011211080110091a056e6f64653122046e657431')
  })

  it('udp-01 gossip (hasCrc, LZW, compound of alives) teaches us node1 and node2; udp-18 makes node3 left', async () => {
    const { ml, rec } = await startNode('ts', nodes)
    const peer = await udpPeer()
    send(peer.sock, vector('udp-01-join-gossip-crc-lzw-compound'), ml)
    await waitFor(() => stateOf(ml, 'node1') === 'alive' && stateOf(ml, 'node2') === 'alive', 2000, 'alives')
    send(peer.sock, vector('udp-16-refute-alive-incarnation-2'), ml)
    await waitFor(() => ml.nodes().find((n) => n.name === 'node2')?.incarnation === 2, 2000, 'node2 inc 2')
    expect(stateOf(ml, 'node3')).toBe('alive')
    send(peer.sock, vector('udp-18-graceful-leave-dead-plus-nodeevent'), ml)
    await waitFor(() => stateOf(ml, 'node3') === 'left', 2000, 'node3 left')
    expect(rec.events.find((e) => e.kind === 'leave')?.node).toMatchObject({ name: 'node3', state: 'left' })
    // The NodeEvent user parts of the compounds reached the delegate.
    expect(rec.messages.length).toBe(2)
  })

  it('udp-10 compound ping + suspect: acks SeqNo 20 and suspects node2', async () => {
    const { ml } = await startNode('node1', nodes)
    const peer = await udpPeer()
    send(peer.sock, vector('udp-01-join-gossip-crc-lzw-compound'), ml) // node2 (and node1 conflicting) alive
    await waitFor(() => stateOf(ml, 'node2') === 'alive', 2000, 'node2 alive')
    send(peer.sock, vector('udp-10-compound-ping-piggyback-suspect'), ml)
    await waitFor(() => peer.got.length > 0, 2000, 'ack')
    expect(unpackPacket(peer.got[0]!, {}).messages[0]).toEqual({ type: 'ack', seqNo: 20, payload: null })
    expect(stateOf(ml, 'node2')).toBe('suspect')
  })

  it('udp-09 indirect ping with Nack for an unreachable target gets nackResp SeqNo 19', async () => {
    const { ml } = await startNode('node1', nodes)
    const peer = await udpPeer()
    send(peer.sock, vector('udp-09-indirect-ping'), ml)
    await waitFor(() => peer.got.some((b) => unpackPacket(b, {}).messages.some((m) => m.type === 'nack')), 3000, 'nack')
    const nack = peer.got.flatMap((b) => unpackPacket(b, {}).messages).find((m) => m.type === 'nack')
    expect(nack).toEqual({ type: 'nack', seqNo: 19 })
  })

  it('an indirect ping to a reachable target relays the ack with the requester SeqNo', async () => {
    const { ml } = await startNode('helper', nodes)
    const requester = await udpPeer()
    const target = await udpPeer()
    target.sock.on('message', (m, rinfo) => {
      const ping = unpackPacket(m, {}).messages.find((x) => x.type === 'ping')
      if (ping?.type === 'ping') {
        expect(ping.node).toBe('tgt')
        target.sock.send(encodeMessage({ type: 'ack', seqNo: ping.seqNo, payload: null }), rinfo.port, rinfo.address)
      }
    })
    const ind = encodeMessage({
      type: 'indirectPing',
      seqNo: 4242,
      target: ipToBytes('127.0.0.1'),
      port: target.port,
      node: 'tgt',
      nack: true,
    })
    send(requester.sock, ind, ml)
    await waitFor(
      () => requester.got.some((b) => unpackPacket(b, {}).messages.some((m) => m.type === 'ack')),
      3000,
      'relayed ack',
    )
    const msgs = requester.got.flatMap((b) => unpackPacket(b, {}).messages)
    expect(msgs.find((m) => m.type === 'ack')).toEqual({ type: 'ack', seqNo: 4242, payload: null })
    await new Promise((r) => setTimeout(r, 700))
    expect(requester.got.flatMap((b) => unpackPacket(b, {}).messages).some((m) => m.type === 'nack')).toBe(false)
  })

  it("our push-pull join request is byte-identical to Go's tcp-01 (port aside), and a tcp-02 reply completes the join", async () => {
    const server = net.createServer()
    const received: Buffer[] = []
    server.on('connection', (sock) => {
      const chunks: Buffer[] = []
      sock.on('data', (c: Buffer) => {
        chunks.push(c)
        const all = Buffer.concat(chunks)
        if (readStreamMessage(all, {}) !== undefined) {
          received.push(all)
          sock.end(vector('tcp-02-pushpull-join-response'))
        }
      })
    })
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()))
    try {
      const { ml, rec } = await startNode('node2', nodes)
      rec.delegate.localState = () => Buffer.from('0803120908011a056e6f646532', 'hex')
      const port = (server.address() as net.AddressInfo).port
      expect(await ml.join([`127.0.0.1:${port}`])).toBe(1)
      const sent = received[0]!
      expect(sent[0]).toBe(9) // compressed, as Go always does for streams
      const plain = readStream(sent)
      expect(plain).toMatchObject({ type: 'pushPull', join: true })
      // Re-encode to compare the exact msgpack bytes with Go's, patching our port into Go's "cd 46 16".
      const p = ml.address.port
      const portHex = `cd${p.toString(16).padStart(4, '0')}`
      const expected = decompressedHex('tcp-01-pushpull-join-request').replace('cd4616', portHex)
      // compress body: {Algo: 0, Buf: raw}; Buf's header is fixstr, str16 or str32.
      let at = sent.indexOf(Buffer.from('a3427566', 'hex')) + 4
      const h = sent[at]!
      let len: number
      if ((h & 0xe0) === 0xa0) [len, at] = [h & 0x1f, at + 1]
      else if (h === 0xda) [len, at] = [sent.readUInt16BE(at + 1), at + 3]
      else [len, at] = [sent.readUInt32BE(at + 1), at + 5]
      const ours = lzwDecompress(sent.subarray(at, at + len))
      expect(Buffer.from(ours).toString('hex')).toBe(expected)
      await waitFor(() => stateOf(ml, 'node1') === 'alive', 2000, 'node1 from the reply')
    } finally {
      await new Promise<void>((r) => server.close(() => r()))
    }
  })

  it('a push-pull from a node with an incompatible protocol version is answered but not merged', async () => {
    const { ml } = await startNode('node1', nodes)
    const req = packStream(
      encodeMessage({
        type: 'pushPull',
        join: true,
        nodes: [
          {
            name: 'future',
            addr: ipToBytes('127.0.0.1'),
            port: 1234,
            meta: null,
            incarnation: 1,
            state: 0,
            vsn: new Uint8Array([3, 5, 3, 0, 0, 0]),
          },
        ],
        userState: new Uint8Array(0),
      }),
      { compress: true },
    )
    const reply = readStream(await exchange(ml, req))
    expect(reply).toMatchObject({ type: 'pushPull', join: true })
    await new Promise((r) => setTimeout(r, 100))
    expect(stateOf(ml, 'future')).toBeUndefined()
  })

  it('without keys, an encrypted stream gets the tcp-09 error reply byte for byte', async () => {
    const { ml } = await startNode('node1', nodes)
    const reply = await exchange(ml, vector('enc-tcp-05-stream-ping-request'))
    expect(reply.toString('hex')).toBe(vector('tcp-09-err-response').toString('hex'))
  })
})

describe('interop: encrypted vectors (keys [K16, K32])', () => {
  it('enc-udp-02 ping is answered with an encrypted ack; plaintext udp-03 is dropped', async () => {
    const { ml } = await startNode('node1', nodes, { keys: [K16, K32] })
    const peer = await udpPeer()
    send(peer.sock, vector('udp-03-ping'), ml)
    send(peer.sock, vector('enc-udp-02-ping'), ml)
    await waitFor(() => peer.got.length > 0, 2000, 'encrypted ack')
    await new Promise((r) => setTimeout(r, 200))
    expect(peer.got).toHaveLength(1)
    expect(() => unpackPacket(peer.got[0]!, {})).not.toThrow() // parses as garbage without keys…
    const { messages } = unpackPacket(peer.got[0]!, { keyring: new KeyringImpl([K16]) })
    expect(messages[0]).toEqual({ type: 'ack', seqNo: 1, payload: null })
    expect(ml.stats().dropped).toBeGreaterThanOrEqual(1)
  })

  it('enc-tcp-05 stream ping gets an encrypted ack; enc-tcp-03 (AES-256) push-pull is answered', async () => {
    const { ml } = await startNode('node1', nodes, { keys: [K16, K32] })
    const ack = readStream(await exchange(ml, vector('enc-tcp-05-stream-ping-request')), [K16])
    expect(ack).toEqual({ type: 'ack', seqNo: 4243, payload: null })
    const pp = readStream(await exchange(ml, vector('enc-tcp-03-pushpull-join-aes256')), [K16, K32])
    expect(pp).toMatchObject({ type: 'pushPull', join: true })
    await waitFor(() => stateOf(ml, 'node3') === 'alive', 2000, 'node3 merged')
  })

  it('a plaintext stream gets the "not encrypted" error reply', async () => {
    const { ml } = await startNode('node1', nodes, { keys: [K16, K32] })
    const err = readStream(await exchange(ml, vector('tcp-07-stream-ping-request')), [K16])
    expect(err).toEqual({ type: 'err', error: 'Encryption is configured but remote state is not encrypted' })
  })
})
