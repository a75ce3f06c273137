// Every duration option becomes a Node timer, and a timer longer than
// 2^31-1 ms fires at once: the longest each option takes must still wait.
import t from 'tap'
import { readBytes, open } from '../fixtures/client.js'
import { alive, startServer } from '../fixtures/server.js'

const LONGEST = '2147483'

t.test('--max-lifetime at its longest lets a child serve, and serve again', async (t) => {
  const server = await startServer(t, ['--max-lifetime', LONGEST, '--log-format', 'json'])
  const socket = await open(server.port)
  socket.write('one')
  t.equal((await readBytes(socket, 3)).toString(), 'one')
  // (the lifetime timer is set at the handoff)
  await server.waitForEvent({ event: 'handoff' })
  socket.write('two')
  t.equal((await readBytes(socket, 3)).toString(), 'two', 'the child still echoes once its lifetime timer is set')
  t.notOk(server.lines.some((line) => line.includes('outlived')), 'no child outlived its lifetime')
  socket.destroy()
  server.signal('SIGTERM')
  t.equal((await server.exited).code, 0)
})

t.test('--grace at its longest drains: a live connection is still served after SIGTERM', async (t) => {
  const server = await startServer(t, ['--grace', LONGEST, '-v'])
  const socket = await open(server.port)
  socket.write('before')
  t.equal((await readBytes(socket, 6)).toString(), 'before')
  server.signal('SIGTERM')
  await server.waitFor(new RegExp(`^SIGTERM: draining 1 children, ${LONGEST}s grace$`))
  socket.write('during')
  t.equal((await readBytes(socket, 6)).toString(), 'during', 'the child serves on through the drain')
  socket.end()
  t.equal((await server.exited).code, 0, 'the drain ends when the child does, with status 0')
})

t.test("--idle-timeout at its longest is an orphan's deadline too: an orphaned child serves on", async (t) => {
  // The child traces when it learns that its parent is gone, and arms the deadline then.
  const server = await startServer(t, ['--start', 'spawn', '--idle-timeout', LONGEST, '-v'], { DEBUG: 'forkserver:child' }) // (the spawned child's own trace)
  const socket = await open(server.port)
  socket.write('one')
  t.equal((await readBytes(socket, 3)).toString(), 'one')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  process.kill(server.pid, 'SIGKILL')
  await server.exited
  await server.waitFor(new RegExp(`parent gone: ${LONGEST}s left to finish`))
  socket.write('two')
  t.equal((await readBytes(socket, 3)).toString(), 'two', 'the orphan still echoes once its deadline is set')
  t.ok(alive(pid), 'and is still running')
  socket.destroy()
})
