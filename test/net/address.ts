import t from 'tap'
import { formatHostPort, judgedByAddress, normalizeAddress } from '../../lib/net/address.js'

t.test('IPv4-mapped IPv6 addresses become plain IPv4', async (t) => {
  t.equal(normalizeAddress('::ffff:127.0.0.1'), '127.0.0.1')
  t.equal(normalizeAddress('::FFFF:10.1.2.3'), '10.1.2.3')
})

t.test('other addresses keep their form, in lower case', async (t) => {
  t.equal(normalizeAddress('127.0.0.1'), '127.0.0.1')
  t.equal(normalizeAddress('::1'), '::1')
  t.equal(normalizeAddress('FE80::1'), 'fe80::1')
  t.equal(normalizeAddress('::ffff:999.0.0.1'), '::ffff:999.0.0.1', 'not a valid mapped address')
})

t.test('IPv6 hosts are bracketed next to a port', async (t) => {
  t.equal(formatHostPort('127.0.0.1', 7000), '127.0.0.1:7000')
  t.equal(formatHostPort('::1', 7000), '[::1]:7000')
})

t.test('--allow and --deny judge TCP peers and proxied clients, not the peers of a Unix-domain listener', async (t) => {
  const tcp = { id: 1, protocol: 'TCP', remoteAddress: '10.0.0.1', remotePort: 1, localAddress: '10.0.0.2', localPort: 2 } as const
  const unix = { id: 2, protocol: 'UNIX', remoteAddress: '', remotePort: 0, localAddress: '/run/fs.sock', localPort: 0 } as const
  t.ok(judgedByAddress(tcp))
  t.notOk(judgedByAddress(unix), 'a Unix-domain listener: no address, and no rules given')
  t.ok(judgedByAddress({ ...unix, via: '127.0.0.1:4000' }), 'a Unix path a PROXY header names: judged')
})
