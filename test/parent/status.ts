import type { Child } from '../../lib/start/starter.js'
import t from 'tap'
import { ChildTable, type ChildEntry } from '../../lib/parent/child-table.js'
import { StatusReport, statusEvent } from '../../lib/parent/status.js'

const entry = (pid: number, state: ChildEntry['state'], id: number | null = null): ChildEntry => ({
  state,
  info: id === null ? null : { id, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: 4000 + id, localAddress: '127.0.0.1', localPort: 7000 },
  child: { pid } as Child,
  startedAt: 1000,
  acceptedAt: null,
  handoffMs: null,
  tally: null,
  socket: null,
  handoffTimer: null,
  lifetimeTimer: null,
  graceTimer: null, killTimer: null,
  retiring: null,
  ready: false,
})

const counters = { accepted: 3, served: 1, denied: 0, dropped: 0, queueFull: 0, failed: 0, peak: 2 }

t.test('the status event has a row per child, by pid, with its age and connection', async (t) => {
  const table = new ChildTable()
  table.add(entry(30, 'spare'))
  table.add(entry(20, 'busy', 3))
  t.same(statusEvent(table, 40, counters, (info) => `peer-${info.id}`, 3500), {
    event: 'status', trigger: 'SIGUSR1', live: 2, max: 40, counters,
    children: [
      { pid: 20, state: 'busy', conn: 3, peer: 'peer-3', ageMs: 2500 },
      { pid: 30, state: 'spare', conn: null, peer: null, ageMs: 2500 },
    ],
  })
})

t.test('an old spare or worker that a reload is replacing shows as retiring', async (t) => {
  const table = new ChildTable()
  table.add({ ...entry(40, 'worker'), retiring: 'serving' })
  table.add(entry(41, 'worker'))
  t.match(statusEvent(table, 2, counters, () => '', 1000), { children: [{ pid: 40, state: 'retiring' }, { pid: 41, state: 'worker' }] })
})

t.test('a report waits for every worker to answer, then prints once', async (t) => {
  const table = new ChildTable()
  const [a, b] = [entry(1, 'worker'), entry(2, 'worker')]
  table.add(a)
  table.add(b)
  table.add(entry(3, 'busy', 1))
  const asked: number[] = []
  let printed = 0
  const report = new StatusReport(table, (e) => asked.push(e.child.pid!), () => printed++)
  report.ask()
  report.ask()
  t.same(asked, [1, 2], 'the workers are asked once, the busy child not at all')
  report.heard(a)
  t.equal(printed, 0, 'one still to answer')
  report.heard(b)
  t.equal(printed, 1, 'printed once all have answered')
  report.heard(a)
  t.equal(printed, 1, 'a late answer prints nothing more')
})

t.test('without workers the report prints at once; a worker that never answers is given a second', async (t) => {
  let printed = 0
  new StatusReport(new ChildTable(), () => {}, () => printed++).ask()
  t.equal(printed, 1)
  const table = new ChildTable()
  table.add(entry(1, 'worker'))
  const started = Date.now()
  await new Promise<void>((resolve) => new StatusReport(table, () => {}, resolve).ask())
  t.ok(Date.now() - started >= 900, 'printed after the wait')
})
