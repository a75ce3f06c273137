// SIGUSR1: the parent prints a table of its children and its counters.
import t from 'tap'
import { exchange, open, readBytes } from '../fixtures/client.js'
import { startServer, stopServer, type Running } from '../fixtures/server.js'
import { anyStart, forEachStart } from '../fixtures/starts.js'

/** Sends SIGUSR1 and resolves with the table's lines: the status line, the header and a row per child. */
const table = async (server: Running): Promise<string[]> => {
  const from = server.lines.length
  server.signal('SIGUSR1')
  const head = await server.waitFor(/^status: \d+\/\d+ children, /, from)
  const at = server.lines.indexOf(head.input, from)
  const live = Number(/^status: (\d+)\//.exec(head.input)?.[1])
  await server.waitForCount(/^ {2}\S/, live + 1, at)
  // (Written whole, in one line of the log: every row is here by now, the zygote's too, which live does not count.)
  let end = at + 1
  while (server.lines[end]?.startsWith('  ')) end++
  return server.lines.slice(at, end)
}

forEachStart('fork model with a spare: the busy child with its peer, the spare, the zygote\'s row under the zygote, and the counters', async (t, start) => {
  const spares = true
  const server = await startServer(t, [...start.args, ...(spares ? ['--spares', '1'] : []), '--max-children', '5', '-v'])
  t.equal((await exchange(server.port, 'one')).data.toString(), 'one')
  // (The first child is gone before the second comes.)
  await server.waitFor(/^end \d+ status 0$/)
  const held = await open(server.port)
  held.write('two')
  await readBytes(held, 3)
  const handed = (await server.waitForCount(/^pid \d+ from /, 2))[1]!
  // The spare took it; its successor is forked once it has the socket. (A zygote's child is counted before its `from` line.)
  if (spares) await server.waitFor(/^status: 2\/5$/, server.lines.indexOf(handed.input))
  const live = spares ? 2 : 1
  const lines = await table(server)
  t.match(lines[0], new RegExp(`^status: ${live}/5 children, accepted 2, served 1, denied 0, dropped 0, failed 0, peak ${live}$`))
  t.match(lines[1], /^ {2}PID +STATE +AGE +CONN +PEER$/)
  const all = lines.slice(2).map((row) => row.trim().split(/\s+/))
  const rows = all.filter((row) => row[1] !== 'zygote')
  if (start.name === 'zygote') t.match(all.filter((row) => row[1] === 'zygote'), [[/^\d+$/, 'zygote', /^\d+\.\d+s$/, '-', '-']], 'the zygote, in a row of its own')
  t.equal(rows.length, live, spares ? 'a busy child and a spare' : 'the busy child alone')
  const busy = rows.find((row) => row[1] === 'busy')
  t.match(busy, [/^\d+$/, 'busy', /^\d+\.\d+s$/, '2', `127.0.0.1:${held.localPort}`], 'the busy child, its connection and its peer')
  const spare = rows.find((row) => row[1] === 'spare')
  if (spares) t.match(spare, [/^\d+$/, 'spare', /^\d+\.\d+s$/, '-', '-'], 'the spare, waiting')
  held.end()
  await stopServer(server)
})

t.test('prefork: a row per worker, and counters the workers report when asked', anyStart, async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '-v'])
  await server.waitForCount(/^status: 2\/2$/, 1)
  for (const text of ['a', 'b', 'c']) t.equal((await exchange(server.port, text)).data.toString(), text)
  const lines = await table(server)
  t.equal(lines[0], 'status: 2/2 children, accepted 3, served 3, denied 0, dropped 0, failed 0, peak 2')
  t.same(lines.slice(2).map((row) => row.trim().split(/\s+/)[1]), ['worker', 'worker'])
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 3, peak 2, failed 0, denied 0, dropped 0$/)
})

forEachStart('SIGUSR1 does not stop the server, and works again and again', async (t, start) => {
  const server = await startServer(t, start.args)
  for (let i = 0; i < 3; i++) t.match((await table(server))[0], /^status: 0\/40 children, accepted \d, /)
  t.equal((await exchange(server.port, 'still here')).data.toString(), 'still here')
  t.same(await stopServer(server), { code: 0, signal: null })
})
