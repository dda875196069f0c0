import { describe, expect, it } from 'vitest'
import { AbortError } from '@cnm/types'
import {
  EntryExistsError,
  GatewayUnreachableError,
  InvalidAddressError,
  InvalidInterfaceNameError,
  KernelError,
  LinkExistsError,
  NamespaceNotFoundError,
  RouteConflictError,
  osl,
  type Exec,
  type ExecResult,
  type NativeOps,
} from '../src/index.js'

interface Call {
  file: string
  args: readonly string[]
  lines: string[]
}

/** A fake Exec: records each launch; `respond` decides the result from the call. */
function fakeExec(respond: (c: Call) => Partial<ExecResult> = () => ({})): { exec: Exec; calls: Call[] } {
  const calls: Call[] = []
  const exec: Exec = async (file, args, options) => {
    const call = { file, args, lines: (options?.input ?? '').split('\n').filter((l) => l !== '') }
    calls.push(call)
    return { code: 0, stdout: '', stderr: '', ...respond(call) }
  }
  return { exec, calls }
}

function fakeNative(fail?: {
  op: number
  message: string
  code: string
}): NativeOps & { calls: Array<[string, unknown[]]> } {
  const calls: Array<[string, unknown[]]> = []
  return {
    calls,
    openSocket: async (...a) => {
      calls.push(['openSocket', a])
      return { fd: 99, port: 1234 }
    },
    createNetns: async (...a) => {
      calls.push(['createNetns', a])
    },
    sysctl: async (...a) => {
      calls.push(['sysctl', a])
      return (a[3] as string[]).map(() => '1')
    },
    unmount: async (...a) => {
      calls.push(['unmount', a])
    },
    connectSocket: async (...a) => {
      calls.push(['connectSocket', a])
      return { fd: 98, port: a[3] }
    },
    netlink: async (...a) => {
      calls.push(['netlink', a])
      if (fail !== undefined) {
        throw Object.assign(new Error(fail.message), { code: fail.code, index: fail.op })
      }
    },
  }
}

const failAt = (line: number, message: string) => ({
  code: 1,
  stderr: `${message}\nCommand failed -:${line}\n`,
})

describe('Transaction batching and rollback (fake exec)', () => {
  it('one launch per namespace side; ip -n for named namespaces', async () => {
    const { exec, calls } = fakeExec()
    const native = fakeNative()
    const o = osl({ hostNetns: 'hostns', residentHost: false, nativeNetlink: false })({ exec, native })
    const sb = await o.createSandbox('sb1')
    expect(native.calls[0]).toEqual(['createNetns', ['/run/netns/sb1', 1, ['net/ipv6/conf/all/disable_ipv6'], ['1']]])
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: 'vh1', peerName: 'vc1', master: 'br0', mtu: 1450 })
    const rec = tx.on(sb).addInterface({ srcName: 'vc1', addresses: ['10.0.0.2/24'], mac: '02:42:0A:00:00:02' })
    tx.on(sb).setGateway('10.0.0.1')
    await tx.commit()
    expect(calls.map((c) => [c.file, ...c.args])).toEqual([
      ['ip', '-n', 'hostns', '-batch', '-'],
      ['ip', '-n', 'sb1', '-batch', '-'],
    ])
    expect(calls[0]?.lines).toEqual([
      'link add name vh1 mtu 1450 master br0 up type veth peer name vc1 mtu 1450',
      'link set dev vc1 down netns /run/netns/sb1 name eth0 address 02:42:0a:00:00:02',
    ])
    expect(calls[1]?.lines).toEqual([
      'addr add 10.0.0.2/24 dev eth0',
      'link set dev eth0 up',
      'route add default via 10.0.0.1',
    ])
    expect(rec).toMatchObject({ srcName: 'vc1', dstName: 'eth0', addresses: ['10.0.0.2/24'] })
    expect(sb.interfaces).toEqual([rec])
    expect(sb.gateway).toBe('10.0.0.1')
    expect(o.stats).toMatchObject({ launches: 2, nativeCalls: 1 })
  })

  it('in-sandbox lines go over native rtnetlink when enabled', async () => {
    const { exec, calls } = fakeExec()
    const native = fakeNative()
    const o = osl({ residentHost: false })({ exec, native })
    const sb = await o.createSandbox('sb2')
    await sb.addInterface({
      veth: { hostName: 'vh2', master: 'br0' },
      addresses: ['10.0.0.2/24', 'fd00::2/64'],
      routes: ['10.9.0.0/16'],
    })
    await sb.setGateway('10.0.0.1')
    // no launch at all: the veth (host side, Node's own namespace) and the inside go over rtnetlink
    expect(calls).toEqual([])
    const nl = native.calls.filter(([k]) => k === 'netlink').map(([, a]) => a)
    expect(nl).toEqual([
      [null, [['veth', 'vh2', '', '', 'br0', '1', 'eth0', '', '', '/run/netns/sb2']]],
      [
        '/run/netns/sb2',
        [
          ['addr', 'eth0', '10.0.0.2', '24', '0'],
          ['addr', 'eth0', 'fd00::2', '64', '1'],
          ['up', 'eth0'],
          ['route', '10.9.0.0', '16', '4', '', 'eth0', 'link', '0'],
        ],
      ],
      ['/run/netns/sb2', [['route', '', '0', '4', '10.0.0.1', '', 'universe', '0']]],
    ])
    // IPv6 turned on for the interface and lo between the host batch and the addresses
    expect(native.calls.find(([k, a]) => k === 'sysctl' && (a[1] as string[]).length > 0)?.[1]).toEqual([
      '/run/netns/sb2',
      ['net/ipv6/conf/eth0/disable_ipv6', 'net/ipv6/conf/lo/disable_ipv6'],
      ['0', '0'],
      [],
    ])
  })

  it('a failing line rolls back the lines before it, in reverse, in one -force batch per namespace', async () => {
    const { exec, calls } = fakeExec((c) =>
      c.args.includes('sb3') && !c.args.includes('-force') ? failAt(3, 'Error: Nexthop has invalid gateway.') : {},
    )
    const rollbacks: string[] = []
    const o = osl({ hostNetns: 'h', residentHost: false, nativeNetlink: false })({ exec, native: fakeNative() })
    const sb = await o.createSandbox('sb3')
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: 'vh3', peerName: 'vc3' })
    tx.on(sb).addInterface({ srcName: 'vc3', addresses: ['10.1.0.2/24'] })
    tx.on(sb).addRoute({ destination: '10.2.0.0/16', gateway: '10.1.0.1' })
    tx.onRollback(() => rollbacks.push('hook'))
    const err = await tx.commit().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(GatewayUnreachableError)
    // sb3 lines: addr add (ok), link up (ok), route add (failed at line 3)
    expect(calls.slice(2).map((c) => [c.args.join(' '), c.lines])).toEqual([
      // in the sandbox: move the interface back (addresses go with the move)
      ['-n sb3 -force -batch -', ['link set dev eth0 down netns /run/netns/h name vc3']],
      ['-n h -force -batch -', ['link del dev vh3']],
    ])
    expect(rollbacks).toEqual(['hook'])
    expect(sb.interfaces).toEqual([])
    // the reserved name is free again
    const tx2 = o.transaction()
    expect(tx2.on(sb).addInterface({ srcName: 'vc9' }).dstName).toBe('eth0')
    tx2.discard()
  })

  it('maps kernel errors to typed errors with stderr kept', async () => {
    const { exec } = fakeExec((c) =>
      c.lines[0]?.startsWith('link add') === true
        ? failAt(1, 'RTNETLINK answers: File exists')
        : c.lines[0]?.startsWith('addr') === true
          ? failAt(1, 'RTNETLINK answers: File exists')
          : c.lines[0]?.startsWith('route') === true
            ? failAt(1, 'RTNETLINK answers: Operation not supported')
            : { code: 1, stderr: 'Cannot open network namespace "nope": No such file or directory\n' },
    )
    const o = osl({ residentHost: false, nativeNetlink: false })({ exec, native: fakeNative() })
    await expect(o.host.createVeth({ name: 'a', peerName: 'b' })).rejects.toBeInstanceOf(LinkExistsError)
    await expect(o.host.addAddress('a', '10.0.0.1/24')).rejects.toBeInstanceOf(EntryExistsError)
    const kerr = await o.host.addRoute({ destination: '10.5.0.0/16', dev: 'a' }).catch((e: unknown) => e)
    expect(kerr).toBeInstanceOf(KernelError)
    expect((kerr as KernelError).stderr).toContain('Operation not supported')
    expect((kerr as KernelError).cause).toBeInstanceOf(Error)
    await expect(o.netns('nope').setLinkUp('x')).rejects.toBeInstanceOf(NamespaceNotFoundError)
  })

  it('validates before queuing anything', async () => {
    const { exec, calls } = fakeExec()
    const o = osl()({ exec, native: fakeNative() })
    await expect(o.host.createVeth({ name: 'x'.repeat(16), peerName: 'p' })).rejects.toBeInstanceOf(
      InvalidInterfaceNameError,
    )
    await expect(o.host.createBridge({ name: 'br0', addresses: ['10.0.0.1/33'] })).rejects.toBeInstanceOf(
      InvalidAddressError,
    )
    await expect(o.host.addRoute({ destination: '10.0.0.0/8', gateway: 'fd00::1' })).rejects.toBeInstanceOf(
      InvalidAddressError,
    )
    const sb = await o.createSandbox('sbv')
    await expect(sb.setGateway('10.0.0.1')).rejects.toBeInstanceOf(GatewayUnreachableError)
    expect(calls).toEqual([])
  })

  it('route conflicts are checked against the sandbox’s routes', async () => {
    const { exec } = fakeExec()
    const o = osl({ residentHost: false })({ exec, native: fakeNative() })
    const sb = await o.createSandbox('sbc')
    await sb.addInterface({ veth: { hostName: 'h1' }, addresses: ['10.3.0.2/24'] })
    await sb.addStaticRoute({ destination: '192.168.0.0/16', nextHop: '10.3.0.1' })
    await expect(sb.addInterface({ veth: { hostName: 'h2' }, addresses: ['10.3.0.9/16'] })).rejects.toBeInstanceOf(
      RouteConflictError,
    )
    await expect(sb.addInterface({ veth: { hostName: 'h3' }, addresses: ['192.168.4.1/24'] })).rejects.toBeInstanceOf(
      RouteConflictError,
    )
    expect((await sb.addInterface({ veth: { hostName: 'h4' }, addresses: ['10.4.0.2/24'] })).dstName).toBe('eth1')
  })

  it('native netlink failure at op k undoes the earlier steps', async () => {
    const { exec, calls } = fakeExec()
    const o = osl({ residentHost: false })({
      exec,
      native: fakeNative({ op: 2, message: 'RTNETLINK answers: Network is unreachable', code: 'ENETUNREACH' }),
    })
    const sb = await o.createSandbox('sbn')
    await expect(
      sb.addInterface({ veth: { hostName: 'hn' }, addresses: ['10.6.0.2/24'], routes: ['10.7.0.0/16'] }),
    ).rejects.toBeInstanceOf(GatewayUnreachableError)
    // the veth went over rtnetlink (no launch); the rollback deletes it with one -force batch
    expect(calls.map((c) => c.lines)).toEqual([['link del dev hn']])
  })

  it('an aborted signal stops before the next launch and rolls back', async () => {
    const ac = new AbortController()
    const { exec, calls } = fakeExec(() => {
      ac.abort(new Error('stop'))
      return {}
    })
    const o = osl({ hostNetns: 'h', residentHost: false, nativeNetlink: false })({ exec, native: fakeNative() })
    const sb = await o.createSandbox('sba')
    const tx = o.transaction()
    tx.on(o.host).createVeth({ name: 'vha', peerName: 'vca' })
    tx.on(sb).addAddress('lo', '127.0.0.2/8')
    await expect(tx.commit({ signal: ac.signal })).rejects.toBeInstanceOf(AbortError)
    expect(calls.map((c) => c.lines)).toEqual([['link add name vha up type veth peer name vca'], ['link del dev vha']])
  })

  it('gc removes namespaces and links with the prefix, never the host', async () => {
    const { exec, calls } = fakeExec((c) =>
      c.args.includes('-json')
        ? { stdout: JSON.stringify([{ ifname: 'lo' }, { ifname: 'tstveth1' }, { ifname: 'other' }]) + '\n' }
        : {},
    )
    const native = fakeNative()
    const o = osl({ netnsDir: '/nonexistent-cnm-test-dir' })({ exec, native })
    const res = await o.gc({ prefix: 'tst' })
    expect(res).toEqual({ namespaces: [], links: ['tstveth1'] })
    expect(calls.at(-1)?.lines).toEqual(['link del dev tstveth1'])
    expect(calls.at(-1)?.args).toContain('-force')
  })

  it('path namespaces go through nsenter', async () => {
    const { exec, calls } = fakeExec()
    const o = osl({ hostNetns: '/proc/1/ns/net', residentHost: false, nativeNetlink: false })({
      exec,
      native: fakeNative(),
    })
    await o.host.setLinkUp('eth9')
    expect([calls[0]?.file, ...(calls[0]?.args ?? [])]).toEqual([
      'nsenter',
      '--net=/proc/1/ns/net',
      'ip',
      '-batch',
      '-',
    ])
  })
})
