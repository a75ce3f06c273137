// Closing the terminal a server runs in (SIGHUP, then EIO on every write):
// the server drains as it does for SIGTERM, and everything exits with its own
// status rather than dying of the dead terminal.
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { collect, readBytes } from '../fixtures/client.js'
import { runServer } from '../fixtures/server.js'

const TERMINAL = fileURLToPath(new URL('../fixtures/terminal.py', import.meta.url))

t.test('closing the terminal drains: a live connection is served to its end, the socket file goes, and the exit status is 0', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-terminal-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'echo.sock')
  const server = runServer(t, ['--path', path, '-v'], {}, { via: ['python3', TERMINAL] })
  const pid = Number((await server.waitFor(/^listening on unix:.+, pid (\d+)$/))[1])
  const held = connect(path)
  held.write('before')
  t.equal((await readBytes(held, 6)).toString(), 'before')
  await server.waitFor(/^pid \d+ from unix:/)

  // The terminal window closes. The server's log goes with it: what it does is seen from outside.
  server.signal('SIGUSR1')
  held.write('after')
  t.equal((await readBytes(held, 5)).toString(), 'after', 'the live connection is still served by its child')
  const closed = collect(held)
  held.end()
  t.equal((await closed).ended, 'end')
  await server.waitFor(/^exit 0$/)
  t.pass(`the server (pid ${pid}) drained and exited 0, not by an abort`)
  t.notOk(existsSync(path), 'its socket file is removed')
})
