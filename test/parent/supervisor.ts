// The supervisor's reconcile loop, over fake children (test/fixtures/supervisor.ts):
// spares topped up to their target behind their backoff, the zygote kept and
// replaced, and which old workers and zygotes a reload retires.
import { availableParallelism } from 'node:os'
import t from 'tap'
import { life, type Worker, type ZygoteEntry } from '../../lib/parent/child-table.js'
import { toRetire } from '../../lib/parent/supervisor.js'
import type { Spawned } from '../../lib/start/spawn.js'
import type { Zygote } from '../../lib/start/starter.js'
import { setup } from '../fixtures/supervisor.js'

t.test('starts spares until there are as many as wanted, at most one booting per CPU', async (t) => {
  const { supervisor, children } = setup({ targets: { spares: availableParallelism() + 2 } })
  supervisor.reconcile()
  t.equal(children.length, availableParallelism(), 'one per CPU boots at first')
  for (const spare of [...children]) spare.loaded?.()
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(children.length, availableParallelism() + 2, 'the rest, as those have loaded')
  supervisor.reconcile()
  t.equal(children.length, availableParallelism() + 2, 'no more than wanted')
})

t.test('starts none without room (--max-children, descriptors)', async (t) => {
  const { supervisor, children } = setup({ targets: { spares: 3 }, short: () => '1 of 1 descriptors open' })
  supervisor.reconcile()
  t.equal(children.length, 0)
  const full = setup({ targets: { spares: 3 }, options: { maxChildren: 2 } })
  full.supervisor.reconcile()
  t.equal(full.children.length, 2, 'spares count toward --max-children')
})

t.test('a spare lost is replaced later and later while they keep dying, at once after a clean exit', async (t) => {
  const { supervisor, children, lines, nextStart } = setup({ targets: { spares: 1 } })
  supervisor.reconcile()
  let next = nextStart()
  children[0]!.exit(1)
  t.same(lines, ['spare 100 exited with status 1; a new one in 0.1s'])
  supervisor.reconcile()
  t.equal(children.length, 1, 'nothing is started while the backoff runs')
  await next
  t.equal(children.length, 2, 'the next, once it is over')
  next = nextStart()
  children[1]!.exit(1)
  t.match(lines.at(-1), /a new one in 0\.2s$/)
  await next
  t.equal(children.length, 3, 'and the next, after the longer backoff')
  children[2]!.exit(0)
  t.match(lines.at(-1), /^spare 102 exited with status 0; a new one in 0s$/)
  supervisor.drain('SIGTERM')
})

t.test('draining, it starts none, and a spare lost then is not replaced', async (t) => {
  const { supervisor, children, lines } = setup({ targets: { spares: 2 } })
  supervisor.drain('SIGTERM')
  supervisor.reconcile()
  t.equal(children.length, 0)
  t.same(lines, [])
})

t.test('a spare a reload is replacing does not count: a fresh one is started beside it, and the old one is ended', async (t) => {
  const { supervisor, children } = setup({ targets: { spares: 1 } })
  supervisor.reconcile()
  children[0]!.loaded?.()
  await new Promise((resolve) => setImmediate(resolve))
  supervisor.reload('SIGHUP')
  t.equal(children.length, 2)
  t.same(children[0]!.signals, ['100 SIGTERM'], 'waiting, with nothing to finish')
  t.same(children[1]!.signals, [])
})

t.test('a spare that could not be started is replaced after a backoff', async (t) => {
  const { supervisor, children, lines, nextStart } = setup({ targets: { spares: 1 } })
  supervisor.reconcile()
  const next = nextStart()
  children[0]!.pid = undefined
  children[0]!.events.error(new Error('fork EAGAIN'))
  t.same(lines, ['spare ? could not be forked: fork EAGAIN; a new one in 0.1s'])
  await next
  t.equal(children.length, 2)
  t.equal(supervisor.table.counters().failed, 1, 'counted as failed')
})

// ---- which old workers and zygotes a reload retires (old lib/parent/supervisor.ts) ----

const worker = (pid: number, generation: number, retired: boolean, ready: boolean, startedAt = pid): Worker =>
  ({ ...life(generation), startedAt, retired, role: 'worker', child: { pid } as Spawned, accepting: ready, tally: null, graceTimer: null })
const accepting = (entry: Worker): boolean => entry.accepting
const pids = (entries: readonly Worker[]): (number | undefined)[] => entries.map((e) => e.child.pid)

t.test('with no reload under way, no worker is stopped', async (t) => {
  t.same(toRetire([worker(1, 0, false, true), worker(2, 0, false, false)], 2, accepting, 0), [])
})

t.test('old workers accept on while no fresh one is accepting', async (t) => {
  t.same(toRetire([worker(1, 0, false, true), worker(2, 0, false, true), worker(3, 1, false, false), worker(4, 1, false, false)], 2, accepting, 1), [])
})

t.test('each fresh worker that accepts stops one old worker, the oldest first', async (t) => {
  const old = [worker(2, 0, false, true, 20), worker(1, 0, false, true, 10)]
  t.same(pids(toRetire([...old, worker(3, 1, false, true), worker(4, 1, false, false)], 2, accepting, 1)), [1])
  t.same(pids(toRetire([...old, worker(3, 1, false, true), worker(4, 1, false, true)], 2, accepting, 1)), [1, 2])
})

t.test('an old worker that is not accepting yet is stopped at once', async (t) => {
  t.same(pids(toRetire([worker(1, 0, false, false), worker(2, 0, false, true), worker(3, 1, false, false)], 1, accepting, 1)), [1])
})

t.test('old workers already stopping are not stopped again', async (t) => {
  t.same(toRetire([worker(1, 0, true, true), worker(2, 1, false, true)], 1, accepting, 1), [])
})

t.test('after a second reload, old workers of both sets go as the fresh ones accept', async (t) => {
  // Two from before the first SIGHUP, two from the first reload, two fresh ones: one accepting.
  const entries = [worker(1, 0, false, true), worker(2, 0, false, true), worker(3, 1, false, true), worker(4, 1, false, true),
    worker(5, 2, false, true), worker(6, 2, false, false)]
  t.same(pids(toRetire(entries, 2, accepting, 2)), [1, 2, 3], 'one old worker accepts on, for the fresh one not yet accepting')
})

t.test('the zygote: the old one serves until a fresh one is ready; one a later reload overtook goes at once', async (t) => {
  const zygote = (pid: number, generation: number, ready: boolean): ZygoteEntry =>
    ({ ...life(generation), startedAt: pid, role: 'zygote', child: { pid } as Zygote, ready })
  const isReady = (z: ZygoteEntry): boolean => z.ready
  t.same(toRetire([zygote(1, 0, true), zygote(2, 1, false)], 1, isReady, 1), [], 'the fresh one is not ready: the old one serves')
  t.same(toRetire([zygote(1, 0, true), zygote(2, 1, true)], 1, isReady, 1).map((z) => z.child.pid), [1])
  t.same(toRetire([zygote(1, 0, true), zygote(2, 1, false), zygote(3, 2, false)], 1, isReady, 2).map((z) => z.child.pid), [2],
    'three SIGHUPs: the one in between is stopped before it serves')
})

// ---- the zygote, kept by the supervisor ----

t.test('the first zygote is awaited before the server listens; unfit, the server does not start', async (t) => {
  const { supervisor, children, events } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(children.length, 1, 'one zygote')
  t.notOk(events.some((e) => e.event === 'listening'), 'not listening while it loads')
  children[0]!.zygote!.ready(40)
  await new Promise((resolve) => setImmediate(resolve))
  t.ok(events.some((e) => e.event === 'listening'), 'listening once it is ready')
  supervisor.drain('SIGTERM')
  const unfit = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  unfit.children[0]!.zygote!.unfit('the fork self-test failed: hung')
  await new Promise((resolve) => setImmediate(resolve))
  t.match(unfit.events.at(-1), { event: 'fatal', message: 'the fork self-test failed: hung' })
  unfit.children[0]!.exit(1)
  t.same(unfit.lines, [], 'no replacement is promised')
})

t.test('--start auto: an unfit first zygote is not fatal; the server spawns, says why once, and keeps no zygote', async (t) => {
  const { supervisor, children, events } = setup({ zygote: true, fallback: true, targets: { spares: 1 } })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.unfit('the fork self-test failed: hung')
  await new Promise((resolve) => setImmediate(resolve))
  t.match(events.filter((e) => e.event === 'start'), [{ start: 'spawn', reason: 'the fork self-test failed: hung' }], 'one line says why')
  t.ok(events.some((e) => e.event === 'listening'), 'it listens')
  t.notOk(events.some((e) => e.event === 'fatal'), 'nothing fatal')
  t.equal(children.length, 2, 'a spare, spawned')
  t.equal(children[1]!.zygote, undefined, 'not a zygote')
  children[0]!.exit(1)
  supervisor.reconcile()
  t.equal(children.length, 2, 'no zygote is started again')
  t.equal(supervisor.targets.zygotes, 0)
  supervisor.reload('SIGHUP')
  t.equal(children.length, 3, 'a reload replaces the spare, by spawn')
  t.equal(children[2]!.zygote, undefined)
  supervisor.drain('SIGTERM')
})

t.test('a zygote says it is starting, ready, retiring and exited; the reload names it; SIGUSR1 shows it', async (t) => {
  const { supervisor, children, events } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.ready(40)
  supervisor.reload('SIGHUP')
  children[1]!.zygote!.ready(35)
  supervisor.report.ask()
  children[0]!.exit(0)
  const zygoteEvents = events.filter((e) => e.event === 'zygote' || e.event === 'reload')
  t.match(zygoteEvents, [
    { event: 'zygote', state: 'starting', generation: 1 },
    { event: 'zygote', state: 'ready', pid: 100, generation: 1, selfTestMs: 40 },
    { event: 'reload', zygote: 100 },
    { event: 'zygote', state: 'starting', generation: 2 },
    { event: 'zygote', state: 'ready', pid: 101, generation: 2, selfTestMs: 35 },
    { event: 'zygote', state: 'retiring', pid: 100, generation: 1, by: 101 },
    { event: 'zygote', state: 'exited', pid: 100, code: 0 },
  ])
  const table = events.find((e) => e.event === 'status' && e.trigger === 'SIGUSR1')
  t.match(table, { children: [{ pid: 100, state: 'retiring' }, { pid: 101, state: 'zygote' }] }, 'a row per zygote')
  supervisor.drain('SIGTERM')
})

t.test('a reload whose zygote is unfit: one warning, and the old zygote serves on, not replaced again', async (t) => {
  const { supervisor, children, lines } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.ready(40)
  supervisor.reload('SIGHUP')
  t.equal(children.length, 2, 'a fresh zygote')
  children[1]!.zygote!.unfit('handler.js has no default export function')
  children[1]!.exit(1)
  t.same(lines, ['reload: the new zygote is unfit: handler.js has no default export function'])
  supervisor.reconcile()
  t.equal(children.length, 2, 'none started again')
  t.notOk(children[0]!.stopped, 'the old one is not stopped')
  supervisor.reload('SIGHUP')
  children[2]!.zygote!.ready(40)
  t.ok(children[0]!.stopped, 'a reload that works replaces it')
  supervisor.drain('SIGTERM')
})

t.test('a zygote that dies is replaced after a backoff', async (t) => {
  const { supervisor, children, lines, nextStart } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.ready(40)
  const next = nextStart()
  children[0]!.exit(null, 'SIGKILL')
  t.same(lines, ['zygote 100 was killed by SIGKILL; a new one in 0.1s'])
  await next
  children[1]!.zygote!.unfit('handler.js failed to load: nope')
  t.equal(lines.at(-1), 'the new zygote is unfit: handler.js failed to load: nope', 'with none left to serve, it is tried again')
  children[1]!.exit(1)
  t.match(lines.at(-1), /^zygote 101 exited with status 1; a new one in 0\.2s$/)
  supervisor.drain('SIGTERM')
})

t.test('a zygote whose child died of a fault forks no more at once; a fresh one is started, and one line says why', async (t) => {
  const { supervisor, children, events } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.ready(40)
  children[0]!.zygote!.replace('child 555 died by SIGSEGV', true)
  t.ok(children[0]!.stopped, 'the old one forks no more, and goes once its children have')
  t.equal(children.length, 2, 'a fresh one is started')
  t.same(events.filter((e) => e.event === 'replace'), [{ event: 'replace', pid: 100, reason: 'child 555 died by SIGSEGV' }])
  children[0]!.zygote!.replace('child 556 died by SIGSEGV', true)
  t.equal(children.length, 2, 'a second crash of its children starts no second one')
  t.equal(events.filter((e) => e.event === 'replace').length, 1, 'nor says so again')
  children[1]!.zygote!.ready(40)
  t.equal(children.length, 2, 'the fresh one serves')
  supervisor.drain('SIGTERM')
})

t.test('a zygote that has forked --zygote-max-forks children forks on until a fresh one is ready, as on a reload', async (t) => {
  const { supervisor, children, events } = setup({ zygote: true })
  await new Promise((resolve) => setImmediate(resolve))
  children[0]!.zygote!.ready(40)
  children[0]!.zygote!.replace('it has forked 5 children (--zygote-max-forks)', false)
  t.equal(children.length, 2, 'a fresh one is started')
  t.notOk(children[0]!.stopped, 'the old one forks on meanwhile')
  t.match(events.filter((e) => e.event === 'replace'), [{ pid: 100, reason: 'it has forked 5 children (--zygote-max-forks)' }])
  children[1]!.zygote!.ready(40)
  t.ok(children[0]!.stopped, 'and retires once the fresh one is ready')
  supervisor.drain('SIGTERM')
  children[1]!.zygote!.replace('child 557 died by SIGSEGV', true)
  t.equal(children.length, 2, 'a drain replaces no zygote')
  t.notOk(children[1]!.stopped, 'nor stops the one it has')
})
