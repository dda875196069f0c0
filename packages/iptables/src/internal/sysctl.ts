import { CommandFailure, IptablesCommandError } from '../errors.js'
import { inNetns } from './exec.js'
import type { CommandRunner } from './exec.js'

/**
 * Reads and writes sysctls of one namespace with `sysctl` (through `ip netns exec` for a named
 * namespace). Keys use `/` as separator so interface names containing dots stay intact.
 */
export class Sysctl {
  constructor(
    private readonly runCommand: CommandRunner,
    private readonly netns: string | undefined,
  ) {}

  async read(key: string, signal?: AbortSignal): Promise<string | undefined> {
    const r = await this.runCommand(inNetns(this.netns, ['sysctl', '-n', key]), signal === undefined ? {} : { signal })
    return r.code === 0 ? r.stdout.trim() : undefined
  }

  async write(key: string, value: string, signal?: AbortSignal): Promise<void> {
    const argv = inNetns(this.netns, ['sysctl', '-q', '-w', `${key}=${value}`])
    const r = await this.runCommand(argv, signal === undefined ? {} : { signal })
    if (r.code !== 0) {
      throw new IptablesCommandError(`setting ${key}=${value} failed`, {
        cause: new CommandFailure(argv, r.code, r.stderr, r.stdout),
      })
    }
  }

  /** Sets the value unless it already has it; true when it had to change. */
  async ensure(key: string, value: string, signal?: AbortSignal): Promise<boolean> {
    if ((await this.read(key, signal)) === value) return false
    await this.write(key, value, signal)
    return true
  }
}
