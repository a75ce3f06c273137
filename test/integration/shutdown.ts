// SIGTERM, SIGINT and SIGQUIT drain the server: refuse new clients, close the
// queue, give live children --grace seconds, then SIGTERM, then SIGKILL.
// SIGUSR2 is ignored.
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, exchange, open, readBytes, readLine, refused } from '../fixtures/client.js'
import { alive, childrenOf, runServer, startServer, stopServer } from '../fixtures/server.js'
import { forEachStart, ZYGOTE, type Start } from '../fixtures/starts.js'

const STUBBORN = fileURLToPath(new URL('../fixtures/handlers/stubborn.js', import.meta.url))
const SLOW_LOAD = fileURLToPath(new URL('../fixtures/handlers/slow-load.js', import.meta.url))

/** A signal that drains: new clients are refused, the live one is served to the end, exit 0. */
const drains = (signal: 'SIGTERM' | 'SIGQUIT') => async (t: Test, start: Start): Promise<void> => {
  const server = await startServer(t, [...start.args, '-v'])
  const live = await open(server.port)
  live.write('before ')
  t.equal((await readBytes(live, 7)).toString(), 'before ')
  server.signal(signal)
  await server.waitFor(new RegExp(`^${signal}: draining 1 children, 10s grace$`))
  t.equal(await refused(server.port), 'ECONNREFUSED', 'the listener is closed')
  const rest = collect(live)
  live.end('after')
  t.equal((await rest).data.toString(), 'after', 'the live connection is served to the end')
  t.same(await server.exited, { code: 0, signal: null })
  t.equal(server.lines.at(-1), 'shutdown: served 1, peak 1, failed 0, denied 0, dropped 0')
}

forEachStart('SIGTERM drains: new clients are refused, the live one finishes, exit 0', drains('SIGTERM'))

forEachStart('SIGTERM closes queued connections at once', async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-children', '1', '-v'], { DEBUG: 'forkserver:parent' })
  const busy = await open(server.port)
  await server.waitFor(/^pid \d+ from /)
  const queued = await open(server.port)
  const queuedPort = queued.localPort
  await server.waitFor(/queued .*, 1 waiting$/)
  const queuedReply = collect(queued)
  server.signal('SIGTERM')
  t.equal((await queuedReply).data.length, 0, 'the queued client is closed unserved')
  await server.waitFor(new RegExp(`^warning: dropping connection, shutting down: 127\\.0\\.0\\.1:${queuedPort}$`))
  const busyReply = collect(busy)
  busy.end('done')
  t.equal((await busyReply).data.toString(), 'done')
  t.same(await server.exited, { code: 0, signal: null })
})

forEachStart('past --grace, children get SIGTERM, and the parent exits 1', async (t, start) => {
  const server = await startServer(t, [...start.args, '--grace', '1', '-v'])
  const live = await open(server.port)
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const closed = collect(live)
  const startedAt = Date.now()
  server.signal('SIGTERM')
  await server.waitFor(/^warning: grace over: SIGTERM to 1 children$/)
  await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  t.ok(['end', 'reset'].includes((await closed).ended), 'the client sees the close')
  t.same(await server.exited, { code: 1, signal: null })
  const elapsed = Date.now() - startedAt
  t.ok(elapsed < 1000 + 2000 + 2000, `exited ${elapsed} ms after SIGTERM, within --grace + 2 s + slack`)
  t.match(server.lines.at(-1), /^shutdown: served 0, peak 1, failed 1, /)
})

forEachStart('a child that ignores SIGTERM is killed 2 s later', async (t, start) => {
  const server = await startServer(t, [...start.args, '--grace', '0', '--handler', STUBBORN, '-v'])
  const live = await open(server.port)
  t.equal(await readLine(live), 'ready')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  server.signal('SIGTERM')
  await server.waitFor(new RegExp(`^end ${pid} signal SIGKILL$`))
  t.same(await server.exited, { code: 1, signal: null })
  t.notOk(alive(pid), 'the child is gone')
  live.destroy()
})

forEachStart('a second SIGINT ends the server at once and kills its children, and the counts still add up', async (t, start) => {
  const server = await startServer(t, [...start.args, '--grace', '60', '--max-children', '1', '-v'])
  const live = await open(server.port)
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const closed = collect(live)
  const queued = await open(server.port) // over --max-children: it waits in the queue
  const dropped = collect(queued)
  server.signal('SIGINT')
  await server.waitFor(/^SIGINT: draining 1 children, 60s grace$/)
  await server.waitFor(/^warning: dropping connection, shutting down: /)
  server.signal('SIGINT')
  t.same(await server.exited, { code: 130, signal: null })
  await closed
  await dropped
  t.ok(server.lines.includes('warning: second SIGINT: killing 1 children'))
  t.ok(server.lines.includes(`end ${pid} signal SIGKILL`), 'the killed child was reaped before the exit')
  t.equal(server.lines.at(-1), 'shutdown: served 0, peak 1, failed 1, denied 0, dropped 1', 'two accepted: one failed, one dropped')
  t.notOk(childrenOf(server.pid).length, 'no child left')
  t.ok(!alive(pid) || childrenOf(1).some((c) => c.pid === pid && c.state === 'Z'), 'the child was killed')
})

forEachStart('SIGQUIT drains as SIGTERM does', drains('SIGQUIT'))

t.test('SIGUSR2 is ignored, with a warning: the server serves on', async (t) => {
  const server = await startServer(t, [])
  server.signal('SIGUSR2')
  await server.waitFor(/^warning: SIGUSR2 ignored: SIGHUP reloads, SIGUSR1 prints the status, SIGTERM drains$/)
  t.equal((await exchange(server.port, 'still here')).data.toString(), 'still here')
  t.same(await stopServer(server), { code: 0, signal: null })
})

forEachStart('Ctrl-C (SIGINT to the whole process group) drains: children finish their connection', async (t, start) => {
  const server = await startServer(t, [...start.args, '-v'])
  const live = await open(server.port)
  await server.waitFor(/^pid \d+ from /)
  process.kill(-server.pid, 'SIGINT')
  await server.waitFor(/^SIGINT: draining 1 children/)
  const reply = collect(live)
  live.end('still served')
  t.equal((await reply).data.toString(), 'still served', 'the child ignored the SIGINT and served on')
  t.same(await server.exited, { code: 0, signal: null })
})

forEachStart('an idle server stops at once on SIGTERM', async (t, start) => {
  const server = await startServer(t, [...start.args])
  t.equal((await exchange(server.port, 'x')).data.toString(), 'x')
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('SIGTERM while the zygote still loads the handler ends the server before it ever listens', { skip: ZYGOTE.skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-slow-load-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = runServer(t, ['--port', '0', '--start', 'zygote', '--handler', SLOW_LOAD], { FORKSERVER_TEST_LOAD_DIR: dir })
  // The zygote is loading the handler: the server is between its start and its listen.
  while (!existsSync(join(dir, 'loading'))) await new Promise((resolve) => setTimeout(resolve, 20))
  server.signal('SIGTERM')
  await server.waitFor(/^shutdown: served 0,/)
  writeFileSync(join(dir, 'go'), '') // the load finishes, after the drain
  t.same(await server.exited, { code: 0, signal: null })
  t.notOk(server.lines.some((line) => line.startsWith('listening')), `it never listened: ${server.lines.join(' | ')}`)
})
