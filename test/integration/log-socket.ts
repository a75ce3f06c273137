// stderr a socket nobody reads (systemd's journal, a Node parent's stdio
// 'pipe'): the log goes out by send(2) without waiting, from the native addon
// (lib/log-writer.ts), so the server still serves and still stops. It needs
// the addon, so it runs under --start zygote, where 300 connections are quick.
import t from 'tap'
import { loadWarmFork } from '../../lib/warm-fork.js'
import { events, readUntil, serve, startUnread } from '../fixtures/unread-stderr.js'

const { reason } = loadWarmFork()

t.test('300 connections into a stderr socket nobody reads are all served, and SIGTERM ends the server within its grace', { skip: reason ?? false }, async (t) => {
  const server = await startUnread(t, ['--start', 'zygote', '--log-format', 'json', '-v', '--grace', '2'], 'socket')
  t.equal(await serve(server.port, 300), 300, 'every client got its echo')
  const stopped = Date.now()
  server.proc.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  const took = Date.now() - stopped
  t.ok(took < 2000 + 1000, `it exited within its grace (${took} ms)`)
  const got = events(t, await readUntil(server, server.text))
  t.ok(got.length > 100, `${got.length} events got through, each a whole JSON line`)
  t.notOk(got.some((e) => e.event === 'shutdown'), 'not all of them: the socket stayed full')
})
