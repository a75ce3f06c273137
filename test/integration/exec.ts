// --exec -- CMD [ARGS...]: a program per connection, UCSPI style, in both models.
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { orphanedConnection } from '../fixtures/orphan.js'
import { childrenOf, exitedWithin, runServer, startServer, stopServer, type Running } from '../fixtures/server.js'

/** The pid the parent gave the connection, from its `pid P from` line. */
const childPid = async (server: Running, from = 0): Promise<number> => Number((await server.waitFor(/^pid (\d+) from /, from))[1])

t.test('--exec -- cat is an echo server, byte for byte', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'cat'])
  const payload = randomBytes(64 * 1024)
  const reply = await exchange(server.port, payload)
  t.ok(reply.data.equals(payload), `64 KiB of random bytes come back unchanged (got ${reply.data.length})`)
  t.equal(reply.ended, 'end')
  const pid = await childPid(server)
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 1, /)
})

t.test('the program greets the client by its address, from TCPREMOTEIP', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', 'echo hello $TCPREMOTEIP'])
  const socket = await open(server.port)
  const done = collect(socket)
  t.equal(await readLine(socket), 'hello 127.0.0.1')
  t.equal((await done).ended, 'end', 'the connection closes when the program exits')
  await stopServer(server)
})

t.test('the program sees PROTO and the four TCP variables of its connection', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', 'echo $PROTO $TCPREMOTEIP $TCPREMOTEPORT $TCPLOCALIP $TCPLOCALPORT'])
  const socket = await open(server.port)
  const line = readLine(socket)
  t.equal(await line, `TCP 127.0.0.1 ${socket.localPort} 127.0.0.1 ${server.port}`)
  await collect(socket)
  await stopServer(server)
})

t.test('on a Unix-domain socket the program sees PROTO=UNIX and the path, and no TCP variables', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-exec-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'exec.sock')
  const server = runServer(t, ['--path', path, '-v', '--exec', '--', 'sh', '-c', 'echo $PROTO $UNIXLOCALPATH ${TCPREMOTEIP-none}'])
  await server.waitFor(/^listening on unix:/)
  const socket = connect(path)
  const reply = collect(socket)
  socket.end()
  t.equal((await reply).data.toString(), `UNIX ${path} none\n`)
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test("the program's stderr goes to the server's log", async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', 'echo from the program >&2'])
  await exchange(server.port)
  await server.waitFor(/^from the program$/)
  t.pass('its line is in the log')
  await stopServer(server)
})

t.test("the child exits with the program's status", async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', 'exit 3'])
  const reply = await exchange(server.port)
  t.equal(reply.data.length, 0)
  const pid = await childPid(server)
  await server.waitFor(new RegExp(`^end ${pid} status 3$`))
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 0, .*failed 1, /, 'a status other than 0 counts as failed')
})

t.test('a program killed by a signal: the end line shows that signal', async (t) => {
  for (const signal of ['KILL', 'TERM']) {
    const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', `kill -${signal} $$`])
    await exchange(server.port)
    const pid = await childPid(server)
    await server.waitFor(new RegExp(`^end ${pid} signal SIG${signal}$`))
    t.pass(`SIG${signal}`)
    await stopServer(server)
  }
})

t.test('a SIGTERM to the child (as the drain and --max-lifetime send it) reaches the program, and the connection closes', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'sh', '-c', 'echo ready; exec cat'])
  const socket = await open(server.port)
  const done = collect(socket)
  t.equal(await readLine(socket), 'ready', 'the program runs')
  const pid = await childPid(server)
  process.kill(pid, 'SIGTERM')
  await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  // Had the SIGTERM ended the child alone, cat would still hold the connection open.
  t.equal((await done).ended, 'end', 'cat is gone too: nothing holds the connection any more')
  t.notOk(server.lines.some((l) => l.includes('SIGKILL')), 'no SIGKILL was needed')
  await stopServer(server)
})

t.test('a missing program: a warning, status 127, the connection closed, and the server serves on', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'forkserver-no-such-program', '--flag'])
  for (const round of [1, 2]) {
    const from = server.lines.length
    const reply = await exchange(server.port, 'anyone there?')
    t.equal(reply.data.length, 0, `round ${round}: nothing comes back`)
    t.match(reply.ended, /^(?:end|reset)$/, `round ${round}: the connection is closed`)
    const pid = await childPid(server, from)
    await server.waitFor(new RegExp(`^warning: pid ${pid}: exec forkserver-no-such-program: not found \\(spawn forkserver-no-such-program ENOENT\\)$`), from)
    await server.waitFor(new RegExp(`^end ${pid} status 127$`), from)
  }
  t.same(await stopServer(server), { code: 0, signal: null }, 'the parent lived through both')
})

t.test('a spare forked ahead runs the program as well', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--spares', '1', '--exec', '--', 'cat'])
  await server.waitFor(/^status: 1\//)
  const reply = await exchange(server.port, 'spare')
  t.equal(reply.data.toString(), 'spare')
  await stopServer(server)
})

t.test('SIGTERM to the server while cat serves a client: the drain lets the connection finish', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--exec', '--', 'cat'])
  const socket = await open(server.port)
  const done = collect(socket)
  socket.write('before the drain, ')
  const pid = await childPid(server)
  server.signal('SIGTERM')
  await server.waitFor(/^SIGTERM: draining 1 children, /)
  socket.end('after it')
  const reply = await done
  t.equal(reply.data.toString(), 'before the drain, after it')
  t.equal(reply.ended, 'end')
  t.same(await server.exited, { code: 0, signal: null })
  t.ok(server.lines.includes(`end ${pid} status 0`))
  t.match(server.lines.at(-1), /^shutdown: served 1, /)
})

t.test('when the server is killed with SIGKILL, the program serves on, and its child ends with it, in both models', async (t) => {
  // (The orphan deadline, 60 s for --exec, is the same timer as without it: see lifetime.ts and prefork.ts.)
  for (const [model, more] of [['fork', ['--start', 'spawn']], ['prefork', ['--workers', '1']]] as const) {
    const server = await startServer(t, ['-v', '--model', model, ...more, '--exec', '--', 'cat'])
    const { socket, pid } = await orphanedConnection(t, server)
    const programs = childrenOf(pid).map((c) => c.pid)
    t.equal(programs.length, 1, `${model}: one program runs under pid ${pid}`)
    const ended = collect(socket, 10_000)
    socket.end('last')
    t.same(await ended, { data: Buffer.from('last'), ended: 'end' }, `${model}: the program answers, then ends with its client`)
    t.ok(await exitedWithin(programs[0]!, 5000), `${model}: the program is gone`)
    if (model === 'fork') t.ok(await exitedWithin(pid, 5000), 'and so is its child')
    else process.kill(pid, 'SIGKILL') // a worker without a parent stops accepting, and waits out the deadline
  }
})

t.test('prefork: each worker runs cat per connection, and the shutdown counts them served', async (t) => {
  const server = await startServer(t, ['-v', '--model', 'prefork', '--workers', '2', '--exec', '--', 'cat'])
  const payloads = Array.from({ length: 4 }, (_, i) => randomBytes(1024 * (i + 1)))
  const replies = await Promise.all(payloads.map((payload) => exchange(server.port, payload)))
  t.ok(replies.every((reply, i) => reply.data.equals(payloads[i]!)), 'every client gets its bytes back')
  t.equal(childrenOf(server.pid).length, 2, 'the workers, no child per connection')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 4, .*failed 0, /)
})

t.test('prefork: a program that fails counts as failed, and the worker serves on', async (t) => {
  const server = await startServer(t, ['-v', '--model', 'prefork', '--workers', '1', '--exec', '--', 'sh', '-c', 'read line; echo "got $line"; exit 1'])
  const replies = await Promise.all([exchange(server.port, 'one\n'), exchange(server.port, 'two\n')])
  t.same(replies.map((r) => r.data.toString()).sort(), ['got one\n', 'got two\n'])
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 0, .*failed 2, /)
})
