// --log-format json: one JSON object per event on stderr. A run goes through
// every event, and every line of it is parsed.
import t from 'tap'
import { collect, exchange, open, readBytes } from '../fixtures/client.js'
import { runServer, type Running } from '../fixtures/server.js'
import { anyStart, forEachStart } from '../fixtures/starts.js'

type Event = Record<string, unknown> & { event: string; time: string }

const events = (server: Running): Event[] => server.lines.filter((line) => line !== '').map((line) => JSON.parse(line) as Event)

const waitForEvent = async (server: Running, fields: Record<string, unknown>, from = 0): Promise<Event> =>
  (await server.waitForEvent(fields, from)) as Event

forEachStart('a run in JSON: every line is an event object, and a connection can be followed by its id', async (t, start) => {
  const server = runServer(t, [...start.args, '--host', '::', '--port', '0', '--deny', '::1', '--max-children', '2', '--overflow', 'reject', '--log-format', 'json'])
  const listening = await waitForEvent(server, { event: 'listening' })
  const port = Number(/:(\d+)$/.exec(String(listening.address))?.[1])
  t.match(listening, { address: /^\[::\]:\d+$/, pid: server.pid })

  // Served: accept → fork → handoff → end, with status 0.
  t.equal((await exchange(port, 'served')).data.toString(), 'served')
  const served = await waitForEvent(server, { event: 'end', conn: 1 })
  t.match(served, { pid: Number, peer: /^127\.0\.0\.1:\d+$/, code: 0, signal: null })
  t.ok((served.handoffMs as number) >= 0 && (served.handoffMs as number) <= (served.endMs as number), 'handed off before it ended')

  // Denied: the ::1 peer is turned away by --deny.
  await exchange(port, 'denied', '::1')
  t.match(await waitForEvent(server, { event: 'deny' }), { conn: 2, peer: /^\[::1\]:\d+$/ })

  // Two held connections fill --max-children 2; the third is dropped.
  const held = [await open(port), await open(port)]
  for (const [i, socket] of held.entries()) {
    socket.write(`held ${i}`)
    await readBytes(socket, 6)
  }
  const rejected = await exchange(port, 'over the limit')
  t.equal(rejected.data.length, 0, 'the dropped client got nothing')
  t.match(await waitForEvent(server, { event: 'drop' }), { conn: 5, reason: 'max-children 2 reached', peer: /^127\.0\.0\.1:\d+$/ })

  // A killed child: its end carries the signal.
  const handoff = await waitForEvent(server, { event: 'handoff', conn: 4 })
  const killed = collect(held[1]!)
  process.kill(handoff.pid as number, 'SIGKILL')
  await killed
  t.match(await waitForEvent(server, { event: 'end', conn: 4 }), { pid: handoff.pid, code: null, signal: 'SIGKILL' })

  // SIGUSR1: a status event with the table.
  const before = server.lines.length
  server.signal('SIGUSR1')
  const status = await waitForEvent(server, { event: 'status', trigger: 'SIGUSR1' }, before)
  const rows = status.children as { state: string }[]
  t.match({ ...status, children: rows.filter((row) => row.state !== 'zygote') }, {
    live: 1,
    max: 2,
    counters: { accepted: 5, served: 1, denied: 1, dropped: 1, failed: 1, peak: 2 },
    children: [{ state: 'busy', conn: 3, peer: /^127\.0\.0\.1:\d+$/, ageMs: Number }],
  })
  t.equal(rows.filter((row) => row.state === 'zygote').length, start.name === 'zygote' ? 1 : 0, 'and the zygote\'s row, under the zygote')

  // The drain, then the summary.
  const last = collect(held[0]!)
  held[0]!.end()
  await last
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })

  const all = events(server)
  t.ok(all.length > 0)
  for (const e of all) t.match(e, { time: /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, event: String }, `${e.event} has its time`)
  const kinds = new Set(all.map((e) => e.event))
  for (const kind of ['listening', 'accept', 'fork', 'handoff', 'end', 'deny', 'drop', 'status', 'drain', 'shutdown']) {
    t.ok(kinds.has(kind), `a ${kind} event`)
  }
  // Connection 1 from accept to end, all under one id.
  const first = all.filter((e) => e.conn === 1).map((e) => e.event)
  t.same(first, ['accept', 'fork', 'handoff', 'end'], 'connection 1: accept, fork, handoff, end')
  const accepts = all.filter((e) => e.event === 'accept').map((e) => e.conn)
  t.same(accepts, [1, 2, 3, 4, 5], 'every connection accepted once, numbered in order')
  t.match(all.at(-1), { event: 'shutdown', code: 0, counters: { accepted: 5, served: 2, failed: 1, denied: 1, dropped: 1 } })
})

t.test('prefork workers write JSON too, with their own accepts and ends', anyStart, async (t) => {
  const server = runServer(t, ['--port', '0', '--model', 'prefork', '--workers', '1', '--log-format', 'json'])
  const listening = await waitForEvent(server, { event: 'listening' })
  const port = Number(/:(\d+)$/.exec(String(listening.address))?.[1])
  await waitForEvent(server, { event: 'fork', state: 'worker' })
  t.equal((await exchange(port, 'via a worker')).data.toString(), 'via a worker')
  const end = await waitForEvent(server, { event: 'end', conn: 1 })
  t.match(end, { peer: /^127\.0\.0\.1:\d+$/, code: 0, signal: null, handoffMs: null, endMs: Number })
  t.not(end.pid, server.pid, 'written by the worker')
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  for (const e of events(server)) t.type(e.event, 'string')
  t.match(events(server).at(-1), { event: 'shutdown', counters: { accepted: 1, served: 1 } })
})

t.test('usage errors stay one plain line, whatever the log format', anyStart, async (t) => {
  const server = runServer(t, ['--log-format', 'json', '--port', 'nope'])
  t.same(await server.exited, { code: 2, signal: null })
  t.match(server.lines[0], /^forkserver: --port must be an integer/)
})

t.test('a fatal error is a JSON event', anyStart, async (t) => {
  const server = runServer(t, ['--log-format', 'json', '--fd', '99'])
  t.same(await server.exited, { code: 1, signal: null })
  t.match(JSON.parse(server.lines.at(-1)!), { event: 'fatal', message: /^descriptor 99: / })
  t.same(server.lines.map((line) => (JSON.parse(line) as { event: string }).event).filter((event) => event !== 'zygote'), ['fatal'], 'the only event but the zygote\'s start')
})
