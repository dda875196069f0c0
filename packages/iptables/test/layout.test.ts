import { describe, expect, it } from 'vitest'
import { isCnmError } from '@cnm/types'
import { capturingLogger } from '@cnm/test-utils'
import { bridgeFirewall, portMapper, portAllocator } from '../src/index.js'
import { bridgeChains, mappingRuleChanges, networkRemovalChanges, networkRuleChanges } from '../src/internal/layout.js'
import { ruleKey } from '../src/internal/rule.js'

describe('bridge layout', () => {
  it('derives chain names from the prefix and validates it', () => {
    expect(bridgeChains('CNM')).toEqual({
      main: 'CNM',
      user: 'CNM-USER',
      isolation1: 'CNM-ISOLATION-STAGE-1',
      isolation2: 'CNM-ISOLATION-STAGE-2',
      forward: 'CNM-FORWARD',
      postrouting: 'CNM-POSTROUTING',
    })
    expect(bridgeChains('ABCDEFGHIJ').isolation1).toHaveLength(28)
    for (const bad of ['', 'ABCDEFGHIJK', '1CNM', 'C-N', 'C N', 'DOCKER\n']) {
      let err: unknown
      try {
        bridgeChains(bad)
      } catch (e) {
        err = e
      }
      expect(isCnmError(err, 'ERR_IPTABLES_INVALID_OPTION'), JSON.stringify(bad)).toBe(true)
    }
  })

  it('every generated rule is valid for its family, and removal covers both ICC variants', () => {
    const c = bridgeChains('CNM')
    for (const [family, subnet] of [
      [4, '10.1.0.0/24'],
      [6, 'fd00:1::/64'],
    ] as const) {
      for (const internal of [false, true]) {
        for (const hairpin of [false, true]) {
          const n = { bridge: 'br0', subnet, icc: true, masquerade: true, internal, hostIp: undefined, hairpin }
          for (const ch of [...networkRuleChanges(c, n), ...networkRemovalChanges(c, n)]) {
            expect(() => ruleKey(ch.rule, family)).not.toThrow()
          }
          const removal = networkRemovalChanges(c, n)
          expect(removal.every((ch) => ch.op === 'delete')).toBe(true)
          expect(removal.map((ch) => ch.rule.join(' '))).toEqual(
            expect.arrayContaining(['-i br0 -o br0 -j ACCEPT', '-i br0 -o br0 -j DROP']),
          )
        }
      }
    }
  })

  it('port mapping rules follow drivers.md §3.6', () => {
    const c = bridgeChains('CNM')
    const v6 = mappingRuleChanges(c, {
      proto: 'sctp',
      hostIp: undefined,
      hostPort: 9000,
      containerIp: 'fd00::2',
      containerPort: 9,
      bridge: 'br0',
      hairpin: false,
      family: 6,
    })
    expect(v6.map((ch) => `${ch.table} ${ch.chain} ${ch.rule.join(' ')}`)).toEqual([
      'nat CNM ! -i br0 -p sctp -m sctp --dport 9000 -j DNAT --to-destination [fd00::2]:9',
      'filter CNM -d fd00::2 ! -i br0 -o br0 -p sctp -m sctp --dport 9 -j ACCEPT',
      'nat CNM-POSTROUTING -s fd00::2 -d fd00::2 -p sctp -m sctp --dport 9 -j MASQUERADE',
      'mangle CNM-POSTROUTING -p sctp -m sctp --sport 9 -j CHECKSUM --checksum-fill',
    ])
  })

  it('factories validate their options eagerly', () => {
    const logger = capturingLogger()
    expect(() => bridgeFirewall({ hairpin: 'yes' as unknown as boolean }, { logger })).toThrow(/hairpin/)
    const firewall = bridgeFirewall({}, { logger })
    expect(firewall.chains.main).toBe('CNM')
    expect(() => portMapper({ bridge: 'bad bridge' }, { logger, firewall, allocator: portAllocator() })).toThrow(
      /bridge/,
    )
    expect(() =>
      portMapper({ bridge: 'br0', ephemeralRetries: 0 }, { logger, firewall, allocator: portAllocator() }),
    ).toThrow(/ephemeralRetries/)
  })
})
