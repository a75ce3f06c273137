import { availableParallelism } from 'node:os'
import t from 'tap'
import { ChildTable, newEntry, type ChildEntry } from '../../lib/parent/child-table.js'
import { SparePool } from '../../lib/parent/spare-pool.js'
import type { Child } from '../../lib/start/starter.js'

// The pool's decisions, with starting a child replaced by adding an entry to a real table.
const setup = (wanted: number, room = () => true) => {
  const table = new ChildTable()
  const lines: string[] = []
  let pid = 100
  const started: ChildEntry[] = []
  // Those waiting for the next start (the backoff's timer firing).
  const waiting: (() => void)[] = []
  const pool = new SparePool(wanted, table, {
    start: () => {
      const entry = newEntry('spare', { pid: pid++ } as Child)
      table.add(entry)
      started.push(entry)
      waiting.splice(0).forEach((resolve) => resolve())
    },
    room,
    warn: (text) => lines.push(text),
  })
  /** Resolves once the pool starts its next spare. */
  const nextStart = (): Promise<void> => new Promise((resolve) => waiting.push(resolve))
  return { table, pool, started, lines, nextStart }
}

t.test('starts spares until there are as many as wanted, at most one booting per CPU', async (t) => {
  const { pool, started } = setup(availableParallelism() + 2)
  pool.replenish()
  t.equal(started.length, availableParallelism(), 'one per CPU boots at first')
  for (const entry of [...started]) pool.ready(entry)
  t.equal(started.length, availableParallelism() + 2, 'the rest, as those have loaded')
  pool.replenish()
  t.equal(started.length, availableParallelism() + 2, 'no more than wanted')
})

t.test('starts none without room (--max-children, descriptors)', async (t) => {
  const { pool, started } = setup(3, () => false)
  pool.replenish()
  t.equal(started.length, 0)
})

t.test('a spare lost is replaced later and later while they keep dying, at once after a clean exit', async (t) => {
  const { pool, started, table, lines, nextStart } = setup(1)
  pool.replenish()
  const lose = (entry: ChildEntry, code: number) => {
    table.remove(entry)
    pool.lost(entry.child.pid, `exited with status ${code}`, code, 0)
  }
  let next = nextStart()
  lose(started[0]!, 1)
  t.same(lines, ['spare 100 exited with status 1; a new one in 0.1s'])
  pool.replenish()
  t.equal(started.length, 1, 'nothing is started while the backoff runs')
  await next
  t.equal(started.length, 2, 'the next, once it is over')
  next = nextStart()
  lose(started[1]!, 1)
  t.match(lines.at(-1), /a new one in 0\.2s$/)
  await next
  t.equal(started.length, 3, 'and the next, after the longer backoff')
  lose(started[2]!, 0)
  t.match(lines.at(-1), /^spare 102 exited with status 0; a new one in 0s$/)
  pool.stop()
})

t.test('stopped, it starts none, and a spare lost then is not replaced', async (t) => {
  const { pool, started, lines } = setup(2)
  pool.stop()
  pool.replenish()
  pool.lost(7, 'was killed by SIGTERM', null, 0)
  t.equal(started.length, 0)
  t.same(lines, [])
})

t.test('a spare a reload is replacing does not count: a fresh one is started beside it', async (t) => {
  const { pool, started } = setup(1)
  pool.replenish()
  pool.ready(started[0]!)
  started[0]!.retiring = 'stopping'
  pool.replenish()
  t.equal(started.length, 2)
})
