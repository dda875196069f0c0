// The reply shapes of Docker's diagnostic server (libnetwork/diagnostic/types.go): every reply is an
// envelope `{message, details}`; plain text is `message`, then a newline and the details' text form
// when there are details; JSON is the envelope itself (Go's encoding, compact or indented by two spaces).

/** A detail whose text form may carry raw bytes (`unsafe` values). */
export type TextPart = string | Uint8Array

export interface Details {
  /** Text form, as the Go type's String() method prints it. */
  text(): TextPart[]
  /** JSON form, as encoding/json marshals the Go type. */
  json(): unknown
}

export interface Reply {
  readonly message: string
  readonly details: Details | undefined
}

const utf8 = new TextDecoder('utf-8')

/** A value as it appears in a reply: base64 text, or the raw bytes when `unsafe` was given. */
export type EntryValue = { readonly base64: string } | { readonly raw: Uint8Array }

function valueText(v: EntryValue): TextPart {
  return 'raw' in v ? v.raw : v.base64
}

function valueJson(v: EntryValue): string {
  // Go marshals string(bytes): invalid UTF-8 becomes U+FFFD, as TextDecoder does.
  return 'raw' in v ? utf8.decode(v.raw) : v.base64
}

export function ok(details?: Details): Reply {
  return { message: 'OK', details }
}

/** FailCommand: `FAIL` + `Error: <text>`. */
export function fail(error: string): Reply {
  return {
    message: 'FAIL',
    details: { text: () => [`Error: ${error}`], json: () => ({ error }) },
  }
}

/** WrongCommand: a message (e.g. `missing parameter`) + `Usage: <usage>`. */
export function wrongCommand(message: string, usage: string): Reply {
  return {
    message,
    details: { text: () => [`Usage: ${usage}`], json: () => ({ usage }) },
  }
}

/** StringCmd: free text, `{info}` in JSON. */
export function info(text: string): Details {
  return { text: () => [text], json: () => ({ info: text }) }
}

export interface TableEntry {
  readonly key: string
  readonly value: EntryValue
  readonly owner: string
}

/** TableEntryObj: ``<i>) k:`<key>` -> v:`<value>` owner:`<owner>` ``. */
export function tableEntry(index: number, e: TableEntry): Details {
  return {
    text: () => [`${index}) k:\`${e.key}\` -> v:\``, valueText(e.value), `\` owner:\`${e.owner}\`\n`],
    json: () => ({ key: e.key, value: valueJson(e.value), owner: e.owner }),
  }
}

export interface Peer {
  readonly name: string
  /** Empty when the node's address is unknown (Go prints `invalid IP`, marshals ""). */
  readonly ip: string
}

/**
 * PeerEntryObj: `<i>) <name> -> <ip>`. Docker's struct tag is `json:"-=name"`, so Docker really emits
 * the key `-=name`; we emit that key (Go clients decode it) and `name` (what the tag meant).
 */
export function peerEntry(index: number, p: Peer): Details {
  return {
    text: () => [`${index}) ${p.name} -> ${p.ip === '' ? 'invalid IP' : p.ip}\n`],
    json: () => ({ '-=name': p.name, name: p.name, ip: p.ip }),
  }
}

/** TableObj: `total entries: <n>` then each element; `{size, entries}` (entries null when empty, as Go's nil slice). */
export function table(elements: Details[]): Details {
  return {
    text: () => [`total entries: ${elements.length}\n`, ...elements.flatMap((e) => e.text())],
    json: () => ({ size: elements.length, entries: elements.length === 0 ? null : elements.map((e) => e.json()) }),
  }
}

/**
 * NetworkStatsResult: `entries: <n>, qlen: <n>`. Docker's field tag is misspelt (`jsoin:"qlen"`), so its
 * JSON key is `QueueLen`; we emit `QueueLen` (Go clients decode it) and `qlen` (what the tag meant).
 */
export function networkStats(entries: number, qlen: number): Details {
  return {
    text: () => [`entries: ${entries}, qlen: ${qlen}\n`],
    json: () => ({ entries, QueueLen: qlen, qlen }),
  }
}

/** Go's json.Marshal escapes <, >, & and U+2028/2029 inside strings; JSON.stringify does not. */
function goJsonEscape(json: string): string {
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

export type OutputFormat = 'text' | 'json' | 'json-pretty'

/** The bytes of a reply in the requested format. */
export function renderReply(reply: Reply, format: OutputFormat): Buffer {
  if (format !== 'text') {
    const body = { message: reply.message, details: reply.details === undefined ? null : reply.details.json() }
    const json = format === 'json-pretty' ? JSON.stringify(body, null, 2) : JSON.stringify(body)
    return Buffer.from(goJsonEscape(json), 'utf8')
  }
  const parts: TextPart[] = [reply.message]
  if (reply.details !== undefined) parts.push('\n', ...reply.details.text())
  return Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'utf8') : p)))
}
