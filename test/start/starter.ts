// The starters, on their own: real processes, reported through the events the
// parent gives them. (From the source tree, child.js is not there to run, so a
// child started here exits at once with status 1: enough to see its events.)
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { chooseStarter } from '../../lib/start/choose-starter.js'
import { spawnStarter } from '../../lib/start/spawn-starter.js'
import type { ChildEvents, StarterParts } from '../../lib/start/starter.js'

const PARTS: StarterParts = { spec: { service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' }, warn: () => {}, trace: () => {} }

/** Events that record what happened, and a promise of the child's end: its exit, or its error. */
const recorder = () => {
  const heard: string[] = []
  let ended!: () => void
  const done = new Promise<void>((resolve) => (ended = resolve))
  const events: ChildEvents = {
    running: () => heard.push('running'),
    exit: (code, signal) => (heard.push(`exit ${code} ${signal}`), ended()),
    error: (err) => (heard.push(`error ${err.message}`), ended()),
  }
  return { heard, events, done }
}

/** A connected socket, its peer closed with the test. */
const socketPair = async (t: Test): Promise<Socket> => {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as { port: number }).port, '127.0.0.1')
  const [socket] = (await once(server, 'connection')) as [Socket]
  t.teardown(() => {
    client.destroy()
    socket.destroy()
    server.close()
  })
  return socket
}

t.test('child_process.fork: the child has no pid until it runs, then running, then its exit; one gone never takes its socket', async (t) => {
  const { heard, events, done } = recorder()
  const child = spawnStarter(null, PARTS).start(events)
  t.equal(child.pid, undefined, 'not yet: no event comes before start() returns')
  t.same(heard, [])
  const socket = await socketPair(t)
  const held = child.serve(socket, { id: 1, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: 1, localAddress: '127.0.0.1', localPort: 2 })
  await done
  t.same(heard, ['running', 'exit 1 null'])
  t.type(child.pid, 'number', 'the pid, once it ran')
  t.equal(await held, false, 'gone without taking its socket')
  child.kill('SIGKILL', true) // after its exit: nothing is sent, to it or to a process that took its pid
})

t.test('FORKSERVER_TEST_STARTER names a module that wraps the real starter', async (t) => {
  process.env.FORKSERVER_TEST_STARTER = fileURLToPath(new URL('../fixtures/starters/failing.js', import.meta.url))
  t.teardown(() => delete process.env.FORKSERVER_TEST_STARTER)
  const { starter } = await chooseStarter({ start: 'spawn', credentials: null, model: 'fork' }, PARTS)
  const first = recorder()
  starter.start(first.events)
  await first.done
  t.same(first.heard, ['running', 'exit 1 null'], 'the first child is a real one')
  const second = recorder()
  const failed = starter.start(second.events)
  await second.done
  t.same(second.heard, ['error fork EAGAIN (test starter)'], 'the second fails to start')
  t.equal(failed.pid, undefined, 'and never has a pid')
})
