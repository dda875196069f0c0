import type { IpVersion } from '@cnm/types'
import { BUILTIN_CHAINS, TABLES, ruleKey, tokenizeSaveLine } from './rule.js'
import type { Table } from './rule.js'

/** One rule as iptables-save printed it, with its canonical key. */
export interface SavedRule {
  readonly key: string
  /** Tokens after `-A <chain>`, exactly as saved (usable verbatim in `-D <chain> ...`). */
  readonly tokens: readonly string[]
}

export interface ChainModel {
  /** `undefined` for user-defined chains. */
  policy: string | undefined
  rules: SavedRule[]
}

/** The rules of the tables an apply() touches, as read from one iptables-save. */
export type TablesModel = Map<Table, Map<string, ChainModel>>

/** A key that never equals the key of a rule we understand, for saved rules we cannot parse. */
function opaqueKey(tokens: readonly string[]): string {
  return `\u0002${tokens.join('\u0001')}`
}

export function savedRule(tokens: readonly string[], family: IpVersion): SavedRule {
  let key: string
  try {
    key = ruleKey(tokens, family)
  } catch {
    // a rule written by someone else with options we do not model; it can never equal one of ours
    key = opaqueKey(tokens)
  }
  return { key, tokens }
}

function emptyTable(table: Table): Map<string, ChainModel> {
  const chains = new Map<string, ChainModel>()
  for (const c of BUILTIN_CHAINS[table]) chains.set(c, { policy: 'ACCEPT', rules: [] })
  return chains
}

/**
 * Parses iptables-save output. Tables that are not in the output (not loaded yet) get their
 * built-in chains with no rules, which is what the kernel will show once they are used.
 */
export function parseSave(text: string, family: IpVersion, wanted: Iterable<Table> = TABLES): TablesModel {
  const model: TablesModel = new Map()
  for (const t of wanted) model.set(t, emptyTable(t))
  let current: Map<string, ChainModel> | undefined
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line.length === 0 || line.startsWith('#')) continue
    if (line.startsWith('*')) {
      const name = line.slice(1) as Table
      if ((TABLES as readonly string[]).includes(name)) {
        current = emptyTable(name)
        current.clear()
        model.set(name, current)
      } else {
        current = undefined
      }
      continue
    }
    if (current === undefined) continue
    if (line === 'COMMIT') {
      current = undefined
      continue
    }
    if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(' ')
      current.set(name, { policy: policy === '-' ? undefined : policy, rules: [] })
      continue
    }
    if (line.startsWith('-A ')) {
      const tokens = tokenizeSaveLine(line)
      const chain = tokens[1] ?? ''
      let c = current.get(chain)
      if (c === undefined) {
        c = { policy: undefined, rules: [] }
        current.set(chain, c)
      }
      c.rules.push(savedRule(tokens.slice(2), family))
    }
  }
  return model
}

export function cloneModel(model: TablesModel): TablesModel {
  const out: TablesModel = new Map()
  for (const [t, chains] of model) {
    const c = new Map<string, ChainModel>()
    for (const [name, chain] of chains) c.set(name, { policy: chain.policy, rules: [...chain.rules] })
    out.set(t, c)
  }
  return out
}
