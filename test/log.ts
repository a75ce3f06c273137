import t from 'tap'
import { createLog, endLine, errorMessage, sanitize } from '../lib/log.js'

t.test('sanitize replaces control and non-ASCII characters and caps the length', async (t) => {
  t.equal(sanitize('plain text'), 'plain text')
  t.equal(sanitize('a\nb\rc\x1b[31md\u00e9'), 'a?b?c?[31md?')
  t.equal(sanitize('x'.repeat(300)), `${'x'.repeat(200)}...`)
  t.equal(sanitize('abcdef', 3), 'abc...')
})

t.test('verbose lines are written only with -v; warnings always', async (t) => {
  const quiet: string[] = []
  const q = createLog(false, (s) => quiet.push(s))
  q.verbose('status: 0/40')
  q.warning('disk\nfull')
  q.drop('fork failed', '127.0.0.1:5555')
  q.line('listening on 127.0.0.1:7000')
  t.same(quiet, ['warning: disk?full\n', 'warning: dropping connection, fork failed: 127.0.0.1:5555\n', 'listening on 127.0.0.1:7000\n'])
  const loud: string[] = []
  createLog(true, (s) => loud.push(s)).verbose('status: 0/40')
  t.same(loud, ['status: 0/40\n'])
})

t.test('end lines give the status, or the signal', async (t) => {
  t.equal(endLine(12, 0, null), 'end 12 status 0')
  t.equal(endLine(12, null, 'SIGKILL'), 'end 12 signal SIGKILL')
  t.equal(endLine(undefined, null, null), 'end ? status ?')
})

t.test('errorMessage reads the message of anything thrown', async (t) => {
  t.equal(errorMessage(new Error('boom')), 'boom')
  t.equal(errorMessage('plain'), 'plain')
})
