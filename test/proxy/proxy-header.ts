import t, { type Test } from 'tap'
import { parseProxyHeader, V1_MAX, V2_MAX, type Parsed, type ProxyHeader } from '../../lib/proxy/proxy-header.js'

// ---- helpers ----

const parse = (bytes: Buffer | string): Parsed => parseProxyHeader(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes)

/** The header that `bytes` parse to; fails the test (and returns null) when they do not. */
const headerOf = (t: Test, bytes: Buffer | string): ProxyHeader | null => {
  const parsed = parse(bytes)
  if (parsed.kind === 'header') return parsed.header
  t.fail(`expected a header, got ${JSON.stringify(parsed)}`)
  return null
}

/** The reason `bytes` are invalid; fails the test (and returns '') when they are not. */
const reasonOf = (t: Test, bytes: Buffer | string): string => {
  const parsed = parse(bytes)
  if (parsed.kind === 'invalid') return parsed.reason
  t.fail(`expected invalid, got ${JSON.stringify(parsed)}`)
  return ''
}

/** Checks that every proper prefix of `whole`, the empty one included, is 'incomplete'. */
const everyPrefixIsIncomplete = (t: Test, whole: Buffer): void => {
  const wrong = Array.from({ length: whole.length }, (_, n) => n).filter((n) => parse(whole.subarray(0, n)).kind !== 'incomplete')
  t.same(wrong, [], `all ${whole.length} prefixes are incomplete`)
}

// An independent, bitwise CRC32c (the parser uses a table), checked on the standard test vector below.
const crc32c = (bytes: Buffer): number => {
  let crc = ~0
  for (const byte of bytes) {
    crc ^= byte
    for (let k = 0; k < 8; k++) crc = (crc >>> 1) ^ (0x82f63b78 & -(crc & 1))
  }
  return ~crc >>> 0
}

const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')

interface V2Fields {
  readonly version?: number // high nibble of byte 12
  readonly command?: number // low nibble of byte 12: 0 LOCAL, 1 PROXY
  readonly family?: number // byte 13
  readonly addresses?: Buffer
  readonly tlvs?: readonly Buffer[]
  readonly length?: number // bytes 14-15; by default the addresses and TLVs
  readonly crc?: boolean // append a PP2_TYPE_CRC32C TLV holding the right checksum
}

/** A v2 header built from its fields. */
const v2 = ({ version = 2, command = 1, family = 0x11, addresses = Buffer.alloc(0), tlvs = [], length, crc = false }: V2Fields = {}): Buffer => {
  const body = Buffer.concat([addresses, ...tlvs, crc ? tlv(0x03, Buffer.alloc(4)) : Buffer.alloc(0)])
  const fixed = Buffer.from([(version << 4) | command, family, 0, 0])
  fixed.writeUInt16BE(length ?? body.length, 2)
  const header = Buffer.concat([SIGNATURE, fixed, body])
  if (crc) header.writeUInt32BE(crc32c(header), header.length - 4)
  return header
}

const tlv = (type: number, value: Buffer | string): Buffer => {
  const bytes = Buffer.from(value)
  return Buffer.concat([Buffer.from([type, bytes.length >> 8, bytes.length & 0xff]), bytes])
}

const ports = (source: number, destination: number): Buffer => {
  const bytes = Buffer.alloc(4)
  bytes.writeUInt16BE(source, 0)
  bytes.writeUInt16BE(destination, 2)
  return bytes
}
const ipv4 = (text: string): Buffer => Buffer.from(text.split('.').map(Number))
const tcp4 = (source: string, destination: string, sourcePort: number, destinationPort: number): Buffer =>
  Buffer.concat([ipv4(source), ipv4(destination), ports(sourcePort, destinationPort)])
const tcp6 = (sourceHex: string, destinationHex: string, sourcePort: number, destinationPort: number): Buffer =>
  Buffer.concat([Buffer.from(sourceHex, 'hex'), Buffer.from(destinationHex, 'hex'), ports(sourcePort, destinationPort)])
const unixPath = (path: string): Buffer => {
  const bytes = Buffer.alloc(108)
  bytes.write(path, 'utf8')
  return bytes
}

const LOOPBACK6 = '00000000000000000000000000000001'
const DOC6 = '20010db8000000000000000000000001'
const MAPPED6 = '00000000000000000000ffff01020304'

const FFFF6 = 'ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
const LONGEST_TCP6 = `PROXY TCP6 ${FFFF6} ${FFFF6} 65535 65535\r\n`
const LONGEST_UNKNOWN = `PROXY UNKNOWN ${FFFF6} ${FFFF6} 65535 65535\r\n`

// ---- v1 ----

t.test('the spec bounds a v1 line at 107 bytes and the v2 header at 16 + 1024 here', async (t) => {
  t.equal(V1_MAX, 107)
  t.equal(V2_MAX, 1040)
  t.equal(LONGEST_UNKNOWN.length, V1_MAX, "the spec's worst case is exactly the bound")
})

t.test('a v1 TCP4 line gives every field, and its length with the CRLF', async (t) => {
  t.same(headerOf(t, 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n'), {
    kind: 'proxy', version: 1, length: 45, family: 'TCP4', tlvs: [],
    source: { address: '192.0.2.7', port: 40000 }, destination: { address: '198.51.100.1', port: 443 },
  })
})

t.test('v1 ports run from 0 to 65535', async (t) => {
  t.match(headerOf(t, 'PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n'), {
    source: { address: '0.0.0.0', port: 0 }, destination: { address: '255.255.255.255', port: 65535 },
  })
})

t.test('a v1 TCP6 line gives its addresses in compressed lower case', async (t) => {
  t.same(headerOf(t, 'PROXY TCP6 2001:DB8:0:0:0:0:0:1 ::1 40000 443\r\n'), {
    kind: 'proxy', version: 1, length: 47, family: 'TCP6', tlvs: [],
    source: { address: '2001:db8::1', port: 40000 }, destination: { address: '::1', port: 443 },
  })
  t.match(headerOf(t, 'PROXY TCP6 ::ffff:1.2.3.4 ::1 1 2\r\n'), { source: { address: '::ffff:1.2.3.4' } }, 'an IPv4-mapped address is kept as it is')
  t.match(headerOf(t, LONGEST_TCP6), { length: 104, source: { address: FFFF6 } }, 'the longest TCP6 line')
})

t.test('a v1 UNKNOWN line is unknown, whatever follows the word up to the CRLF', async (t) => {
  t.same(headerOf(t, 'PROXY UNKNOWN\r\n'), { kind: 'unknown', version: 1, length: 15 })
  t.same(headerOf(t, 'PROXY UNKNOWN 192.0.2.7 198.51.100.1 40000 443\r\n'), { kind: 'unknown', version: 1, length: 48 })
  t.same(headerOf(t, 'PROXY UNKNOWN whatever \xff\0 here\r\n'), { kind: 'unknown', version: 1, length: 32 })
  t.same(headerOf(t, LONGEST_UNKNOWN), { kind: 'unknown', version: 1, length: 107 })
})

t.test('a v1 line with a protocol other than TCP4, TCP6 or UNKNOWN is invalid', async (t) => {
  for (const line of ['PROXY TCP9 nonsense\r\n', 'PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n', 'PROXY UNKNOWNX\r\n', 'PROXY \r\n', 'PROXY  TCP4 1.2.3.4 5.6.7.8 1 2\r\n', 'PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n']) {
    t.equal(reasonOf(t, line), 'v1: unknown protocol', JSON.stringify(line))
  }
})

t.test('a v1 address must be of the family named, in its canonical form', async (t) => {
  const bad: [string, string][] = [
    ['PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP4 256.2.3.4 5.6.7.8 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP4 ::1 5.6.7.8 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.08 1 2\r\n', 'v1: bad destination address'],
    ['PROXY TCP4 1.2.3.4 example.com 1 2\r\n', 'v1: bad destination address'],
    ['PROXY TCP6 1.2.3.4 ::1 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP6 fe80::1%eth0 ::1 1 2\r\n', 'v1: bad source address'],
    ['PROXY TCP6 ::1 1::2::3 1 2\r\n', 'v1: bad destination address'],
    ['PROXY TCP6 ::1 12345::1 1 2\r\n', 'v1: bad destination address'],
  ]
  for (const [line, reason] of bad) t.equal(reasonOf(t, line), reason, JSON.stringify(line))
})

t.test('a v1 port is decimal 0 to 65535, with no sign and no leading zero', async (t) => {
  const bad: [string, string][] = [
    ['PROXY TCP4 1.2.3.4 5.6.7.8 080 443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 +80 443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 -1 443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536 443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 0x50 443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8  443\r\n', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 80 00\r\n', 'v1: bad destination port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 80 100000\r\n', 'v1: bad destination port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 80 \r\n', 'v1: bad destination port'],
  ]
  for (const [line, reason] of bad) t.equal(reasonOf(t, line), reason, JSON.stringify(line))
})

t.test('a v1 line must have exactly its fields, one space apart', async (t) => {
  const bad: [string, string][] = [
    ['PROXY TCP4\r\n', 'v1: no source address'],
    ['PROXY TCP4 1.2.3.4\r\n', 'v1: no destination address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8\r\n', 'v1: no source port'],
    ['PROXY TCP6 ::1 ::2 80\r\n', 'v1: no destination port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 80 443 \r\n', 'v1: too many fields'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 80 443 1\r\n', 'v1: too many fields'],
  ]
  for (const [line, reason] of bad) t.equal(reasonOf(t, line), reason, JSON.stringify(line))
})

t.test('a v1 line ends with CRLF only: a bare LF or a CR without LF is invalid', async (t) => {
  t.equal(reasonOf(t, 'PROXY TCP4 1.2.3.4 5.6.7.8 80 443\n'), 'v1: LF without CR')
  t.equal(reasonOf(t, 'PROXY UNKNOWN\n'), 'v1: LF without CR')
  t.equal(reasonOf(t, 'PROXY UNKNOWN \nhidden\r\n'), 'v1: LF without CR', 'even inside what UNKNOWN ignores')
  t.equal(reasonOf(t, 'PROXY TCP4 1.2.3.4 5.6.7.8 80 443\rX'), 'v1: CR without LF')
  t.equal(reasonOf(t, 'PROXY UNKNOWN\r\r\n'), 'v1: CR without LF')
})

t.test('a v1 line with no CRLF within 107 bytes is too long', async (t) => {
  t.equal(reasonOf(t, `PROXY UNKNOWN ${'x'.repeat(200)}`), 'v1: line longer than 107 bytes')
  t.equal(reasonOf(t, `PROXY UNKNOWN ${'x'.repeat(200)}\r\n`), 'v1: line longer than 107 bytes')
  const longer = LONGEST_UNKNOWN.replace('65535 65535', '65535 655350')
  t.equal(longer.length, 108)
  t.equal(reasonOf(t, longer), 'v1: line longer than 107 bytes', 'a CRLF in bytes 107 and 108 comes too late')
  t.equal(reasonOf(t, longer.slice(0, 106)), 'v1: line longer than 107 bytes', '106 bytes and no CR: the CRLF cannot fit any more')
  t.equal(parse(LONGEST_UNKNOWN.slice(0, 106)).kind, 'incomplete', '106 bytes ending in CR: the LF still fits')
})

t.test('every proper prefix of a valid v1 line is incomplete', async (t) => {
  const lines = [
    'PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n', 'PROXY TCP4 0.0.0.0 10.0.0.1 0 65535\r\n',
    'PROXY TCP6 2001:db8::1 ::ffff:10.0.0.1 1 2\r\n', 'PROXY TCP6 :: 1:2:3:4:5:6:7:8 1 2\r\n',
    LONGEST_TCP6, 'PROXY UNKNOWN\r\n', LONGEST_UNKNOWN,
  ]
  for (const line of lines) {
    t.equal(parse(line).kind, 'header', JSON.stringify(line))
    everyPrefixIsIncomplete(t, Buffer.from(line, 'latin1'))
  }
})

t.test('a v1 prefix that can never become a valid line is invalid at once, without waiting for the CRLF', async (t) => {
  const bad: [string, string][] = [
    ['PROXY TCP9', 'v1: unknown protocol'],
    ['PROXY TCP9 nonsense', 'v1: unknown protocol'],
    ['PROXY UNKNOWNX', 'v1: unknown protocol'],
    ['PROXY TCP4 1.2.3.4.', 'v1: bad source address'],
    ['PROXY TCP4 1.2.3.4x', 'v1: bad source address'],
    ['PROXY TCP4 01', 'v1: bad source address'],
    ['PROXY TCP6 1:2:3:4:5:6:7:8:', 'v1: bad source address'],
    ['PROXY TCP6 ::1 ::g', 'v1: bad destination address'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 0\r', 'v1: no destination port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 65536', 'v1: bad source port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 02', 'v1: bad destination port'],
    ['PROXY TCP4 1.2.3.4 5.6.7.8 1 2 ', 'v1: too many fields'],
    ['PROXY TCP4 1.2.3.4\r', 'v1: no destination address'],
  ]
  for (const [prefix, reason] of bad) t.equal(reasonOf(t, prefix), reason, JSON.stringify(prefix))
})

// ---- v2 ----

t.test('the test builds CRC32c right (the standard check value)', async (t) => {
  t.equal(crc32c(Buffer.from('123456789')), 0xe3069283)
})

t.test('a v2 TCP4 header gives every field, and its length', async (t) => {
  const header = v2({ family: 0x11, addresses: tcp4('192.0.2.7', '198.51.100.1', 40000, 443) })
  t.equal(header.length, 28)
  t.same(headerOf(t, header), {
    kind: 'proxy', version: 2, length: 28, family: 'TCP4', tlvs: [],
    source: { address: '192.0.2.7', port: 40000 }, destination: { address: '198.51.100.1', port: 443 },
  })
})

t.test('a v2 TCP6 header gives its addresses in compressed lower case', async (t) => {
  t.same(headerOf(t, v2({ family: 0x21, addresses: tcp6(DOC6, LOOPBACK6, 0, 65535) })), {
    kind: 'proxy', version: 2, length: 52, family: 'TCP6', tlvs: [],
    source: { address: '2001:db8::1', port: 0 }, destination: { address: '::1', port: 65535 },
  })
  t.match(headerOf(t, v2({ family: 0x21, addresses: tcp6(MAPPED6, 'ff'.repeat(16), 1, 2) })), {
    source: { address: '::ffff:1.2.3.4' }, destination: { address: FFFF6 },
  }, 'an IPv4-mapped address is kept as it is')
})

t.test('a v2 UNIX header gives the two paths, cut at the first NUL, and port 0', async (t) => {
  const full = 'p'.repeat(108)
  t.same(headerOf(t, v2({ family: 0x31, addresses: Buffer.concat([unixPath('/run/balancer.sock'), Buffer.from(full)]) })), {
    kind: 'proxy', version: 2, length: 232, family: 'UNIX', tlvs: [],
    source: { address: '/run/balancer.sock', port: 0 }, destination: { address: full, port: 0 },
  }, 'a path of all 108 bytes has no NUL')
  const afterNul = Buffer.concat([unixPath('/a'), unixPath('/b')])
  afterNul.write('junk', 10)
  t.match(headerOf(t, v2({ family: 0x31, addresses: afterNul })), { source: { address: '/a' }, destination: { address: '/b' } })
})

t.test('a v2 LOCAL header is a local health check, whatever its family, with its whole length consumed', async (t) => {
  t.same(headerOf(t, v2({ command: 0, family: 0x00 })), { kind: 'local', version: 2, length: 16 })
  const withAddresses = v2({ command: 0, family: 0x11, addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x04, 'pad')] })
  t.same(headerOf(t, withAddresses), { kind: 'local', version: 2, length: 34 })
  t.same(headerOf(t, v2({ command: 0, family: 0x12, addresses: Buffer.alloc(3) })), { kind: 'local', version: 2, length: 19 }, 'UDP: the family is ignored')
  t.same(headerOf(t, v2({ command: 0, family: 0xff, tlvs: [Buffer.from([0x03, 0, 9])] })), { kind: 'local', version: 2, length: 19 }, 'nor are its TLVs read')
})

t.test('a v2 PROXY header of family UNSPEC is unknown, its address bytes skipped', async (t) => {
  t.same(headerOf(t, v2({ family: 0x00 })), { kind: 'unknown', version: 2, length: 16 })
  t.same(headerOf(t, v2({ family: 0x00, addresses: Buffer.from('whatever') })), { kind: 'unknown', version: 2, length: 24 })
})

t.test('v2 TLVs after the addresses are returned in order, as copies', async (t) => {
  const bytes = v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x01, 'h2'), tlv(0x02, 'example.com'), tlv(0x04, ''), tlv(0xe0, Buffer.from([0, 1, 2]))] })
  const header = headerOf(t, bytes)
  if (header?.kind !== 'proxy') return
  t.same(header.tlvs.map(({ type, value }) => [type, value.toString('hex')]), [
    [0x01, Buffer.from('h2').toString('hex')], [0x02, Buffer.from('example.com').toString('hex')], [0x04, ''], [0xe0, '000102'],
  ])
  t.equal(header.length, bytes.length)
  bytes.fill(0)
  t.equal(header.tlvs[1]?.value.toString(), 'example.com', 'a TLV value does not change with the bytes it came from')
})

t.test('v2 TLVs must fill the rest of the header exactly', async (t) => {
  const addresses = tcp4('1.2.3.4', '5.6.7.8', 1, 2)
  t.equal(reasonOf(t, v2({ addresses, tlvs: [tlv(0x01, 'h2'), Buffer.from([0x02])] })), 'v2: TLV cut short by the header length')
  t.equal(reasonOf(t, v2({ addresses, tlvs: [Buffer.from([0x02, 0x00])] })), 'v2: TLV cut short by the header length')
  t.equal(reasonOf(t, v2({ addresses, tlvs: [Buffer.from([0x02, 0x00, 0x05, 0x61])] })), 'v2: TLV longer than the header')
  const spills = v2({ addresses, tlvs: [Buffer.from([0x02, 0x00, 0x05, 0x61])] })
  t.equal(reasonOf(t, Buffer.concat([spills, Buffer.from('bcdef')])), 'v2: TLV longer than the header', 'even when the bytes after the header would fill it')
})

t.test('a v2 CRC32c TLV is checked over the whole header with its value zeroed', async (t) => {
  const right = v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x02, 'example.com')], crc: true })
  const header = headerOf(t, right)
  t.match(header, { kind: 'proxy', length: right.length })
  t.same(header?.kind === 'proxy' ? header.tlvs.map((x) => x.type) : [], [0x02, 0x03])
  const wrongSum = Buffer.from(right)
  wrongSum.writeUInt32BE((right.readUInt32BE(right.length - 4) ^ 1) >>> 0, right.length - 4)
  t.equal(reasonOf(t, wrongSum), 'v2: CRC32c mismatch')
  const changed = Buffer.from(right)
  changed[16] = 9 // the source address, once the sum was made
  t.equal(reasonOf(t, changed), 'v2: CRC32c mismatch')
  t.equal(reasonOf(t, v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x03, 'abc')] })), 'v2: CRC32c TLV is not 4 bytes')
  t.match(headerOf(t, v2({ family: 0x21, addresses: tcp6(DOC6, LOOPBACK6, 1, 2), crc: true })), { family: 'TCP6' }, 'over a TCP6 header too')
})

t.test('a v2 header must be version 2 with command LOCAL or PROXY', async (t) => {
  t.equal(reasonOf(t, v2({ version: 1 })), 'v2: version 1, not 2')
  t.equal(reasonOf(t, v2({ version: 3 }).subarray(0, 13)), 'v2: version 3, not 2', 'known from byte 13 alone')
  t.equal(reasonOf(t, v2({ command: 2 }).subarray(0, 13)), 'v2: unknown command 2')
  t.equal(reasonOf(t, v2({ command: 0xf })), 'v2: unknown command 15')
})

t.test('a v2 datagram or unknown family is invalid for a stream server', async (t) => {
  t.equal(reasonOf(t, v2({ family: 0x12, addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2) })), 'v2: UDP is not a stream')
  t.equal(reasonOf(t, v2({ family: 0x22 }).subarray(0, 14)), 'v2: UDP is not a stream', 'known from byte 14 alone')
  t.equal(reasonOf(t, v2({ family: 0x32 })), 'v2: UNIX datagram is not a stream')
  t.equal(reasonOf(t, v2({ family: 0x13 })), 'v2: unknown family and transport 0x13')
  t.equal(reasonOf(t, v2({ family: 0x41 })), 'v2: unknown family and transport 0x41')
  t.equal(reasonOf(t, v2({ family: 0x01 })), 'v2: unknown family and transport 0x01')
})

t.test('a v2 length must cover the address block', async (t) => {
  t.equal(reasonOf(t, v2({ family: 0x11, addresses: Buffer.alloc(8) })), 'v2: length 8 is short of the 12 address bytes')
  t.equal(reasonOf(t, v2({ family: 0x21, length: 12 }).subarray(0, 16)), 'v2: length 12 is short of the 36 address bytes', 'known from the 16 bytes alone')
  t.equal(reasonOf(t, v2({ family: 0x31, addresses: Buffer.alloc(215) })), 'v2: length 215 is short of the 216 address bytes')
})

t.test('a v2 header above 1040 bytes is oversized as soon as its 16 bytes are there', async (t) => {
  t.equal(reasonOf(t, v2({ length: 2000 - 16 }).subarray(0, 16)), 'v2: header of 2000 bytes, above 1040')
  t.equal(reasonOf(t, v2({ length: 0xffff }).subarray(0, 16)), 'v2: header of 65551 bytes, above 1040')
  t.equal(reasonOf(t, v2({ command: 0, length: 1025 }).subarray(0, 16)), 'v2: header of 1041 bytes, above 1040', 'LOCAL too')
  const largest = v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x04, Buffer.alloc(1024 - 12 - 3))] })
  t.equal(largest.length, V2_MAX)
  t.match(headerOf(t, largest), { kind: 'proxy', length: V2_MAX }, 'exactly 1040 bytes is accepted')
})

t.test('every proper prefix of a valid v2 header is incomplete', async (t) => {
  const headers = [
    v2({ addresses: tcp4('192.0.2.7', '198.51.100.1', 40000, 443) }),
    v2({ family: 0x21, addresses: tcp6(DOC6, LOOPBACK6, 1, 2), tlvs: [tlv(0x01, 'h2'), tlv(0x05, 'id')], crc: true }),
    v2({ family: 0x31, addresses: Buffer.concat([unixPath('/a'), unixPath('/b')]) }),
    v2({ command: 0, family: 0x00 }),
    v2({ command: 0, family: 0x11, addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2) }),
    v2({ family: 0x00, addresses: Buffer.from('skipped') }),
  ]
  for (const header of headers) {
    t.equal(parse(header).kind, 'header')
    everyPrefixIsIncomplete(t, header)
  }
})

// ---- either version ----

t.test('bytes that can never begin a PROXY header are invalid at once', async (t) => {
  const garbage = ['GET / HTTP/1.1\r\n', '\0', 'x', 'SSH-2.0-OpenSSH_9.6\r\n', 'PROXYX', 'PROXY\r\n', 'proxy TCP4', '\r\n\r\n\0\r\nQUIX', '\r\r', ' PROXY TCP4']
  for (const bytes of garbage) t.equal(reasonOf(t, bytes), 'not a PROXY header', JSON.stringify(bytes))
  t.equal(reasonOf(t, Buffer.from([0x16, 0x03, 0x01])), 'not a PROXY header', 'a TLS client hello')
})

t.test('the empty buffer, and prefixes of either signature, are incomplete', async (t) => {
  for (const bytes of ['', 'P', 'PROXY', 'PROXY ', '\r', '\r\n\r\n\0', SIGNATURE.toString('latin1')]) {
    t.equal(parse(bytes).kind, 'incomplete', JSON.stringify(bytes))
  }
})

t.test('bytes after the header are service data: never looked at, and not in its length', async (t) => {
  const service = Buffer.from('\n\r\0GET / HTTP/1.1\r\n\r\nPROXY garbage \xff'.repeat(10), 'latin1')
  const lines = ['PROXY TCP4 1.2.3.4 5.6.7.8 80 443\r\n', 'PROXY UNKNOWN\r\n', 'PROXY UNKNOWN x\r\n']
  for (const line of lines) {
    t.match(headerOf(t, Buffer.concat([Buffer.from(line), service])), { length: line.length }, JSON.stringify(line))
  }
  const longest = Buffer.concat([Buffer.from(LONGEST_UNKNOWN), service])
  t.match(headerOf(t, longest), { length: V1_MAX }, 'up to the bound')
  const headers = [
    v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x01, 'h2')], crc: true }),
    v2({ command: 0 }),
    v2({ family: 0x00, addresses: Buffer.alloc(4) }),
  ]
  for (const header of headers) t.match(headerOf(t, Buffer.concat([header, service])), { length: header.length })
})

t.test('reasons are one short lower-case line that does not echo the peer', async (t) => {
  const junk = 'q'.repeat(40)
  const cases = [
    `GET /${junk} HTTP/1.1\r\n`, `PROXY ${junk}\r\n`, `PROXY TCP4 ${junk} 1.2.3.4 1 2\r\n`, `PROXY TCP4 1.2.3.4 5.6.7.8 ${junk} 1\r\n`,
    `PROXY UNKNOWN ${junk.repeat(3)}`, `PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n${junk}`,
  ]
  const reasons = [
    ...cases.map((text) => reasonOf(t, text)),
    reasonOf(t, v2({ addresses: tcp4('1.2.3.4', '5.6.7.8', 1, 2), tlvs: [tlv(0x03, junk)] })),
    reasonOf(t, v2({ family: 0xee })), reasonOf(t, v2({ length: 5000 }).subarray(0, 16)),
  ]
  for (const reason of reasons) {
    t.match(reason, /^[a-z0-9][^\n\r]{0,60}[^.]$/, reason)
    t.notMatch(reason, /qqqq/, 'no peer text')
  }
})
