// The prefork acceptor's decisions, with the worker processes and the
// listener replaced by records (test/fixtures/supervisor.ts): which listener
// each worker is given, when the parent closes or keeps a copy, and when it
// listens afresh. The supervisor, its targets and its backoff are the real ones.
import type { Server } from 'node:net'
import t from 'tap'
import type { RawHandle } from '../../lib/net/raw-handle.js'
import { PreforkAcceptor } from '../../lib/parent/prefork.js'
import { setup as setupSupervisor, spawnedFake, tick, type Fake } from '../fixtures/supervisor.js'

const handle = (): RawHandle & { closed: boolean } => ({ closed: false, close() { this.closed = true } })

const setup = (workers = 2, { again = async (): Promise<void> => {} } = {}) => {
  const children: Fake[] = []
  const closed: Server[] = []
  const handles = new Map<Server, RawHandle>()
  let relistens = 0
  let failing = false
  // Those waiting for the next worker started, and for the next fresh listener.
  const starts: ((fake: Fake) => void)[] = []
  const relistening: (() => void)[] = []
  // A server as the listener opens it: its raw handle is a record.
  const listened = (server: Server): Server => {
    const h = handle()
    ;(server as unknown as { _handle: RawHandle })._handle = h
    handles.set(server, h)
    return server
  }
  const listening = {
    open: async (server: Server) => (listened(server), { kind: 'tcp' as const, address: '127.0.0.1', port: 7000 }),
    close: (server: Server) => void closed.push(server),
    stop: (server: Server) => void closed.push(server),
    again: async () => {
      relistens++
      relistening.splice(0).forEach((resolve) => resolve())
      await again()
      return listened({} as Server)
    },
  }
  let acceptor!: PreforkAcceptor
  const made = setupSupervisor({
    targets: { workers }, options: { workers }, listening,
    acceptor: (supervisor) => (acceptor = new PreforkAcceptor(supervisor, spawnedFake(children, () => failing, starts))),
  })
  /** Each `work` message, with the listener that came with it. */
  const spawned = () => children.map((c) => ({ listener: c.sent.find((s) => s.m.type === 'work')?.handle, lend: c.sent.find((s) => s.m.type === 'work')?.m.lend }))
  /** The worker lends a copy of the listener, as its first message. */
  const lend = (child: Fake, copy: RawHandle): void => void child.hear?.({ type: 'listener' }, copy)
  const listenedOnce = async (): Promise<void> => {
    for (let i = 0; i < 10 && children.length === 0; i++) await new Promise((resolve) => setImmediate(resolve))
  }
  const nextWorker = (): Promise<Fake> => new Promise((resolve) => starts.push(resolve))
  const nextRelisten = (): Promise<void> => new Promise((resolve) => relistening.push(resolve))
  return { ...made, acceptor: () => acceptor, children, closed, handles, spawned, lend, listenedOnce, nextWorker, nextRelisten, relistens: () => relistens, fail: (f: boolean) => (failing = f) }
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve))

t.test('the first worker gets the listener, asked to lend it back, and the parent closes its own', async (t) => {
  const { supervisor, spawned, closed, handles, listenedOnce } = setup(3)
  await listenedOnce()
  const [server] = [...handles.keys()]
  t.same(spawned(), [{ listener: handles.get(server!), lend: true }])
  t.same(closed, [server], 'the parent does not accept')
  supervisor.drain('SIGTERM')
})

t.test('the lent copy starts the rest, one per turn of the event loop, and a drain ends a start in progress', async (t) => {
  const { supervisor, spawned, children, lend, listenedOnce } = setup(5)
  await listenedOnce()
  const keeper = handle()
  lend(children[0]!, keeper)
  t.equal(spawned().length, 2, 'one in this turn')
  await turn()
  t.equal(spawned().length, 3, 'the next in the next turn')
  supervisor.drain('SIGTERM')
  await tick(20)
  t.equal(spawned().length, 3, 'none after the drain')
  t.ok(spawned().slice(1).every((x) => x.listener === keeper && x.lend === false))
})

t.test('a replacement uses the lent copy; extra copies are closed; a drain lets go', async (t) => {
  const { supervisor, spawned, children, lend, listenedOnce, nextWorker } = setup(1)
  await listenedOnce()
  const keeper = handle()
  lend(children[0]!, keeper)
  const successor = nextWorker()
  children[0]!.exit(0) // (it served its --max-conns-per-child)
  await successor
  t.same(spawned().slice(1), [{ listener: keeper, lend: false }], 'started at once, with the kept copy')
  const extra = handle()
  lend(children[1]!, extra)
  t.ok(extra.closed, 'a second copy is closed at once')
  supervisor.drain('SIGTERM')
  t.ok(keeper.closed, 'the drain lets go of the parent copy')
})

t.test('with no copy kept and no worker left, the parent listens afresh, one listener at a time', async (t) => {
  const { supervisor, spawned, children, lines, lend, listenedOnce, relistens, fail, closed, handles, nextLine, nextRelisten, nextWorker } = setup(2)
  fail(true)
  let failed = nextLine()
  await listenedOnce()
  t.equal(await failed, 'fork failed: spawn /x ENOENT; a new worker in 0.1s')
  failed = nextLine()
  await nextRelisten()
  t.equal(relistens(), 1, 'once its backoff is over: one fresh listener')
  t.match(await failed, /^fork failed: spawn \/x ENOENT; a new worker in 0\.2s$/, 'longer, as they keep failing')
  fail(false)
  const started = nextWorker()
  await nextRelisten()
  await started
  t.equal(relistens(), 2, 'and again')
  t.same(lines.length, 2, 'the fork that works says nothing')
  const fresh = [...handles.keys()].at(-1)!
  t.same(spawned().at(-1), { listener: handles.get(fresh), lend: true }, 'the first worker owed gets the fresh listener')
  t.ok(closed.includes(fresh))
  const lent = handle()
  lend(children.at(-1)!, lent)
  t.same(spawned().at(-1), { listener: lent, lend: false }, 'and the other, the copy it lends')
  supervisor.drain('SIGTERM')
})

t.test('a listener that cannot be had again: the next try after the backoff', async (t) => {
  const { supervisor, listenedOnce, fail, nextLine } = setup(1, { again: async () => { throw new Error('EADDRINUSE') } })
  fail(true)
  const first = nextLine()
  await listenedOnce()
  await first
  t.match(await nextLine(), /^cannot listen again: EADDRINUSE; a new worker in /)
  supervisor.drain('SIGTERM')
})

t.test('crashes in a row double the delay; a clean exit resets it; a crash after a long life is none', async (t) => {
  const { supervisor, children, lines, lend, listenedOnce } = setup(7)
  await listenedOnce()
  lend(children[0]!, handle())
  for (let i = 0; i < 7; i++) await turn()
  t.equal(children.length, 7)
  for (const child of children.slice(0, 4)) child.exit(1)
  children[4]!.exit(null, 'SIGKILL')
  children[5]!.exit(0)
  const pids = children.map((c) => c.pid)
  t.same(lines, [
    `worker ${pids[0]} exited with status 1; a new one in 0.1s`,
    `worker ${pids[1]} exited with status 1; a new one in 0.2s`,
    `worker ${pids[2]} exited with status 1; a new one in 0.4s`,
    `worker ${pids[3]} exited with status 1; a new one in 0.8s`,
    `worker ${pids[4]} was killed by SIGKILL; a new one in 1.6s`,
  ], 'a clean exit says nothing')
  const long = supervisor.table.of('worker').find((w) => w.child.pid === pids[6])!
  Object.assign(long, { startedAt: Date.now() - 60_000 }) // (as if it had served a minute)
  children[6]!.exit(1)
  t.match(lines.at(-1), /a new one in 0s$/, 'after a long life, a crash is not a loop')
  supervisor.drain('SIGTERM')
})

t.test('a reload starts a fresh set with the kept copy, and cancels replacements still pending', async (t) => {
  const { supervisor, spawned, children, lines, lend, listenedOnce, nextWorker } = setup(3)
  await listenedOnce()
  supervisor.reload('SIGHUP')
  t.same(lines, ['reload: no copy of the listener to give fresh workers yet; send SIGHUP again'], 'nothing to give fresh workers before a copy is kept')
  t.equal(spawned().length, 1)
  const keeper = handle()
  lend(children[0]!, keeper)
  for (let i = 0; i < 3; i++) await turn()
  t.equal(spawned().length, 3)
  children[1]!.exit(1) // a replacement waits out its backoff
  const first = nextWorker()
  supervisor.reload('SIGHUP')
  await first
  await nextWorker()
  await nextWorker()
  await tick(150) // (long enough for the backoff's start, had it not been cancelled)
  t.same(spawned().slice(3), Array.from({ length: 3 }, () => ({ listener: keeper, lend: false })), 'three fresh workers')
  t.equal(spawned().length, 6, 'the replacement that was waiting out its backoff is not started as well')
  supervisor.drain('SIGTERM')
  supervisor.reload('SIGHUP')
  t.equal(spawned().length, 6, 'no reload once draining')
})
