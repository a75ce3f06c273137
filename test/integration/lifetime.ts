// How long a child lives: --idle-timeout, no socket, and a parent that dies.
import { fork } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { collect, open, readBytes } from '../fixtures/client.js'
import { orphanedConnection, talkUntilCutOff } from '../fixtures/orphan.js'
import { exitedWithin, startServer, stopServer } from '../fixtures/server.js'
import { anyStart, forEachStart } from '../fixtures/starts.js'

const CHILD = fileURLToPath(new URL('../../dist/child.js', import.meta.url))

forEachStart('--idle-timeout closes a silent connection and the child exits with status 2', async (t, start) => {
  const server = await startServer(t, [...start.args, '--idle-timeout', '1', '-v'])
  const socket = await open(server.port)
  const startedAt = Date.now()
  socket.write('ping')
  t.equal((await readBytes(socket, 4)).toString(), 'ping')
  const reply = await collect(socket)
  const silent = Date.now() - startedAt
  t.ok(silent >= 900, `closed after ${silent} ms of silence`)
  t.equal(reply.data.length, 0)
  await server.waitFor(/^end \d+ status 2$/)
  await stopServer(server)
})

forEachStart('a slow but steady client is not idle', async (t, start) => {
  const server = await startServer(t, [...start.args, '--idle-timeout', '1', '-v'])
  const socket = await open(server.port)
  // Five bytes, each sent once the previous one came back: about 5 x 0.6 s.
  for (let i = 0; i < 5; i++) {
    await new Promise((resolve) => setTimeout(resolve, 600))
    socket.write(String(i))
    t.equal((await readBytes(socket, 1)).toString(), String(i))
  }
  const reply = collect(socket)
  socket.end()
  t.equal((await reply).ended, 'end')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

forEachStart('when the parent is killed with SIGKILL, a child finishes its connection, then exits', async (t, start) => {
  const server = await startServer(t, [...start.args, '--idle-timeout', '2', '-v'])
  const { socket, pid } = await orphanedConnection(t, server)
  const closed = await collect(socket, 10_000)
  t.equal(closed.ended, 'end', 'then closes the connection within the idle bound')
  t.ok(await exitedWithin(pid, 5000), 'and the orphan is gone')
})

forEachStart('an orphan whose client keeps talking is cut off at the orphan deadline (--idle-timeout 2)', async (t, start) => {
  const server = await startServer(t, [...start.args, '--idle-timeout', '2', '-v'])
  const { socket, pid } = await orphanedConnection(t, server)
  const after = await talkUntilCutOff(t, socket, Date.now())
  t.ok(after >= 1500 && after <= 2000 + 2500, `${after} ms after the parent died: at the 2 s deadline`)
  t.ok(await exitedWithin(pid, 5000), 'and the orphan is gone')
})

t.test('a child whose parent goes away before the socket arrives exits at once with status 4', anyStart, async (t) => {
  const child = fork(CHILD, [], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  t.teardown(() => child.kill('SIGKILL'))
  await once(child, 'spawn')
  const start = Date.now()
  child.disconnect()
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 4)
  t.ok(Date.now() - start < 5_000, 'without waiting out the 10 s')
})

t.test('a child that gets no socket within 10 s exits with status 4', anyStart, async (t) => {
  const child = fork(CHILD, [], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  t.teardown(() => child.kill('SIGKILL'))
  const start = Date.now()
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 4)
  t.ok(Date.now() - start >= 9_500, 'after about 10 s')
})

t.test('a child sent a socket-less message exits with status 3: the peer is gone', anyStart, async (t) => {
  const child = fork(CHILD, [], { execArgv: [], stdio: ['ignore', 'ignore', 'ignore', 'ipc'] })
  t.teardown(() => child.kill('SIGKILL'))
  child.send({ type: 'serve', info: {}, spec: {} })
  const [code] = (await once(child, 'exit')) as [number | null]
  t.equal(code, 3)
})
