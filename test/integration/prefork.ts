// --model prefork: workers that accept for themselves, kept alive by the parent.
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { collect, exchange, open, readLine, refused } from '../fixtures/client.js'
import { orphanedConnection } from '../fixtures/orphan.js'
import { alive, childrenOf, exitedWithin, listensOn, startServer, stopServer } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/handlers/${name}`, import.meta.url))
const WHOAMI = fixture('whoami.js')

const whoami = async (port: number) => {
  const socket = await open(port)
  const report = JSON.parse(await readLine(socket)) as { pid: number; ppid: number }
  return { socket, ...report }
}

t.test('workers accept for themselves and each serves many connections at once', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '--handler', WHOAMI, '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitForCount(/worker \d+ is accepting$/, 2)
  const workers = childrenOf(server.pid).map((c) => c.pid).sort()
  t.equal(workers.length, 2, 'two workers')
  const clients = await Promise.all(Array.from({ length: 12 }, () => whoami(server.port)))
  t.ok(clients.every((c) => workers.includes(c.pid)), 'every connection is served by a worker')
  t.ok(clients.every((c) => c.ppid === server.pid), 'the workers are children of the server')
  // (Their log lines come through a pipe, and may trail the replies.)
  await server.waitForCount(/^pid \d+ from /, 12)
  t.pass('each worker logs the connections it accepts')
  t.equal(childrenOf(server.pid).length, 2, 'no process was forked per connection')
  clients.forEach((c) => c.socket.end())
  await Promise.all(clients.map((c) => collect(c.socket)))
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 12, peak 2, failed 0, /)
})

t.test('a worker killed with kill -9 is replaced, and serving goes on', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitForCount(/worker \d+ is accepting$/, 2)
  const [victim] = childrenOf(server.pid)
  process.kill(victim!.pid, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: worker ${victim!.pid} was killed by SIGKILL; a new one in 0\\.1s$`))
  await server.waitForCount(/worker \d+ is accepting$/, 3)
  t.equal(childrenOf(server.pid).length, 2, 'two workers again')
  t.notOk(alive(victim!.pid) && childrenOf(server.pid).some((c) => c.pid === victim!.pid), 'the dead one was reaped')
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => exchange(server.port, `after ${i}`)))
  t.same(replies.map((r) => r.data.toString()), Array.from({ length: 8 }, (_, i) => `after ${i}`))
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test("a throw from a handler's own listener ends its worker with one cleaned warning, and its connections count as failed", async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--handler', fixture('throws-later.js'), '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitForCount(/worker \d+ is accepting$/, 1)
  const bystander = await open(server.port)
  bystander.write('a\n')
  t.equal(await readLine(bystander), 'a', 'a bystander is served by the same worker')
  const cut = collect(bystander)
  t.equal((await exchange(server.port, 'boom\nshutdown: served 999, forged')).data.length, 0, 'nothing echoed')
  const warning = await server.waitFor(/^warning: pid \d+: /)
  t.match(warning.input, /throws-later\.js failed: bad input: boom\\nshutdown: served 999, forged; the worker ends, with its 2 connections$/)
  t.ok(['end', 'reset'].includes((await cut).ended), 'the bystander is cut off with its worker')
  await server.waitForCount(/worker \d+ is accepting$/, 2)
  t.equal((await exchange(server.port, 'next')).data.toString(), 'next', 'a new worker serves')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.notOk(server.lines.some((l) => l.startsWith('shutdown: served 999') || /^\s+at /.test(l)), 'no forged line, no stack trace')
  t.match(server.lines.at(-1), /^shutdown: served 1, peak 1, failed 2, /, 'the two connections it held count as failed')
})

t.test('--max-conns-per-child retires a worker after N connections; a new one takes over', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--max-conns-per-child', '2', '--handler', WHOAMI, '-v'])
  const first = await whoami(server.port)
  const second = await whoami(server.port)
  t.equal(second.pid, first.pid, 'one worker serves the first two')
  first.socket.end()
  second.socket.end()
  await server.waitFor(new RegExp(`^end ${first.pid} status 0$`))
  const third = await whoami(server.port)
  t.not(third.pid, first.pid, 'its successor serves the third')
  t.equal(third.ppid, server.pid)
  t.notOk(server.lines.some((l) => l.startsWith('warning:')), 'retiring is not a crash')
  third.socket.end()
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('a retiring worker finishes the connections it has', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--max-conns-per-child', '1', '-v'])
  const socket = await open(server.port)
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const reply = collect(socket)
  socket.end('still served')
  t.equal((await reply).data.toString(), 'still served')
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  await stopServer(server)
})

t.test('SIGTERM: workers stop accepting, finish their connections, and the parent exits 0', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitForCount(/worker \d+ is accepting$/, 2)
  const live = await open(server.port)
  await server.waitFor(/^pid \d+ from /)
  server.signal('SIGTERM')
  await server.waitFor(/^SIGTERM: draining 2 children, 10s grace$/)
  await server.waitFor(/^end \d+ status 0$/)
  t.equal(await refused(server.port), 'ECONNREFUSED', 'new clients are refused')
  const reply = collect(live)
  live.end('finished')
  t.equal((await reply).data.toString(), 'finished', 'the live connection is served to the end')
  t.same(await server.exited, { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 1, peak 2, failed 0, /)
})

t.test('workers that crash in a loop are forked again ever more slowly', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--handler', fixture('broken-import.js')])
  const delays = (await server.waitForCount(/^warning: worker \d+ exited with status 1; a new one in ([\d.]+)s$/, 4))
    .map((m) => Number(m[1]))
  t.same(delays, [0.1, 0.2, 0.4, 0.8])
  t.ok(server.lines.some((l) => /^warning: pid \d+: .*broken-import\.js failed to load: broken at import$/.test(l)), 'each says why')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('workers apply --deny and --idle-timeout like fork-model children', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--deny', '127.0.0.0/8', '-v'])
  const denied = await open(server.port)
  const port = denied.localPort
  t.equal((await collect(denied)).data.length, 0)
  await server.waitFor(new RegExp(`^deny 127\\.0\\.0\\.1:${port}$`))
  t.match((await stopServer(server)), { code: 0 })
  t.match(server.lines.at(-1), /denied 1, /)

  const idle = await startServer(t, ['--model', 'prefork', '--workers', '1', '--idle-timeout', '1'])
  const silent = await open(idle.port)
  const start = Date.now()
  t.equal((await collect(silent)).ended, 'end')
  t.ok(Date.now() - start >= 900, 'closed after a second of silence')
  await stopServer(idle)
})

t.test('when the parent is killed, workers stop accepting, finish within the idle bound, and exit', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--idle-timeout', '2', '-v'], { DEBUG: 'forkserver:*' })
  const worker = Number((await server.waitFor(/forkserver:parent worker (\d+) is accepting$/))[1])
  t.ok(listensOn(worker, server.port), 'the worker listens while the parent lives')
  const { socket, pid } = await orphanedConnection(t, server)
  // The worker hears of it when its channel closes, which can come after the echo above.
  await server.waitFor(new RegExp(`forkserver:child pid ${pid} stops accepting: the parent is gone$`))
  // Asked of the worker, not with a connect: the port is free now, and another test's server may take it.
  // (It traces the stop, then closes the listener: a descriptor's close is no event, so it is looked for until it is gone.)
  const deadline = Date.now() + 2000
  while (listensOn(pid, server.port) && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  t.notOk(listensOn(pid, server.port), 'but accepts no one new: it holds no listening socket')
  t.equal((await collect(socket, 10_000)).ended, 'end', 'and closes within the idle bound')
  t.ok(await exitedWithin(pid, 5000), 'then exits')
})

t.test('a SIGTERM that comes while the workers are still starting stops them cleanly', async (t) => {
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '--grace', '30', '-v'])
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null }, 'no worker had to be killed')
  // (the second is forked once the first lends back its copy of the listener, if the SIGTERM has not come first)
  t.match(server.lines.at(-1), /^shutdown: served 0, peak [12], failed 0, /)
})

t.test('a SIGTERM while a later worker is still starting: a new client is refused, never connected and then reset', { skip: skipUnlessBuilt() }, async (t) => {
  // The second worker holds the listening socket from the moment the parent
  // sends it, long before it can hear 'stop'. Through the parent's own copy,
  // the drain makes the socket drop new SYNs first (lib/net/listen.ts refuseNew):
  // a connect is answered, a second later, by a refusal, not queued on the
  // socket until that worker exits and then reset.
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitFor(/worker \d+ is accepting$/)
  server.signal('SIGTERM')
  await server.waitFor(/^SIGTERM: draining 2 children, /)
  const starting = server.lines.filter((l) => /worker \d+ is accepting$/.test(l)).length < 2
  t.equal(await refused(server.port), 'ECONNREFUSED', `refused${starting ? ', with the second worker still starting' : ''}`)
  t.same(await server.exited, { code: 0, signal: null })
})

t.test('a SIGTERM while the first worker is still starting: a client is refused, or served, never connected and then reset', { skip: skipUnlessBuilt() }, async (t) => {
  // Until the first worker lends the parent its copy, only that worker holds
  // the listener. A connect before then is queued on it; the worker, told to
  // stop while it loaded, serves what queued before it closes the listener.
  // From the lend on, the listener drops new SYNs (lib/net/listen.ts refuseNew).
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '-v'], { DEBUG: 'forkserver:parent' })
  server.signal('SIGTERM')
  await server.waitFor(/^SIGTERM: draining 1 children, /)
  const starting = !server.lines.some((l) => /worker \d+ is accepting$/.test(l))
  const outcome = await new Promise<string>((resolve) => {
    let echoed = ''
    const socket = connect({ port: server.port, host: '127.0.0.1' }, () => socket.end('hello\n'))
    socket.on('data', (chunk: Buffer) => (echoed += chunk.toString()))
    socket.once('close', () => resolve(echoed === 'hello\n' ? 'served' : `connected, then closed with ${JSON.stringify(echoed)}`))
    socket.once('error', (err: NodeJS.ErrnoException) => err.code === 'ECONNREFUSED' && resolve('refused'))
  })
  t.ok(['refused', 'served'].includes(outcome), `${outcome}${starting ? ', with the worker still starting' : ''}`)
  t.same(await server.exited, { code: 0, signal: null })
})
