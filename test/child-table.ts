import type { Child } from '../lib/starter.js'
import t from 'tap'
import { ChildTable, type ChildEntry } from '../lib/child-table.js'

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
