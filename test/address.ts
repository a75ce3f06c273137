import t from 'tap'
import { formatHostPort, normalizeAddress } from '../lib/address.js'

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
