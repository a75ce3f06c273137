// The PROXY protocol header (HAProxy's doc/proxy-protocol.txt), versions 1 and 2.
//
// A balancer sends it as the first bytes of a connection, to name the real client (source) and the
// address that client connected to (destination). This file only parses: it is given the bytes
// peeked so far and says whether they hold a whole header, could still become one, or never can.
//
// v1, one line of US-ASCII, at most 107 bytes with its CRLF, single spaces:
//
//   PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n      source, destination, source port, destination port
//   PROXY TCP6 2001:db8::7 2001:db8::1 40000 443\r\n
//   PROXY UNKNOWN[ anything]\r\n                         use the connection's own endpoints
//
// v2, binary; the 16 fixed bytes, then `len` bytes of addresses and TLVs:
//
//   bytes 0-11   \r \n \r \n \0 \r \n Q U I T \n      the signature
//   byte  12     0x2_ version 2 | 0x_0 LOCAL (a health check) or 0x_1 PROXY
//   byte  13     family and transport: 0x11 TCP/IPv4, 0x21 TCP/IPv6, 0x31 UNIX stream, 0x00 unspecified
//   bytes 14-15  len, big-endian
//   16...        source and destination addresses, then ports:  4+4+2+2 | 16+16+2+2 | 108+108 (paths)
//   ...16+len    TLVs, up to the end: type (1 byte), length (2, big-endian), value
import { isIPv4, isIPv6, SocketAddress } from 'node:net'

export const V1_MAX = 107 // bytes, CRLF included (the spec's bound)
export const V2_MAX = 16 + 1024 // bytes: the fixed 16 and at most 1024 of addresses and TLVs

export interface Endpoint { readonly address: string; readonly port: number } // UNIX: address = path, port 0
export interface Tlv { readonly type: number; readonly value: Buffer }
export type ProxyHeader =
  | { kind: 'proxy'; version: 1 | 2; length: number; family: 'TCP4' | 'TCP6' | 'UNIX';
      source: Endpoint; destination: Endpoint; tlvs: readonly Tlv[] } // v1 tlvs = []
  | { kind: 'local'; version: 2; length: number } // v2 LOCAL: the balancer's own health check
  | { kind: 'unknown'; version: 1 | 2; length: number } // v1 UNKNOWN, v2 PROXY + AF_UNSPEC: use the real endpoints
export type Parsed =
  | { kind: 'header'; header: ProxyHeader } // header.length = bytes to consume
  | { kind: 'incomplete' } // a valid prefix so far; wait for more
  | { kind: 'invalid'; reason: string } // one line, lower case, no trailing period

type Family = 'TCP4' | 'TCP6' | 'UNIX'

const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1')
const V2_SIGNATURE = Buffer.from('\r\n\r\n\0\r\nQUIT\n', 'latin1')
const CR = 0x0d
const LF = 0x0a

const INCOMPLETE: Parsed = { kind: 'incomplete' }
const invalid = (reason: string): Parsed => ({ kind: 'invalid', reason })
const found = (header: ProxyHeader): Parsed => ({ kind: 'header', header })

/** True when `bytes` and `signature` agree as far as both go. */
const startsLike = (bytes: Buffer, signature: Buffer): boolean => {
  const n = Math.min(bytes.length, signature.length)
  return bytes.subarray(0, n).equals(signature.subarray(0, n))
}

// ---- v1 ----

const V1_FIELDS = ['source address', 'destination address', 'source port', 'destination port'] as const

// The spec has no zone ids (%eth0), which isIPv6 would take.
const isAddress = (family: 'TCP4' | 'TCP6', text: string): boolean =>
  family === 'TCP4' ? isIPv4(text) : !text.includes('%') && isIPv6(text)
const isPort = (text: string): boolean => /^(0|[1-9][0-9]{0,4})$/.test(text) && Number(text) <= 65535

// An address the bytes end inside of may still become whole: `10.1.` with `0.0`, `2001:db8` with `::`, and so on.
const ENDINGS = ['', '0', '.0', '0.0', '.0.0', '0.0.0', '.0.0.0', '0.0.0.0', ':', ':0', '::']
const couldBeAddress = (family: 'TCP4' | 'TCP6', text: string): boolean =>
  ENDINGS.some((ending) => isAddress(family, text + ending))
// Every prefix of a port without leading zeros is one too.
const couldBePort = (text: string): boolean => text === '' || isPort(text)

/** Why the v1 line after `PROXY ` is wrong, or null. `cut`: the bytes end inside it, so its last field may be unfinished. */
const v1Fault = (rest: string, cut: boolean): string | null => {
  const [protocol = '', ...fields] = rest.split(' ')
  if (cut && fields.length === 0) return ['TCP4', 'TCP6', 'UNKNOWN'].some((p) => p.startsWith(protocol)) ? null : 'v1: unknown protocol'
  if (protocol === 'UNKNOWN') return null // the rest of the line is ignored
  if (protocol !== 'TCP4' && protocol !== 'TCP6') return 'v1: unknown protocol'
  if (fields.length > V1_FIELDS.length) return 'v1: too many fields'
  for (const [i, name] of V1_FIELDS.entries()) {
    const text = fields[i]
    if (text === undefined) return cut ? null : `v1: no ${name}`
    const unfinished = cut && i === fields.length - 1
    const ok = i < 2
      ? (unfinished ? couldBeAddress(protocol, text) : isAddress(protocol, text))
      : (unfinished ? couldBePort(text) : isPort(text))
    if (!ok) return `v1: bad ${name}`
  }
  return null
}

/** The header of a v1 line that v1Fault found right; IPv6 addresses in Node's form (lower case, compressed). */
const v1Header = (rest: string, length: number): ProxyHeader => {
  const [family = '', source = '', destination = '', sourcePort = '', destinationPort = ''] = rest.split(' ')
  if (family !== 'TCP4' && family !== 'TCP6') return { kind: 'unknown', version: 1, length }
  const address = (text: string): string => (family === 'TCP4' ? text : new SocketAddress({ address: text, family: 'ipv6' }).address)
  return {
    kind: 'proxy', version: 1, length, family, tlvs: [],
    source: { address: address(source), port: Number(sourcePort) },
    destination: { address: address(destination), port: Number(destinationPort) },
  }
}

const parseV1 = (bytes: Buffer): Parsed => {
  if (bytes.length < V1_SIGNATURE.length) return INCOMPLETE
  const window = bytes.subarray(0, V1_MAX - 1) // where the CR of the CRLF may be
  const end = window.findIndex((byte) => byte === CR || byte === LF) // the first CR or LF ends the line
  if (end === -1) {
    const fault = v1Fault(window.toString('latin1', V1_SIGNATURE.length), true)
    if (fault !== null) return invalid(fault)
    return bytes.length >= V1_MAX - 1 ? invalid(`v1: line longer than ${V1_MAX} bytes`) : INCOMPLETE // or no room for the CRLF
  }
  if (window[end] === LF) return invalid('v1: LF without CR')
  const rest = window.toString('latin1', V1_SIGNATURE.length, end)
  const fault = v1Fault(rest, false)
  if (fault !== null) return invalid(fault)
  if (end + 1 === bytes.length) return INCOMPLETE // the LF is still to come
  if (bytes[end + 1] !== LF) return invalid('v1: CR without LF')
  return found(v1Header(rest, end + 2))
}

// ---- v2 ----

// What byte 13 says about the address block: its family (null: none to read) and its size.
interface Block { readonly family: Family | null; readonly size: number }
const NO_ADDRESSES: Block = { family: null, size: 0 }
const BLOCKS = new Map<number, Block>([
  [0x00, NO_ADDRESSES], [0x11, { family: 'TCP4', size: 12 }], [0x21, { family: 'TCP6', size: 36 }], [0x31, { family: 'UNIX', size: 216 }],
])
const NOT_STREAMS = new Map([[0x12, 'v2: UDP is not a stream'], [0x22, 'v2: UDP is not a stream'], [0x32, 'v2: UNIX datagram is not a stream']])
const blockOf = (byte: number): Block | string =>
  BLOCKS.get(byte) ?? NOT_STREAMS.get(byte) ?? `v2: unknown family and transport 0x${byte.toString(16).padStart(2, '0')}`

const ipv4Text = (bytes: Buffer): string => [...bytes].join('.')
const ipv6Text = (bytes: Buffer): string => {
  const groups = Array.from({ length: 8 }, (_, i) => bytes.readUInt16BE(2 * i).toString(16))
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address
}
const unixPath = (bytes: Buffer): string => {
  const nul = bytes.indexOf(0)
  return bytes.toString('utf8', 0, nul === -1 ? bytes.length : nul)
}

const endpoints = (family: Family, block: Buffer): [Endpoint, Endpoint] => {
  if (family === 'UNIX') return [{ address: unixPath(block.subarray(0, 108)), port: 0 }, { address: unixPath(block.subarray(108)), port: 0 }]
  const [size, text] = family === 'TCP4' ? [4, ipv4Text] as const : [16, ipv6Text] as const
  return [
    { address: text(block.subarray(0, size)), port: block.readUInt16BE(2 * size) },
    { address: text(block.subarray(size, 2 * size)), port: block.readUInt16BE(2 * size + 2) },
  ]
}

// CRC32c (Castagnoli, RFC 4960 appendix B), the checksum of the PP2_TYPE_CRC32C TLV.
const PP2_TYPE_CRC32C = 0x03
const CRC32C_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1
  return c
})
const crc32c = (bytes: Buffer): number => {
  let crc = 0xffffffff
  for (const byte of bytes) crc = CRC32C_TABLE[(crc ^ byte) & 0xff]! ^ (crc >>> 8)
  return (crc ^ 0xffffffff) >>> 0
}

/** Why the CRC32c TLV whose value is header[at..end) is wrong, or null. It sums the header with that value zeroed. */
const crcFault = (header: Buffer, at: number, end: number): string | null => {
  if (end - at !== 4) return 'v2: CRC32c TLV is not 4 bytes'
  const zeroed = Buffer.from(header).fill(0, at, end)
  return crc32c(zeroed) === header.readUInt32BE(at) ? null : 'v2: CRC32c mismatch'
}

/** The TLVs from `start` to the end of the header, which they must fill exactly, or why not. */
const readTlvs = (header: Buffer, start: number): Tlv[] | string => {
  const tlvs: Tlv[] = []
  for (let at = start; at < header.length;) {
    if (at + 3 > header.length) return 'v2: TLV cut short by the header length'
    const type = header.readUInt8(at)
    const end = at + 3 + header.readUInt16BE(at + 1)
    if (end > header.length) return 'v2: TLV longer than the header'
    const fault = type === PP2_TYPE_CRC32C ? crcFault(header, at + 3, end) : null
    if (fault !== null) return fault
    tlvs.push({ type, value: Buffer.from(header.subarray(at + 3, end)) }) // a copy: the caller may reuse `bytes`
    at = end
  }
  return tlvs
}

const parseV2 = (bytes: Buffer): Parsed => {
  if (bytes.length < 13) return INCOMPLETE
  const version = bytes.readUInt8(12) >> 4
  const command = bytes.readUInt8(12) & 0x0f
  if (version !== 2) return invalid(`v2: version ${version}, not 2`)
  if (command > 1) return invalid(`v2: unknown command ${command}`)
  if (bytes.length < 14) return INCOMPLETE
  const local = command === 0
  const block = local ? NO_ADDRESSES : blockOf(bytes.readUInt8(13)) // LOCAL ignores the family
  if (typeof block === 'string') return invalid(block)
  if (bytes.length < 16) return INCOMPLETE
  const length = 16 + bytes.readUInt16BE(14)
  if (length > V2_MAX) return invalid(`v2: header of ${length} bytes, above ${V2_MAX}`)
  if (length < 16 + block.size) return invalid(`v2: length ${length - 16} is short of the ${block.size} address bytes`)
  if (bytes.length < length) return INCOMPLETE
  if (local) return found({ kind: 'local', version: 2, length })
  if (block.family === null) return found({ kind: 'unknown', version: 2, length })
  const header = bytes.subarray(0, length)
  const tlvs = readTlvs(header, 16 + block.size)
  if (typeof tlvs === 'string') return invalid(tlvs)
  const [source, destination] = endpoints(block.family, header.subarray(16, 16 + block.size))
  return found({ kind: 'proxy', version: 2, length, family: block.family, source, destination, tlvs })
}

/** Parses the bytes peeked so far; bytes after the header (the service's) are never looked at. */
export const parseProxyHeader = (bytes: Buffer): Parsed => {
  if (startsLike(bytes, V1_SIGNATURE)) return parseV1(bytes)
  if (startsLike(bytes, V2_SIGNATURE)) return parseV2(bytes)
  return invalid('not a PROXY header')
}
