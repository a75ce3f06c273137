// The starter, on its own: real processes, reported through the events the
// parent gives it. (From the source tree, child.js is not there to run, so a
// child started here exits at once with status 1: enough to see its events.)
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { chooseStarter, spawnStarter, type ChildEvents } from '../../lib/start/starter.js'

/** Events that record what happened, and a promise of the child's end: its exit, or its error. */
const recorder = () => {
  const heard: string[] = []
  let ended!: () => void
  const done = new Promise<void>((resolve) => (ended = resolve))
  const events: ChildEvents = {
    spawn: () => heard.push('spawn'),
    message: () => heard.push('message'),
    exit: (code, signal) => (heard.push(`exit ${code} ${signal}`), ended()),
    error: (err) => (heard.push(`error ${err.message}`), ended()),
  }
  return { heard, events, done }
}

t.test('child_process.fork: the child has no pid until it runs, then spawn, then its exit', async (t) => {
  const { heard, events, done } = recorder()
  const child = spawnStarter(null).start(events)
  t.equal(child.pid, undefined, 'not yet: no event comes before start() returns')
  t.same(heard, [])
  await done
  t.same(heard, ['spawn', 'exit 1 null'])
  t.type(child.pid, 'number', 'the pid, once it ran')
  child.kill('SIGKILL', true) // after its exit: nothing is sent, to it or to a process that took its pid
  const sent = await new Promise<Error | null>((resolve) => child.send({ type: 'stop' }, undefined, resolve))
  t.ok(sent instanceof Error, 'a message to a child that is gone reports an error, and throws nothing')
})

t.test('FORKSERVER_TEST_STARTER names a module that wraps the real starter', async (t) => {
  process.env.FORKSERVER_TEST_STARTER = fileURLToPath(new URL('fixtures/starters/failing.js', import.meta.url))
  t.teardown(() => delete process.env.FORKSERVER_TEST_STARTER)
  const make = await chooseStarter({ start: 'spawn', credentials: null })
  const starter = make({ spec: { service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' }, warn: () => {}, trace: () => {} })
  const first = recorder()
  starter.start(first.events)
  await first.done
  t.same(first.heard, ['spawn', 'exit 1 null'], 'the first child is a real one')
  const second = recorder()
  const failed = starter.start(second.events)
  await second.done
  t.same(second.heard, ['error fork EAGAIN (test starter)'], 'the second fails to start')
  t.equal(failed.pid, undefined, 'and never has a pid')
})
