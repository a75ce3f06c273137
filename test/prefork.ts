import t from 'tap'
import { createLog } from '../lib/log.js'
import { Supervisor } from '../lib/prefork.js'
import type { RawHandle } from '../lib/raw-handle.js'

// The supervisor's decisions, with the forking replaced by a record of calls.
const setup = () => {
  const spawned: { listener: RawHandle; lend: boolean }[] = []
  const lines: string[] = []
  const supervisor = new Supervisor(2, (listener, lend) => spawned.push({ listener, lend }), createLog(true, (s) => lines.push(s)), () => {})
  const handle = (): RawHandle & { closed: boolean } => ({ closed: false, close() { this.closed = true } })
  return { supervisor, spawned, lines, handle }
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

t.test('a replacement waits for the lent copy of the listener, then uses it', async (t) => {
  const { supervisor, spawned, handle } = setup()
  supervisor.replace(11, 0, null, 50_000)
  await tick(10)
  t.equal(spawned.length, 0, 'no listener to give yet')
  const keeper = handle()
  supervisor.keep(keeper)
  t.same(spawned, [{ listener: keeper, lend: false }], 'forked as soon as the copy arrived')
  const extra = handle()
  supervisor.keep(extra)
  t.ok(extra.closed, 'a second copy is closed at once')
  supervisor.stop()
  t.ok(keeper.closed, 'stop lets go of the parent copy')
})

t.test('crashes in a row double the delay; a clean exit resets it', async (t) => {
  const { supervisor, lines, handle } = setup()
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
  const { supervisor, spawned, lines, handle } = setup()
  supervisor.keep(handle())
  for (let i = 0; i < 12; i++) supervisor.replace(i, 1, null, 10)
  t.match(lines.at(-1), /a new one in 10s\n$/)
  supervisor.stop()
  await tick(150)
  t.equal(spawned.length, 0, 'nothing forked after stop')
})
