// The JSON envelope of the diagnostic server's replies, loosely typed for the tests that read them, and
// the polling helper those tests share.
import { inspect } from 'node:util'

/** Reply details, loosely typed: each check reads the fields its endpoint has. */
export interface Row {
  readonly key: string
  readonly value: string
  readonly owner: string
  readonly name: string
  readonly '-=name': string
  readonly ip: string
}
export interface Details {
  readonly size: number
  /** Rows of a table; a number in /networkstats. */
  readonly entries: readonly Row[] | null | number
  readonly key: string
  readonly value: string
  readonly owner: string
  readonly qlen: number
  readonly QueueLen: number
  readonly nodeId: string
  readonly networkClock: string
  readonly tableClock: string
  readonly networks: readonly { readonly networkId: string }[]
  readonly nodes: { readonly active: number; readonly left: number; readonly failed: number }
}
export interface Envelope {
  readonly message: string
  readonly details: Details
}

export const rows = (d: Details): readonly Row[] => (Array.isArray(d.entries) ? (d.entries as readonly Row[]) : [])

/** Polls `fn` every 100 ms until it returns a value; the last error, if any, goes into the timeout message. */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs
  let last: unknown
  for (;;) {
    try {
      const v = await fn()
      if (v !== undefined) return v
    } catch (err) {
      last = err
    }
    if (Date.now() > end)
      throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${inspect(last)}`}`)
    await new Promise((r) => setTimeout(r, 100))
  }
}
