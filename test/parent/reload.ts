import type { Child } from '../../lib/start/starter.js'
import t from 'tap'
import type { ChildEntry } from '../../lib/parent/child-table.js'
import { workersToStop } from '../../lib/parent/reload.js'

const worker = (pid: number, retiring: ChildEntry['retiring'], ready: boolean, startedAt = pid): ChildEntry => ({
  state: 'worker', retiring, ready, child: { pid } as Child, startedAt, info: null, acceptedAt: null, handoffMs: null,
  tally: null, socket: null, handoffTimer: null, lifetimeTimer: null, graceTimer: null, killTimer: null,
})
const pids = (entries: readonly ChildEntry[]): (number | undefined)[] => entries.map((e) => e.child.pid)

t.test('with no reload under way, no worker is stopped', async (t) => {
  t.same(workersToStop([worker(1, null, true), worker(2, null, false)], 2), [])
})

t.test('old workers accept on while no fresh one is accepting', async (t) => {
  t.same(workersToStop([worker(1, 'serving', true), worker(2, 'serving', true), worker(3, null, false), worker(4, null, false)], 2), [])
})

t.test('each fresh worker that accepts stops one old worker, the oldest first', async (t) => {
  const old = [worker(2, 'serving', true, 20), worker(1, 'serving', true, 10)]
  t.same(pids(workersToStop([...old, worker(3, null, true), worker(4, null, false)], 2)), [1])
  t.same(pids(workersToStop([...old, worker(3, null, true), worker(4, null, true)], 2)), [1, 2])
})

t.test('an old worker that is not accepting yet is stopped at once', async (t) => {
  t.same(pids(workersToStop([worker(1, 'serving', false), worker(2, 'serving', true), worker(3, null, false)], 1)), [1])
})

t.test('old workers already stopping are not stopped again', async (t) => {
  t.same(workersToStop([worker(1, 'stopping', true), worker(2, null, true)], 1), [])
})

t.test('after a second reload, old workers of both sets go as the fresh ones accept', async (t) => {
  // Two from before the first SIGHUP, two from the first reload, two fresh ones: one accepting.
  const entries = [worker(1, 'serving', true), worker(2, 'serving', true), worker(3, 'serving', true), worker(4, 'serving', true),
    worker(5, null, true), worker(6, null, false)]
  t.same(pids(workersToStop(entries, 2)), [1, 2, 3], 'one old worker accepts on, for the fresh one not yet accepting')
})

t.test('spares and busy children are never stopped this way', async (t) => {
  const spare = { ...worker(1, 'serving', true), state: 'spare' as const }
  t.same(workersToStop([spare], 0), [])
})
