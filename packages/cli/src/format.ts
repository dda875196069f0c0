import Table from 'cli-table3'
import type { EndpointView, NetworkView, SandboxView } from './service.js'

/** A borderless, left-aligned table like Docker's `ls` output. */
export function table(head: readonly string[], rows: ReadonlyArray<readonly string[]>): string {
  const t = new Table({
    head: [...head],
    chars: {
      top: '',
      'top-mid': '',
      'top-left': '',
      'top-right': '',
      bottom: '',
      'bottom-mid': '',
      'bottom-left': '',
      'bottom-right': '',
      left: '',
      'left-mid': '',
      mid: '',
      'mid-mid': '',
      right: '',
      'right-mid': '',
      middle: '   ',
    },
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0, compact: true },
  })
  for (const r of rows) t.push([...r])
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n')
}

export const shortId = (id: string): string => id.slice(0, 12)

export function networksTable(nets: readonly NetworkView[]): string {
  return table(
    ['NETWORK ID', 'NAME', 'DRIVER', 'SUBNET', 'GATEWAY', 'INTERNAL', 'ENDPOINTS'],
    nets.map((n) => [
      shortId(n.id),
      n.name,
      n.driver,
      n.ipam.config.map((c) => c.subnet).join(',') || '-',
      n.ipam.config
        .map((c) => c.gateway ?? '')
        .filter((g) => g !== '')
        .join(',') || '-',
      n.internal ? 'yes' : 'no',
      String(n.endpointCount),
    ]),
  )
}

export const portsText = (e: EndpointView): string =>
  e.ports.map((p) => `${p.hostIp}:${p.hostPort}->${p.containerPort}/${p.proto}`).join(', ')

export function sandboxesTable(sbs: readonly SandboxView[]): string {
  return table(
    ['SANDBOX ID', 'NAME', 'STATE', 'NETWORKS', 'ADDRESSES', 'PORTS'],
    sbs.map((s) => [
      s.id === '' ? '-' : shortId(s.id),
      s.name,
      s.state ?? 'running',
      s.endpoints.map((e) => e.network).join(',') || '-',
      s.endpoints
        .map((e) => e.ipv4Address ?? e.ipv6Address ?? '')
        .filter((a) => a !== '')
        .join(',') || '-',
      s.endpoints
        .map(portsText)
        .filter((p) => p !== '')
        .join(', ') || '-',
    ]),
  )
}

export function endpointsTable(eps: readonly EndpointView[]): string {
  return table(
    ['ENDPOINT', 'NETWORK', 'SANDBOX', 'INTERFACE', 'IPV4', 'IPV6', 'MAC', 'PORTS'],
    eps.map((e) => [
      e.name,
      e.network,
      e.sandbox ?? '-',
      e.interface ?? '-',
      e.ipv4Address ?? '-',
      e.ipv6Address ?? '-',
      e.macAddress ?? '-',
      portsText(e) || '-',
    ]),
  )
}
