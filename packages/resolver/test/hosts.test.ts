import { describe, expect, it } from 'vitest'
import { addHosts, buildHosts, deleteHosts, hostsNames, updateHosts } from '../src/index.js'

const DEFAULTS =
  '127.0.0.1\tlocalhost\n' +
  '::1\tlocalhost ip6-localhost ip6-loopback\n' +
  'fe00::0\tip6-localnet\n' +
  'ff00::0\tip6-mcastprefix\n' +
  'ff02::1\tip6-allnodes\n' +
  'ff02::2\tip6-allrouters\n'

describe('hosts content (sandbox-dns.md §4.1)', () => {
  it('build with ip, hostname and domain: first line fqdn + short name, then the default block', () => {
    const c = buildHosts({ ip: '10.11.12.13', hostname: 'testhostname', domainname: 'testdomainname' })
    expect(c).toBe(`10.11.12.13\ttesthostname.testdomainname testhostname\n${DEFAULTS}`)
  })

  it('build without ip has the default block then the extra records', () => {
    const c = buildHosts({ extra: [{ ip: '1.2.3.4', hosts: 'extra.example extra' }] })
    expect(c).toBe(`${DEFAULTS}1.2.3.4\textra.example extra\n`)
  })

  it('names: fqdn + short name when dotted, hostname alone otherwise', () => {
    expect(hostsNames('somehost', 'example.com')).toBe('somehost.example.com somehost')
    expect(hostsNames('somehost.example.com')).toBe('somehost.example.com somehost')
    expect(hostsNames('plain')).toBe('plain')
  })

  it('add appends; no records is a no-op', () => {
    expect(addHosts(DEFAULTS, [])).toBe(DEFAULTS)
    expect(addHosts('a\tb', [{ ip: '1.1.1.1', hosts: 'c' }])).toBe('a\tb\n1.1.1.1\tc\n')
  })

  it('delete drops lines ending with the names (IP ignored), keeps comments, drops empty lines, spares prefixAndMore', () => {
    const c = `# comment\n${DEFAULTS}\n1.1.1.1\tprefix\n2.2.2.2\tprefixAndMore\n3.3.3.3\tother prefix\n`
    const out = deleteHosts(c, [{ ip: '9.9.9.9', hosts: 'prefix' }])
    expect(out).toBe(`# comment\n${DEFAULTS}2.2.2.2\tprefixAndMore\n3.3.3.3\tother prefix\n`)
  })

  it('update replaces the IP of lines for the name and name.domain, not prefixAndMore', () => {
    const c = '1.1.1.1\tprefix\n1.1.1.2\tprefix.domain prefix\n1.1.1.3\tprefixAndMore\n1.1.1.4\tother\n'
    expect(updateHosts(c, '2.2.2.2', 'prefix')).toBe(
      '2.2.2.2\tprefix\n2.2.2.2\tprefix.domain prefix\n1.1.1.3\tprefixAndMore\n1.1.1.4\tother\n',
    )
    expect(updateHosts('1.1.1.1\ta.b\n', '3.3.3.3', 'a.b')).toBe('3.3.3.3\ta.b\n')
    expect(updateHosts('1.1.1.1\taxb\n', '3.3.3.3', 'a.b')).toBe('1.1.1.1\taxb\n')
  })
})
