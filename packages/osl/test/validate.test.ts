import { describe, expect, it } from 'vitest'
import {
  InvalidInterfaceNameError,
  InvalidMacError,
  InvalidMtuError,
  parseBatchOutput,
  splitJsonOutput,
  validateIfName,
  validateMac,
  validateMtu,
} from '../src/index.js'
import { toNetlinkOp } from '../src/netlink-ops.js'
import { routeArgs } from '../src/plan.js'
import { sysctlPath } from '../src/validate.js'

describe('interface names', () => {
  it('accepts kernel-valid names up to 15 bytes', () => {
    for (const n of ['eth0', 'veth1a2b3c4', 'br-0123456789ab', 'a', 'vx_1.100']) expect(validateIfName(n)).toBe(n)
  })
  it('rejects long, empty, odd or reserved names', () => {
    for (const n of [
      '',
      'x'.repeat(16),
      'has space',
      'a/b',
      'a:b',
      '-dash',
      '.dot',
      '..',
      'quote"',
      'dev',
      'ünï',
      42,
    ]) {
      expect(() => validateIfName(n), String(n)).toThrow(InvalidInterfaceNameError)
    }
  })
})

describe('MAC, MTU, sysctl keys', () => {
  it('normalises MACs and refuses multicast or zero', () => {
    expect(validateMac('02:42:AC:11:00:02')).toBe('02:42:ac:11:00:02')
    for (const m of ['01:00:5e:00:00:01', '00:00:00:00:00:00', '02:42:ac:11:00', 'zz:42:ac:11:00:02']) {
      expect(() => validateMac(m)).toThrow(InvalidMacError)
    }
  })
  it('MTU within 68..65535', () => {
    expect(validateMtu(1500)).toBe(1500)
    for (const m of [67, 65536, 1500.5, '1500']) expect(() => validateMtu(m)).toThrow(InvalidMtuError)
  })
  it('sysctl keys in dotted or slash form', () => {
    expect(sysctlPath('net.ipv4.ip_forward')).toBe('net/ipv4/ip_forward')
    expect(sysctlPath('net/ipv4/conf/eth0.100/forwarding')).toBe('net/ipv4/conf/eth0.100/forwarding')
    for (const k of ['', 'net/../../etc', 'net//x', 'a b']) expect(() => sysctlPath(k)).toThrow()
  })
})

describe('ip batch output', () => {
  it('assigns messages to the failed line', () => {
    const out = parseBatchOutput(1, '', 'RTNETLINK answers: File exists\nCommand failed -:3\n')
    expect(out).toMatchObject({ ok: false, failedIndex: 2, message: 'RTNETLINK answers: File exists' })
  })
  it('collects every failure under -force, and failures before any line', () => {
    const out = parseBatchOutput(1, '', 'a\nCommand failed -:1\nb\nCommand failed -:4\n')
    expect(out.failures).toEqual([
      { index: 0, message: 'a' },
      { index: 3, message: 'b' },
    ])
    expect(parseBatchOutput(255, '', 'Cannot open network namespace "x"\n')).toMatchObject({
      ok: false,
      failedIndex: -1,
    })
    expect(parseBatchOutput(0, 'x', '')).toMatchObject({ ok: true })
  })
  it('splits concatenated JSON values', () => {
    expect(splitJsonOutput('[{"a":"]"}]\n[]\n[{"b":[1,2]}]')).toEqual([[{ a: ']' }], [], [{ b: [1, 2] }]])
  })
})

describe('routes', () => {
  it('canonicalises destinations and families', () => {
    expect(routeArgs({ destination: 'default', gateway: '10.0.0.1' })).toBe('0.0.0.0/0 via 10.0.0.1')
    expect(routeArgs({ destination: 'default', gateway: 'fd00::1' })).toBe('::/0 via fd00::1')
    expect(routeArgs({ destination: '10.1.2.3/16', dev: 'eth0', scope: 'link', metric: 5 })).toBe(
      '10.1.0.0/16 dev eth0 scope link metric 5',
    )
    expect(() => routeArgs({ destination: '10.0.0.0/8' })).toThrow()
  })
  it('translates generated lines to rtnetlink ops, and leaves others to ip', () => {
    expect(toNetlinkOp('link set dev eth0 up')).toEqual(['up', 'eth0'])
    expect(toNetlinkOp('addr add fd00::2/64 dev eth0 nodad')).toEqual(['addr', 'eth0', 'fd00::2', '64', '1'])
    expect(toNetlinkOp('route add default via 10.0.0.1')).toEqual([
      'route',
      '',
      '0',
      '4',
      '10.0.0.1',
      '',
      'universe',
      '0',
    ])
    expect(toNetlinkOp('route add ::/0 via fd00::1')).toEqual(['route', '', '0', '6', 'fd00::1', '', 'universe', '0'])
    expect(toNetlinkOp('route add 10.9.0.0/16 dev eth0 scope link')).toEqual([
      'route',
      '10.9.0.0',
      '16',
      '4',
      '',
      'eth0',
      'link',
      '0',
    ])
    expect(toNetlinkOp('route add 10.9.0.0/16 dev eth0')).toEqual([
      'route',
      '10.9.0.0',
      '16',
      '4',
      '',
      'eth0',
      'link',
      '0',
    ])
    expect(toNetlinkOp('route add 10.9.0.0/16 via 10.0.0.1 metric 5')).toBeUndefined()
    expect(toNetlinkOp('link set dev eth0 down')).toBeUndefined()
    expect(
      toNetlinkOp(
        'link add name vh1 address 02:00:00:00:00:01 mtu 1450 master br0 up type veth peer name eth0 address 02:00:00:00:00:02 mtu 1450 netns /run/netns/sb',
      ),
    ).toEqual([
      'veth',
      'vh1',
      '02:00:00:00:00:01',
      '1450',
      'br0',
      '1',
      'eth0',
      '02:00:00:00:00:02',
      '1450',
      '/run/netns/sb',
    ])
    expect(toNetlinkOp('link add name vh1 type veth peer name vc1')).toEqual([
      'veth',
      'vh1',
      '',
      '',
      '',
      '0',
      'vc1',
      '',
      '',
      '',
    ])
    expect(toNetlinkOp('link add name br0 type bridge')).toBeUndefined()
    expect(toNetlinkOp('link add name vx0 up type vxlan id 42 dstport 4789 nolearning')).toBeUndefined()
    expect(toNetlinkOp('neigh replace 10.0.0.9 lladdr 02:00:00:00:00:09 dev eth0 nud permanent')).toBeUndefined()
  })
})

describe('native addon loading', () => {
  it('a missing addon is a typed error that says how to build it', async () => {
    const { loadNative } = await import('../src/native.js')
    const { NativeAddonMissingError } = await import('../src/index.js')
    let err: unknown
    try {
      loadNative('/nonexistent/cnm_osl.node')
    } catch (e) {
      err = e
    }
    expect(err).toBeInstanceOf(NativeAddonMissingError)
    expect((err as Error).message).toMatch(/build/)
    expect((err as { code: string }).code).toBe('ERR_OSL_NATIVE_MISSING')
  })
})
