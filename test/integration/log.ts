// The log on stderr. A pipe that nobody reads does not stop the server
// (lib/log/log-writer.ts): it goes on accepting and reaping, and a SIGTERM still
// ends it within its grace (log-dropped.ts: what it could not write is
// counted). Text from outside cannot split a line.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { runServer } from '../fixtures/server.js'
import { servesAndStopsUnread } from '../fixtures/unread-stderr.js'

t.test('300 connections into a stderr pipe nobody reads are all served, and SIGTERM ends the server within its grace', (t) =>
  servesAndStopsUnread(t, 'pipe'))

t.test('a newline in --path is escaped in the log: it cannot split or forge a line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = runServer(t, ['--path', join(dir, 'a\nfatal: forged')])
  await server.waitFor(/^listening on unix:/)
  t.match(server.lines[0], new RegExp(`^listening on unix:${dir}/a\\\\nfatal: forged, pid \\d+$`))
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.notOk(server.lines.some((line) => line.startsWith('fatal:')), 'no forged line')
})
