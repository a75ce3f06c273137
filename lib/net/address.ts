// Peer addresses as the access rules, the per-IP limit and the logs see them.
import { isIPv4, type Socket } from 'node:net'
import type { ConnectionInfo } from '../protocol.js'

const MAPPED = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i

/**
 * A server bound to `::` sees IPv4 peers as `::ffff:1.2.3.4`. Rules, limits
 * and logs all want the plain IPv4 form, so every address passes through here.
 */
export const normalizeAddress = (address: string): string => {
  const mapped = MAPPED.exec(address)
  return mapped?.[1] !== undefined && isIPv4(mapped[1]) ? mapped[1] : address.toLowerCase()
}

/** `1.2.3.4:80`, or `[::1]:80` for IPv6, as tcpserver and most tools print them. */
export const formatHostPort = (address: string, port: number): string =>
  address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`

/**
 * Where a connection comes from and where it arrived. A Unix-domain socket
 * (`path`, the listener's file) has no addresses or ports: its peer is
 * known by the path alone.
 */
export const connectionInfo = (socket: Socket, id: number, path: string | null): ConnectionInfo =>
  path === null
    ? {
        id,
        protocol: 'TCP',
        remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
        remotePort: socket.remotePort ?? 0,
        localAddress: normalizeAddress(socket.localAddress ?? ''),
        localPort: socket.localPort ?? 0,
      }
    : { id, protocol: 'UNIX', remoteAddress: '', remotePort: 0, localAddress: path, localPort: 0 }

/**
 * The peer as the logs show it: `1.2.3.4:5678`, or `unix:PATH`; through a
 * balancer, the client and then the balancer: `1.2.3.4:5678 via 10.0.0.1:40000`.
 */
export const peerOf = (info: ConnectionInfo): string => {
  const peer = info.protocol === 'UNIX' ? `unix:${info.localAddress}` : formatHostPort(info.remoteAddress, info.remotePort)
  return info.via === undefined ? peer : `${peer} via ${info.via}`
}

/**
 * Whether --allow and --deny can judge this connection. A peer of a
 * Unix-domain listener has no address, and those rules are refused there at
 * start. A client a PROXY header names by a Unix path came through a TCP
 * balancer the rules were given for: it is judged, and matches no rule (so
 * --allow keeps it out).
 */
export const judgedByAddress = (info: ConnectionInfo): boolean => info.protocol !== 'UNIX' || info.via !== undefined

/** A listener as the `listening on` line shows it: `HOST:PORT`, or `unix:PATH`. */
export const listenerName = (bound: { kind: 'tcp'; address: string; port: number } | { kind: 'unix'; path: string }): string =>
  bound.kind === 'unix' ? `unix:${bound.path}` : formatHostPort(bound.address, bound.port)
