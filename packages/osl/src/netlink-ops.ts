/**
 * `link add name H [address M] [mtu N] [master B] [up] type veth peer name P [address M] [mtu N] [netns PATH]`
 * → `['veth', H, M, N, B, up, P, M, N, PATH]` (empty strings for what is unset).
 */
function vethOp(line: string): string[] | undefined {
  const w = line.split(' ').slice(3)
  const name = w.shift()
  if (name === undefined) return undefined
  const host: Record<string, string> = { address: '', mtu: '', master: '' }
  let up = '0'
  while (w.length > 0 && w[0] !== 'type') {
    const k = w.shift() as string
    if (k === 'up') up = '1'
    else if (k in host && w.length > 0) host[k] = w.shift() as string
    else return undefined
  }
  if (w.join(' ').startsWith('type veth peer name ') === false) return undefined
  w.splice(0, 4)
  const peerName = w.shift()
  if (peerName === undefined) return undefined
  const peer: Record<string, string> = { address: '', mtu: '', netns: '' }
  while (w.length > 0) {
    const k = w.shift() as string
    if (k in peer && w.length > 0) peer[k] = w.shift() as string
    else return undefined
  }
  if (peer['netns'] !== '' && !(peer['netns'] as string).startsWith('/')) return undefined
  return [
    'veth',
    name,
    host['address'] as string,
    host['mtu'] as string,
    host['master'] as string,
    up,
    peerName,
    peer['address'] as string,
    peer['mtu'] as string,
    peer['netns'] as string,
  ]
}

/**
 * Translates the `ip` batch lines this package generates for an attach (veth pairs, addresses, link up,
 * routes) into the native addon's rtnetlink ops, so an attach needs no process launch.
 * Returns undefined for any line it does not cover; the caller then runs the group through `ip -batch`.
 */
export function toNetlinkOp(line: string): string[] | undefined {
  if (line.startsWith('link add name ')) return vethOp(line)
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
