import t from 'tap'
import { ChildTable, KILL_AFTER_MS, newEntry, type ChildEntry } from '../../lib/parent/child-table.js'
import type { LogEvent } from '../../lib/log/log.js'
import { Shutdown } from '../../lib/parent/shutdown.js'
import type { Child } from '../../lib/start/starter.js'

// The drain's decisions over a real table, with children that record the signals they get.
const setup = (children: number, graceS = 0.1) => {
  const table = new ChildTable()
  const signals: string[] = []
  const calls: string[] = []
  // Connections accepted with no child yet (queued for a boot slot, or a PROXY header still coming).
  const held = { count: 0, dropped: 0 }
  // Those waiting for the next warning line (the grace's timer firing), and for the next drop of what waits.
  const waiting: (() => void)[] = []
  const dropping: (() => void)[] = []
  for (let i = 0; i < children; i++) {
    const pid = 100 + i
    const child: Child = { pid, send: () => {}, kill: (signal, group) => void signals.push(`${group ? -pid : pid} ${signal}`) }
    table.add(newEntry('busy', child))
  }
  const shutdown = new Shutdown(table, graceS, {
    stopAccepting: () => calls.push('stop accepting'),
    stopChildren: () => calls.push('stop children'),
    dropWaiting: () => {
      held.dropped += held.count
      held.count = 0
      dropping.splice(0).forEach((resolve) => resolve())
    },
    waiting: () => held.count,
    finish: (code) => calls.push(`finish ${code}`),
    log: (e: LogEvent) => calls.push(e.event === 'drain' ? `drain ${e.signal} ${e.live} ${e.graceS}s` : e.event),
    warn: (text) => {
      calls.push(`warning: ${text}`)
      waiting.splice(0).forEach((resolve) => resolve())
    },
  })
  /** Resolves once the drain writes its next warning. */
  const nextWarning = (): Promise<void> => new Promise((resolve) => waiting.push(resolve))
  /** Resolves once the drain drops what waits (the grace is over, or a second SIGINT). */
  const nextDrop = (): Promise<void> => new Promise((resolve) => dropping.push(resolve))
  const exit = (entry: ChildEntry) => {
    table.remove(entry)
    shutdown.childGone()
  }
  return { table, shutdown, signals, calls, exit, nextWarning, nextDrop, held }
}

t.test('with no children, it stops accepting, says so, and finishes at once with 0', async (t) => {
  const { shutdown, calls } = setup(0)
  t.notOk(shutdown.draining)
  shutdown.begin('SIGTERM')
  t.ok(shutdown.draining)
  t.same(calls, ['stop accepting', 'drain SIGTERM 0 0.1s', 'stop children', 'finish 0'])
  t.equal(await shutdown.done, 0)
})

t.test('it waits for the live children; the last one to exit ends it, with 0', async (t) => {
  const { shutdown, calls, table, exit } = setup(2, 60)
  shutdown.begin('SIGINT')
  const [a, b] = [...table]
  exit(a!)
  t.notOk(calls.includes('finish 0'), 'one is still serving')
  exit(b!)
  t.equal(calls.at(-1), 'finish 0')
  t.equal(await shutdown.done, 0)
})

t.test('a connection that waits for a child it will get holds the drain open, after the last child too', async (t) => {
  const { shutdown, calls, table, exit, held } = setup(1, 60)
  held.count = 1
  shutdown.begin('SIGTERM')
  exit([...table][0]!)
  t.notOk(calls.includes('finish 0'), 'one connection still waits')
  held.count = 0 // (its child served it, or its header never came)
  shutdown.childGone()
  t.equal(calls.at(-1), 'finish 0')
  t.equal(await shutdown.done, 0)
})

t.test('with nothing live but a connection waiting, the drain does not finish at once', async (t) => {
  const { shutdown, calls, held } = setup(0, 60)
  held.count = 1
  shutdown.begin('SIGTERM')
  t.notOk(calls.includes('finish 0'))
  shutdown.begin('SIGINT')
  shutdown.begin('SIGINT')
  t.equal(held.dropped, 1, 'a second SIGINT drops what waits')
  t.equal(await shutdown.done, 130)
})

t.test('once the grace is over: SIGTERM to each child, then SIGKILL to its group, and the exit says 1', async (t) => {
  const { shutdown, calls, signals, table, exit, nextWarning } = setup(2)
  const graceOver = nextWarning()
  shutdown.begin('SIGTERM')
  t.same(signals, [], 'none while the grace runs')
  await graceOver
  t.same(signals, ['100 SIGTERM', '101 SIGTERM'])
  t.ok(calls.includes('warning: grace over: SIGTERM to 2 children'))
  for (const entry of [...table]) exit(entry)
  t.equal(await shutdown.done, 1)
})

t.test('once the grace is over with no child but connections waiting: they are dropped, nobody is killed, and the exit says 0', async (t) => {
  const { shutdown, calls, held, nextDrop } = setup(0)
  held.count = 2 // (PROXY headers still coming)
  const graceOver = nextDrop()
  shutdown.begin('SIGTERM')
  await graceOver
  t.equal(held.dropped, 2, 'dropped at the grace')
  shutdown.childGone() // (each drop ends its wait, as server.ts does)
  t.notOk(calls.some((c) => c.startsWith('warning: grace over')), 'no child to kill, so no such warning')
  t.equal(await shutdown.done, 0)
})

t.test('a second SIGTERM changes nothing; a second SIGINT kills every child and, once they are reaped, ends it with 130', async (t) => {
  const { shutdown, calls, signals, table, exit } = setup(2, 60)
  shutdown.begin('SIGTERM')
  shutdown.begin('SIGTERM')
  t.same(signals, [], 'the drain goes on')
  shutdown.begin('SIGINT')
  t.same(signals, ['-100 SIGKILL', '-101 SIGKILL'])
  t.ok(calls.includes('warning: second SIGINT: killing 2 children'))
  shutdown.begin('SIGINT')
  t.equal(signals.length, 2, 'a third one changes nothing')
  t.notOk(calls.some((c) => c.startsWith('finish')), 'not before the killed children are reaped (and counted)')
  for (const entry of [...table]) exit(entry)
  t.equal(await shutdown.done, 130)
  t.same(calls.filter((c) => c.startsWith('finish')), ['finish 130'], 'it finishes once')
})

t.test('after a second SIGINT, a child that is not reaped does not hold the exit for longer than a SIGKILL takes', async (t) => {
  const { shutdown, calls } = setup(1, 60)
  shutdown.begin('SIGINT')
  shutdown.begin('SIGINT')
  const started = Date.now()
  t.equal(await shutdown.done, 130)
  t.ok(Date.now() - started >= KILL_AFTER_MS - 50, 'it waited for the reaping')
  t.ok(calls.includes('warning: 1 children were not reaped in time: the counts leave them out'))
})

t.test('SIGQUIT drains as SIGTERM does', async (t) => {
  const { shutdown, calls, table, exit } = setup(1, 60)
  shutdown.begin('SIGQUIT')
  t.same(calls, ['stop accepting', 'drain SIGQUIT 1 60s', 'stop children'])
  for (const entry of [...table]) exit(entry)
  t.equal(await shutdown.done, 0)
})

t.test('the log may be flushed until the grace is over, counted from the drain, and not at all after a second SIGINT', async (t) => {
  const { shutdown } = setup(1, 60)
  const before = Date.now()
  t.ok(shutdown.flushBy >= before + 60_000 && shutdown.flushBy <= Date.now() + 60_000, 'no drain: the grace from now')
  shutdown.begin('SIGTERM')
  const began = Date.now()
  t.ok(shutdown.flushBy >= before + 60_000 && shutdown.flushBy <= began + 60_000, 'the grace from the drain')
  shutdown.begin('SIGINT')
  t.ok(shutdown.flushBy <= Date.now(), 'now, after a second SIGINT')
})
