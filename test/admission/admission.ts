import t from 'tap'
import { ADMISSION_ORDER, BOOT_LIMIT, admit, hasRoom, mayStart, passed, type LiveCounts, type Peer, type Rules, type Step } from '../../lib/admission/admission.js'
import { parseCidr } from '../../lib/net/cidr.js'

const rules: Rules = {
  access: { allow: [parseCidr('10.0.0.0/8')], deny: [parseCidr('10.9.0.0/16')] },
  rate: { count: 3, seconds: 10 },
  maxPerIp: 2,
  maxChildren: 4,
  overflow: 'queue',
  queueLimit: 5,
}

/** Counts under every limit: a connection from 10.0.0.1 is admitted. */
const calm: LiveCounts = { draining: false, descriptorsShort: null, recent: 0, fromPeer: 0, live: 0, spareWaiting: false, booting: 0, queued: 0 }
const peer = { address: '10.0.0.1', unix: false }

t.test('under every limit, a connection is admitted', async (t) => {
  t.same(admit(peer, rules, calm), { kind: 'admit', step: 'max-children' })
  t.same(admit(peer, rules, { ...calm, live: 3 }), { kind: 'admit', step: 'max-children' }, 'one below --max-children')
})

t.test('at --max-children, a waiting spare still takes it: spares count as children already', async (t) => {
  t.same(admit(peer, rules, { ...calm, live: 4, spareWaiting: true }), { kind: 'admit', step: 'max-children' })
  t.ok(hasRoom(rules, 4, true))
  t.notOk(hasRoom(rules, 4, false))
})

t.test('at --max-children, it waits in the queue while the queue has room', async (t) => {
  t.same(admit(peer, rules, { ...calm, live: 4 }), { kind: 'queue', step: 'queue' })
  t.same(admit(peer, rules, { ...calm, live: 4, queued: 4 }), { kind: 'queue', step: 'queue' }, 'one place left')
})

t.test('a full queue drops it, naming the limit', async (t) => {
  t.same(admit(peer, rules, { ...calm, live: 4, queued: 5 }), { kind: 'drop', step: 'queue', reason: 'queue full (5 waiting)' })
})

t.test('below --max-children, with BOOT_LIMIT children booting, it waits in the queue, even under --overflow reject', async (t) => {
  t.ok(BOOT_LIMIT >= 1, 'one per core')
  const busy = { ...calm, live: 1, booting: BOOT_LIMIT }
  const wide = { ...rules, maxChildren: BOOT_LIMIT + 2 }
  t.same(admit(peer, wide, busy), { kind: 'queue', step: 'queue' })
  t.same(admit(peer, { ...wide, overflow: 'reject' }, busy), { kind: 'queue', step: 'queue' })
  t.same(admit(peer, wide, { ...busy, queued: 5 }), { kind: 'drop', step: 'queue', reason: 'queue full (5 waiting)' })
  t.same(admit(peer, wide, { ...busy, spareWaiting: true }), { kind: 'admit', step: 'max-children' }, 'a ready spare needs no boot')
  t.notOk(mayStart(wide, busy))
  t.ok(mayStart(wide, { ...busy, booting: BOOT_LIMIT - 1 }))
})

t.test('--overflow reject drops it at --max-children instead of queueing', async (t) => {
  t.same(admit(peer, { ...rules, overflow: 'reject' }, { ...calm, live: 4 }), { kind: 'drop', step: 'max-children', reason: 'max-children 4 reached' })
})

t.test('while draining, a connection that would wait for a child to end is dropped; one with a slot free is served', async (t) => {
  t.same(admit(peer, rules, { ...calm, draining: true, live: 4 }), { kind: 'drop', step: 'draining', reason: 'shutting down' }, 'at --max-children')
  t.same(admit(peer, rules, { ...calm, draining: true, live: 3 }), { kind: 'admit', step: 'max-children' }, 'a slot free (its PROXY header came late)')
  t.same(admit(peer, rules, { ...calm, draining: true, live: 3, booting: BOOT_LIMIT }), { kind: 'queue', step: 'queue' }, 'a slot free, waiting to boot')
})

t.test('short of descriptors, it is dropped with the count', async (t) => {
  t.same(admit(peer, rules, { ...calm, descriptorsShort: '1010 of 1024 descriptors open' }), {
    kind: 'drop', step: 'descriptors', reason: 'out of descriptors (1010 of 1024 descriptors open)',
  })
})

t.test('--allow and --deny deny a peer outside the allowed, or inside the denied, networks', async (t) => {
  t.same(admit({ address: '192.0.2.1', unix: false }, rules, calm), { kind: 'deny', step: 'access' }, 'not allowed')
  t.same(admit({ address: '10.9.0.1', unix: false }, rules, calm), { kind: 'deny', step: 'access' }, 'denied')
  t.same(admit({ address: '', unix: true }, rules, calm).kind, 'admit', 'a Unix-domain peer has no address to judge')
})

t.test('--rate drops an address over its rate', async (t) => {
  t.same(admit(peer, rules, { ...calm, recent: 3 }), { kind: 'drop', step: 'rate', reason: 'rate 3/10s exceeded' })
  t.equal(admit(peer, rules, { ...calm, recent: 2 }).kind, 'admit', 'one below the rate')
  t.equal(admit(peer, { ...rules, rate: null }, { ...calm, recent: 99 }).kind, 'admit', 'no --rate, no limit')
})

t.test('--max-per-ip drops an address with that many connections served or waiting', async (t) => {
  t.same(admit(peer, rules, { ...calm, fromPeer: 2 }), { kind: 'drop', step: 'per-ip', reason: 'max-per-ip 2 reached' })
  t.equal(admit(peer, { ...rules, maxPerIp: 0 }, { ...calm, fromPeer: 99 }).kind, 'admit', '0: no limit')
})

t.test('the steps run in the order of the table: the first that decides gives the verdict', async (t) => {
  t.same(ADMISSION_ORDER, ['draining', 'descriptors', 'access', 'rate', 'per-ip', 'max-children', 'queue'])
  // A connection that fails every step at once. Lift each failure in the
  // table's order: each time, the next step in the table decides.
  type Case = { readonly who: Peer; readonly rules: Rules; readonly now: LiveCounts }
  const lift: Record<Step, (c: Case) => Case> = {
    draining: (c) => ({ ...c, now: { ...c.now, draining: false } }),
    descriptors: (c) => ({ ...c, now: { ...c.now, descriptorsShort: null } }),
    access: (c) => ({ ...c, who: peer }),
    rate: (c) => ({ ...c, now: { ...c.now, recent: 0 } }),
    'per-ip': (c) => ({ ...c, now: { ...c.now, fromPeer: 0 } }),
    'max-children': (c) => ({ ...c, rules: { ...c.rules, overflow: 'queue' } }),
    queue: (c) => ({ ...c, now: { ...c.now, queued: 0 } }),
  }
  let c: Case = {
    who: { address: '192.0.2.1', unix: false },
    rules: { ...rules, overflow: 'reject' },
    now: { draining: true, descriptorsShort: 'short', recent: 3, fromPeer: 2, live: 4, spareWaiting: false, booting: 0, queued: 5 },
  }
  for (const step of ADMISSION_ORDER) {
    t.equal(admit(c.who, c.rules, c.now).step, step, `with the steps before it lifted, ${step} decides`)
    c = lift[step](c)
  }
  t.same(admit(c.who, c.rules, c.now), { kind: 'queue', step: 'queue' }, 'with every failure lifted, it waits for a child')
})

t.test('passed() says which steps a verdict got past: --rate counts those past its step', async (t) => {
  t.ok(passed(admit(peer, rules, calm), 'rate'), 'admitted: past the rate')
  t.ok(passed(admit(peer, rules, { ...calm, fromPeer: 2 }), 'rate'), 'dropped by --max-per-ip: past the rate')
  t.notOk(passed(admit(peer, rules, { ...calm, recent: 3 }), 'rate'), 'dropped by the rate itself')
  t.notOk(passed(admit({ address: '192.0.2.1', unix: false }, rules, calm), 'rate'), 'denied before the rate')
})
