import { formatIp, maskOf, tryParseIp } from '@cnm/types'
import type { IpVersion } from '@cnm/types'
import { InvalidChainError, InvalidRuleError } from '../errors.js'

export const TABLES = ['filter', 'nat', 'mangle', 'raw'] as const
export type Table = (typeof TABLES)[number]

/** Built-in chains per table (the same for iptables and ip6tables). */
export const BUILTIN_CHAINS: Readonly<Record<Table, readonly string[]>> = Object.freeze({
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
  raw: ['PREROUTING', 'OUTPUT'],
})

/** iptables' XT_EXTENSION_MAXNAMELEN minus the terminating NUL. */
export const MAX_CHAIN_NAME_LENGTH = 28

export function assertTable(table: unknown): asserts table is Table {
  if (typeof table !== 'string' || !(TABLES as readonly string[]).includes(table)) {
    throw new InvalidRuleError(`invalid table ${JSON.stringify(table)}: expected one of ${TABLES.join(', ')}`)
  }
}

export function isValidChainName(chain: unknown): chain is string {
  return (
    typeof chain === 'string' &&
    chain.length <= MAX_CHAIN_NAME_LENGTH &&
    /^[A-Za-z0-9_][A-Za-z0-9_.+-]*$/.test(chain) &&
    // target names iptables reserves; a chain called like them would be unusable as a jump target
    !['ACCEPT', 'DROP', 'RETURN', 'QUEUE'].includes(chain)
  )
}

export function assertChain(chain: unknown): asserts chain is string {
  if (!isValidChainName(chain)) {
    throw new InvalidChainError(
      `invalid chain name ${JSON.stringify(chain)}: 1-${MAX_CHAIN_NAME_LENGTH} characters of [A-Za-z0-9_.+-], not starting with '-'`,
    )
  }
}

export function isBuiltinChain(table: Table, chain: string): boolean {
  return BUILTIN_CHAINS[table].includes(chain)
}

/** Options that would turn a rule into a different command inside iptables-restore. */
const COMMAND_FLAGS = new Set([
  '-A',
  '--append',
  '-C',
  '--check',
  '-D',
  '--delete',
  '-I',
  '--insert',
  '-R',
  '--replace',
  '-L',
  '--list',
  '-S',
  '--list-rules',
  '-F',
  '--flush',
  '-Z',
  '--zero',
  '-N',
  '--new-chain',
  '-X',
  '--delete-chain',
  '-P',
  '--policy',
  '-E',
  '--rename-chain',
  '-t',
  '--table',
  '-h',
  '--help',
  '-V',
  '--version',
  '-w',
  '--wait',
  '-W',
  '--wait-interval',
  '-M',
  '--modprobe',
  '-c',
  '--set-counters',
  '-n',
  '--numeric',
  '-v',
  '--verbose',
  '-x',
  '--exact',
  '--line-numbers',
  '-4',
  '--ipv4',
  '-6',
  '--ipv6',
])

/**
 * Checks one rule's argument vector: strings without control characters, quotes or backslashes
 * (so nothing can break out of its line or token in the restore script), no command flags.
 */
export function assertRuleArgs(rule: unknown): asserts rule is readonly string[] {
  if (!Array.isArray(rule) || rule.length === 0) {
    throw new InvalidRuleError('a rule must be a non-empty array of arguments')
  }
  for (const arg of rule as unknown[]) {
    if (typeof arg !== 'string') throw new InvalidRuleError(`rule argument ${JSON.stringify(arg)} is not a string`)
    if (arg.trim().length === 0) throw new InvalidRuleError('rule arguments must not be empty')
    if (arg.length > 256) throw new InvalidRuleError(`rule argument too long (${arg.length} > 256)`)
    // eslint-disable-next-line no-control-regex
    if (/[\u0000-\u001f\u007f"'\\]/.test(arg)) {
      throw new InvalidRuleError(
        `rule argument ${JSON.stringify(arg)} contains a control character, quote or backslash`,
      )
    }
    if (COMMAND_FLAGS.has(arg)) throw new InvalidRuleError(`rule argument ${arg} is a command, not a rule option`)
    if (arg.startsWith('-') && /\s/.test(arg))
      throw new InvalidRuleError(`option ${JSON.stringify(arg)} contains whitespace`)
  }
}

/** One token as it must appear in an iptables-restore line. */
export function quoteArg(arg: string): string {
  return /\s/.test(arg) ? `"${arg}"` : arg
}

/** Splits an iptables-save line into tokens, honouring double quotes and backslash escapes. */
export function tokenizeSaveLine(line: string): string[] {
  const out: string[] = []
  let cur = ''
  let inToken = false
  let quoted = false
  for (let i = 0; i < line.length; i++) {
    const c = line[i] as string
    if (quoted) {
      if (c === '\\' && i + 1 < line.length) {
        cur += line[++i]
      } else if (c === '"') {
        quoted = false
      } else {
        cur += c
      }
      continue
    }
    if (c === '"') {
      quoted = true
      inToken = true
    } else if (c === ' ' || c === '\t') {
      if (inToken) out.push(cur)
      cur = ''
      inToken = false
    } else {
      cur += c
      inToken = true
    }
  }
  if (inToken) out.push(cur)
  return out
}

interface Unit {
  neg: boolean
  opt: string
  args: string[]
}

const GENERIC: Record<string, 's' | 'd' | 'i' | 'o' | 'p'> = {
  '-s': 's',
  '--source': 's',
  '--src': 's',
  '-d': 'd',
  '--destination': 'd',
  '--dst': 'd',
  '-i': 'i',
  '--in-interface': 'i',
  '-o': 'o',
  '--out-interface': 'o',
  '-p': 'p',
  '--protocol': 'p',
}

const PROTO_NAMES: Record<string, string> = {
  '1': 'icmp',
  '6': 'tcp',
  '17': 'udp',
  '132': 'sctp',
  '58': 'ipv6-icmp',
  icmpv6: 'ipv6-icmp',
}

const OPTION_ALIASES: Record<string, string> = {
  '--source-port': '--sport',
  '--destination-port': '--dport',
  '--source-ports': '--sports',
  '--destination-ports': '--dports',
}

/** Options whose comma-separated value iptables-save prints in its own fixed order. */
const UNORDERED_LISTS = new Set(['--ctstate', '--state', '--ctstatus'])

/**
 * The canonical identity of a rule: two argument vectors that iptables stores as the same rule
 * (for example `-p tcp --dport 80 -d 10.0.0.2` and iptables-save's `-d 10.0.0.2/32 -p tcp -m tcp
 * --dport 80`) get the same key. Throws InvalidRuleError for rules it cannot make sense of.
 */
export function ruleKey(rule: readonly string[], family: IpVersion): string {
  const generic: Partial<Record<'s' | 'd' | 'i' | 'o' | 'p' | 'f', string>> = {}
  const groups: Array<{ name: string; units: Unit[] }> = []
  let implicit: { name: string; units: Unit[] } | undefined
  let target: { kind: string; name: string; units: Unit[] } | undefined
  let current: Unit[] | undefined
  let neg = false

  const fail = (msg: string): never => {
    throw new InvalidRuleError(`${msg} in rule ${JSON.stringify(rule.join(' '))}`)
  }

  for (let i = 0; i < rule.length; i++) {
    const tok = rule[i] as string
    if (tok === '!') {
      if (neg) fail('double negation')
      neg = true
      continue
    }
    const g = GENERIC[tok]
    if (g !== undefined && target === undefined) {
      const value = rule[++i]
      if (value === undefined || value.startsWith('-')) fail(`${tok} needs a value`)
      if (generic[g] !== undefined) fail(`${tok} given twice`)
      const norm = normalizeGeneric(g, value as string, family, fail)
      // iptables-save leaves out what matches everything: `-s 0/0`, `-d ::/0`, `-p all`
      const matchesAll = g === 's' || g === 'd' ? norm.endsWith('/0') : g === 'p' && (norm === 'all' || norm === '0')
      if (!matchesAll || neg) generic[g] = (neg ? '! ' : '') + norm
      neg = false
      continue
    }
    if ((tok === '-f' || tok === '--fragment') && target === undefined) {
      if (family === 6) fail('-f is IPv4 only')
      generic.f = neg ? '! -f' : '-f'
      neg = false
      continue
    }
    if ((tok === '-m' || tok === '--match') && target === undefined) {
      if (neg) fail('! before -m')
      const name = rule[++i]
      if (name === undefined || name.startsWith('-')) fail('-m needs a match name')
      const group = { name: name as string, units: [] as Unit[] }
      groups.push(group)
      current = group.units
      continue
    }
    if (tok === '-j' || tok === '--jump' || tok === '-g' || tok === '--goto') {
      if (neg) fail(`! before ${tok}`)
      if (target !== undefined) fail('more than one target')
      const name = rule[++i]
      if (name === undefined || name.startsWith('-')) fail(`${tok} needs a target`)
      target = { kind: tok === '-g' || tok === '--goto' ? '-g' : '-j', name: name as string, units: [] }
      current = target.units
      continue
    }
    if (!tok.startsWith('-')) fail(`unexpected argument ${JSON.stringify(tok)}`)
    const args: string[] = []
    while (i + 1 < rule.length && !(rule[i + 1] as string).startsWith('-') && rule[i + 1] !== '!') {
      args.push(rule[++i] as string)
    }
    const unit: Unit = { neg, opt: tok, args }
    neg = false
    if (current === undefined) {
      // an option before any -m belongs to the protocol's implicit match (iptables-save prints `-m tcp`)
      if (implicit === undefined) {
        const proto = generic.p
        if (proto === undefined || proto.startsWith('!')) fail(`option ${tok} needs -p or -m`)
        implicit = { name: proto as string, units: [] }
        groups.push(implicit)
      }
      implicit.units.push(unit)
    } else {
      current.push(unit)
    }
  }
  if (neg) fail('dangling !')

  const parts: string[] = []
  for (const k of ['s', 'd', 'i', 'o', 'p'] as const) {
    const v = generic[k]
    if (v !== undefined) parts.push(`-${k} ${v}`)
  }
  if (generic.f !== undefined) parts.push(generic.f)
  const unitText = (u: Unit): string => {
    const opt = OPTION_ALIASES[u.opt] ?? u.opt
    let args = u.args.map((a) => (/^\d+$/.test(a) ? String(Number(a)) : a))
    if (UNORDERED_LISTS.has(opt)) args = args.map((a) => a.split(',').sort().join(','))
    return `${u.neg ? '! ' : ''}${opt}${args.length > 0 ? ' ' + args.join(' ') : ''}`
  }
  for (const group of groups) {
    parts.push(`-m ${group.name}`, ...group.units.map(unitText).sort())
  }
  if (target !== undefined) parts.push(`${target.kind} ${target.name}`, ...target.units.map(unitText).sort())
  return parts.join('\u0001')
}

function normalizeGeneric(
  kind: 's' | 'd' | 'i' | 'o' | 'p',
  value: string,
  family: IpVersion,
  fail: (m: string) => never,
): string {
  switch (kind) {
    case 's':
    case 'd':
      return normalizeAddress(value, family, fail)
    case 'i':
    case 'o':
      if (!/^[A-Za-z0-9_.:@-]{1,15}\+?$/.test(value) && value !== '+')
        fail(`invalid interface name ${JSON.stringify(value)}`)
      return value
    case 'p': {
      const p = value.toLowerCase()
      if (!/^[a-z0-9-]+$/.test(p)) fail(`invalid protocol ${JSON.stringify(value)}`)
      return PROTO_NAMES[p] ?? p
    }
  }
}

/** `10.0.0.5` → `10.0.0.5/32`; `10.0.0.5/24` → `10.0.0.0/24`; dotted masks accepted. Host names are refused. */
export function normalizeAddress(value: string, family: IpVersion, fail: (m: string) => never): string {
  if (value.includes(',')) fail(`address lists are not supported (${value})`)
  const [addr = '', len] = value.split('/')
  const shorthandAny = addr === '0' && len === '0'
  const ip = shorthandAny ? { version: family, value: 0n } : tryParseIp(addr)
  if (ip === undefined) fail(`invalid address ${JSON.stringify(value)}`)
  if (ip!.version !== family) fail(`address ${value} is not IPv${family}`)
  const width = family === 4 ? 32 : 128
  let bits = width
  if (len !== undefined) {
    if (/^\d{1,3}$/.test(len)) {
      bits = Number(len)
    } else {
      const mask = tryParseIp(len)
      if (mask === undefined || mask.version !== family) fail(`invalid prefix length in ${value}`)
      const m = mask!.value
      const b = m.toString(2).replace(/^0+/, '')
      if (m !== 0n && (b.length !== width || /01/.test(b))) fail(`non-contiguous mask in ${value}`)
      bits = m === 0n ? 0 : b.indexOf('0') === -1 ? width : b.indexOf('0')
    }
    if (bits > width) fail(`invalid prefix length in ${value}`)
  }
  const network = ip!.value & maskOf(family, bits)
  return `${formatIp({ version: family, value: network })}/${bits}`
}

/** True when the rule's target (`-j X` / `-g X`) is `chain`. */
export function targetOf(rule: readonly string[]): string | undefined {
  for (let i = 0; i < rule.length - 1; i++) {
    const t = rule[i]
    if (t === '-j' || t === '--jump' || t === '-g' || t === '--goto') return rule[i + 1]
  }
  return undefined
}
