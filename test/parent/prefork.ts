import type { Server } from 'node:net'
import t from 'tap'
import { Supervisor } from '../../lib/parent/prefork.js'
import type { RawHandle } from '../../lib/net/raw-handle.js'

// The supervisor's decisions, with forking and listening replaced by a record of calls.
const setup = (workers = 2) => {
  const spawned: { listener: RawHandle; lend: boolean }[] = []
  const lines: string[] = []
  let live = 0
  let relistens = 0
  const supervisor = new Supervisor(workers, {
    spawn: (listener, lend) => spawned.push({ listener, lend }),
    closeListener: (server) => server.close(),
    relisten: () => relistens++,
    liveWorkers: () => live,
    warn: (text) => lines.push(`warning: ${text}\n`),
    trace: () => {},
  })
  const handle = (): RawHandle & { closed: boolean } => ({ closed: false, close() { this.closed = true } })
  const server = () => {
    const h = handle()
    const fake = { _handle: h, closed: false, close() { fake.closed = true } }
    return { h, server: fake as unknown as Server & { closed: boolean } }
  }
  // As the server does: start from the 'listening' callback, which forks the first workers.
  const started = () => {
    supervisor.start(server().server)
    spawned.length = 0
  }
  return { supervisor, spawned, lines, handle, server, started, setLive: (n: number) => (live = n), relistens: () => relistens }
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('start forks one worker with the listener, asked to lend, then closes the parent listener', async (t) => {
  const { supervisor, spawned, server } = setup(3)
  const s = server()
  supervisor.start(s.server)
  t.same(spawned, [{ listener: s.h, lend: true }])
  t.ok(s.server.closed, 'the parent does not accept')
  supervisor.stop()
})

t.test('the lent copy forks the rest, one per turn of the event loop, and stop ends a start in progress', async (t) => {
  const { supervisor, spawned, handle, started } = setup(5)
  started()
  const keeper = handle()
  supervisor.keep(keeper)
  t.equal(spawned.length, 1, 'one fork in this turn')
  await new Promise((resolve) => setImmediate(resolve))
  t.equal(spawned.length, 2, 'the next in the next turn')
  supervisor.stop()
  await tick(20)
  t.equal(spawned.length, 2, 'none after stop')
  t.ok(spawned.every((x) => x.listener === keeper && !x.lend))
})

t.test('a replacement uses the lent copy; extra copies are closed; stop lets go', async (t) => {
  const { supervisor, spawned, handle, setLive, started } = setup(1)
  started()
  setLive(1)
  const keeper = handle()
  supervisor.keep(keeper)
  supervisor.replace(11, 0, null, 50_000)
  await tick(10)
  t.same(spawned, [{ listener: keeper, lend: false }], 'forked at once, with the kept copy')
  const extra = handle()
  supervisor.keep(extra)
  t.ok(extra.closed, 'a second copy is closed at once')
  supervisor.stop()
  t.ok(keeper.closed, 'stop lets go of the parent copy')
})

t.test('with no copy kept and no worker left, the supervisor listens afresh and forks what it owes', async (t) => {
  const { supervisor, spawned, lines, server, handle, setLive, relistens, started } = setup(2)
  started()
  setLive(0)
  supervisor.replace(undefined, 1, null, 0, 'fork failed: spawn /x ENOENT')
  supervisor.replace(undefined, 1, null, 0, 'fork failed: spawn /x ENOENT')
  await tick(400)
  t.equal(relistens(), 1, 'one fresh listener, not two')
  t.same(lines, [
    'warning: fork failed: spawn /x ENOENT; a new worker in 0.1s\n',
    'warning: fork failed: spawn /x ENOENT; a new worker in 0.2s\n',
  ])
  const s = server()
  supervisor.start(s.server)
  t.same(spawned, [{ listener: s.h, lend: true }], 'the first owed worker forked with the new listener')
  t.ok(s.server.closed)
  const lent = handle()
  supervisor.keep(lent)
  t.same(spawned.at(-1), { listener: lent, lend: false }, 'and the other with the copy it lends')
  supervisor.relistenFailed('cannot listen again: EADDRINUSE')
  t.match(lines.at(-1), /^warning: cannot listen again: EADDRINUSE; a new worker in /)
  supervisor.stop()
})

t.test('crashes in a row double the delay; a clean exit resets it', async (t) => {
  const { supervisor, lines, handle, started } = setup(1)
  started()
  supervisor.keep(handle())
  for (let i = 0; i < 4; i++) supervisor.replace(20 + i, 1, null, 10)
  supervisor.replace(30, null, 'SIGKILL', 10)
  supervisor.replace(31, 0, null, 10)
  supervisor.replace(32, 1, null, 10)
  supervisor.replace(33, 1, null, 60_000)
  t.same(lines, [
    'warning: worker 20 exited with status 1; a new one in 0.1s\n',
    'warning: worker 21 exited with status 1; a new one in 0.2s\n',
    'warning: worker 22 exited with status 1; a new one in 0.4s\n',
    'warning: worker 23 exited with status 1; a new one in 0.8s\n',
    'warning: worker 30 was killed by SIGKILL; a new one in 1.6s\n',
    'warning: worker 32 exited with status 1; a new one in 0.1s\n',
    'warning: worker 33 exited with status 1; a new one in 0s\n',
  ])
  supervisor.stop()
})

t.test('the delay stops growing at 10 s, and stop cancels what is pending', async (t) => {
  const { supervisor, spawned, lines, handle, started } = setup(1)
  started()
  supervisor.keep(handle())
  for (let i = 0; i < 12; i++) supervisor.replace(i, 1, null, 10)
  t.match(lines.at(-1), /a new one in 10s\n$/)
  supervisor.stop()
  await tick(150)
  t.equal(spawned.length, 0, 'nothing forked after stop')
})

t.test('a reload forks a fresh set of workers with the kept copy, and cancels replacements still pending', async (t) => {
  const { supervisor, spawned, handle, started } = setup(3)
  started()
  t.notOk(supervisor.reload(), 'nothing to give fresh workers before a copy is kept')
  t.equal(spawned.length, 0)
  const keeper = handle()
  supervisor.keep(keeper)
  await tick(10)
  spawned.length = 0
  supervisor.replace(20, 1, null, 10)
  t.ok(supervisor.reload())
  await tick(150)
  t.same(spawned, Array.from({ length: 3 }, () => ({ listener: keeper, lend: false })), 'three fresh workers')
  t.equal(spawned.length, 3, 'the replacement that was waiting out its backoff is not forked as well')
  supervisor.stop()
  t.notOk(supervisor.reload(), 'no reload once stopped')
})
