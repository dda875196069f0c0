import { spawn } from 'node:child_process'
import type { AbortOptions, ComponentLogger, Logger } from '@cnm/types'
import { iptables } from '@cnm/iptables'
import type { NatChange, NatRules } from '@cnm/resolver'
import { InternalError } from '@cnm/types'

/**
 * NAT rules for a namespace the daemon has just created (its nat table is empty): the embedded DNS
 * resolver's chains and rules go in with ONE `iptables-restore --noflush` launch, without the
 * `iptables-save` a general change set needs to find what is already there. Anything other than
 * creating chains and adding rules (deletes, at sandbox restore) goes through @cnm/iptables.
 */
export class FreshNamespaceNat implements NatRules {
  readonly #netns: string
  readonly #logger: ComponentLogger
  readonly #log: Logger

  constructor(netns: string, logger: ComponentLogger) {
    this.#netns = netns
    this.#logger = logger
    this.#log = logger.forComponent('cnm:cli:nat')
  }

  async apply(changes: readonly NatChange[], options?: AbortOptions): Promise<unknown> {
    if (changes.some((c) => c.op !== 'ensureChain' && c.op !== 'flushChain' && c.op !== 'ensure')) {
      return await iptables({ netns: this.#netns, family: 4 }, { logger: this.#logger }).apply(changes, options)
    }
    const builtin = new Set(['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'])
    const chains = [...new Set(changes.map((c) => c.chain).filter((c) => !builtin.has(c)))]
    const lines = ['*nat', ...chains.map((c) => `:${c} - [0:0]`)]
    for (const c of changes) if (c.op === 'ensure') lines.push(`-A ${c.chain} ${c.rule.join(' ')}`)
    lines.push('COMMIT', '')
    await run(
      ['nsenter', `--net=${this.#netns}`, '--', 'iptables-restore', '--noflush'],
      lines.join('\n'),
      options?.signal,
    )
    this.#log.trace('installed %d NAT changes in %s', changes.length, this.#netns)
    return { applied: changes.length }
  }
}

async function run(argv: string[], input: string, signal: AbortSignal | undefined): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), {
      stdio: ['pipe', 'ignore', 'pipe'],
      ...(signal !== undefined && { signal }),
    })
    let err = ''
    child.stderr.on('data', (d: Buffer) => (err += d.toString()))
    child.on('error', reject)
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new InternalError(`${argv.join(' ')} exited ${code}: ${err.trim()}`, { code: 'ERR_CLI_NAT' })),
    )
    child.stdin.on('error', () => undefined)
    child.stdin.end(input)
  })
}
