import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { noopLogger } from '@cnm/types'
import { DnsFileError, DnsFiles, SandboxDnsFiles, applyParentUpdates, hashResolvConf } from '../src/index.js'

let dir: string
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'cnm-resolver-'))
})
afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

const files = (init = {}): DnsFiles => new DnsFiles(init, { logger: noopLogger() })

function sandboxFiles(
  extra: Partial<ConstructorParameters<typeof SandboxDnsFiles>[0]> = {},
  f = files(),
): SandboxDnsFiles {
  return new SandboxDnsFiles(
    {
      hostsPath: join(dir, 'hosts'),
      resolvConfPath: join(dir, 'resolv.conf'),
      originResolvConfPath: join(dir, 'host-resolv.conf'),
      ...extra,
    },
    { files: f },
  )
}

describe('DnsFiles', () => {
  it('writes atomically with mode 0644 and leaves no temp file; serialises concurrent appends', async () => {
    const f = files()
    const p = join(dir, 'hosts')
    await f.buildHosts(p, {})
    expect((await stat(p)).mode & 0o777).toBe(0o644)
    await Promise.all(Array.from({ length: 20 }, (_, i) => f.addHosts(p, [{ ip: `10.0.0.${i}`, hosts: `h${i}` }])))
    const lines = (await readFile(p, 'utf8')).trim().split('\n')
    expect(lines).toHaveLength(6 + 20)
    const { readdir } = await import('node:fs/promises')
    expect((await readdir(dir)).filter((n) => n.endsWith('.tmp'))).toEqual([])
  })

  it('rename mode replaces the inode; in-place mode keeps it (bind mounts see updates)', async () => {
    const p = join(dir, 'hosts')
    const r = files()
    await r.buildHosts(p, {})
    const ino1 = (await stat(p)).ino
    await r.addHosts(p, [{ ip: '1.1.1.1', hosts: 'a' }])
    expect((await stat(p)).ino).not.toBe(ino1)
    const ip = files({ writeMode: 'in-place' })
    const ino2 = (await stat(p)).ino
    await ip.addHosts(p, [{ ip: '2.2.2.2', hosts: 'b' }])
    await ip.deleteHosts(p, [{ ip: '', hosts: 'a' }])
    expect((await stat(p)).ino).toBe(ino2)
    expect(await readFile(p, 'utf8')).toMatch(/2\.2\.2\.2\tb\n$/)
    expect(await readFile(p, 'utf8')).not.toMatch(/\ta\n/)
  })

  it('wraps fs failures in DnsFileError naming the path', async () => {
    const p = join(dir, 'missing-dir', 'hosts')
    await expect(files().buildHosts(p, {})).rejects.toBeInstanceOf(DnsFileError)
    await expect(files().buildHosts(p, {})).rejects.toMatchObject({ code: 'ERR_DNS_FILE_IO', path: p })
    expect(() => files({ writeMode: 'copy' as never })).toThrow(/writeMode/)
  })
})

describe('SandboxDnsFiles', () => {
  it('hosts on join to a dual-stack network: defaults, then the IPv4 and the IPv6 line', async () => {
    const s = sandboxFiles({ hostname: 'somehost', domainname: 'example.com' })
    await s.setupHosts()
    await s.addEndpoint({ ipv4: '192.168.222.2', ipv6: 'fe90::2' })
    const c = await readFile(join(dir, 'hosts'), 'utf8')
    expect(c.split('\n').slice(6)).toEqual([
      '192.168.222.2\tsomehost.example.com somehost',
      'fe90::2\tsomehost.example.com somehost',
      '',
    ])
    expect(c.startsWith('127.0.0.1\tlocalhost\n')).toBe(true)
  })

  it('a host-network sandbox copies the origin hosts file and adds no join lines', async () => {
    await writeFile(join(dir, 'host-hosts'), '127.0.0.1\tlocalhost myhost\n')
    const s = sandboxFiles({ hostNetwork: true, originHostsPath: join(dir, 'host-hosts') })
    await s.setupHosts()
    expect(await s.addEndpoint({ ipv4: '1.2.3.4' })).toEqual([])
    expect(await readFile(join(dir, 'hosts'), 'utf8')).toBe('127.0.0.1\tlocalhost myhost\n')
  })

  it('links: the parent sees the child at its new address after a restart', async () => {
    const f = files()
    const parent = join(dir, 'parent-hosts')
    await f.buildHosts(parent, {
      extra: [
        { ip: '192.168.0.1', hosts: 'web' },
        { ip: '192.168.0.9', hosts: 'webserver' },
      ],
    })
    await applyParentUpdates(f, [{ hostsPath: parent, name: 'web', ip: '192.168.0.7' }])
    const c = await readFile(parent, 'utf8')
    expect(c).toContain('192.168.0.7\tweb\n')
    expect(c).not.toContain('192.168.0.1\tweb\n')
    expect(c).toContain('192.168.0.9\twebserver\n')
  })

  it('resolv.conf from the host: localhost servers filtered, host upstreams recorded with 127.x as host-loopback, hash written', async () => {
    await writeFile(
      join(dir, 'host-resolv.conf'),
      'search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\nnameserver fd00::53\n',
    )
    const s = sandboxFiles()
    const up = await s.setupResolvConf()
    expect(up).toEqual([{ address: '127.0.0.53', hostLoopback: true }, { address: '10.0.0.2' }])
    const c = await readFile(join(dir, 'resolv.conf'), 'utf8')
    expect(c).toBe('search corp.example\nnameserver 10.0.0.2\nnameserver fd00::53\n')
    expect(await readFile(join(dir, 'resolv.conf.hash'), 'utf8')).toBe(hashResolvConf(c))
  })

  it('missing host file: defaults apply', async () => {
    const s = sandboxFiles()
    expect(await s.setupResolvConf()).toEqual([])
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(
      '\nnameserver 8.8.8.8\nnameserver 8.8.4.4\nnameserver 2001:4860:4860::8888\nnameserver 2001:4860:4860::8844',
    )
  })

  it('user DNS options: lists not given come from the host file; 127.x is not host-loopback; join does not touch it', async () => {
    await writeFile(join(dir, 'host-resolv.conf'), 'search h.example\nnameserver 10.0.0.2\noptions rotate\n')
    const s = sandboxFiles({ dns: ['127.0.0.1', '9.9.9.9'] })
    expect(await s.setupResolvConf()).toEqual([{ address: '127.0.0.1' }, { address: '9.9.9.9' }])
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(
      'search h.example\nnameserver 127.0.0.1\nnameserver 9.9.9.9\noptions rotate\n',
    )
    expect(await s.updateResolvConf(false)).toBe(false)
  })

  it('join on a non-IPv6 network drops IPv6 servers; a file the user edited is left alone', async () => {
    await writeFile(join(dir, 'host-resolv.conf'), 'nameserver 10.0.0.2\nnameserver fd00::53\n')
    const s = sandboxFiles()
    await s.setupResolvConf()
    expect(await s.updateResolvConf(false)).toBe(true)
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe('nameserver 10.0.0.2\n')
    await writeFile(join(dir, 'resolv.conf'), 'nameserver 10.0.0.2\nnameserver 1.1.1.1 # mine\n')
    expect(await s.updateResolvConf(false)).toBe(false)
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe('nameserver 10.0.0.2\nnameserver 1.1.1.1 # mine\n')
  })

  it('embedded resolver: nameserver 127.0.0.11 with ndots:0, upstreams recorded at setup, later joins leave it alone', async () => {
    await writeFile(join(dir, 'host-resolv.conf'), 'search corp.example\nnameserver 127.0.0.53\nnameserver 10.0.0.2\n')
    const s = sandboxFiles()
    await s.setupResolvConf()
    const rc = await s.activateEmbeddedResolver()
    expect(rc.upstreams).toEqual([{ address: '127.0.0.53', hostLoopback: true }, { address: '10.0.0.2' }])
    expect(rc.searchDomains).toEqual(['corp.example'])
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toBe(
      'search corp.example\nnameserver 127.0.0.11\noptions ndots:0\n',
    )
    expect(await s.updateResolvConf(true)).toBe(false)
    expect(await readFile(join(dir, 'resolv.conf'), 'utf8')).toContain('nameserver 127.0.0.11')
  })
})
