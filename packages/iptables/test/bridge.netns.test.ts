import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { NetnsFixture, capturingLogger, netnsAvailable, nsExec, run } from '@cnm/test-utils'
import { bridgeFirewall } from '../src/index.js'
import type { BridgeFirewall, BridgeNetworkConfig } from '../src/index.js'
import { saveOf } from './helpers.js'

const SETUP_FILTER = [
  ':CNM - [0:0]',
  ':CNM-FORWARD - [0:0]',
  ':CNM-ISOLATION-STAGE-1 - [0:0]',
  ':CNM-ISOLATION-STAGE-2 - [0:0]',
  ':CNM-USER - [0:0]',
  '-A FORWARD -j CNM-USER',
  '-A FORWARD -j CNM-ISOLATION-STAGE-1',
  '-A FORWARD -j CNM-FORWARD',
  '-A CNM-ISOLATION-STAGE-1 -j RETURN',
  '-A CNM-ISOLATION-STAGE-2 -j RETURN',
  '-A CNM-USER -j RETURN',
]
const SETUP_NAT = [
  ':CNM - [0:0]',
  ':CNM-POSTROUTING - [0:0]',
  '-A PREROUTING -m addrtype --dst-type LOCAL -j CNM',
  '-A OUTPUT -m addrtype --dst-type LOCAL -j CNM',
  '-A POSTROUTING -j CNM-POSTROUTING',
]

function lines(save: string): string[] {
  return save.split('\n').filter((l) => l.startsWith('-A') || (l.startsWith(':') && !/^:[A-Z]+ (ACCEPT|DROP) /.test(l)))
}

describe.skipIf(!netnsAvailable())('BridgeFirewall (real kernel)', () => {
  let fx: NetnsFixture
  let ns: string
  let fw: BridgeFirewall

  beforeEach(async () => {
    fx = new NetnsFixture('ibr')
    ns = await fx.add('host')
    for (const br of ['br-a', 'br-b', 'br.c']) await run('ip', ['-n', ns, 'link', 'add', br, 'type', 'bridge'])
    fw = bridgeFirewall({ netns: ns }, { logger: capturingLogger() })
    fx.onCleanup(() => fw.close())
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  it('sets up the chains exactly, idempotently, and cleanupAll leaves foreign rules alone', async () => {
    // a Docker-like ruleset and a look-alike chain that is not ours
    await nsExec(ns, 'iptables', ['-N', 'DOCKER-USER'])
    await nsExec(ns, 'iptables', ['-A', 'DOCKER-USER', '-j', 'RETURN'])
    await nsExec(ns, 'iptables', ['-A', 'FORWARD', '-j', 'DOCKER-USER'])
    await nsExec(ns, 'iptables', ['-A', 'FORWARD', '-o', 'docker0', '-j', 'ACCEPT'])
    await nsExec(ns, 'iptables', ['-N', 'CNM-OTHER'])
    await nsExec(ns, 'iptables', [
      '-t',
      'nat',
      '-A',
      'POSTROUTING',
      '-s',
      '172.17.0.0/16',
      '!',
      '-o',
      'docker0',
      '-j',
      'MASQUERADE',
    ])
    const before4 = await saveOf(ns, 4)
    const before6 = await saveOf(ns, 6)

    const r = await fw.setupBridgeChains()
    expect(r.applied[4]).toBeGreaterThan(0)
    const v4 = await saveOf(ns, 4)
    const filterPart = v4.slice(v4.indexOf('*filter'), v4.indexOf('COMMIT', v4.indexOf('*filter')))
    const natPart = v4.slice(v4.indexOf('*nat'), v4.indexOf('COMMIT', v4.indexOf('*nat')))
    // our jumps sit at the head of FORWARD, ahead of Docker's
    expect(lines(filterPart).filter((l) => l.startsWith('-A FORWARD'))).toEqual([
      '-A FORWARD -j CNM-USER',
      '-A FORWARD -j CNM-ISOLATION-STAGE-1',
      '-A FORWARD -j CNM-FORWARD',
      '-A FORWARD -j DOCKER-USER',
      '-A FORWARD -o docker0 -j ACCEPT',
    ])
    expect(lines(filterPart).filter((l) => l.includes('CNM') && !l.includes('OTHER'))).toEqual(SETUP_FILTER)
    expect(lines(natPart).filter((l) => l.includes('CNM'))).toEqual(SETUP_NAT)
    expect(lines(await saveOf(ns, 6)).filter((l) => l.includes('CNM'))).toEqual([...SETUP_FILTER, ...SETUP_NAT])

    const again = await fw.setupBridgeChains()
    expect(again.applied).toEqual({ 4: 0, 6: 0 })
    expect(await saveOf(ns, 4)).toBe(v4)

    await fw.cleanupAll()
    expect(await saveOf(ns, 4)).toBe(before4)
    expect(await saveOf(ns, 6)).toBe(before6)
    expect((await fw.cleanupAll()).applied).toEqual({ 4: 0, 6: 0 })
  })

  it('programs two networks (IPv4+IPv6, internal, ICC off) exactly and removes them exactly', async () => {
    const before4 = await saveOf(ns, 4)
    const before6 = await saveOf(ns, 6)
    await fw.setupBridgeChains()
    const setup4 = await saveOf(ns, 4)
    const setup6 = await saveOf(ns, 6)

    const a: BridgeNetworkConfig = {
      bridge: 'br-a',
      subnet: '10.10.0.1/24',
      gateway: '10.10.0.1',
      subnet6: 'fd10::/64',
      gateway6: 'fd10::1',
    }
    const b: BridgeNetworkConfig = { bridge: 'br-b', subnet: '10.11.0.0/24', icc: false, internal: true }
    await fw.programBridgeNetwork(a)
    const onlyA4 = await saveOf(ns, 4)
    await fw.programBridgeNetwork(b)
    const both4 = await saveOf(ns, 4)
    const both6 = await saveOf(ns, 6)
    expect(lines(both4).filter((l) => !SETUP_FILTER.includes(l) && !SETUP_NAT.includes(l))).toEqual([
      '-A CNM-FORWARD -o br-a -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
      '-A CNM-FORWARD -o br-a -j CNM',
      '-A CNM-FORWARD -i br-a ! -o br-a -j ACCEPT',
      '-A CNM-FORWARD -i br-a -o br-a -j ACCEPT',
      '-A CNM-FORWARD -i br-b -o br-b -j DROP',
      '-A CNM-ISOLATION-STAGE-1 ! -s 10.11.0.0/24 -o br-b -j DROP',
      '-A CNM-ISOLATION-STAGE-1 ! -d 10.11.0.0/24 -i br-b -j DROP',
      '-A CNM-ISOLATION-STAGE-1 -i br-a ! -o br-a -j CNM-ISOLATION-STAGE-2',
      '-A CNM-ISOLATION-STAGE-2 -o br-a -j DROP',
      '-A CNM-POSTROUTING -s 10.10.0.0/24 ! -o br-a -j MASQUERADE',
      '-A CNM-POSTROUTING -o br-a -m addrtype --src-type LOCAL -j MASQUERADE',
    ])
    expect(lines(both6).filter((l) => l.includes('fd10::') || l.includes('br-b'))).toEqual([
      '-A CNM-POSTROUTING -s fd10::/64 ! -o br-a -j MASQUERADE',
    ])
    expect(await nsExec(ns, 'sysctl', ['-n', 'net/ipv4/conf/br-a/route_localnet'])).toBe('1\n')

    // programming again changes nothing
    expect((await fw.programBridgeNetwork(a)).applied).toEqual({ 4: 0, 6: 0 })
    expect((await fw.programBridgeNetwork(b)).applied).toEqual({ 4: 0, 6: 0 })
    expect(await saveOf(ns, 4)).toBe(both4)

    // flipping ICC swaps the rule
    await fw.programBridgeNetwork({ ...a, icc: false })
    const flipped = lines(await saveOf(ns, 4))
    expect(flipped).toContain('-A CNM-FORWARD -i br-a -o br-a -j DROP')
    expect(flipped).not.toContain('-A CNM-FORWARD -i br-a -o br-a -j ACCEPT')
    await fw.programBridgeNetwork(a)

    await fw.removeBridgeNetwork(b)
    expect(lines(await saveOf(ns, 4)).sort()).toEqual(lines(onlyA4).sort())
    await fw.removeBridgeNetwork(a)
    expect(await saveOf(ns, 4)).toBe(setup4)
    expect(await saveOf(ns, 6)).toBe(setup6)
    expect((await fw.removeBridgeNetwork(a)).applied).toEqual({ 4: 0, 6: 0 })
    await fw.cleanupAll()
    expect(await saveOf(ns, 4)).toBe(before4)
    expect(await saveOf(ns, 6)).toBe(before6)
  })

  it('without hairpin: loopback excluded from the OUTPUT jump, RETURN for bridge-originated traffic', async () => {
    const noHairpin = bridgeFirewall({ netns: ns, hairpin: false, chainPrefix: 'TST' }, { logger: capturingLogger() })
    fx.onCleanup(() => noHairpin.close())
    await noHairpin.programBridgeNetwork({ bridge: 'br.c', subnet: '10.12.0.0/16', hostIp: '192.0.2.1' })
    const l = lines(await saveOf(ns, 4))
    expect(l).toContain('-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j TST')
    expect(l).toContain('-A TST -i br.c -j RETURN')
    expect(l).toContain('-A TST-POSTROUTING -s 10.12.0.0/16 ! -o br.c -j SNAT --to-source 192.0.2.1')
    expect(l.some((x) => x.includes('--src-type LOCAL'))).toBe(false)
    expect(lines(await saveOf(ns, 6))).toContain('-A OUTPUT ! -d ::1/128 -m addrtype --dst-type LOCAL -j TST')
    await noHairpin.cleanupAll()
    expect(lines(await saveOf(ns, 4))).toEqual([])
  })

  it('enableIpForwarding switches forwarding on in the namespace and sets FORWARD policy DROP', async () => {
    expect(await nsExec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).toBe('0\n')
    await fw.programBridgeNetwork({ bridge: 'br-a', subnet: '10.10.0.0/24', enableIpForwarding: true })
    expect(await nsExec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).toBe('1\n')
    expect(await saveOf(ns, 4)).toContain(':FORWARD DROP')
  })

  it('enableForwarding (driver start): forwarding on; FORWARD policy DROP when IPv4 had to be switched on, always for IPv6', async () => {
    const r = await fw.enableForwarding({ ipv6: true })
    expect(r.enabled).toEqual({ 4: true, 6: true })
    expect(await nsExec(ns, 'sysctl', ['-n', 'net.ipv4.ip_forward'])).toBe('1\n')
    expect(await nsExec(ns, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).toBe('1\n')
    expect(await nsExec(ns, 'sysctl', ['-n', 'net.ipv6.conf.default.forwarding'])).toBe('1\n')
    expect(await saveOf(ns, 4)).toContain(':FORWARD DROP')
    expect(await saveOf(ns, 6)).toContain(':FORWARD DROP')
    expect((await fw.enableForwarding({ ipv6: true })).enabled).toEqual({ 4: false, 6: false })

    // forwarding already on: the IPv4 policy is left alone; without ipv6 ip6tables is not touched
    const other = await fx.add('fwd')
    await nsExec(other, 'sysctl', ['-q', '-w', 'net.ipv4.ip_forward=1'])
    const fw2 = bridgeFirewall({ netns: other, residentWriter: false }, { logger: capturingLogger() })
    fx.onCleanup(() => fw2.close())
    expect((await fw2.enableForwarding()).enabled).toEqual({ 4: false, 6: false })
    expect(await saveOf(other, 4)).not.toContain('DROP')
    expect(await saveOf(other, 6)).toBe('')
    expect(await nsExec(other, 'sysctl', ['-n', 'net.ipv6.conf.all.forwarding'])).toBe('0\n')
  })

  it('invalid input throws typed errors and changes nothing', async () => {
    await fw.programBridgeNetwork({ bridge: 'br-a', subnet: '10.10.0.0/24' })
    const before4 = await saveOf(ns, 4)
    const bad: Array<[BridgeNetworkConfig, string]> = [
      [{ bridge: 'br a', subnet: '10.20.0.0/24' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-abcdefghijklmnop', subnet: '10.20.0.0/24' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br/x', subnet: '10.20.0.0/24' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '10.20.0.0' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: 'fd00::/64' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '0.0.0.0/0' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '10.20.0.0/24', gateway: '10.21.0.1' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '10.20.0.0/24', hostIp: 'nope' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '10.20.0.0/24', subnet6: '10.0.0.0/8' }, 'ERR_IPTABLES_INVALID_OPTION'],
      [{ bridge: 'br-b', subnet: '10.20.0.0/24', icc: 'yes' as unknown as boolean }, 'ERR_IPTABLES_INVALID_OPTION'],
    ]
    for (const [cfg, code] of bad) {
      const err = await fw.programBridgeNetwork(cfg).catch((e: unknown) => e)
      expect(isCnmError(err, code), `${JSON.stringify(cfg)} → ${String(err)}`).toBe(true)
    }
    expect(() => bridgeFirewall({ netns: ns, chainPrefix: 'WAY-TOO-LONG' }, { logger: capturingLogger() })).toThrow(
      /chainPrefix/,
    )
    expect(() => bridgeFirewall({ netns: 'bad/ns' }, { logger: capturingLogger() })).toThrow(/netns/)
    expect(() =>
      bridgeFirewall({ netns: ns, residentWriter: 'yes' as unknown as boolean }, { logger: capturingLogger() }),
    ).toThrow(/residentWriter/)
    expect(() => bridgeFirewall({ netns: ns, residentIdleMs: -1 }, { logger: capturingLogger() })).toThrow(
      /residentIdleMs/,
    )
    // a missing bridge fails at the sysctl step, before any rule is written
    const err = await fw.programBridgeNetwork({ bridge: 'br-missing', subnet: '10.30.0.0/24' }).catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_IPTABLES_COMMAND')).toBe(true)
    expect(await saveOf(ns, 4)).toBe(before4)
  })
})
