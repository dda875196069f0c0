import { expect } from 'vitest'
import { createMemberlist } from '../src/index.js'
import type { Delegate, EventDelegate, Memberlist, MemberlistConfig, Node } from '../src/index.js'

/** Shortened timers so that failure detection takes about a second on 127.0.0.1. */
export const FAST: Partial<MemberlistConfig> = {
  bindAddr: '127.0.0.1',
  bindPort: 0,
  probeIntervalMs: 200,
  probeTimeoutMs: 100,
  gossipIntervalMs: 50,
  pushPullIntervalMs: 2000,
  gossipToTheDeadMs: 3000,
  tcpTimeoutMs: 5000,
}

export interface Recorder {
  messages: Uint8Array[]
  events: { kind: 'join' | 'leave' | 'update'; node: Node; at: number }[]
  delegate: Delegate
  eventDelegate: EventDelegate
}

export function recorder(): Recorder {
  const r: Recorder = {
    messages: [],
    events: [],
    delegate: {
      nodeMeta: () => new Uint8Array(0),
      notifyMsg: (p) => {
        r.messages.push(p)
      },
      getBroadcasts: () => [],
      localState: () => new Uint8Array(0),
      mergeRemoteState: () => undefined,
    },
    eventDelegate: {
      notifyJoin: (node) => r.events.push({ kind: 'join', node, at: Date.now() }),
      notifyLeave: (node) => r.events.push({ kind: 'leave', node, at: Date.now() }),
      notifyUpdate: (node) => r.events.push({ kind: 'update', node, at: Date.now() }),
    },
  }
  return r
}

export interface TestNode {
  ml: Memberlist
  rec: Recorder
}

/** Starts a node; `cleanup` collects it for shutdown in afterEach. */
export async function startNode(
  name: string,
  cleanup: Memberlist[],
  overrides: Partial<MemberlistConfig> = {},
): Promise<TestNode> {
  const rec = recorder()
  const ml = await createMemberlist({ ...FAST, name, delegate: rec.delegate, events: rec.eventDelegate, ...overrides })
  cleanup.push(ml)
  return { ml, rec }
}

export function addrOf(ml: Memberlist): string {
  return `${ml.address.addr}:${ml.address.port}`
}

/** Polls `cond` every 20 ms until it holds or `timeoutMs` passes (then fails with `what`). */
export async function waitFor(cond: () => boolean, timeoutMs: number, what: string): Promise<number> {
  const start = Date.now()
  while (!cond()) {
    if (Date.now() - start > timeoutMs) expect.fail(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 20))
  }
  return Date.now() - start
}

export function stateOf(ml: Memberlist, name: string): string | undefined {
  return ml.nodes().find((n) => n.name === name)?.state
}

export function aliveNames(ml: Memberlist): string[] {
  return ml
    .nodes()
    .filter((n) => n.state === 'alive')
    .map((n) => n.name)
    .sort()
}

export async function shutdownAll(list: Memberlist[]): Promise<void> {
  await Promise.all(list.splice(0).map((m) => m.shutdown()))
}
