import { describe, expect, it } from 'vitest'
import { InvalidRuleError } from '../src/index.js'
import { assertChain, assertRuleArgs, ruleKey, tokenizeSaveLine } from '../src/internal/rule.js'

const same = (a: string[], b: string[], family: 4 | 6 = 4): void => {
  expect(ruleKey(a, family)).toBe(ruleKey(b, family))
}

describe('ruleKey: what we write and what iptables-save prints are the same rule', () => {
  it('implicit protocol match, address suffixes and option order', () => {
    same(
      ['-p', 'tcp', '-d', '10.0.0.2', '--dport', '80', '!', '-i', 'br0', '-o', 'br0', '-j', 'ACCEPT'],
      tokenizeSaveLine('-d 10.0.0.2/32 ! -i br0 -o br0 -p tcp -m tcp --dport 80 -j ACCEPT'),
    )
    same(
      ['-m', 'addrtype', '--src-type', 'LOCAL', '-o', 'br0', '-j', 'MASQUERADE'],
      ['-o', 'br0', '-m', 'addrtype', '--src-type', 'LOCAL', '-j', 'MASQUERADE'],
    )
    same(['--dst', '127.0.0.0/8', '-j', 'X'], ['-d', '127.0.0.0/8', '-j', 'X'])
    same(['-s', '10.1.2.3/255.255.0.0', '-j', 'X'], ['-s', '10.1.0.0/16', '-j', 'X'])
    same(['-d', '0/0', '-p', 'all', '-j', 'X'], ['-j', 'X'])
    same(
      ['-p', '6', '--sport', '1', '--dport', '2', '-j', 'X'],
      ['-p', 'tcp', '-m', 'tcp', '--dport', '2', '--sport', '1', '-j', 'X'],
    )
    same(['-p', 'tcp', '--destination-port', '080', '-j', 'X'], ['-p', 'tcp', '-m', 'tcp', '--dport', '80', '-j', 'X'])
    same(
      ['-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'ACCEPT'],
      ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'ACCEPT'],
    )
    same(['-s', 'FD00:0:0:1::5/64', '-j', 'X'], ['-s', 'fd00:0:0:1::/64', '-j', 'X'], 6)
    same(['-d', '::1', '-j', 'X'], ['-d', '::1/128', '-j', 'X'], 6)
  })

  it('different rules get different keys', () => {
    const k = (r: string[]): string => ruleKey(r, 4)
    expect(k(['-i', 'br0', '-j', 'ACCEPT'])).not.toBe(k(['!', '-i', 'br0', '-j', 'ACCEPT']))
    expect(k(['-i', 'br0', '-o', 'br0', '-j', 'ACCEPT'])).not.toBe(k(['-i', 'br0', '-o', 'br0', '-j', 'DROP']))
    expect(k(['-p', 'tcp', '--dport', '80', '-j', 'X'])).not.toBe(k(['-p', 'udp', '--dport', '80', '-j', 'X']))
    expect(k(['-j', 'X'])).not.toBe(k(['-g', 'X']))
    expect(k(['!', '-d', '0/0', '-j', 'X'])).not.toBe(k(['-j', 'X']))
  })

  it('refuses what it cannot make sense of', () => {
    const bad: Array<[string[], 4 | 6]> = [
      [['-s', 'host.example', '-j', 'X'], 4],
      [['-s', '10.0.0.1,10.0.0.2', '-j', 'X'], 4],
      [['-s', '10.0.0.1', '-j', 'X'], 6],
      [['-s', '10.0.0.1/33', '-j', 'X'], 4],
      [['-s', '10.0.0.1/255.0.255.0', '-j', 'X'], 4],
      [['--dport', '80', '-j', 'X'], 4],
      [['-j', 'X', '-j', 'Y'], 4],
      [['!', '!', '-s', '10.0.0.1'], 4],
      [['-i', 'much-too-long-interface', '-j', 'X'], 4],
      [['-j'], 4],
      [['stray'], 4],
      [['-f', '-j', 'X'], 6],
      [['-s', '10.0.0.1', '!'], 4],
    ]
    for (const [rule, family] of bad) expect(() => ruleKey(rule, family), rule.join(' ')).toThrow(InvalidRuleError)
  })
})

describe('argument validation', () => {
  it('rejects injection through arguments', () => {
    for (const rule of [
      ['-j', 'ACCEPT\nCOMMIT'],
      ['-j', 'ACCEPT\r'],
      ['-m', 'comment', '--comment', 'a"b'],
      ['-m', 'comment', '--comment', "a'b"],
      ['-m', 'comment', '--comment', 'a\\b'],
      ['-A', 'FORWARD'],
      ['-t', 'nat'],
      ['--flush'],
      ['-j', ''],
      ['-j', ' '],
      ['--to dest'],
      [],
      'not an array',
      [1, 2],
    ]) {
      expect(() => assertRuleArgs(rule), JSON.stringify(rule)).toThrow(InvalidRuleError)
    }
    expect(() => assertRuleArgs(['-m', 'comment', '--comment', 'two words', '-j', 'ACCEPT'])).not.toThrow()
  })

  it('chain names', () => {
    for (const ok of ['CNM', 'CNM-ISOLATION-STAGE-1', 'a.b+c_d', 'X'.repeat(28)])
      expect(() => assertChain(ok)).not.toThrow()
    for (const bad of ['', '-X', 'has space', 'X'.repeat(29), 'a\nb', 'ACCEPT', 'RETURN', 'a/b', '!x', 7]) {
      expect(() => assertChain(bad), String(bad)).toThrow(/invalid chain name/)
    }
  })

  it('tokenizes saved lines with quotes', () => {
    expect(tokenizeSaveLine('-A X -m comment --comment "two words" -j ACCEPT')).toEqual([
      '-A',
      'X',
      '-m',
      'comment',
      '--comment',
      'two words',
      '-j',
      'ACCEPT',
    ])
    expect(tokenizeSaveLine('-A X -m comment --comment "a \\"q\\"" -j ACCEPT')[5]).toBe('a "q"')
  })
})
