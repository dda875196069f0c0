import { spawn } from 'node:child_process'
import dgram from 'node:dgram'
import { existsSync } from 'node:fs'
import net from 'node:net'
import { afterEach, describe, expect, it } from 'vitest'
import { NetnsFixture, listNetns, netnsAvailable, run } from '@cnm/test-utils'
import {
  GatewayUnreachableError,
  InvalidAddressError,
  InvalidInterfaceNameError,
  InvalidMacError,
  InvalidMtuError,
  LinkExistsError,
  LinkNotFoundError,
  NamespaceExistsError,
  NamespaceNotFoundError,
  NeighborExistsError,
  RouteConflictError,
  osl,
  type Osl,
} from '../src/index.js'

async function ipJson<T = Array<Record<string, unknown>>>(ns: string, args: string[]): Promise<T> {
  return JSON.parse(await run('ip', ['-n', ns, '-json', ...args])) as T
}

/** Runs a node script inside `ns` (ip netns exec); returns stdout; killed by PID after 10 s. */
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
      else reject(new Error(`client in ${ns} exited ${code}: ${err}`))
    })
  })
}

/** `ip -o link` names in a namespace, and namespaces with our prefix: the state a test must leave as found. */
async function snapshot(hostNs: string, prefix: string): Promise<{ links: string[]; netns: string[] }> {
  const out = await run('ip', ['-n', hostNs, '-o', 'link'])
  const links = out
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => (l.split(': ')[1] ?? '').split('@')[0] ?? '')
    .sort()
  return { links, netns: (await listNetns()).filter((n) => n.startsWith(prefix)).sort() }
}

describe.skipIf(!netnsAvailable())('Osl on the kernel', () => {
  const fx = new NetnsFixture('osl')
  let o: Osl | undefined

  afterEach(async () => {
    try {
      if (o !== undefined) await o.gc({ prefix: `${fx.prefix}-s`, linkPrefix: fx.prefix })
      await o?.close()
    } finally {
      o = undefined
      await fx.cleanup()
    }
  })

  /** A test host namespace and an Osl on it (default options: resident host helper, native rtnetlink). */
  async function setup(init: { residentHost?: boolean; netnsDir?: string } = {}): Promise<{ host: string; o: Osl }> {
    const host = await fx.add('host')
    o = osl({ hostNetns: host, ...init })()
    return { host, o }
  }

  it('creates, re-creates, opens, lists and deletes sandboxes', async () => {
    const { o } = await setup()
    const key = `${fx.prefix}-ssb`
    const sb = await o.createSandbox(key)
    expect(existsSync(`/run/netns/${key}`)).toBe(true)
    const lo = (await sb.links()).find((l) => l.ifname === 'lo')
    expect(lo?.flags).toContain('UP')
    expect(await sb.getSysctls(['net.ipv6.conf.all.disable_ipv6'])).toEqual({ 'net.ipv6.conf.all.disable_ipv6': '1' })
    // same key again: the old namespace is detached first (libnetwork semantics)
    await sb.createVeth({ name: 'marker0', peerName: 'marker1' })
    const again = await o.createSandbox(key)
    expect((await again.links()).map((l) => l.ifname)).toEqual(['lo'])
    await expect(o.createSandbox(key, { exist: 'error' })).rejects.toBeInstanceOf(NamespaceExistsError)
    expect(await o.listSandboxes({ prefix: `${fx.prefix}-s` })).toEqual([key])
    const opened = await o.openSandbox(key)
    expect(opened.interfaces).toEqual([])
    await again.destroy()
    expect(existsSync(`/run/netns/${key}`)).toBe(false)
    await expect(o.openSandbox(key)).rejects.toBeInstanceOf(NamespaceNotFoundError)
    await expect(o.deleteSandbox(key)).rejects.toBeInstanceOf(NamespaceNotFoundError)
  })

  it('two sandboxes joined by a veth pair exchange TCP and UDP', async () => {
    const { host, o } = await setup()
    const a = await o.createSandbox(`${fx.prefix}-sa`)
    const b = await o.createSandbox(`${fx.prefix}-sb`)
    await o.host.createVeth({ name: `${fx.prefix}a`, peerName: `${fx.prefix}b`, up: false })
    const ia = await a.addInterface({
      srcName: `${fx.prefix}a`,
      addresses: ['10.240.0.1/24'],
      mac: '02:42:0a:f0:00:01',
    })
    const ib = await b.addInterface({ srcName: `${fx.prefix}b`, addresses: ['10.240.0.2/24'], mtu: 1400 })
    expect([ia.dstName, ib.dstName]).toEqual(['eth0', 'eth0'])
    expect((await o.host.links()).map((l) => l.ifname)).toEqual(['lo']) // both ends left the host
    expect(host).toContain(fx.prefix)

    const eth0 = (await a.addresses()).find((l) => l.ifname === 'eth0')
    expect(eth0?.address).toBe('02:42:0a:f0:00:01')
    expect(eth0?.flags).toContain('UP')
    expect(eth0?.addr_info.map((x) => `${x.local}/${x.prefixlen}`)).toEqual(['10.240.0.1/24'])
    expect((await b.link('eth0'))?.mtu).toBe(1400)

    const udp = await a.openSocket({ type: 'udp4', address: '10.240.0.1', port: 0 })
    const tcp = await a.openSocket({ type: 'tcp4', address: '10.240.0.1', port: 0 })
    const us = dgram.createSocket('udp4')
    const ts = net.createServer((s) => s.on('data', (d) => s.end(`tcp:${d.toString()}`)))
    fx.onCleanup(async () => {
      await new Promise<void>((r) => us.close(() => r()))
      await new Promise<void>((r) => ts.close(() => r()))
    })
    us.on('message', (m, r) => us.send(`udp:${m.toString()}`, r.port, r.address))
    await new Promise<void>((r) => us.bind({ fd: udp.fd }, () => r()))
    await new Promise<void>((r) => ts.listen({ fd: tcp.fd }, () => r()))
    const before = await a.statistics('eth0')
    const out = await nodeIn(
      b.key,
      `const s = require('dgram').createSocket('udp4');
       s.on('message', (m) => { console.log(m.toString()); s.close();
         const c = require('net').connect(${tcp.port}, '10.240.0.1', () => c.write('x'));
         c.on('data', (d) => console.log(d.toString())); });
       s.send('x', ${udp.port}, '10.240.0.1');`,
    )
    expect(out.trim().split('\n')).toEqual(['udp:x', 'tcp:x'])
    const after = await a.statistics('eth0')
    expect(after.rx['packets']).toBeGreaterThan(before.rx['packets'] ?? 0)
    expect(after.tx['bytes']).toBeGreaterThan(before.tx['bytes'] ?? 0)
    await a.disableArpForVip('eth0')
    expect(await a.getSysctls(['net/ipv4/conf/eth0/arp_ignore', 'net/ipv4/conf/eth0/arp_announce'])).toEqual({
      'net/ipv4/conf/eth0/arp_ignore': '1',
      'net/ipv4/conf/eth0/arp_announce': '2',
    })
  })

  it('one batched attach: bridge in the host, default route, reaches a server in the host namespace', async () => {
    const { host, o } = await setup({ residentHost: false })
    await o.host.createBridge({ name: 'br0', addresses: ['10.241.0.1/24'], mtu: 1500, mac: '02:42:00:00:00:01' })
    await o.host.addAddress('lo', '10.249.0.1/32')
    const br = await o.host.link('br0')
    expect(br?.address).toBe('02:42:00:00:00:01')
    expect(br?.flags).toContain('UP')

    const sb = await o.createSandbox(`${fx.prefix}-sc1`)
    const before = o.stats.launches
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: `${fx.prefix}h`, peerName: `${fx.prefix}p`, master: 'br0', mtu: 1500 })
    tx.on(sb).addInterface({ srcName: `${fx.prefix}p`, addresses: ['10.241.0.2/24'], mac: '02:42:0a:f1:00:02' })
    tx.on(sb).setGateway('10.241.0.1')
    await tx.commit()
    expect(o.stats.launches - before).toBe(1) // one host-side ip -batch; the inside goes over the addon's rtnetlink
    expect(sb.gateway).toBe('10.241.0.1')
    expect((await o.host.link(`${fx.prefix}h`))?.master).toBe('br0')
    const routes = await ipJson(sb.key, ['route', 'show', 'default'])
    expect(routes).toEqual([expect.objectContaining({ dst: 'default', gateway: '10.241.0.1', dev: 'eth0' })])

    // server on an address that only the default route leads to
    const srv = await o.openSocket(host, { type: 'tcp4', address: '10.249.0.1', port: 0 })
    const server = net.createServer((s) => s.end('hello from host'))
    fx.onCleanup(async () => await new Promise<void>((r) => server.close(() => r())))
    await new Promise<void>((r) => server.listen({ fd: srv.fd }, () => r()))
    const out = await nodeIn(
      sb.key,
      `const c = require('net').connect(${srv.port}, '10.249.0.1'); c.on('data', (d) => process.stdout.write(d));`,
    )
    expect(out).toBe('hello from host')

    // the fast path: the veth's sandbox end is born inside (no namespace move)
    const sb2 = await o.createSandbox(`${fx.prefix}-sc2`)
    const l0 = o.stats.launches
    const tx2 = o.transaction()
    const rec = tx2.on(sb2).addInterface({
      veth: { hostName: `${fx.prefix}h2`, master: 'br0' },
      addresses: ['10.241.0.3/24'],
      mac: '02:42:0a:f1:00:03',
      mtu: 1450,
    })
    tx2.on(sb2).setGateway('10.241.0.1')
    await tx2.commit()
    expect(o.stats.launches - l0).toBe(0) // veth and inside over the addon's rtnetlink
    expect(rec).toMatchObject({ dstName: 'eth0', hostPeer: `${fx.prefix}h2`, srcName: undefined })
    expect(await sb2.link('eth0')).toMatchObject({ address: '02:42:0a:f1:00:03', mtu: 1450 })
    expect(await o.host.link(`${fx.prefix}h2`)).toMatchObject({ master: 'br0', mtu: 1450 })
    const out2 = await nodeIn(
      sb2.key,
      `const c = require('net').connect(${srv.port}, '10.249.0.1'); c.on('data', (d) => process.stdout.write(d));`,
    )
    expect(out2).toBe('hello from host')
    // removal without a source name deletes the pair, host end included
    await sb2.removeInterface('eth0')
    expect(await o.host.link(`${fx.prefix}h2`)).toBeUndefined()
  })

  it('native rtnetlink and ip -batch program the same state', async () => {
    const host = await fx.add('host')
    const viaIp = osl({ hostNetns: host, nativeNetlink: false, residentHost: false })()
    o = osl({ hostNetns: host, residentHost: false })()
    fx.onCleanup(async () => await viaIp.close())
    await o.host.createBridge({ name: 'br0', addresses: ['10.239.0.1/24', 'fd00:239::1/64'] })
    const states = []
    for (const [i, x] of [viaIp, o].entries()) {
      const sb = await x.createSandbox(`${fx.prefix}-se${i}`)
      const l0 = x.stats.launches
      const tx = x.transaction()
      tx.on(sb).addInterface({
        veth: { hostName: `${fx.prefix}e${i}`, master: 'br0' },
        addresses: [`10.239.0.${i + 2}/24`, `fd00:239::${i + 2}/64`],
        routes: ['10.238.0.0/16'],
      })
      tx.on(sb).setGateway('10.239.0.1')
      tx.on(sb).setGateway('fd00:239::1')
      tx.on(sb).addStaticRoute({ destination: '10.237.0.0/16', nextHop: '10.239.0.1' })
      await tx.commit()
      expect(x.stats.launches - l0).toBe(i === 0 ? 2 : 0)
      const info = await sb.info()
      const strip = (v: unknown): unknown =>
        JSON.parse(
          JSON.stringify(v)
            .replaceAll(`10.239.0.${i + 2}`, 'SELF4')
            .replaceAll(`fd00:239::${i + 2}`, 'SELF6'),
        )
      states.push({
        addrs: strip(
          info.links.map((l) => ({
            name: l.ifname,
            flags: l.flags,
            addrs: l.addr_info
              .filter((a) => a.scope !== 'link')
              .map((a) => [a.family, a.local, a.prefixlen, a.scope, a.nodad ?? false]),
          })),
        ),
        routes: strip(
          info.routes
            .filter((r) => !String(r.dst).startsWith('fe80'))
            .map((r) => [r.dst, r.gateway, r.dev, r.scope, r.protocol ?? '']),
        ),
      })
    }
    expect(states[1]).toEqual(states[0])
  })

  it('static routes, neighbours and FDB entries appear as ip shows them', async () => {
    const { o } = await setup()
    const sb = await o.createSandbox(`${fx.prefix}-sr`)
    await o.host.createVeth({ name: `${fx.prefix}x`, peerName: `${fx.prefix}y`, up: true })
    await sb.addInterface({ srcName: `${fx.prefix}y`, addresses: ['10.242.0.2/24'], routes: ['10.243.0.0/16'] })
    await sb.addStaticRoute({ destination: '10.244.1.0/24', nextHop: '10.242.0.1' })
    await sb.addNeighbor({ ip: '10.242.0.9', mac: '02:00:00:00:00:09', linkName: `${fx.prefix}y` })
    await expect(
      sb.addNeighbor({ ip: '10.242.0.9', mac: '02:00:00:00:00:09', linkName: `${fx.prefix}y` }),
    ).rejects.toBeInstanceOf(NeighborExistsError)
    await sb.addNeighbor({ ip: '10.242.0.9', mac: '02:00:00:00:00:09', linkName: `${fx.prefix}y` }, { force: true })
    await o.host.createVxlan({ name: `${fx.prefix}vx`, vni: 4242, up: false })
    expect((await sb.addInterface({ srcName: `${fx.prefix}vx`, dstPrefix: 'vxlan' })).dstName).toBe('vxlan0')
    await sb.addNeighbor({ ip: '10.242.0.10', mac: '02:00:00:00:00:0a', linkName: `${fx.prefix}vx`, family: 'bridge' })

    const routes = await ipJson(sb.key, ['route', 'show'])
    expect(routes).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ dst: '10.244.1.0/24', gateway: '10.242.0.1', dev: 'eth0' }),
        expect.objectContaining({ dst: '10.243.0.0/16', dev: 'eth0', scope: 'link' }),
      ]),
    )
    const neigh = await ipJson(sb.key, ['neigh', 'show', 'dev', 'eth0'])
    expect(neigh).toEqual([
      expect.objectContaining({ dst: '10.242.0.9', lladdr: '02:00:00:00:00:09', state: ['PERMANENT'] }),
    ])
    const fdb = await run('bridge', ['-n', sb.key, 'fdb', 'show', 'dev', 'vxlan0'])
    expect(fdb).toMatch(/02:00:00:00:00:0a dst 10\.242\.0\.10 .*self permanent/)
    const info = await sb.info()
    expect(info.routes.map((r) => r.dst)).toEqual(
      expect.arrayContaining(['10.242.0.0/24', '10.243.0.0/16', '10.244.1.0/24']),
    )
    expect(info.neighbors.map((n) => n.dst)).toContain('10.242.0.9')

    await sb.deleteNeighbor('10.242.0.9', '02:00:00:00:00:09', { osDelete: true })
    await sb.deleteNeighbor('10.242.0.10', '02:00:00:00:00:0a', { osDelete: true })
    expect(await ipJson(sb.key, ['neigh', 'show', 'dev', 'eth0'])).toEqual([])
    expect(await run('bridge', ['-n', sb.key, 'fdb', 'show', 'dev', 'vxlan0'])).not.toMatch(/02:00:00:00:00:0a/)
    // IPVS knobs: written where the kernel has them, skipped (and reported) where it does not
    const skipped = await sb.applyLoadBalancerTweaks()
    const knobs = [
      'net/ipv4/vs/conn_reuse_mode',
      'net/ipv4/vs/expire_nodest_conn',
      'net/ipv4/vs/expire_quiescent_template',
    ]
    const written = knobs.filter((k) => !skipped.includes(k))
    if (written.length > 0) {
      expect(Object.values(await sb.getSysctls(written))).toEqual(
        written.map((k) => (k.endsWith('conn_reuse_mode') ? '0' : '1')),
      )
    }
    for (const k of skipped) await expect(sb.getSysctls([k])).rejects.toMatchObject({ code: 'ERR_OSL_KERNEL' })
    expect(skipped.length + written.length).toBe(3)
    await sb.removeStaticRoute({ destination: '10.244.1.0/24', nextHop: '10.242.0.1' })
    expect((await ipJson(sb.key, ['route', 'show'])).map((r) => r['dst'])).not.toContain('10.244.1.0/24')
  })

  it('IPv6 interfaces: nodad, lo IPv6 on; removal moves the link back under its name; restore', async () => {
    const { host, o } = await setup()
    const sb = await o.createSandbox(`${fx.prefix}-s6`)
    await o.host.createVeth({ name: `${fx.prefix}m`, peerName: `${fx.prefix}n` })
    await o.host.createVeth({ name: `${fx.prefix}o`, peerName: `${fx.prefix}q` })
    const i0 = await sb.addInterface({ srcName: `${fx.prefix}n`, addresses: ['10.245.0.2/24', 'fd00:245::2/64'] })
    const i1 = await sb.addInterface({ srcName: `${fx.prefix}q`, addresses: ['10.246.0.2/24'] })
    expect([i0.dstName, i1.dstName]).toEqual(['eth0', 'eth1'])
    const v6 = (await sb.addresses())
      .find((l) => l.ifname === 'eth0')
      ?.addr_info.find((a) => a.family === 'inet6' && a.scope === 'global')
    expect(v6).toMatchObject({ local: 'fd00:245::2', prefixlen: 64, nodad: true })
    expect(await sb.getSysctls(['net/ipv6/conf/lo/disable_ipv6', 'net/ipv6/conf/eth1/disable_ipv6'])).toEqual({
      'net/ipv6/conf/lo/disable_ipv6': '0',
      'net/ipv6/conf/eth1/disable_ipv6': '1',
    })
    await sb.setGateway6('fd00:245::1')
    expect(await ipJson(sb.key, ['-6', 'route', 'show', 'default'])).toEqual([
      expect.objectContaining({ dst: 'default', gateway: 'fd00:245::1' }),
    ])
    await sb.removeInterface('eth0')
    expect(await sb.getSysctls(['net/ipv6/conf/lo/disable_ipv6'])).toEqual({ 'net/ipv6/conf/lo/disable_ipv6': '1' })
    expect((await o.host.link(`${fx.prefix}n`))?.ifname).toBe(`${fx.prefix}n`)
    expect(sb.interfaces.map((i) => i.dstName)).toEqual(['eth1'])
    // the counter goes on: the next interface is eth2
    const i2 = await sb.addInterface({ srcName: `${fx.prefix}n`, addresses: ['10.247.0.2/24'] })
    expect(i2.dstName).toBe('eth2')

    // after a "restart": a new Osl opens the sandbox and recovers names, addresses, gateway and counters
    await sb.addInterface({ bridge: true, dstPrefix: 'br' })
    const o2 = osl({ hostNetns: host })()
    fx.onCleanup(async () => await o2.close())
    const again = await o2.openSandbox(sb.key, { srcNames: { eth2: `${fx.prefix}n` } })
    const rows = again.interfaces.map((i) => [i.dstName, i.srcName, i.bridge, i.addresses])
    expect(rows.sort((x, y) => String(x[0]).localeCompare(String(y[0])))).toEqual([
      ['br0', undefined, true, []],
      ['eth1', undefined, false, ['10.246.0.2/24']],
      ['eth2', `${fx.prefix}n`, false, ['10.247.0.2/24']],
    ])
    expect(again.gateway6).toBe(undefined) // its route went with eth0
    const i3 = await again.addInterface({ veth: { hostName: `${fx.prefix}r` }, addresses: ['10.234.0.2/24'] })
    expect(i3.dstName).toBe('eth3')
    await again.removeInterface('eth2')
    expect((await o.host.link(`${fx.prefix}n`))?.ifname).toBe(`${fx.prefix}n`)
  })

  it('rolls back a failed attach: no link, address or route left behind', async () => {
    const { host, o } = await setup()
    await o.host.createBridge({ name: 'br0', addresses: ['10.250.0.1/24'] })
    const sb = await o.createSandbox(`${fx.prefix}-srb`)
    const hostBefore = await snapshot(host, fx.prefix)
    const sbBefore = await sb.info()

    // the static route's next hop is not reachable: fails after the move, the addresses and the default route
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: `${fx.prefix}h`, peerName: `${fx.prefix}p`, master: 'br0' })
    tx.on(sb).addInterface({ srcName: `${fx.prefix}p`, addresses: ['10.250.0.2/24'] })
    tx.on(sb).setGateway('10.250.0.1')
    tx.on(sb).addStaticRoute({ destination: '10.251.0.0/16', nextHop: '10.99.0.1' })
    await expect(tx.commit()).rejects.toBeInstanceOf(GatewayUnreachableError)

    expect(await snapshot(host, fx.prefix)).toEqual(hostBefore)
    expect(await sb.info()).toEqual(sbBefore)
    expect(sb.interfaces).toEqual([])
    expect(sb.gateway).toBeUndefined()

    // a failing host-side step (veth name taken) leaves the existing link alone and nothing else
    await o.host.createVeth({ name: `${fx.prefix}t`, peerName: `${fx.prefix}u` })
    const mid = await snapshot(host, fx.prefix)
    await expect(o.host.createVeth({ name: `${fx.prefix}t`, peerName: `${fx.prefix}v` })).rejects.toBeInstanceOf(
      LinkExistsError,
    )
    expect(await snapshot(host, fx.prefix)).toEqual(mid)

    // moving a link that is not there
    await expect(sb.addInterface({ srcName: `${fx.prefix}zz` })).rejects.toBeInstanceOf(LinkNotFoundError)
    expect(sb.interfaces).toEqual([])
    // the failed name is reused
    await o.host.createVeth({ name: `${fx.prefix}k`, peerName: `${fx.prefix}l` })
    expect((await sb.addInterface({ srcName: `${fx.prefix}l` })).dstName).toBe('eth0')
  })

  it('refuses an address that conflicts with a route, and a gateway without a direct route', async () => {
    const { host, o } = await setup()
    const sb = await o.createSandbox(`${fx.prefix}-scf`)
    await o.host.createVeth({ name: `${fx.prefix}a`, peerName: `${fx.prefix}b` })
    await o.host.createVeth({ name: `${fx.prefix}c`, peerName: `${fx.prefix}d` })
    await sb.addInterface({ srcName: `${fx.prefix}b`, addresses: ['10.252.0.2/24'] })
    await expect(sb.addInterface({ srcName: `${fx.prefix}d`, addresses: ['10.252.0.3/25'] })).rejects.toBeInstanceOf(
      RouteConflictError,
    )
    expect((await o.host.link(`${fx.prefix}d`))?.ifname).toBe(`${fx.prefix}d`) // still in the host
    await expect(sb.setGateway('10.253.0.1')).rejects.toBeInstanceOf(GatewayUnreachableError)
    expect(await ipJson(sb.key, ['route', 'show', 'default'])).toEqual([])
    expect(host).toBeTruthy()
  })

  it('invalid input gives typed errors and leaves no state', async () => {
    const { host, o } = await setup()
    const sb = await o.createSandbox(`${fx.prefix}-siv`)
    const before = await snapshot(host, fx.prefix)
    const sbBefore = await sb.info()
    await expect(o.host.createVeth({ name: 'a-name-that-is-too-long', peerName: 'p' })).rejects.toBeInstanceOf(
      InvalidInterfaceNameError,
    )
    await expect(o.host.createVeth({ name: 'bad name', peerName: 'p' })).rejects.toBeInstanceOf(
      InvalidInterfaceNameError,
    )
    await expect(o.host.createVeth({ name: 'ok0', peerName: 'p;rm' })).rejects.toBeInstanceOf(InvalidInterfaceNameError)
    await expect(o.host.createBridge({ name: 'br9', mac: '01:00:5e:00:00:01' })).rejects.toBeInstanceOf(InvalidMacError)
    await expect(o.host.createBridge({ name: 'br9', mtu: 10 })).rejects.toBeInstanceOf(InvalidMtuError)
    await expect(o.host.createBridge({ name: 'br9', addresses: ['10.0.0.300/24'] })).rejects.toBeInstanceOf(
      InvalidAddressError,
    )
    // a bad address late in an attach: nothing queued ran
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: `${fx.prefix}h`, peerName: `${fx.prefix}p` })
    expect(() => tx.on(sb).addInterface({ srcName: `${fx.prefix}p`, addresses: ['10.0.0.1'] })).toThrow(
      InvalidAddressError,
    )
    tx.discard()
    await expect(o.createSandbox('bad/key')).rejects.toMatchObject({ code: 'ERR_OSL_INVALID_OPTION' })
    await expect(o.netns(`${fx.prefix}-nope`).links()).rejects.toBeInstanceOf(NamespaceNotFoundError)
    // a host namespace that does not exist, through the resident helper and through a launch
    for (const residentHost of [true, false]) {
      const bad = osl({ hostNetns: `${fx.prefix}-gone`, residentHost })()
      await expect(bad.host.createBridge({ name: 'br7' })).rejects.toBeInstanceOf(NamespaceNotFoundError)
      await bad.close()
    }
    expect(await snapshot(host, fx.prefix)).toEqual(before)
    expect(await sb.info()).toEqual(sbBefore)
  })

  it('gc after kill -9 in the middle of a sandbox setup leaves nothing behind', async () => {
    const host = await fx.add('host')
    const before = await snapshot(host, fx.prefix)
    // the child is a plain Node process: it uses the built package (pnpm build runs before the tests)
    const src = new URL('../dist/index.js', import.meta.url).pathname
    expect(existsSync(src), 'build @cnm/osl first (pnpm build)').toBe(true)
    // the child creates sandboxes and attaches veths until killed; it reports progress on stdout
    const script = `
      const { osl } = await import(${JSON.stringify(src)});
      const o = osl({ hostNetns: ${JSON.stringify(host)} })();
      await o.host.createBridge({ name: '${fx.prefix}br', addresses: ['10.254.0.1/24'] });
      for (let i = 0; ; i++) {
        const sb = await o.createSandbox('${fx.prefix}-sk' + i);
        const tx = o.transaction();
        tx.on(o.host).createVeth({ name: '${fx.prefix}h' + i, peerName: '${fx.prefix}p' + i, master: '${fx.prefix}br' });
        tx.on(sb).addInterface({ srcName: '${fx.prefix}p' + i, addresses: ['10.254.' + (1 + (i >> 8)) + '.' + (i & 255) + '/16'] });
        await tx.commit();
        // half-done setups: a veth that never gets moved
        await o.host.createVeth({ name: '${fx.prefix}x' + i, peerName: '${fx.prefix}y' + i });
        process.stdout.write('.');
      }`
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let dots = 0
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        dots += d.toString().length
        if (dots >= 3) resolve()
      })
      child.on('exit', () => reject(new Error(`child exited early: ${err}`)))
    })
    child.kill('SIGKILL')
    await new Promise((r) => child.once('exit', r))

    const leftover = await snapshot(host, fx.prefix)
    const sandboxes = leftover.netns.filter((n) => n !== host)
    expect(sandboxes.length).toBeGreaterThanOrEqual(3)
    expect(leftover.links.length).toBeGreaterThan(before.links.length)

    const o = osl({ hostNetns: host })()
    const res = await o.gc({ prefix: `${fx.prefix}-s`, linkPrefix: fx.prefix })
    expect(res.namespaces).toEqual(sandboxes)
    expect(res.links.length).toBeGreaterThan(0)
    expect(await snapshot(host, fx.prefix)).toEqual(before)
    await o.close()
  })

  it('resident host helper: same results, fewer launches, rollback still works', async () => {
    const { host, o } = await setup()
    await o.host.createBridge({ name: 'br0', addresses: ['10.255.0.1/24'] })
    const launches0 = o.stats.launches
    for (let i = 0; i < 3; i++) {
      const sb = await o.createSandbox(`${fx.prefix}-sr${i}`)
      const tx = o.transaction()
      tx.on(o.host).createVeth({ name: `${fx.prefix}h${i}`, peerName: `${fx.prefix}p${i}`, master: 'br0' })
      tx.on(sb).addInterface({ srcName: `${fx.prefix}p${i}`, addresses: [`10.255.0.${i + 2}/24`] })
      tx.on(sb).setGateway('10.255.0.1')
      await tx.commit()
    }
    expect(o.stats.launches - launches0).toBe(0) // host side through the helper, inside over rtnetlink
    const ports = (await o.host.links()).filter((l) => l.master === 'br0').map((l) => l.ifname)
    expect(ports.sort()).toEqual([0, 1, 2].map((i) => `${fx.prefix}h${i}`))
    const before = await snapshot(host, fx.prefix)
    await expect(o.host.createVeth({ name: `${fx.prefix}h0`, peerName: 'zz' })).rejects.toBeInstanceOf(LinkExistsError)
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: `${fx.prefix}q`, peerName: `${fx.prefix}w`, master: 'br0' })
    tx.on(o.host).setLink('nosuchlink0', { up: true })
    await expect(tx.commit()).rejects.toBeInstanceOf(LinkNotFoundError)
    expect(await snapshot(host, fx.prefix)).toEqual(before)
  })

  it('concurrent attaches (and one that fails) do not disturb each other', async () => {
    const { host, o } = await setup()
    await o.host.createBridge({ name: 'br0', addresses: ['10.236.0.1/24'] })
    const attach = async (i: number): Promise<string> => {
      const sb = await o.createSandbox(`${fx.prefix}-sp${i}`)
      const tx = o.transaction()
      tx.on(sb).addInterface({
        veth: { hostName: `${fx.prefix}p${i}`, master: 'br0' },
        addresses: [`10.236.0.${i + 2}/24`],
      })
      tx.on(o.host).setLink(`${fx.prefix}p${i}`, { hairpin: i !== 3 }) // bridge-port option: an ip line
      // the fourth one fails after its veth exists: next hop outside every connected route
      if (i === 3) tx.on(sb).addStaticRoute({ destination: '10.235.0.0/16', nextHop: '10.99.9.9' })
      else tx.on(sb).setGateway('10.236.0.1')
      await tx.commit()
      return sb.key
    }
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => attach(i)))
    expect(
      results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason as unknown),
    ).toEqual([expect.any(GatewayUnreachableError)])
    const ports = (await o.host.links())
      .filter((l) => l.master === 'br0')
      .map((l) => l.ifname)
      .sort()
    expect(ports).toEqual([0, 1, 2, 4, 5, 6, 7, 8, 9].map((i) => `${fx.prefix}p${i}`).sort())
    const hairpin = JSON.parse(
      await run('ip', ['-n', host, '-d', '-json', 'link', 'show', `${fx.prefix}p0`]),
    ) as Array<{
      linkinfo?: { info_slave_data?: { hairpin?: boolean } }
    }>
    expect(hairpin[0]?.linkinfo?.info_slave_data?.hairpin).toBe(true)
    const sb3 = await o.openSandbox(`${fx.prefix}-sp3`)
    expect(sb3.interfaces).toEqual([]) // the failed attach left nothing inside
  })

  it('works with sandboxes outside /run/netns (nsenter path)', async () => {
    const dir = `/run/${fx.prefix}-dir`
    fx.onCleanup(async () => {
      await run('rm', ['-rf', dir])
    })
    const { o } = await setup({ netnsDir: dir })
    const sb = await o.createSandbox('c1')
    expect(sb.path).toBe(`${dir}/c1`)
    await o.host.createVeth({ name: `${fx.prefix}a`, peerName: `${fx.prefix}b` })
    await sb.addInterface({ srcName: `${fx.prefix}b`, addresses: ['10.248.0.2/24'] })
    expect((await sb.addresses()).find((l) => l.ifname === 'eth0')?.addr_info[0]?.local).toBe('10.248.0.2')
    await sb.removeInterface('eth0')
    expect((await o.host.link(`${fx.prefix}b`))?.ifname).toBe(`${fx.prefix}b`)
    await sb.destroy()
    expect(await o.listSandboxes()).toEqual([])
  })
})
