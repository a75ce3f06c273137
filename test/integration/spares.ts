// --spares: children forked ahead, each still serving exactly one connection.
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { childrenOf, startServer, stopServer } from '../fixtures/server.js'

const WHOAMI = fileURLToPath(new URL('../fixtures/handlers/whoami.js', import.meta.url))
const TRACE = { DEBUG: 'forkserver:parent' }

t.test('spares are forked before any client comes, take a connection at once, and are replaced', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--spares', '2', '--handler', WHOAMI, '-v'], TRACE)
  await server.waitFor(/^status: 2\/40$/)
  t.pass('two children before any connection, counted toward --max-children')
  const spares = childrenOf(server.pid).map((c) => c.pid)
  t.equal(spares.length, 2, 'two children wait')
  const socket = await open(server.port)
  const { pid } = JSON.parse(await readLine(socket)) as { pid: number }
  t.ok(spares.includes(pid), 'a spare serves the first client')
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 3)
  t.equal(childrenOf(server.pid).length, 3, 'a replacement spare is forked: two waiting, one busy')
  const closed = collect(socket)
  socket.end()
  await closed
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.equal(childrenOf(server.pid).filter((c) => c.pid === pid).length, 0, 'the child that served is gone: never reused')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 1, /, 'spares are not counted as served')
})

t.test('a spare killed while waiting is reaped, replaced, and not counted', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--spares', '1', '-v'], TRACE)
  await server.waitFor(/forkserver:parent pid \d+ spawned$/)
  const [spare] = childrenOf(server.pid)
  process.kill(spare!.pid, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: spare ${spare!.pid} was killed by SIGKILL; a new one in 0\\.1s$`))
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 2)
  t.equal((await exchange(server.port, 'after')).data.toString(), 'after', 'the new spare serves')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 1, peak \d+, failed 0, /, 'the killed spare is no failure: it had no connection')
})

t.test('a burst larger than the spares: each client gets its own fresh child', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--spares', '2', '--handler', WHOAMI, '-v'], TRACE)
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 2)
  const clients = await Promise.all(Array.from({ length: 8 }, () => open(server.port)))
  const pids = await Promise.all(clients.map(async (c) => (JSON.parse(await readLine(c)) as { pid: number }).pid))
  t.equal(new Set(pids).size, 8, 'eight connections, eight processes')
  clients.forEach((c) => c.end())
  await server.waitForCount(/^end \d+ status 0$/, 8)
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 8, /)
})

t.test('shutdown kills the spares at once and drains the busy children', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--spares', '3', '-v'], TRACE)
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 3)
  const busy = await open(server.port)
  const busyPid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 4)
  const spares = childrenOf(server.pid).map((c) => c.pid).filter((pid) => pid !== busyPid)
  server.signal('SIGTERM')
  for (const pid of spares) await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  t.pass('every spare ended at once')
  const reply = collect(busy)
  busy.end('still served')
  t.equal((await reply).data.toString(), 'still served', 'the busy child finishes its connection')
  t.same(await server.exited, { code: 0, signal: null }, 'a clean drain')
  t.match(server.lines.at(-1), /^shutdown: served 1, peak 4, failed 0, /)
})
