// Request parsing with the rules of Go's net/http, so a URL that works against Docker's diagnostic port
// means the same thing here: `url.ParseQuery` (only `&` separates, a pair with `;` or a bad %-escape is
// dropped, `+` is a space, a key without `=` has the empty value) and `Request.ParseForm` (a urlencoded
// POST/PUT/PATCH body comes first, then the query).
import type { IncomingMessage } from 'node:http'
import { posix } from 'node:path'

/** Form values by name, in order of appearance (Go's url.Values). */
export type FormValues = Map<string, string[]>

const MAX_FORM_BYTES = 10 << 20 // Go's limit for a urlencoded body

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30
  if (c >= 0x41 && c <= 0x46) return c - 0x41 + 10
  if (c >= 0x61 && c <= 0x66) return c - 0x61 + 10
  return -1
}

const utf8 = new TextDecoder('utf-8')

/** Go's QueryUnescape (`+` → space when `plusIsSpace`); undefined on a malformed %-escape. */
export function goUnescape(s: string, plusIsSpace: boolean): string | undefined {
  if (!s.includes('%') && !(plusIsSpace && s.includes('+'))) return s
  const bytes = Buffer.from(s, 'utf8')
  const out = Buffer.alloc(bytes.length)
  let n = 0
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i] ?? 0
    if (c === 0x25) {
      const hi = hexValue(bytes[i + 1] ?? -1)
      const lo = hexValue(bytes[i + 2] ?? -1)
      if (hi < 0 || lo < 0) return undefined
      out[n++] = (hi << 4) | lo
      i += 2
    } else if (c === 0x2b && plusIsSpace) {
      out[n++] = 0x20
    } else {
      out[n++] = c
    }
  }
  return utf8.decode(out.subarray(0, n))
}

/** Adds the pairs of a query string to `into` (Go's url.ParseQuery, errors dropped as ParseForm's caller does). */
export function parseGoQuery(query: string, into: FormValues = new Map()): FormValues {
  for (const pair of query.split('&')) {
    if (pair === '' || pair.includes(';')) continue
    const eq = pair.indexOf('=')
    const key = goUnescape(eq < 0 ? pair : pair.slice(0, eq), true)
    const value = goUnescape(eq < 0 ? '' : pair.slice(eq + 1), true)
    if (key === undefined || value === undefined) continue
    const list = into.get(key)
    if (list === undefined) into.set(key, [value])
    else list.push(value)
  }
  return into
}

/** Go's ServeMux path cleaning: `//a/./b/../c/` → `/a/c/`. */
export function cleanPath(p: string): string {
  if (p === '') return '/'
  const abs = p.startsWith('/') ? p : `/${p}`
  let clean = posix.normalize(abs)
  if (clean.length > 1 && clean.endsWith('/')) clean = clean.slice(0, -1)
  if (abs.endsWith('/') && clean !== '/') clean += '/'
  return clean
}

export interface ParsedTarget {
  /** Decoded path (Go's r.URL.Path). */
  readonly path: string
  /** Raw query without the `?`. */
  readonly rawQuery: string
}

/** Splits a request target into decoded path and raw query; undefined when the path has a bad %-escape. */
export function parseTarget(target: string): ParsedTarget | undefined {
  let t = target
  // Absolute form (`GET http://host/path HTTP/1.1`): keep path and query only.
  const scheme = /^[a-zA-Z][a-zA-Z0-9+.-]*:\/\/[^/?#]*/.exec(t)
  if (scheme !== null) t = t.slice(scheme[0].length)
  const hash = t.indexOf('#')
  if (hash >= 0) t = t.slice(0, hash)
  const q = t.indexOf('?')
  const rawPath = q < 0 ? t : t.slice(0, q)
  const rawQuery = q < 0 ? '' : t.slice(q + 1)
  const path = goUnescape(rawPath, false)
  if (path === undefined) return undefined
  return { path, rawQuery }
}

function isUrlEncodedForm(req: IncomingMessage): boolean {
  const method = req.method ?? 'GET'
  if (method !== 'POST' && method !== 'PUT' && method !== 'PATCH') return false
  const type = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase()
  return type === 'application/x-www-form-urlencoded'
}

/** Reads the request body; a urlencoded form body (≤ 10 MiB) is parsed, anything else is drained. */
async function readFormBody(req: IncomingMessage, signal: AbortSignal): Promise<string | undefined> {
  const wanted = isUrlEncodedForm(req)
  const chunks: Buffer[] = []
  let size = 0
  let tooLarge = false
  for await (const chunk of req as AsyncIterable<Buffer>) {
    if (signal.aborted) break
    if (!wanted || tooLarge) continue
    size += chunk.length
    if (size > MAX_FORM_BYTES) {
      tooLarge = true
      chunks.length = 0
      continue
    }
    chunks.push(chunk)
  }
  if (!wanted || tooLarge) return undefined
  return Buffer.concat(chunks).toString('utf8')
}

/** Go's Request.ParseForm: body values first, then query values. */
export async function parseForm(req: IncomingMessage, rawQuery: string, signal: AbortSignal): Promise<FormValues> {
  const form: FormValues = new Map()
  const body = await readFormBody(req, signal)
  if (body !== undefined) parseGoQuery(body, form)
  parseGoQuery(rawQuery, form)
  return form
}
