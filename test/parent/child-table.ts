import type { Socket } from 'node:net'
import type { Child } from '../../lib/start/starter.js'
import t from 'tap'
import { ChildTable, newEntry, type ChildEntry } from '../../lib/parent/child-table.js'

const busy = (id: number, remoteAddress: string): ChildEntry => ({
  state: 'busy',
  info: { id, protocol: 'TCP', remoteAddress, remotePort: 1000 + id, localAddress: '127.0.0.1', localPort: 7000 },
  child: { pid: 100 + id } as Child,
  startedAt: 0,
  acceptedAt: 0,
  handoffMs: null,
  tally: null,
  socket: null,
  handoffTimer: null,
  lifetimeTimer: null,
  graceTimer: null, killTimer: null,
  retiring: null,
  ready: false,
})

const worker = (pid: number): ChildEntry => ({
  state: 'worker', info: null, child: { pid } as Child, startedAt: 0, socket: null, handoffTimer: null, lifetimeTimer: null, graceTimer: null, killTimer: null,
  retiring: null, ready: false,
  acceptedAt: null, handoffMs: null, tally: null,
})

t.test('counts live children, per source address, and remembers the peak', async (t) => {
  const table = new ChildTable()
  t.equal(table.size, 0)
  const [a, b, c] = [busy(1, '10.0.0.1'), busy(2, '10.0.0.1'), busy(3, '10.0.0.2')]
  table.add(a)
  table.add(b)
  table.add(c)
  t.equal(table.size, 3)
  t.equal(table.countFrom('10.0.0.1'), 2)
  t.equal(table.countFrom('10.0.0.9'), 0)
  t.ok(table.remove(a))
  t.notOk(table.remove(a), 'removing twice is harmless')
  t.equal(table.size, 2)
  t.equal(table.countFrom('10.0.0.1'), 1)
  t.equal(table.peak, 3, 'the peak stays')
  t.same([...table].map((e) => e.info?.id), [2, 3], 'iterates over the live children')
})

t.test('workers count as children but belong to no source address', async (t) => {
  const table = new ChildTable()
  table.add(worker(7))
  table.add(busy(1, '10.0.0.1'))
  t.equal(table.size, 2)
  t.equal(table.countFrom('10.0.0.1'), 1)
})

t.test('a spare or worker a reload is replacing is neither counted nor handed a connection', async (t) => {
  const table = new ChildTable()
  const old = { ...worker(7), state: 'spare' as const, retiring: 'stopping' as const }
  table.add(old)
  t.equal(table.spare(), undefined, 'an old spare takes no connection')
  t.equal(table.count('spare'), 0)
  const fresh = { ...worker(8), state: 'spare' as const }
  table.add(fresh)
  t.equal(table.spare(), fresh)
  t.equal(table.count('spare'), 1)
  table.add({ ...worker(9), retiring: 'serving' })
  t.equal(table.count('worker'), 0, 'an old worker is not counted')
  t.equal(table.size, 3, 'but every one is alive, and counts toward the table')
})

t.test('an ended child is counted by how it went: a busy one served or failed, a worker by its tally whatever its status, a spare not at all', async (t) => {
  const table = new ChildTable()
  const [ok, failed, spare, retired, crashed] = [busy(1, '10.0.0.1'), busy(2, '10.0.0.1'), { ...worker(8), state: 'spare' as const }, worker(9), worker(10)]
  retired.tally = { accepted: 5, served: 4, failed: 1, denied: 2, dropped: 0 }
  crashed.tally = { accepted: 2, served: 0, failed: 2, denied: 0, dropped: 0 }
  for (const entry of [ok, failed, spare, retired, crashed]) table.add(entry)
  table.totals.accepted += 2
  table.ended(ok, 0)
  table.ended(failed, 1)
  table.ended(spare, null)
  table.ended(retired, 0)
  table.ended(crashed, 1) // its status is no connection's: its tally counts them
  t.equal(table.size, 0)
  t.same(table.counters(), { accepted: 9, served: 5, failed: 4, denied: 2, dropped: 0, queueFull: 0, peak: 5 })
})

t.test('the counters add what live workers last reported to the totals, and leave the totals alone', async (t) => {
  const table = new ChildTable()
  const live = worker(7)
  live.tally = { accepted: 3, served: 2, failed: 0, denied: 1, dropped: 0 }
  table.add(live)
  table.totals.served = 10
  t.same(table.counters(), { accepted: 3, served: 12, failed: 0, denied: 1, dropped: 0, queueFull: 0, peak: 1 })
  t.equal(table.totals.served, 10, 'a live worker is counted again at its next report, not kept')
})

t.test('booting: spares not yet ready (and not being replaced), and busy children not yet holding their socket', async (t) => {
  const table = new ChildTable()
  const spare = (pid: number, ready: boolean, retiring: ChildEntry['retiring'] = null): ChildEntry => ({ ...newEntry('spare', { pid } as Child), ready, retiring })
  for (const entry of [spare(1, false), spare(2, true), spare(3, false, 'stopping'), worker(4)]) table.add(entry)
  t.equal(table.booting(), 1)
  const handing: ChildEntry = { ...newEntry('busy', { pid: 6 } as Child), socket: {} as Socket }
  table.add(handing)
  t.equal(table.booting(), 2, 'a busy child that has not yet taken its socket is booting too')
  handing.socket = null
  t.equal(table.booting(), 1, 'once it has, it is not')
  t.equal(newEntry('busy', { pid: 5 } as Child).info, null, 'a new entry has no connection yet')
})
