/**
 * Translates the `ip` batch lines this package generates for the inside of a namespace (addresses, link
 * up, routes) into the native addon's rtnetlink ops, so the in-sandbox half of an attach needs no launch.
 * Returns undefined for any line it does not cover; the caller then runs the group through `ip -batch`.
 */
export function toNetlinkOp(line: string): string[] | undefined {
  let m = /^link set dev (\S+) up$/.exec(line)
  if (m !== null) return ['up', m[1] as string]
  m = /^addr add ([0-9a-fA-F:.]+)\/(\d+) dev (\S+)( nodad)?$/.exec(line)
  if (m !== null) return ['addr', m[3] as string, m[1] as string, m[2] as string, m[4] === undefined ? '0' : '1']
  if (!line.startsWith('route add ')) return undefined
  const words = line.slice('route add '.length).split(' ')
  const dstText = words.shift()
  if (dstText === undefined) return undefined
  let dst = ''
  let plen = '0'
  let family: '4' | '6' | undefined
  if (dstText === 'default') {
    family = undefined
  } else {
    const [ip, len] = dstText.split('/')
    if (ip === undefined || len === undefined || !/^\d+$/.test(len)) return undefined
    family = ip.includes(':') ? '6' : '4'
    if (len !== '0') {
      dst = ip
      plen = len
    }
  }
  let gw = ''
  let dev = ''
  let scope: string | undefined
  let onlink = '0'
  while (words.length > 0) {
    const w = words.shift()
    const v = (): string | undefined => words.shift()
    if (w === 'via') gw = v() ?? ''
    else if (w === 'dev') dev = v() ?? ''
    else if (w === 'scope') scope = v()
    else if (w === 'onlink') onlink = '1'
    else return undefined // metric, table…: leave those to ip
  }
  if (gw !== '') family ??= gw.includes(':') ? '6' : '4'
  family ??= '4'
  if (gw === '' && dev === '') return undefined
  if (scope !== undefined && scope !== 'link' && scope !== 'global') return undefined
  // ip's defaults: IPv4 routes without a gateway are link scope, everything else universe
  const s = scope === 'link' || (scope === undefined && family === '4' && gw === '') ? 'link' : 'universe'
  return ['route', dst, plen, family, gw, dev, s, onlink]
}
