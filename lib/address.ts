// Peer addresses as the access rules, the per-IP limit and the logs see them.
import { isIPv4 } from 'node:net'

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
