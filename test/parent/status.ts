import t from 'tap'
import { ChildTable, life, type Busy, type Entry, type Spare, type Worker } from '../../lib/parent/child-table.js'
import { StatusReport, statusEvent } from '../../lib/parent/status.js'
import type { Spawned } from '../../lib/start/spawn.js'
import type { Child, Zygote } from '../../lib/start/starter.js'

const at1000 = { ...life(0), startedAt: 1000 }
const busy = (pid: number, id: number): Busy => ({
  ...at1000, role: 'busy', child: { pid } as Child, acceptedAt: 1000, handoffMs: null, socket: null, handoffTimer: null, wasSpare: false,
  info: { id, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: 4000 + id, localAddress: '127.0.0.1', localPort: 7000 },
})
const spare = (pid: number): Spare => ({ ...at1000, role: 'spare', child: { pid } as Child, loaded: true })
const worker = (pid: number, generation = 0): Worker => ({ ...at1000, generation, role: 'worker', child: { pid } as Spawned, accepting: true, tally: null, graceTimer: null })

const counters = { accepted: 3, served: 1, denied: 0, dropped: 0, queueFull: 0, failed: 0, peak: 2 }

t.test('the status event has a row per child, by pid, with its age and connection', async (t) => {
  const table = new ChildTable()
  table.add(spare(30))
  table.add(busy(20, 3))
  table.add({ ...at1000, role: 'zygote', child: { pid: 10 } as Zygote, ready: true }) // (a row of its own, not counted as live)
  t.same(statusEvent(table, 40, counters, (info) => `peer-${info.id}`, 3500), {
    event: 'status', trigger: 'SIGUSR1', live: 2, max: 40, counters,
    children: [
      { pid: 10, state: 'zygote', conn: null, peer: null, ageMs: 2500 },
      { pid: 20, state: 'busy', conn: 3, peer: 'peer-3', ageMs: 2500 },
      { pid: 30, state: 'spare', conn: null, peer: null, ageMs: 2500 },
    ],
  })
})

t.test('an old spare or worker that a reload is replacing shows as retiring', async (t) => {
  const table = new ChildTable(() => 1)
  table.add(worker(40, 0))
  table.add(worker(41, 1))
  table.add(busy(42, 1))
  t.match(statusEvent(table, 2, counters, () => '', 1000), { children: [{ pid: 40, state: 'retiring' }, { pid: 41, state: 'worker' }, { pid: 42, state: 'busy' }] },
    'a busy child of before the reload is busy still')
})

t.test('a report waits for every worker to answer, then prints once', async (t) => {
  const table = new ChildTable()
  const [a, b] = [worker(1), worker(2)]
  table.add(a)
  table.add(b)
  table.add(busy(3, 1))
  const asked: number[] = []
  let printed = 0
  const report = new StatusReport(table, (e) => asked.push(e.child.pid!), () => printed++)
  report.ask()
  report.ask()
  t.same(asked, [1, 2], 'the workers are asked once, the busy child not at all')
  report.answered(a)
  t.equal(printed, 0, 'one still to answer')
  report.answered(b)
  t.equal(printed, 1, 'printed once all have answered')
  report.answered(a as Entry)
  t.equal(printed, 1, 'a late answer prints nothing more')
})

t.test('without workers the report prints at once; a worker that never answers is given a second', async (t) => {
  let printed = 0
  new StatusReport(new ChildTable(), () => {}, () => printed++).ask()
  t.equal(printed, 1)
  const table = new ChildTable()
  table.add(worker(1))
  const started = Date.now()
  await new Promise<void>((resolve) => new StatusReport(table, () => {}, resolve).ask())
  t.ok(Date.now() - started >= 900, 'printed after the wait')
})
