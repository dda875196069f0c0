import { spawn } from 'node:child_process'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { NetnsFixture, capturingLogger, netnsAvailable, nsExec, run } from '@cnm/test-utils'
import { bridgeFirewall, portAllocator, portMapper } from '../src/index.js'
import type { BridgeFirewall, PortAllocator, PortHolder, PortMapper, PortMapping } from '../src/index.js'
import { saveOf } from './helpers.js'

const SERVER = `
const net = require('net')
const port = Number(process.argv[1])
net.createServer((s) => s.end('hello ' + s.remoteAddress + '\\n')).listen(port, '0.0.0.0', () => console.log('ready'))
`
const CLIENT = `
const s = require('net').connect({ host: process.argv[1], port: Number(process.argv[2]) })
let d = ''
s.setTimeout(3000, () => { console.log('TIMEOUT'); process.exit(0) })
s.on('data', (x) => (d += x))
s.on('end', () => console.log('OK ' + d.trim()))
s.on('error', (e) => console.log('ERR ' + e.code))
`

/** Starts a node process in a namespace and waits for its "ready" line; killed by PID at cleanup. */
async function startInNs(fx: NetnsFixture, ns: string, script: string, args: string[]): Promise<() => Promise<void>> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const pid = child.pid
  if (pid === undefined) throw new Error('spawn failed')
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let stopped = false
  const stop = async (): Promise<void> => {
    if (stopped) return
    stopped = true
    if (child.exitCode === null && child.signalCode === null) process.kill(pid, 'SIGKILL')
    await exited
  }
  fx.onCleanup(stop)
  await new Promise<void>((resolve, reject) => {
    let out = ''
    let errOut = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('ready')) resolve()
    })
    child.stderr.on('data', (d: Buffer) => (errOut += d.toString()))
    child.once('exit', (code) => reject(new Error(`process exited ${code}: ${errOut}`)))
  })
  return stop
}

async function connect(ns: string, host: string, port: number): Promise<string> {
  return (await run('ip', ['netns', 'exec', ns, process.execPath, '-e', CLIENT, host, String(port)])).trim()
}

/** A veth from the host namespace's bridge into a new "container" namespace with address `ip`. */
async function container(fx: NetnsFixture, host: string, name: string, ip: string): Promise<string> {
  const ns = await fx.add(name)
  const hostEnd = `${name}-h`
  await run('ip', ['-n', host, 'link', 'add', hostEnd, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns])
  await run('ip', ['-n', host, 'link', 'set', hostEnd, 'master', 'br0', 'up'])
  // what the bridge driver does in hairpin mode: a container may reach itself through the host
  await run('ip', ['-n', host, 'link', 'set', hostEnd, 'type', 'bridge_slave', 'hairpin', 'on'])
  await run('ip', ['-n', ns, 'addr', 'add', `${ip}/24`, 'dev', 'eth0'])
  await run('ip', ['-n', ns, 'link', 'set', 'eth0', 'up'])
  await run('ip', ['-n', ns, 'route', 'add', 'default', 'via', '10.77.0.1'])
  return ns
}

function mappingLines(save: string): string[] {
  return save.split('\n').filter((l) => l.includes('10.77.0.2') && !l.includes('10.77.0.0/24'))
}

describe.skipIf(!netnsAvailable())('PortMapper (real kernel)', () => {
  let fx: NetnsFixture
  let host: string
  let fw: BridgeFirewall
  let allocator: PortAllocator
  let mapper: PortMapper

  beforeEach(async () => {
    fx = new NetnsFixture('ipm')
    host = await fx.add('host')
    await run('ip', ['-n', host, 'link', 'add', 'br0', 'type', 'bridge'])
    await run('ip', ['-n', host, 'addr', 'add', '10.77.0.1/24', 'dev', 'br0'])
    await run('ip', ['-n', host, 'link', 'set', 'br0', 'up'])
    const logger = capturingLogger()
    fw = bridgeFirewall({ netns: host }, { logger })
    fx.onCleanup(() => fw.close())
    await fw.programBridgeNetwork({
      bridge: 'br0',
      subnet: '10.77.0.0/24',
      gateway: '10.77.0.1',
      enableIpForwarding: true,
    })
    allocator = portAllocator({ ephemeralRange: { start: 41000, end: 41009 } })
    mapper = portMapper({ bridge: 'br0' }, { logger, firewall: fw, allocator })
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('publishes a container port: loopback, bridge address and hairpin answer; unmap refuses; remap keeps the port', async () => {
    const c1 = await container(fx, host, 'c1', '10.77.0.2')
    const c2 = await container(fx, host, 'c2', '10.77.0.3')
    await startInNs(fx, c1, SERVER, ['8000'])
    const beforeMap = await saveOf(host)

    const [m] = await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 8000 }])
    expect(m).toMatchObject({ proto: 'tcp', hostIp: '0.0.0.0', hostPort: 41000, key: '0.0.0.0:41000/tcp' })
    const mapped = await saveOf(host)
    expect(mappingLines(mapped)).toEqual([
      '-A CNM -d 10.77.0.2/32 ! -i br0 -o br0 -p tcp -m tcp --dport 8000 -j ACCEPT',
      '-A CNM -p tcp -m tcp --dport 41000 -j DNAT --to-destination 10.77.0.2:8000',
      '-A CNM-POSTROUTING -s 10.77.0.2/32 -d 10.77.0.2/32 -p tcp -m tcp --dport 8000 -j MASQUERADE',
    ])

    // from the host: loopback (route_localnet + MASQUERADE) and the bridge address
    expect(await connect(host, '127.0.0.1', 41000)).toBe('OK hello 10.77.0.1')
    expect(await connect(host, '10.77.0.1', 41000)).toBe('OK hello 10.77.0.1')
    // hairpin: another container through the host address, and the container itself
    // (the bridge's conntrack, br_netfilter, un-NATs C1's direct reply, so C1 sees C2's own address)
    expect(await connect(c2, '10.77.0.1', 41000)).toBe('OK hello 10.77.0.3')
    expect(await connect(c1, '10.77.0.1', 41000)).toBe('OK hello 10.77.0.1')

    // leave: rules gone, connections refused, the port stays reserved for ep1
    await mapper.unmap('ep1')
    expect(await saveOf(host)).toBe(beforeMap)
    expect(await connect(host, '127.0.0.1', 41000)).toBe('ERR ECONNREFUSED')
    expect(await connect(host, '10.77.0.1', 41000)).toBe('ERR ECONNREFUSED')
    expect(allocator.isAllocated(undefined, 'tcp', 41000)).toBe(true)
    expect(mapper.reservations('ep1').map((x) => x.hostPort)).toEqual([41000])
    // another owner cannot take the reserved port meanwhile
    const other = await mapper.map('ep2', [{ proto: 'tcp', containerIp: '10.77.0.3', containerPort: 8000 }])
    expect(other[0]?.hostPort).toBe(41001)
    await mapper.release('ep2')

    // join again: the same host port
    const [again] = await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 8000 }])
    expect(again?.hostPort).toBe(41000)
    expect(await saveOf(host)).toBe(mapped)
    expect(await connect(host, '127.0.0.1', 41000)).toBe('OK hello 10.77.0.1')

    // delete: everything released, exactly once
    await mapper.release('ep1')
    expect(await saveOf(host)).toBe(beforeMap)
    expect(allocator.isAllocated(undefined, 'tcp', 41000)).toBe(false)
    const err = await mapper.release('ep1').catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_PORT_NOT_MAPPED')).toBe(true)
    expect(await connect(host, '127.0.0.1', 41000)).toBe('ERR ECONNREFUSED')
  })

  it('same host ip:port twice, unknown unmaps and invalid bindings are typed errors without state change', async () => {
    await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
    const state = await saveOf(host)
    const errors = await Promise.all([
      mapper
        .map('ep2', [{ proto: 'tcp', containerIp: '10.77.0.3', containerPort: 80, hostPort: 8080 }])
        .catch((e: unknown) => e),
      mapper
        .map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
        .catch((e: unknown) => e),
      mapper.unmap('nobody').catch((e: unknown) => e),
      mapper.release('nobody').catch((e: unknown) => e),
      mapper.unmapKey('0.0.0.0:9999/tcp').catch((e: unknown) => e),
      mapper
        .map('ep3', [{ proto: 'icmp' as 'tcp', containerIp: '10.77.0.4', containerPort: 80 }])
        .catch((e: unknown) => e),
      mapper.map('ep3', [{ proto: 'tcp', containerIp: '10.77.0.4', containerPort: 70000 }]).catch((e: unknown) => e),
      mapper
        .map('ep3', [{ proto: 'tcp', containerIp: '10.77.0.4', containerPort: 80, hostPort: 9000, hostPortEnd: 8000 }])
        .catch((e: unknown) => e),
      mapper.map('ep3', [{ proto: 'tcp', containerIp: 'not-an-ip', containerPort: 80 }]).catch((e: unknown) => e),
      mapper
        .map('ep3', [{ proto: 'tcp', containerIp: '10.77.0.4', containerPort: 80, hostIp: '::1' }])
        .catch((e: unknown) => e),
      // the second binding fails: the first one's port is released again, no rule written
      mapper
        .map('ep3', [
          { proto: 'udp', containerIp: '10.77.0.4', containerPort: 53, hostPort: 5353 },
          { proto: 'tcp', containerIp: '10.77.0.4', containerPort: 80, hostPort: 8080 },
        ])
        .catch((e: unknown) => e),
    ])
    expect(errors.map((e) => (isCnmError(e) ? e.code : String(e)))).toEqual([
      'ERR_PORT_ALREADY_ALLOCATED',
      'ERR_PORT_ALREADY_MAPPED',
      'ERR_PORT_NOT_MAPPED',
      'ERR_PORT_NOT_MAPPED',
      'ERR_PORT_NOT_MAPPED',
      'ERR_PORT_UNKNOWN_PROTOCOL',
      'ERR_PORT_INVALID_RANGE',
      'ERR_PORT_INVALID_RANGE',
      'ERR_IPTABLES_INVALID_OPTION',
      'ERR_IPTABLES_INVALID_OPTION',
      'ERR_PORT_ALREADY_ALLOCATED',
    ])
    expect((errors[0] as Error).message).toBe('Bind for 0.0.0.0:8080 failed: port is already allocated')
    expect(allocator.isAllocated(undefined, 'udp', 5353)).toBe(false)
    expect(await saveOf(host)).toBe(state)
    expect(mapper.mappings().map((m) => m.key)).toEqual(['0.0.0.0:8080/tcp'])

    // an endpoint without published ports: map/unmap/release still pair up, and change no rule
    expect(await mapper.map('quiet', [])).toEqual([])
    expect(await mapper.unmap('quiet')).toEqual([])
    expect(isCnmError(await mapper.unmap('quiet').catch((e: unknown) => e), 'ERR_PORT_NOT_MAPPED')).toBe(true)
    expect(await mapper.release('quiet')).toEqual([])
    expect(isCnmError(await mapper.release('quiet').catch((e: unknown) => e), 'ERR_PORT_NOT_MAPPED')).toBe(true)
    expect(await saveOf(host)).toBe(state)
  })

  it('keeps shared rules while another mapping needs them; UDP, SCTP and IPv6 rules', async () => {
    await fw.programBridgeNetwork({ bridge: 'br0', subnet: '10.77.0.0/24', subnet6: 'fd77::/64' })
    const base = await saveOf(host)
    const base6 = await saveOf(host, 6)
    // two host ports for one container port share the ACCEPT and MASQUERADE rules
    await mapper.map('a', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
    await mapper.map('b', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8081 }])
    await mapper.release('a')
    expect(mappingLines(await saveOf(host))).toEqual([
      '-A CNM -d 10.77.0.2/32 ! -i br0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT',
      '-A CNM -p tcp -m tcp --dport 8081 -j DNAT --to-destination 10.77.0.2:80',
      '-A CNM-POSTROUTING -s 10.77.0.2/32 -d 10.77.0.2/32 -p tcp -m tcp --dport 80 -j MASQUERADE',
    ])
    await mapper.release('b')
    expect(await saveOf(host)).toBe(base)

    const ms = await mapper.map('c', [
      { proto: 'udp', containerIp: '10.77.0.2', containerPort: 53, hostIp: '127.0.0.1', hostPort: 5353 },
      { proto: 'sctp', containerIp: '10.77.0.2', containerPort: 9, hostPort: 9009 },
      { proto: 'tcp', containerIp: 'fd77::2', containerPort: 80, hostPort: 8080 },
    ])
    expect(ms.map((m) => m.key)).toEqual(['127.0.0.1:5353/udp', '0.0.0.0:9009/sctp', '[::]:8080/tcp'])
    const v4 = await saveOf(host)
    expect(v4).toContain('-A CNM -d 127.0.0.1/32 -p udp -m udp --dport 5353 -j DNAT --to-destination 10.77.0.2:53')
    expect(v4).toContain('-A CNM -p sctp -m sctp --dport 9009 -j DNAT --to-destination 10.77.0.2:9')
    expect(v4).toContain('-A CNM-POSTROUTING -p sctp -m sctp --sport 9 -j CHECKSUM --checksum-fill')
    const v6 = await saveOf(host, 6)
    expect(v6).toContain('-A CNM -p tcp -m tcp --dport 8080 -j DNAT --to-destination [fd77::2]:80')
    expect(v6).toContain('-A CNM -d fd77::2/128 ! -i br0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT')
    await mapper.release('c')
    expect(await saveOf(host, 6)).toBe(base6)
    // the resident writers acknowledged every write, SCTP rules included: each started once (restore + monitor)
    for (const family of [4, 6] as const) {
      const ipt = await fw.iptables(family)
      if (ipt !== undefined && (await ipt.backend()) === 'nft') expect(ipt.stats.writerLaunches).toBe(2)
    }
    // the SCTP checksum chain stays (empty) until cleanupAll
    expect(mappingLines(await saveOf(host))).toEqual([])
    await fw.cleanupAll()
    // only the FORWARD policy DROP that enableIpForwarding set remains
    expect(await saveOf(host)).toBe('*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT')
  })

  it('an injected port holder keeps the host port bound while mapped; a busy port fails the mapping', async () => {
    const c1 = await container(fx, host, 'c1', '10.77.0.2')
    await startInNs(fx, c1, SERVER, ['8000'])
    const held: number[] = []
    const holder: PortHolder = async (netns, spec) => {
      expect(netns).toBe(host)
      const stop = await startInNs(fx, host, SERVER, [String(spec.port)])
      held.push(spec.port)
      return {
        port: spec.port,
        close: async () => {
          await stop()
          held.splice(held.indexOf(spec.port), 1)
        },
      }
    }
    const holding = portMapper(
      { bridge: 'br0' },
      { logger: capturingLogger(), firewall: fw, allocator, holdPort: holder },
    )
    const [m] = await holding.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 8000, hostPort: 0 }])
    expect(held).toEqual([m?.hostPort])
    // DNAT wins over the local listener: the container answers
    expect(await connect(host, '127.0.0.1', m?.hostPort as number)).toBe('OK hello 10.77.0.1')
    await holding.unmap('ep1')
    expect(held).toEqual([])
    await holding.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 8000, hostPort: 0 }])
    expect(held).toEqual([m?.hostPort])
    await holding.release('ep1')
    expect(held).toEqual([])

    // someone else listens on 41005 in the host namespace: the holder cannot bind it
    await startInNs(fx, host, SERVER, ['41005'])
    const before = await saveOf(host)
    const err = await holding
      .map('ep2', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 8000, hostPort: 41005 }])
      .catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_PORT_ALREADY_ALLOCATED')).toBe(true)
    expect(allocator.isAllocated(undefined, 'tcp', 41005)).toBe(false)
    expect(await saveOf(host)).toBe(before)
  })

  it('a mapping and its removal each cost one write and no read (resident writer: no process at all)', async () => {
    const ipt = await fw.iptables(4)
    if (ipt === undefined) throw new Error('no IPv4 iptables')
    const before = ipt.stats
    const launches = fw.stats.launches
    for (let i = 0; i < 5; i++) {
      await mapper.map(`ep${i}`, [{ proto: 'tcp', containerIp: `10.77.0.${i + 2}`, containerPort: 80 }])
    }
    for (let i = 0; i < 5; i++) await mapper.unmap(`ep${i}`)
    for (let i = 0; i < 5; i++) await mapper.release(`ep${i}`)
    const after = ipt.stats
    expect(after.saves - before.saves).toBe(0)
    expect(after.restores - before.restores).toBe(10)
    if ((await ipt.backend()) === 'nft') {
      expect(after.residentRestores - before.residentRestores).toBe(10)
      // the writer started once (restore + monitor) for the whole run, if it was not running yet
      expect(fw.stats.launches - launches).toBeLessThanOrEqual(2)
    }
    expect(mappingLines(await saveOf(host))).toEqual([])
  })

  it("a rule deleted behind the mapper's back: unmap still succeeds and leaves the ruleset exact", async () => {
    const base = await saveOf(host)
    await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
    await nsExec(host, 'iptables', [
      '-t',
      'nat',
      '-D',
      'CNM',
      '-p',
      'tcp',
      '-m',
      'tcp',
      '--dport',
      '8080',
      '-j',
      'DNAT',
      '--to-destination',
      '10.77.0.2:80',
    ])
    await mapper.unmap('ep1')
    expect(await saveOf(host)).toBe(base)
    // and a rule flushed away is put back when the view is invalidated (e.g. after a firewall reload)
    await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
    const mapped = await saveOf(host)
    await nsExec(host, 'iptables', ['-t', 'nat', '-F', 'CNM'])
    fw.invalidate()
    await mapper.remapAll()
    expect(await saveOf(host)).toBe(mapped)
    await mapper.release('ep1')
    expect(await saveOf(host)).toBe(base)
  })

  it('adopt() takes back stored mappings after a restart; map() then publishes the same ports', async () => {
    const [m] = await mapper.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80 }])
    const [u] = await mapper.map('ep1b', [
      { proto: 'udp', containerIp: '10.77.0.2', containerPort: 53, hostPort: 5353 },
    ])
    const published = await saveOf(host)
    // "restart": a new allocator and mapper; the rules are still in the kernel
    const alloc2 = portAllocator({ ephemeralRange: { start: 41000, end: 41009 } })
    const m2 = portMapper({ bridge: 'br0' }, { logger: capturingLogger(), firewall: fw, allocator: alloc2 })
    expect(await m2.adopt('ep1', [m as PortMapping])).toEqual([m])
    expect(await m2.adopt('ep1', [m as PortMapping])).toEqual([m]) // idempotent
    expect(alloc2.isAllocated(undefined, 'tcp', m?.hostPort as number)).toBe(true)
    expect(m2.mappings('ep1')).toEqual([])
    expect(m2.reservations('ep1')).toEqual([m])
    // the ephemeral binding the owner asked for originally gets its old port back
    expect(await m2.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80 }])).toEqual([m])
    // another owner cannot adopt a port someone holds: all or nothing
    const free = { proto: 'tcp' as const, containerIp: '10.77.0.3', containerPort: 81, hostPort: 9191 }
    const err = await m2
      .adopt('other', [free, { ...(m as PortMapping), containerIp: '10.77.0.3' }])
      .catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_PORT_ALREADY_ALLOCATED')).toBe(true)
    expect(alloc2.isAllocated(undefined, 'tcp', 9191)).toBe(false)
    expect(m2.reservations('other')).toEqual([])
    // adopt needs exact ports
    const ranged = await m2
      .adopt('x', [{ proto: 'tcp', containerIp: '10.77.0.4', containerPort: 80 }])
      .catch((e: unknown) => e)
    expect(isCnmError(ranged, 'ERR_PORT_INVALID_RANGE')).toBe(true)
    await m2.adopt('ep1b', [u as PortMapping])
    await m2.map('ep1b', [{ proto: 'udp', containerIp: '10.77.0.2', containerPort: 53, hostPort: 5353 }])
    expect(await saveOf(host)).toBe(published)
    await m2.release('ep1')
    await m2.release('ep1b')
    expect(mappingLines(await saveOf(host))).toEqual([])
  })

  it('reserve() books ports without rules; release({ keys }) frees single reservations', async () => {
    const base = await saveOf(host)
    const r = await mapper.reserve('ep1', [
      { proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80 },
      { proto: 'tcp', containerIp: '10.77.0.2', containerPort: 443, hostPort: 8443 },
    ])
    expect(r.map((x) => x.key)).toEqual(['0.0.0.0:41000/tcp', '0.0.0.0:8443/tcp'])
    expect(await saveOf(host)).toBe(base)
    expect(mapper.mappings('ep1')).toEqual([])
    // a failing reservation takes nothing
    const err = await mapper
      .reserve('ep2', [
        { proto: 'tcp', containerIp: '10.77.0.3', containerPort: 80, hostPort: 8000 },
        { proto: 'tcp', containerIp: '10.77.0.3', containerPort: 443, hostPort: 8443 },
      ])
      .catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_PORT_ALREADY_ALLOCATED')).toBe(true)
    expect(allocator.isAllocated(undefined, 'tcp', 8000)).toBe(false)
    // map() of exact ports reuses the reservations
    const mapped = await mapper.map('ep1', [
      { proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 41000 },
      { proto: 'tcp', containerIp: '10.77.0.2', containerPort: 443, hostPort: 8443 },
    ])
    expect(mapped).toEqual(r)
    await mapper.unmap('ep1')
    expect(await mapper.release('ep1', { keys: ['0.0.0.0:8443/tcp', '0.0.0.0:1/tcp'] })).toEqual([r[1]])
    expect(allocator.isAllocated(undefined, 'tcp', 8443)).toBe(false)
    expect(mapper.reservations('ep1')).toEqual([r[0]])
    await mapper.release('ep1')
    expect(isCnmError(await mapper.release('ep1').catch((e: unknown) => e), 'ERR_PORT_NOT_MAPPED')).toBe(true)
    expect(await saveOf(host)).toBe(base)
  })

  it('closeHolders() closes the holders and keeps rules and reservations; unmap still removes the rules', async () => {
    const closed: number[] = []
    const holder: PortHolder = async (_netns, spec) => ({ port: spec.port, close: () => void closed.push(spec.port) })
    const holding = portMapper(
      { bridge: 'br0' },
      { logger: capturingLogger(), firewall: fw, allocator, holdPort: holder },
    )
    const base = await saveOf(host)
    await holding.map('ep1', [{ proto: 'tcp', containerIp: '10.77.0.2', containerPort: 80, hostPort: 8080 }])
    const mapped = await saveOf(host)
    await holding.closeHolders()
    expect(closed).toEqual([8080])
    expect(await saveOf(host)).toBe(mapped)
    expect(holding.mappings('ep1').map((m) => m.key)).toEqual(['0.0.0.0:8080/tcp'])
    expect(allocator.isAllocated(undefined, 'tcp', 8080)).toBe(true)
    await holding.closeHolders() // idempotent: nothing held any more
    expect(closed).toEqual([8080])
    await holding.release('ep1')
    expect(await saveOf(host)).toBe(base)
  })

  it('unpublishing a UDP mapping deletes its conntrack entries in the namespace (not with flushConntrack: none)', async () => {
    const count = async (port: number): Promise<number> => {
      const r = await run('ip', [
        'netns',
        'exec',
        host,
        'sh',
        '-c',
        `conntrack -L -p udp --orig-port-dst ${port} 2>&1 >/dev/null`,
      ])
      return Number(/(\d+) flow entries have been shown/.exec(r)?.[1] ?? NaN)
    }
    const send = async (ip: string, port: number): Promise<void> => {
      await run('ip', [
        'netns',
        'exec',
        host,
        process.execPath,
        '-e',
        `const s=require('dgram').createSocket('udp4');s.send('x',${port},'${ip}',()=>s.close())`,
      ])
    }
    await mapper.map('ep1', [{ proto: 'udp', containerIp: '10.77.0.2', containerPort: 53, hostPort: 5353 }])
    await send('127.0.0.1', 5353)
    await send('10.77.0.1', 5353)
    expect(await count(5353)).toBe(2)
    await mapper.unmap('ep1')
    expect(await count(5353)).toBe(0)

    const keep = portMapper(
      { bridge: 'br0', flushConntrack: 'none' },
      { logger: capturingLogger(), firewall: fw, allocator },
    )
    await keep.map('ep2', [{ proto: 'udp', containerIp: '10.77.0.3', containerPort: 53, hostPort: 5354 }])
    await send('127.0.0.1', 5354)
    await keep.release('ep2')
    expect(await count(5354)).toBe(1)
    expect(() =>
      portMapper(
        { bridge: 'br0', flushConntrack: 'tcp' as 'udp' },
        { logger: capturingLogger(), firewall: fw, allocator },
      ),
    ).toThrow(/flushConntrack/)
    // flushConntrack() on its own, for any protocol
    expect(await fw.flushConntrack([{ family: 4, proto: 'udp', hostPort: 5354 }])).toBe(1)
    expect(await count(5354)).toBe(0)
  })
})
