// What the log could not write while nobody read stderr is counted, and said
// once stderr is read again, and in the summary (lib/log/log-writer.ts).
import t from 'tap'
import { events, readUntil, serve, startUnread } from '../fixtures/unread-stderr.js'

t.test('once stderr is read again, the log says how many lines it dropped, and the summary counts them', async (t) => {
  const server = await startUnread(t, ['--log-format', 'json', '-v'])
  t.equal(await serve(server.port, 300), 300, 'every client got its echo')
  const warned = /"message":"stderr was not read: (\d+) log lines dropped"/
  const text = await readUntil(server, server.text, (text) => warned.test(text))
  const dropped = Number(warned.exec(text)?.[1])
  t.ok(dropped > 0, `${dropped} lines were dropped`)
  server.proc.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  const got = events(t, await readUntil(server, text))
  t.match(got.at(-1), { event: 'shutdown', code: 0, counters: { served: 300 }, logDropped: dropped })
})
