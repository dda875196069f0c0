import { describe, expect, it } from 'vitest'
import { InvalidResolverOptionError, NetworkRecords, SandboxRecords } from '../src/index.js'

describe('NetworkRecords (§3.1)', () => {
  it('is case-insensitive, dedupes an address held by two ids, removes per id', () => {
    const n = new NetworkRecords('Net1')
    n.addName('Svc', '10.0.0.5', { id: 'a' })
    n.addName('svc', '10.0.0.5', { id: 'b' })
    n.addName('svc', 'FD00::0005', { id: 'a' })
    expect(n.lookupName('svc')).toEqual({ ipv4: ['10.0.0.5'], ipv6: ['fd00::5'] })
    expect(n.lookupAddress('10.0.0.5')).toBe('svc.net1')
    expect(n.lookupAddress('fd00::5')).toBe('svc.net1')
    const g = n.generation
    n.removeName('svc', '10.0.0.5', { id: 'a' })
    expect(n.generation).toBeGreaterThan(g)
    expect(n.lookupName('svc')?.ipv4).toEqual(['10.0.0.5'])
    n.removeName('svc', '10.0.0.5', { id: 'b' })
    n.removeName('svc', 'fd00::5', { id: 'a' })
    expect(n.lookupName('svc')).toBeUndefined()
    expect(n.lookupAddress('10.0.0.5')).toBeUndefined()
  })

  it('aliases without reverse entries; externally resolved reverse entries yield nothing', () => {
    const n = new NetworkRecords('net1')
    n.addName('c1', '10.0.0.2')
    n.addName('alias1', '10.0.0.2', { reverse: false })
    expect(n.lookupAddress('10.0.0.2')).toBe('c1.net1')
    n.markExternal(['10.0.0.2'])
    expect(n.lookupAddress('10.0.0.2')).toBeUndefined()
    expect(n.lookupName('alias1')?.ipv4).toEqual(['10.0.0.2'])
  })

  it('services: targets per owner id, removal by id or all', () => {
    const n = new NetworkRecords('net1')
    n.addService('web', '_http', '_tcp' as 'tcp', { id: 't1', target: 'web.1', port: 80, addresses: ['10.0.0.3'] })
    n.addService('web', 'http', 'tcp', { id: 't2', target: 'web.2', port: 80, addresses: ['10.0.0.4'] })
    expect(n.lookupService('web', 'http', 'tcp')?.map((t) => t.target)).toEqual(['web.1', 'web.2'])
    n.removeService('web', 'http', 'tcp', 't1')
    expect(n.lookupService('web', 'http', 'tcp')?.map((t) => t.target)).toEqual(['web.2'])
    n.removeService('web', 'http', 'tcp')
    expect(n.lookupService('web', 'http', 'tcp')).toBeUndefined()
    expect(() => n.addName('x', 'not-an-ip')).toThrow(InvalidResolverOptionError)
    expect(() => n.addService('x', 'p', 'tcp', { target: 'x', port: 70000, addresses: [] })).toThrow(/port/)
  })
})

describe('SandboxRecords (§3.2)', () => {
  it('endpoint order decides; a family missing on the first network comes from the next', () => {
    const a = new NetworkRecords('a')
    const b = new NetworkRecords('b')
    a.addName('dup', '10.0.0.1')
    b.addName('dup', '10.1.0.1')
    b.addName('dup', 'fd00::1')
    const s = new SandboxRecords([{ network: a }, { network: b }])
    expect(s.lookupName('dup')).toEqual({ ipv4: ['10.0.0.1'], ipv6: ['fd00::1'] })
    s.setAttachments([{ network: b }, { network: a }])
    expect(s.lookupName('dup')).toEqual({ ipv4: ['10.1.0.1'], ipv6: ['fd00::1'] })
  })

  it('name.network restricts to that network; link aliases win and shadow the plain name on that endpoint', () => {
    const a = new NetworkRecords('a')
    const b = new NetworkRecords('b')
    a.addName('db', '10.0.0.9')
    a.addName('postgres', '10.0.0.5')
    b.addName('db', '10.1.0.9')
    const s = new SandboxRecords([{ network: a, linkAliases: { DB: 'postgres' } }, { network: b }])
    expect(s.lookupName('db')?.ipv4).toEqual(['10.0.0.5'])
    expect(s.lookupName('db.b')?.ipv4).toEqual(['10.1.0.9'])
    expect(s.lookupName('db.a')?.ipv4).toEqual(['10.0.0.5'])
    expect(s.lookupName('postgres.b')).toBeUndefined()
  })

  it('generation moves with any network change and with attachment changes', () => {
    const a = new NetworkRecords('a')
    const s = new SandboxRecords([{ network: a }])
    const g0 = s.generation
    a.addName('x', '10.0.0.1')
    const g1 = s.generation
    expect(g1).toBeGreaterThan(g0)
    s.setAttachments([{ network: a }])
    expect(s.generation).toBeGreaterThan(g1)
  })

  it('reverse lookups try networks in order; reportExternal marks every network', () => {
    const a = new NetworkRecords('a')
    const b = new NetworkRecords('b')
    b.addName('c', '10.0.0.7')
    const s = new SandboxRecords([{ network: a }, { network: b }])
    expect(s.lookupAddress('10.0.0.7')).toBe('c.b')
    s.reportExternal('ext.example', ['10.0.0.7'])
    expect(s.lookupAddress('10.0.0.7')).toBeUndefined()
  })
})
