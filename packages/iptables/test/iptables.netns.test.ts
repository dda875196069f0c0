import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { NetnsFixture, capturingLogger, netnsAvailable, nsExec, run } from '@cnm/test-utils'
import { saveOf } from './helpers.js'
import { iptables } from '../src/index.js'
import type { Change } from '../src/index.js'

describe.skipIf(!netnsAvailable())('Iptables (real kernel)', () => {
  let fx: NetnsFixture
  let ns: string

  beforeEach(async () => {
    fx = new NetnsFixture('ipt')
    ns = await fx.add('host')
  })
  afterEach(async () => {
    await fx.cleanup()
  })

  for (const backend of ['nft', 'legacy'] as const) {
    describe(`${backend} backend`, () => {
      it('applies a change set in one restore, idempotently, and undoes it exactly', async () => {
        const logger = capturingLogger()
        const ipt = iptables({ netns: ns, family: 4, backend }, { logger })
        const before = await saveOf(ns, 4, backend)
        const changes: Change[] = [
          { op: 'ensureChain', table: 'nat', chain: 'T-NAT' },
          { op: 'ensureChain', table: 'filter', chain: 'T-FWD' },
          {
            op: 'ensure',
            table: 'nat',
            chain: 'PREROUTING',
            rule: ['-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'T-NAT'],
          },
          {
            op: 'ensure',
            table: 'nat',
            chain: 'T-NAT',
            rule: ['-p', 'tcp', '-d', '10.9.0.1', '--dport', '8080', '-j', 'DNAT', '--to-destination', '10.9.0.2:80'],
          },
          { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-FWD'], position: 1 },
          {
            op: 'ensure',
            table: 'filter',
            chain: 'T-FWD',
            rule: ['-o', 'br0', '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
          },
          {
            op: 'ensure',
            table: 'filter',
            chain: 'T-FWD',
            rule: ['!', '-i', 'br0', '-o', 'br0', '-p', 'udp', '-d', '10.9.0.2/32', '--dport', '53', '-j', 'ACCEPT'],
          },
          {
            op: 'ensure',
            table: 'filter',
            chain: 'T-FWD',
            rule: ['-m', 'comment', '--comment', 'two words', '-j', 'RETURN'],
          },
        ]
        const first = await ipt.apply(changes)
        expect(first.applied).toBe(changes.length)
        const after = await saveOf(ns, 4, backend)
        expect(after).toContain(':T-NAT - [0:0]')
        expect(after).toContain('-A PREROUTING -m addrtype --dst-type LOCAL -j T-NAT')
        expect(after).toContain(
          '-A T-NAT -d 10.9.0.1/32 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 10.9.0.2:80',
        )
        expect(after).toContain('-A FORWARD -j T-FWD')
        expect(after).toContain('-A T-FWD -o br0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT')
        expect(after).toContain('-A T-FWD -d 10.9.0.2/32 ! -i br0 -o br0 -p udp -m udp --dport 53 -j ACCEPT')
        expect(after).toContain('-A T-FWD -m comment --comment "two words" -j RETURN')

        // re-applying finds every change satisfied and runs nothing
        const again = await ipt.apply(changes)
        expect(again).toEqual({ applied: 0, skipped: changes.length, script: '', undo: [] })
        expect(await saveOf(ns, 4, backend)).toBe(after)

        expect(
          await ipt.exists('nat', 'T-NAT', [
            '-p',
            'tcp',
            '-d',
            '10.9.0.1',
            '--dport',
            '8080',
            '-j',
            'DNAT',
            '--to-destination',
            '10.9.0.2:80',
          ]),
        ).toBe(true)
        expect(await ipt.exists('nat', 'T-NAT', ['-p', 'tcp', '--dport', '8081', '-j', 'ACCEPT'])).toBe(false)
        expect(await ipt.exists('nat', 'NO-SUCH', ['-j', 'ACCEPT'])).toBe(false)

        // the undo change set of the first apply puts everything back; then redo for the next step
        expect((await ipt.apply(first.undo)).applied).toBe(changes.length)
        expect(await saveOf(ns, 4, backend)).toBe(before)
        await ipt.apply(changes)

        // deleting the chains also removes the jumps into them
        const del = await ipt.apply([
          { op: 'deleteChain', table: 'nat', chain: 'T-NAT' },
          { op: 'deleteChain', table: 'filter', chain: 'T-FWD' },
        ])
        expect(del.applied).toBe(2)
        expect(await saveOf(ns, 4, backend)).toBe(before)
        expect((await ipt.deleteChain('nat', 'T-NAT')).applied).toBe(0)
        expect(logger.lines.some((l) => l.message.includes('using %s backend'))).toBe(true)
      })

      it('rolls back committed tables when a later table fails', async () => {
        const ipt = iptables({ netns: ns, family: 4, backend }, { logger: capturingLogger() })
        const before = await saveOf(ns, 4, backend)
        const err = await ipt
          .apply([
            { op: 'ensureChain', table: 'filter', chain: 'T-A' },
            { op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-A'] },
            { op: 'ensureChain', table: 'nat', chain: 'T-B' },
            { op: 'ensure', table: 'nat', chain: 'T-B', rule: ['-j', 'NO-SUCH-TARGET'] },
          ])
          .catch((e: unknown) => e)
        expect(isCnmError(err, 'ERR_IPTABLES_COMMAND')).toBe(true)
        expect(String((err as Error).cause)).toMatch(/NO-SUCH-TARGET/)
        expect(await saveOf(ns, 4, backend)).toBe(before)
      })
    })
  }

  it('insert with pin moves a rule to its position; insert without pin leaves it', async () => {
    const ipt = iptables({ netns: ns, family: 4 }, { logger: capturingLogger() })
    await ipt.apply([
      { op: 'ensureChain', table: 'filter', chain: 'T-1' },
      { op: 'ensureChain', table: 'filter', chain: 'T-2' },
      { op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-2'] },
      { op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-1'] },
    ])
    expect((await ipt.apply([{ op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-1'] }])).applied).toBe(
      0,
    )
    const pinned = [
      { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-1'], position: 1, pin: true },
      { op: 'insert', table: 'filter', chain: 'FORWARD', rule: ['-j', 'T-2'], position: 2, pin: true },
    ] as const
    // T-1 moves to the top, which already puts T-2 second
    expect((await ipt.apply(pinned)).applied).toBe(1)
    expect(await ipt.listRules('filter', 'FORWARD')).toEqual([
      ['-j', 'T-1'],
      ['-j', 'T-2'],
    ])
    expect((await ipt.apply(pinned)).applied).toBe(0)
  })

  it('a namespace given by path runs through nsenter', async () => {
    const byPath = iptables({ netns: `/run/netns/${ns}`, family: 4 }, { logger: capturingLogger() })
    await byPath.apply([{ op: 'ensureChain', table: 'raw', chain: 'T-PATH' }])
    expect(await saveOf(ns)).toContain(':T-PATH - [0:0]')
    expect(await byPath.hasChain('raw', 'T-PATH')).toBe(true)
    for (const bad of ['/run/netns/../x', 'relative/path', '/run/netns/', '/a//b', 'x\ny']) {
      expect(() => iptables({ netns: bad, family: 4 }, { logger: capturingLogger() }), bad).toThrow(/netns/)
    }
  })

  it('IPv6: ip6tables with canonical addresses', async () => {
    const ipt = iptables({ netns: ns, family: 6 }, { logger: capturingLogger() })
    const before = await saveOf(ns, 6)
    const changes: Change[] = [
      { op: 'ensureChain', table: 'nat', chain: 'T6' },
      {
        op: 'ensure',
        table: 'nat',
        chain: 'T6',
        rule: ['-s', 'fd00:0:0:1::5/64', '!', '-o', 'br6', '-j', 'MASQUERADE'],
      },
      {
        op: 'ensure',
        table: 'nat',
        chain: 'T6',
        rule: ['-p', 'tcp', '-d', 'fd00::1', '--dport', '80', '-j', 'DNAT', '--to-destination', '[fd00::2]:80'],
      },
    ]
    await ipt.apply(changes)
    const after = await saveOf(ns, 6)
    expect(after).toContain('-A T6 -s fd00:0:0:1::/64 ! -o br6 -j MASQUERADE')
    expect(after).toContain('-A T6 -d fd00::1/128 -p tcp -m tcp --dport 80 -j DNAT --to-destination [fd00::2]:80')
    expect((await ipt.apply(changes)).applied).toBe(0)
    await ipt.deleteChain('nat', 'T6')
    expect(await saveOf(ns, 6)).toBe(before)
  })

  it('invalid input throws typed errors and changes nothing', async () => {
    const ipt = iptables({ netns: ns, family: 4 }, { logger: capturingLogger() })
    const before = await saveOf(ns)
    const bad: Array<[Change[], string]> = [
      [[{ op: 'ensureChain', table: 'filter', chain: 'bad name' }], 'ERR_IPTABLES_INVALID_CHAIN'],
      [[{ op: 'ensureChain', table: 'filter', chain: 'X'.repeat(29) }], 'ERR_IPTABLES_INVALID_CHAIN'],
      [[{ op: 'ensureChain', table: 'filter', chain: '-F' }], 'ERR_IPTABLES_INVALID_CHAIN'],
      [[{ op: 'deleteChain', table: 'filter', chain: 'FORWARD' }], 'ERR_IPTABLES_INVALID_CHAIN'],
      [[{ op: 'ensureChain', table: 'security' as 'filter', chain: 'T' }], 'ERR_IPTABLES_INVALID_RULE'],
      [
        [{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-j', 'ACCEPT\n-F FORWARD'] }],
        'ERR_IPTABLES_INVALID_RULE',
      ],
      [[{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-F'] }], 'ERR_IPTABLES_INVALID_RULE'],
      [
        [{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-s', 'example.com', '-j', 'DROP'] }],
        'ERR_IPTABLES_INVALID_RULE',
      ],
      [
        [{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['-s', 'fd00::1', '-j', 'DROP'] }],
        'ERR_IPTABLES_INVALID_RULE',
      ],
      [
        [{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: ['--dport', '80', '-j', 'DROP'] }],
        'ERR_IPTABLES_INVALID_RULE',
      ],
      [[{ op: 'ensure', table: 'filter', chain: 'FORWARD', rule: [] }], 'ERR_IPTABLES_INVALID_RULE'],
      [
        [
          { op: 'ensureChain', table: 'filter', chain: 'T-OK' },
          { op: 'ensure', table: 'filter', chain: 'T-MISSING', rule: ['-j', 'ACCEPT'] },
        ],
        'ERR_IPTABLES_NO_CHAIN',
      ],
    ]
    for (const [changes, code] of bad) {
      const err = await ipt.apply(changes).catch((e: unknown) => e)
      expect(isCnmError(err, code), `${JSON.stringify(changes)} → ${String(err)}`).toBe(true)
    }
    expect(await saveOf(ns)).toBe(before)
  })

  it('resident writer (nft): no process per write, one acknowledgement per table, stale views repaired, exact rollback, close() ends it', async () => {
    const ipt = iptables(
      { netns: ns, family: 4, backend: 'nft', residentWriter: true, ownedChains: ['MINE', 'MINE-N'] },
      { logger: capturingLogger() },
    )
    fx.onCleanup(() => ipt.close())
    const rule = (i: number): string[] => ['-s', `10.0.0.${i}`, '-j', 'ACCEPT']
    await ipt.apply([
      { op: 'ensureChain', table: 'filter', chain: 'MINE' },
      { op: 'ensureChain', table: 'nat', chain: 'MINE-N' },
      { op: 'ensure', table: 'filter', chain: 'MINE', rule: rule(1) },
      {
        op: 'ensure',
        table: 'nat',
        chain: 'MINE-N',
        rule: ['-p', 'tcp', '--dport', '80', '-j', 'DNAT', '--to-destination', '10.0.0.1:80'],
      },
    ])
    const s0 = ipt.stats
    expect(s0).toMatchObject({ saves: 1, restores: 1, residentRestores: 1, writerLaunches: 2 })
    for (let i = 2; i <= 21; i++) {
      await ipt.apply([
        { op: 'ensure', table: 'filter', chain: 'MINE', rule: rule(i) },
        {
          op: 'ensure',
          table: 'nat',
          chain: 'MINE-N',
          rule: ['-p', 'tcp', '--dport', String(8000 + i), '-j', 'DNAT', '--to-destination', `10.0.0.${i}:80`],
        },
      ])
    }
    // 20 two-table writes: no read, no new process, all through the resident restore
    expect(ipt.stats).toMatchObject({
      saves: 1,
      restores: 21,
      residentRestores: 21,
      writerLaunches: 2,
      cachedPlans: 20,
    })
    expect((await nsExec(ns, 'iptables', ['-S', 'MINE'])).split('\n').filter((l) => l.startsWith('-A'))).toHaveLength(
      21,
    )

    // someone else changes our chain: inserts a rule and deletes one of ours
    await nsExec(ns, 'iptables', ['-I', 'MINE', '1', '-s', '10.9.9.9', '-j', 'DROP'])
    await nsExec(ns, 'iptables', ['-D', 'MINE', ...rule(3)])
    const r = await ipt.apply([
      { op: 'delete', table: 'filter', chain: 'MINE', rule: rule(3) },
      { op: 'delete', table: 'filter', chain: 'MINE', rule: rule(4) },
      { op: 'ensure', table: 'filter', chain: 'MINE', rule: rule(30) },
    ])
    // planned from memory, the delete of rule 3 failed; planned again from a fresh read, it is skipped
    expect(r).toMatchObject({ applied: 2, skipped: 1 })
    const mine = (await nsExec(ns, 'iptables', ['-S', 'MINE'])).split('\n').filter((l) => l.startsWith('-A'))
    expect(mine[0]).toBe('-A MINE -s 10.9.9.9/32 -j DROP')
    expect(mine.at(-1)).toBe('-A MINE -s 10.0.0.30/32 -j ACCEPT')
    expect(mine.some((l) => l.includes('10.0.0.3/') || l.includes('10.0.0.4/'))).toBe(false)
    expect(ipt.stats.saves).toBe(2)

    // the nat table fails after filter committed: filter is rolled back (failed line rebased on the stream)
    const before = await saveOf(ns, 4)
    const err = await ipt
      .apply([
        { op: 'ensure', table: 'filter', chain: 'MINE', rule: rule(40) },
        { op: 'ensure', table: 'nat', chain: 'MINE-N', rule: ['-j', 'NO-SUCH-CHAIN'] },
      ])
      .catch((e: unknown) => e)
    expect(isCnmError(err, 'ERR_IPTABLES_COMMAND')).toBe(true)
    expect(await saveOf(ns, 4)).toBe(before)
    // and it keeps working afterwards (a new writer is started)
    await ipt.apply([{ op: 'ensure', table: 'filter', chain: 'MINE', rule: rule(41) }])
    expect(await nsExec(ns, 'iptables', ['-C', 'MINE', ...rule(41)])).toBe('')

    // close() ends the writer's processes in the namespace
    await ipt.close()
    expect((await run('ip', ['netns', 'pids', ns])).trim()).toBe('')
  })
})
