import { nsExec } from '@cnm/test-utils'

/**
 * iptables-save of a namespace without timestamp comments and without tables that hold nothing
 * (only built-in chains, policy ACCEPT, no rules): the kernel creates a table on first use, and
 * an empty table is the same ruleset as an absent one.
 */
export async function saveOf(ns: string, family: 4 | 6 = 4, backend: 'nft' | 'legacy' = 'nft'): Promise<string> {
  const out = await nsExec(ns, family === 4 ? `iptables-${backend}-save` : `ip6tables-${backend}-save`, [])
  const tables: string[][] = []
  let cur: string[] | undefined
  for (const line of out.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    if (line.startsWith('*')) {
      cur = [line]
      tables.push(cur)
      continue
    }
    cur?.push(line)
  }
  const empty = (t: string[]): boolean =>
    t.every((l) => l.startsWith('*') || l === 'COMMIT' || /^:[A-Z]+ ACCEPT \[\d+:\d+\]$/.test(l))
  return tables
    .filter((t) => !empty(t))
    .map((t) => t.join('\n'))
    .join('\n')
}
