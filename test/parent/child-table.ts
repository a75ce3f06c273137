import type { Socket } from 'node:net'
import t from 'tap'
import { ChildTable, life, type Busy, type Entry, type Spare, type Worker } from '../../lib/parent/child-table.js'
import type { Spawned } from '../../lib/start/spawn.js'
import type { Child, Zygote } from '../../lib/start/starter.js'

const busy = (id: number, remoteAddress: string): Busy => ({
  ...life(0), startedAt: 0, role: 'busy', child: { pid: 100 + id } as Child,
  info: { id, protocol: 'TCP', remoteAddress, remotePort: 1000 + id, localAddress: '127.0.0.1', localPort: 7000 },
  acceptedAt: 0, handoffMs: null, socket: null, handoffTimer: null, wasSpare: false,
})
const worker = (pid: number): Worker => ({ ...life(0), startedAt: 0, role: 'worker', child: { pid } as Spawned, accepting: false, tally: null, graceTimer: null })
const spare = (pid: number, loaded = false, generation = 0): Spare => ({ ...life(generation), role: 'spare', child: { pid } as Child, loaded })

t.test('counts live children, per source address, and remembers the peak', async (t) => {
  const table = new ChildTable()
  t.equal(table.live, 0)
  const [a, b, c] = [busy(1, '10.0.0.1'), busy(2, '10.0.0.1'), busy(3, '10.0.0.2')]
  table.add(a)
  table.add(b)
  table.add(c)
  t.equal(table.live, 3)
  t.equal(table.countFrom('10.0.0.1'), 2)
  t.equal(table.countFrom('10.0.0.9'), 0)
  t.ok(table.remove(a))
  t.notOk(table.remove(a), 'removing twice is harmless')
  t.equal(table.live, 2)
  t.equal(table.countFrom('10.0.0.1'), 1)
  t.equal(table.peak, 3, 'the peak stays')
  t.same([...table].map((e) => (e as Busy).info.id), [2, 3], 'iterates over the live children')
})

t.test('workers count as children but belong to no source address; the zygote serves no connection and counts as none', async (t) => {
  const table = new ChildTable()
  table.add(worker(7))
  table.add(busy(1, '10.0.0.1'))
  table.add({ ...life(0), role: 'zygote', child: { pid: 9 } as Zygote, ready: true })
  t.equal(table.live, 2)
  t.equal(table.peak, 2)
  t.equal(table.countFrom('10.0.0.1'), 1)
})

t.test('a spare or worker a reload is replacing is neither counted nor handed a connection', async (t) => {
  let generation = 0
  const table = new ChildTable(() => generation)
  const old = spare(7)
  table.add(old)
  generation = 1
  t.equal(table.spare(), undefined, 'an old spare takes no connection')
  t.equal(table.count('spare'), 0)
  const fresh = spare(8, false, 1)
  table.add(fresh)
  t.equal(table.spare(), fresh)
  t.equal(table.count('spare'), 1)
  table.add(worker(9))
  t.equal(table.count('worker'), 0, 'an old worker is not counted')
  t.equal(table.live, 3, 'but every one is alive, and counts toward the table')
  fresh.retired = true
  t.equal(table.spare(), undefined, 'nor one told to go')
})

t.test('an ended child is counted by how it went: a busy one served or failed, a worker by its tally whatever its status, a spare not at all', async (t) => {
  const table = new ChildTable()
  const [ok, failed, idle, retired, crashed] = [busy(1, '10.0.0.1'), busy(2, '10.0.0.1'), spare(8), worker(9), worker(10)]
  retired.tally = { accepted: 5, served: 4, failed: 1, denied: 2, dropped: 0 }
  crashed.tally = { accepted: 2, served: 0, failed: 2, denied: 0, dropped: 0 }
  for (const entry of [ok, failed, idle, retired, crashed]) table.add(entry)
  table.totals.accepted += 2
  table.ended(ok, 0)
  table.ended(failed, 1)
  table.ended(idle, null)
  table.ended(retired, 0)
  table.ended(crashed, 1) // its status is no connection's: its tally counts them
  t.equal(table.live, 0)
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

t.test('booting: spares not yet loaded (and not being replaced), and busy children not yet holding their socket', async (t) => {
  let generation = 1
  const table = new ChildTable(() => generation)
  for (const entry of [spare(1, false, 1), spare(2, true, 1), spare(3, false, 0), worker(4)] as Entry[]) table.add(entry)
  t.equal(table.booting(), 1)
  const handing: Busy = { ...busy(6, '10.0.0.1'), socket: {} as Socket }
  table.add(handing)
  t.equal(table.booting(), 2, 'a busy child that has not yet taken its socket is booting too')
  handing.socket = null
  t.equal(table.booting(), 1, 'once it has, it is not')
  generation = 2
  t.equal(table.booting(), 0, 'a spare a reload is replacing is not booting')
})

t.test('a spare given its connection keeps its place among the spares until it has taken its socket', async (t) => {
  const table = new ChildTable()
  const waiting = spare(1, true)
  table.add(waiting)
  t.equal(table.spares(), 1)
  const handed: Busy = { ...waiting, ...busy(1, '10.0.0.1'), child: waiting.child, socket: {} as Socket, wasSpare: true }
  table.replace(waiting, handed)
  t.equal(table.get(waiting.child), handed, 'the same process, busy now')
  t.equal(table.spares(), 1, 'its successor waits until it has its socket')
  handed.socket = null
  t.equal(table.spares(), 0)
  t.notOk(table.remove(waiting), 'the spare entry is no longer in the table')
})
