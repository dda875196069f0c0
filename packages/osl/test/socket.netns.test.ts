import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsFixture, netnsAvailable, run } from '@cnm/test-utils'
import {
  AddressInUseError,
  ConnectFailedError,
  InvalidAddressError,
  NamespaceNotFoundError,
  connectSocketInNetns,
  openSocketInNetns,
} from '../src/index.js'

/** Runs a node script inside `ns` (ip netns exec), returns its stdout; the child is killed by PID on timeout. */
async function nodeIn(ns: string, script: string): Promise<string> {
  return await new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    child.stdout.on('data', (d: Buffer) => (out += d.toString()))
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('close', (code) => {
      clearTimeout(timer)
      if (code === 0) resolve(out)
      else reject(new Error(`client exited ${code}: ${err}`))
    })
  })
}

describe.skipIf(!netnsAvailable())('openSocketInNetns', () => {
  const fx = new NetnsFixture('sck')
  afterEach(async () => {
    await fx.cleanup()
  })

  /** Two namespaces joined by a veth pair: a=10.231.0.1/24, b=10.231.0.2/24. */
  async function pair(): Promise<{ a: string; b: string }> {
    const a = await fx.add('a')
    const b = await fx.add('b')
    await run(
      'ip',
      ['-n', a, '-batch', '-'],
      [`link add va type veth peer name vb netns ${b}`, 'addr add 10.231.0.1/24 dev va', 'link set va up'].join('\n') +
        '\n',
    )
    await run('ip', ['-n', b, '-batch', '-'], 'addr add 10.231.0.2/24 dev vb\nlink set vb up\n')
    return { a, b }
  }

  it('serves UDP and TCP inside one namespace to a client in another', async () => {
    const { a, b } = await pair()

    const udp = await openSocketInNetns(a, { type: 'udp4', address: '10.231.0.1', port: 0 })
    expect(udp.port).toBeGreaterThan(0)
    const server = dgram.createSocket('udp4')
    fx.onCleanup(async () => await new Promise<void>((r) => server.close(() => r())))
    server.on('message', (msg, rinfo) => server.send(Buffer.from(`pong:${msg.toString()}`), rinfo.port, rinfo.address))
    await new Promise<void>((r) => server.bind({ fd: udp.fd }, () => r()))

    const tcp = await openSocketInNetns(`/run/netns/${a}`, {
      type: 'tcp4',
      address: '0.0.0.0',
      port: 0,
      reuseAddr: true,
    })
    const tserver = net.createServer((s) => s.on('data', (d) => s.end(`tcp:${d.toString()}`)))
    fx.onCleanup(async () => await new Promise<void>((r) => tserver.close(() => r())))
    await new Promise<void>((r) => tserver.listen({ fd: tcp.fd }, () => r()))

    // the client runs in namespace b, where only the veth route leads to a
    const script = `
      const dgram = require('dgram'); const net = require('net');
      const s = dgram.createSocket('udp4');
      s.on('message', (m) => { process.stdout.write(m.toString() + '\\n'); s.close();
        const c = net.connect(${tcp.port}, '10.231.0.1', () => c.write('hi'));
        c.on('data', (d) => process.stdout.write(d.toString() + '\\n')); c.on('end', () => c.destroy());
      });
      s.send('ping', ${udp.port}, '10.231.0.1');
      setTimeout(() => process.exit(3), 5000).unref();`
    const out = await nodeIn(b, script)
    expect(out.trim().split('\n')).toEqual(['pong:ping', 'tcp:hi'])

    // the UDP socket really lives in a: not reachable on the root namespace's loopback
    const resp = await run('ip', ['-n', a, '-json', 'addr', 'show', 'dev', 'va'])
    expect(resp).toContain('10.231.0.1')
  })

  it('a UDP client socket opened in b talks to a server opened in a', async () => {
    const { a, b } = await pair()
    const srv = await openSocketInNetns(a, { type: 'udp4', address: '10.231.0.1', port: 0 })
    const cli = await openSocketInNetns(b, { type: 'udp4', address: '10.231.0.2', port: 0 })
    const server = dgram.createSocket('udp4')
    const client = dgram.createSocket('udp4')
    fx.onCleanup(async () => {
      await new Promise<void>((r) => server.close(() => r()))
      await new Promise<void>((r) => client.close(() => r()))
    })
    server.on('message', (m, r) => server.send(m, r.port, r.address))
    await new Promise<void>((r) => server.bind({ fd: srv.fd }, () => r()))
    await new Promise<void>((r) => client.bind({ fd: cli.fd }, () => r()))
    const got = new Promise<{ msg: string; from: string }>((resolve) =>
      client.once('message', (m, r) => resolve({ msg: m.toString(), from: `${r.address}:${r.port}` })),
    )
    client.send('echo', srv.port, '10.231.0.1')
    expect(await got).toEqual({ msg: 'echo', from: `10.231.0.1:${srv.port}` })
  })

  it('reusePort: several UDP sockets share one port and the kernel spreads clients over them', async () => {
    const a = await fx.add('rp')
    const first = await openSocketInNetns(a, { type: 'udp4', address: '127.0.0.1', port: 0, reusePort: true })
    const second = await openSocketInNetns(a, { type: 'udp4', address: '127.0.0.1', port: first.port, reusePort: true })
    expect(second.port).toBe(first.port)
    // a socket without the flag cannot join the group
    await expect(openSocketInNetns(a, { type: 'udp4', address: '127.0.0.1', port: first.port })).rejects.toBeInstanceOf(
      AddressInUseError,
    )
    const hits = [0, 0]
    const servers = [first, second].map((s, i) => {
      const sock = dgram.createSocket('udp4')
      sock.on('message', (m, r) => {
        hits[i] = (hits[i] as number) + 1
        sock.send(m, r.port, r.address)
      })
      return { sock, fd: s.fd }
    })
    for (const s of servers) {
      fx.onCleanup(async () => await new Promise<void>((r) => s.sock.close(() => r())))
      await new Promise<void>((r) => s.sock.bind({ fd: s.fd }, () => r()))
    }
    // 64 clients (64 source ports) inside the namespace, one datagram each, each answered
    const script = `
      const dgram = require('dgram'); let n = 0;
      for (let i = 0; i < 64; i++) {
        const c = dgram.createSocket('udp4');
        c.on('message', () => { c.close(); if (++n === 64) { process.stdout.write('64'); process.exit(0) } });
        c.send('x', ${first.port}, '127.0.0.1');
      }
      setTimeout(() => process.exit(3), 5000).unref();`
    expect(await nodeIn(a, script)).toBe('64')
    expect((hits[0] as number) + (hits[1] as number)).toBe(64)
    expect(hits[0]).toBeGreaterThan(0)
    expect(hits[1]).toBeGreaterThan(0)
  })

  it('IPv6 TCP inside a namespace, and typed errors', async () => {
    const a = await fx.add('v6')
    const s6 = await openSocketInNetns(a, { type: 'tcp6', address: '::1', port: 0 })
    const server = net.createServer((s) => s.end('six'))
    fx.onCleanup(async () => await new Promise<void>((r) => server.close(() => r())))
    await new Promise<void>((r) => server.listen({ fd: s6.fd }, () => r()))
    const out = await nodeIn(
      a,
      `const c = require('net').connect(${s6.port}, '::1'); c.on('data', (d) => process.stdout.write(d.toString()));`,
    )
    expect(out).toBe('six')

    await expect(openSocketInNetns(a, { type: 'tcp6', address: '::1', port: s6.port })).rejects.toBeInstanceOf(
      AddressInUseError,
    )
    await expect(
      openSocketInNetns(`${fx.prefix}-missing`, { type: 'udp4', address: '127.0.0.1', port: 0 }),
    ).rejects.toBeInstanceOf(NamespaceNotFoundError)
    await expect(
      openSocketInNetns('/etc/hostname', { type: 'udp4', address: '127.0.0.1', port: 0 }),
    ).rejects.toBeInstanceOf(NamespaceNotFoundError)
    await expect(openSocketInNetns(a, { type: 'udp4', address: '::1', port: 0 })).rejects.toBeInstanceOf(
      InvalidAddressError,
    )
    // 10.9.9.9 is not configured in the fresh namespace
    await expect(openSocketInNetns(a, { type: 'udp4', address: '10.9.9.9', port: 0 })).rejects.toBeInstanceOf(
      InvalidAddressError,
    )
  })
})

describe.skipIf(!netnsAvailable())('connectSocketInNetns', () => {
  const fx = new NetnsFixture('con')
  afterEach(async () => {
    await fx.cleanup()
  })

  it('connects from inside one namespace to a server in another, with typed failures', async () => {
    const a = await fx.add('a')
    const b = await fx.add('b')
    await run(
      'ip',
      ['-n', a, '-batch', '-'],
      `link add va type veth peer name vb netns ${b}\naddr add 10.232.0.1/24 dev va\nlink set va up\n`,
    )
    await run('ip', ['-n', b, '-batch', '-'], 'addr add 10.232.0.2/24 dev vb\nlink set vb up\n')
    const srv = await openSocketInNetns(a, { type: 'tcp4', address: '10.232.0.1', port: 0 })
    const server = net.createServer((s) => s.on('data', (d) => s.end(`echo:${d.toString()}|${s.remoteAddress}`)))
    fx.onCleanup(async () => await new Promise<void>((r) => server.close(() => r())))
    await new Promise<void>((r) => server.listen({ fd: srv.fd }, () => r()))

    const { fd } = await connectSocketInNetns(b, { type: 'tcp4', address: '10.232.0.1', port: srv.port })
    const sock = new net.Socket({ fd, readable: true, writable: true })
    const reply = await new Promise<string>((resolve, reject) => {
      let got = ''
      sock.on('data', (d) => (got += d.toString()))
      sock.on('end', () => resolve(got))
      sock.on('error', reject)
      sock.write('q')
    })
    sock.destroy()
    expect(reply).toBe('echo:q|10.232.0.2') // the connection came from b's address

    // nothing listens on that port in a: refused; from the root namespace the address is unreachable
    await expect(connectSocketInNetns(b, { type: 'tcp4', address: '10.232.0.1', port: 1 })).rejects.toBeInstanceOf(
      ConnectFailedError,
    )
    await expect(
      connectSocketInNetns(b, { type: 'tcp4', address: '10.232.9.9', port: 53, timeoutMs: 200 }),
    ).rejects.toMatchObject({ kind: expect.stringMatching(/unavailable|timeout/) })
  })
})
