// The drain and its deadline, over fake children (test/fixtures/supervisor.ts)
// that record the signals they get: SIGTERM drains; the grace, then SIGTERM
// and SIGKILL; a second SIGINT; the exit status.
import t from 'tap'
import { KILL_AFTER_MS } from '../../lib/parent/child-table.js'
import type { Supervisor } from '../../lib/parent/supervisor.js'
import { fakeSocket, idleAcceptor, setup } from '../fixtures/supervisor.js'

const drained = (children: number, grace = 0.1) => {
  const calls: string[] = []
  // Connections accepted with no child yet (a PROXY header still coming); those waiting for them to be dropped.
  const cancelled: (() => void)[] = []
  const held = { count: 0, dropped: 0, nextCancel: () => new Promise<void>((resolve) => cancelled.push(resolve)) }
  const made = setup({
    options: { grace },
    acceptor: () => ({
      ...idleAcceptor(),
      stopAccepting: () => void calls.push('stop accepting'),
      headers: {
        get pending() {
          return held.count
        },
        cancel: () => {
          held.dropped += held.count
          held.count = 0
          cancelled.splice(0).forEach((resolve) => resolve())
        },
      },
    }),
  })
  const { supervisor, events } = made
  for (let i = 0; i < children; i++) {
    const info = { id: i + 1, protocol: 'TCP' as const, remoteAddress: '127.0.0.1', remotePort: 4000 + i, localAddress: '127.0.0.1', localPort: 7000 }
    supervisor.busy({ socket: fakeSocket(), info, acceptedAt: Date.now() })
  }
  const log = (): string[] => events.flatMap((e) =>
    e.event === 'drain' ? [`drain ${e.signal} ${e.live} ${e.graceS}s`] : e.event === 'shutdown' ? [`shutdown ${e.code}`] : e.event === 'warning' ? [`warning: ${e.message}`] : [])
  return { ...made, calls: () => [...calls, ...log()], held }
}

const done = (supervisor: Supervisor): Promise<number> => supervisor.done

t.test('with no children, it stops accepting, says so, and finishes at once with 0', async (t) => {
  const { supervisor, calls } = drained(0)
  t.notOk(supervisor.targets.draining)
  supervisor.drain('SIGTERM')
  t.ok(supervisor.targets.draining)
  t.same(calls(), ['stop accepting', 'drain SIGTERM 0 0.1s', 'shutdown 0'])
  t.equal(await done(supervisor), 0)
})

t.test('it waits for the live children; the last one to exit ends it, with 0', async (t) => {
  const { supervisor, calls, children } = drained(2, 60)
  supervisor.drain('SIGINT')
  children[0]!.exit(0)
  t.notOk(calls().includes('shutdown 0'), 'one is still serving')
  children[1]!.exit(0)
  t.equal(calls().at(-1), 'shutdown 0')
  t.equal(await done(supervisor), 0)
})

t.test('a connection that waits for a child it will get holds the drain open, after the last child too', async (t) => {
  const { supervisor, calls, children, held } = drained(1, 60)
  held.count = 1
  supervisor.drain('SIGTERM')
  children[0]!.exit(0)
  t.notOk(calls().includes('shutdown 0'), 'one connection still waits')
  held.count = 0 // (its child served it, or its header never came)
  supervisor.reconcile()
  t.equal(calls().at(-1), 'shutdown 0')
  t.equal(await done(supervisor), 0)
})

t.test('with nothing live but a connection waiting, the drain does not finish at once', async (t) => {
  const { supervisor, calls, held } = drained(0, 60)
  held.count = 1
  supervisor.drain('SIGTERM')
  t.notOk(calls().includes('shutdown 0'))
  supervisor.drain('SIGINT')
  supervisor.drain('SIGINT')
  t.equal(held.dropped, 1, 'a second SIGINT drops what waits')
  t.equal(await done(supervisor), 130)
})

t.test('once the grace is over: SIGTERM to each child, then SIGKILL to its group, and the exit says 1', async (t) => {
  const { supervisor, children, nextLine } = drained(2)
  const graceOver = nextLine()
  supervisor.drain('SIGTERM')
  t.same(children.flatMap((c) => c.signals), [], 'none while the grace runs')
  t.equal(await graceOver, 'grace over: SIGTERM to 2 children')
  t.same(children.flatMap((c) => c.signals), ['100 SIGTERM', '101 SIGTERM'])
  const started = Date.now()
  await Promise.all(children.map((c) => c.signalled('SIGKILL')))
  t.ok(Date.now() - started >= KILL_AFTER_MS - 50, 'SIGKILL comes 2 s after')
  t.same(children.flatMap((c) => c.signals), ['100 SIGTERM', '-100 SIGKILL', '101 SIGTERM', '-101 SIGKILL'])
  for (const child of children) child.exit(null, 'SIGKILL')
  t.equal(await done(supervisor), 1)
})

t.test('once the grace is over with no child but connections waiting: they are dropped, nobody is killed, and the exit says 0', async (t) => {
  const { supervisor, calls, held } = drained(0)
  held.count = 2 // (PROXY headers still coming)
  const graceOver = held.nextCancel()
  supervisor.drain('SIGTERM')
  await graceOver
  t.equal(held.dropped, 2, 'dropped at the grace')
  supervisor.reconcile() // (each drop ends its wait, as the intake says)
  t.notOk(calls().some((c) => c.startsWith('warning: grace over')), 'no child to kill, so no such warning')
  t.equal(await done(supervisor), 0)
})

t.test('a second SIGTERM changes nothing; a second SIGINT kills every child and, once they are reaped, ends it with 130', async (t) => {
  const { supervisor, calls, children } = drained(2, 60)
  supervisor.drain('SIGTERM')
  supervisor.drain('SIGTERM')
  t.same(children.flatMap((c) => c.signals), [], 'the drain goes on')
  supervisor.drain('SIGINT')
  t.same(children.flatMap((c) => c.signals), ['-100 SIGKILL', '-101 SIGKILL'])
  t.ok(calls().includes('warning: second SIGINT: killing 2 children'))
  supervisor.drain('SIGINT')
  t.equal(children.flatMap((c) => c.signals).length, 2, 'a third one changes nothing')
  t.notOk(calls().some((c) => c.startsWith('shutdown')), 'not before the killed children are reaped (and counted)')
  for (const child of children) child.exit(null, 'SIGKILL')
  t.equal(await done(supervisor), 130)
  t.same(calls().filter((c) => c.startsWith('shutdown')), ['shutdown 130'], 'it finishes once')
})

t.test('after a second SIGINT, a child that is not reaped does not hold the exit for longer than a SIGKILL takes', async (t) => {
  const { supervisor, calls } = drained(1, 60)
  supervisor.drain('SIGINT')
  supervisor.drain('SIGINT')
  const started = Date.now()
  t.equal(await done(supervisor), 130)
  t.ok(Date.now() - started >= KILL_AFTER_MS - 50, 'it waited for the reaping')
  t.ok(calls().includes('warning: 1 children were not reaped in time: the counts leave them out'))
})

t.test('SIGQUIT drains as SIGTERM does', async (t) => {
  const { supervisor, calls, children } = drained(1, 60)
  supervisor.drain('SIGQUIT')
  t.same(calls(), ['stop accepting', 'drain SIGQUIT 1 60s'])
  children[0]!.exit(0)
  t.equal(await done(supervisor), 0)
})

t.test('the log may be flushed until the grace is over, counted from the drain, and not at all after a second SIGINT', async (t) => {
  const { supervisor } = drained(1, 60)
  const before = Date.now()
  t.ok(supervisor.flushBy >= before + 60_000 && supervisor.flushBy <= Date.now() + 60_000, 'no drain: the grace from now')
  supervisor.drain('SIGTERM')
  const began = Date.now()
  t.ok(supervisor.flushBy >= before + 60_000 && supervisor.flushBy <= began + 60_000, 'the grace from the drain')
  supervisor.drain('SIGINT')
  t.ok(supervisor.flushBy <= Date.now(), 'now, after a second SIGINT')
})
