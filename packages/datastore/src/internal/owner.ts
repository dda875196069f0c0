import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'

/**
 * Who has an lmdb store open. Kept in the store itself and changed only inside an LMDB write transaction
 * (which holds LMDB's inter-process lock), so two processes cannot both take it.
 */
export interface OwnerRecord {
  readonly pid: number
  /** The process start time from /proc (clock ticks since boot), to tell a reused PID from its first owner. */
  readonly start?: string
  /** One per open store instance. */
  readonly token: string
}

/** Start time of `pid` (field 22 of /proc/<pid>/stat), or undefined where /proc is not available. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name (field 2) is in parentheses and may hold spaces: count fields after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return fields[19]
  } catch {
    // No /proc (not Linux) or the process is gone: the caller falls back to the PID alone.
    return undefined
  }
}

export function newOwner(): OwnerRecord {
  const start = startTimeOf(process.pid)
  const token = randomUUID()
  return start === undefined ? { pid: process.pid, token } : { pid: process.pid, start, token }
}

/** True when the process that wrote `rec` may still be running (and so may still use the store). */
export function ownerAlive(rec: unknown): boolean {
  if (typeof rec !== 'object' || rec === null) return false
  const { pid, start } = rec as Partial<OwnerRecord>
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false
  }
  if (typeof start === 'string') {
    const now = startTimeOf(pid)
    if (now !== undefined && now !== start) return false
  }
  return true
}
