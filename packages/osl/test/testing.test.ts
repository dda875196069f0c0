import { afterEach, describe, expect, it } from 'vitest'
import { LinkExistsError, NamespaceNotFoundError, osl, type Osl } from '../src/index.js'
import { fakeOsl, type FakeOsl } from '../src/testing/index.js'

describe('@cnm/osl/testing fakeOsl', () => {
  let fake: FakeOsl<Osl> | undefined
  afterEach(async () => {
    await fake?.cleanup()
    fake = undefined
  })

  it('records the lines a bridge driver and controller would run', async () => {
    fake = fakeOsl(osl, { hostNetns: 'h' })
    const o = fake.osl
    await o.host.createBridge({ name: 'br0', addresses: ['10.0.0.1/24'] })
    const sb = await o.createSandbox('c1')
    await sb.addInterface({ veth: { hostName: 'veth1', master: 'br0' }, addresses: ['10.0.0.2/24'] })
    await sb.setGateway('10.0.0.1')
    expect(fake.linesIn('h')).toEqual([
      'link add name br0 type bridge',
      'addr add 10.0.0.1/24 dev br0',
      'link set dev br0 up',
      `link add name veth1 master br0 up type veth peer name eth0 netns ${sb.path}`,
    ])
    expect(fake.linesIn(sb.path)).toEqual([
      'addr add 10.0.0.2/24 dev eth0',
      'link set dev eth0 up',
      'route add default via 10.0.0.1',
    ])
    expect(await o.listSandboxes()).toEqual(['c1'])
    expect(await sb.links()).toEqual([])
    await sb.destroy()
    await expect(o.openSandbox('c1')).rejects.toBeInstanceOf(NamespaceNotFoundError)
  })

  it('injects kernel failures and shows the rollback', async () => {
    fake = fakeOsl(osl, { hostNetns: 'h' })
    fake.failLines(/^link add name veth2/, 'RTNETLINK answers: File exists')
    const sb = await fake.osl.createSandbox('c2')
    await expect(sb.addInterface({ veth: { hostName: 'veth2' } })).rejects.toBeInstanceOf(LinkExistsError)
    expect(sb.interfaces).toEqual([])
    const sock = await fake.osl.openSocket(sb.path ?? '', { type: 'udp4', address: '127.0.0.11', port: 0 })
    expect(sock.port).toBeGreaterThan(0)
  })
})
