import t from 'tap'
import { addressKey, cidrContains, isAllowed, parseCidr } from '../../lib/net/cidr.js'

t.test('parses IPv4 and IPv6 CIDRs and plain addresses', async (t) => {
  t.match(parseCidr('10.0.0.0/8'), { family: 4, prefix: 8 })
  t.match(parseCidr('192.168.1.7'), { family: 4, prefix: 32 })
  t.match(parseCidr('fe80::/10'), { family: 6, prefix: 10 })
  t.match(parseCidr('::1'), { family: 6, prefix: 128 })
  t.match(parseCidr('::ffff:10.0.0.0/104'), { family: 4, prefix: 8 }, 'a mapped rule is an IPv4 rule')
  t.equal(parseCidr('10.1.2.3/8').network, parseCidr('10.0.0.0/8').network, 'host bits are masked off')
})

t.test('rejects what is not a CIDR, with a one-line reason', async (t) => {
  t.throws(() => parseCidr('10.0.0.0/33'), /prefix length out of range/)
  t.throws(() => parseCidr('::/129'), /prefix length out of range/)
  t.throws(() => parseCidr('10.0.0.0/'), /bad prefix length/)
  t.throws(() => parseCidr('10.0.0.0/8x'), /bad prefix length/)
  t.throws(() => parseCidr('10.0.0.0/8/8'), /not an IPv4 or IPv6/)
  t.throws(() => parseCidr('example.com'), /not an IPv4 or IPv6/)
  t.throws(() => parseCidr('256.0.0.1'), /not an IPv4 or IPv6/)
  t.throws(() => parseCidr('::ffff:10.0.0.0/64'), /prefix length out of range/)
})

t.test('matches addresses inside the network only, of the same family', async (t) => {
  const net8 = parseCidr('10.0.0.0/8')
  t.ok(cidrContains(net8, '10.255.1.2'))
  t.notOk(cidrContains(net8, '11.0.0.1'))
  t.ok(cidrContains(net8, '::ffff:10.1.1.1'), 'an IPv4-mapped peer matches an IPv4 rule')
  t.notOk(cidrContains(net8, '::1'))
  const v6 = parseCidr('2001:db8::/32')
  t.ok(cidrContains(v6, '2001:db8:1::5'))
  t.notOk(cidrContains(v6, '2001:db9::1'))
  t.notOk(cidrContains(v6, '10.0.0.1'))
  t.ok(cidrContains(parseCidr('0.0.0.0/0'), '203.0.113.9'))
  t.ok(cidrContains(parseCidr('::/0'), '::1'))
  t.notOk(cidrContains(net8, 'garbage'))
})

t.test('with no rules, everyone is allowed', async (t) => {
  t.ok(isAllowed({ allow: [], deny: [] }, '192.0.2.1'))
})

t.test('with --allow, only matching peers are allowed', async (t) => {
  const rules = { allow: [parseCidr('127.0.0.0/8')], deny: [] }
  t.ok(isAllowed(rules, '127.0.0.1'))
  t.notOk(isAllowed(rules, '192.0.2.1'))
})

t.test('the most specific rule wins; a tie is a deny', async (t) => {
  const rules = { allow: [parseCidr('10.1.2.3')], deny: [parseCidr('10.0.0.0/8')] }
  t.ok(isAllowed(rules, '10.1.2.3'))
  t.notOk(isAllowed(rules, '10.1.2.4'))
  const reverse = { allow: [parseCidr('10.0.0.0/8')], deny: [parseCidr('10.9.0.0/16')] }
  t.ok(isAllowed(reverse, '10.1.0.1'))
  t.notOk(isAllowed(reverse, '10.9.0.1'))
  const tie = { allow: [parseCidr('10.0.0.0/8')], deny: [parseCidr('10.0.0.0/8')] }
  t.notOk(isAllowed(tie, '10.0.0.1'))
})

t.test('a peer that matches no rule is denied when any --allow exists', async (t) => {
  const rules = { allow: [parseCidr('10.1.2.3')], deny: [parseCidr('10.0.0.0/8')] }
  t.notOk(isAllowed(rules, '192.0.2.1'))
  t.ok(isAllowed({ allow: [], deny: [parseCidr('10.0.0.0/8')] }, '192.0.2.1'), 'with only --deny, it is allowed')
})

t.test('addressKey gives one spelling per address', async (t) => {
  t.equal(addressKey('::1'), addressKey('0:0:0:0:0:0:0:1'))
  t.equal(addressKey('::ffff:127.0.0.1'), addressKey('127.0.0.1'))
  t.not(addressKey('127.0.0.1'), addressKey('127.0.0.2'))
  t.equal(addressKey('not an address'), 'not an address')
})
