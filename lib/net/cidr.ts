// CIDR rules for --allow and --deny, IPv4 and IPv6.
//
// The most specific matching rule wins, as in xinetd's only_from/no_access:
// `--deny 10.0.0.0/8 --allow 10.1.2.3` lets 10.1.2.3 in and keeps the rest
// of 10/8 out. On a tie, deny wins. A peer that matches no rule is let in
// only when no --allow was given.
import { isIPv4, isIPv6 } from 'node:net'
import { normalizeAddress } from './address.js'

type Family = 4 | 6

export interface Cidr {
  readonly family: Family
  readonly network: bigint
  readonly prefix: number
  readonly text: string
}

const bits = (family: Family): number => (family === 4 ? 32 : 128)

const ipv4ToBigInt = (address: string): bigint =>
  address.split('.').reduce((acc, octet) => (acc << 8n) | BigInt(Number(octet)), 0n)

const ipv6ToBigInt = (address: string): bigint => {
  // Fold a trailing dotted quad (::ffff:1.2.3.4) into two hex groups first.
  const quad = /(\d+\.\d+\.\d+\.\d+)$/.exec(address)
  let text = address
  if (quad?.[1] !== undefined) {
    const v = ipv4ToBigInt(quad[1])
    text = address.slice(0, quad.index) + `${(v >> 16n).toString(16)}:${(v & 0xffffn).toString(16)}`
  }
  const [head = '', tail] = text.split('::')
  const left = head === '' ? [] : head.split(':')
  const right = tail === undefined || tail === '' ? [] : tail.split(':')
  const zeros = Array<string>(8 - left.length - right.length).fill('0')
  return [...left, ...zeros, ...right].reduce((acc, group) => (acc << 16n) | BigInt(parseInt(group, 16)), 0n)
}

const toBigInt = (address: string): { family: Family; value: bigint } | null => {
  if (isIPv4(address)) return { family: 4, value: ipv4ToBigInt(address) }
  if (isIPv6(address)) return { family: 6, value: ipv6ToBigInt(address) }
  return null
}

const mask = (family: Family, prefix: number): bigint => {
  const width = BigInt(bits(family))
  const all = (1n << width) - 1n
  return (all << (width - BigInt(prefix))) & all
}

/** Parses `1.2.3.0/24`, `::1`, `fe80::/10`; throws an Error with a one-line message. */
export const parseCidr = (text: string): Cidr => {
  const [address = '', prefixText, extra] = text.split('/')
  const plain = normalizeAddress(address)
  const parsed = extra === undefined ? toBigInt(plain) : null
  if (parsed === null) throw new Error(`not an IPv4 or IPv6 address or CIDR: ${text}`)
  if (prefixText !== undefined && !/^\d+$/.test(prefixText)) throw new Error(`bad prefix length in ${text}`)
  // ::ffff:10.0.0.0/104 is written in IPv6 bits but matched as 10.0.0.0/8.
  const shift = plain !== address.toLowerCase() ? 96 : 0
  const width = bits(parsed.family)
  const prefix = prefixText === undefined ? width : Number(prefixText) - shift
  if (prefix < 0 || prefix > width) throw new Error(`prefix length out of range in ${text}`)
  return { family: parsed.family, network: parsed.value & mask(parsed.family, prefix), prefix, text }
}

export const cidrContains = (cidr: Cidr, address: string): boolean => {
  const peer = toBigInt(normalizeAddress(address))
  return peer !== null && peer.family === cidr.family &&
    (peer.value & mask(cidr.family, cidr.prefix)) === cidr.network
}

export interface AccessRules {
  readonly allow: readonly Cidr[]
  readonly deny: readonly Cidr[]
}

const longestMatch = (rules: readonly Cidr[], address: string): number =>
  rules.reduce((best, rule) => (cidrContains(rule, address) ? Math.max(best, rule.prefix) : best), -1)

/** True when the peer at `address` may connect under these rules. */
export const isAllowed = (rules: AccessRules, address: string): boolean => {
  const allow = longestMatch(rules.allow, address)
  const deny = longestMatch(rules.deny, address)
  if (allow < 0 && deny < 0) return rules.allow.length === 0
  return allow > deny
}

/** One spelling per address (`::1`, `0:0::1`, `::ffff:127.0.0.1`→IPv4), for comparing addresses. */
export const addressKey = (address: string): string => {
  const parsed = toBigInt(normalizeAddress(address))
  return parsed === null ? address : `${parsed.family}:${parsed.value.toString(16)}`
}
