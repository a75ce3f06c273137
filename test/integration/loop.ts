// The accept-fork loop itself: one fresh child per connection, reaped, with
// nothing leaked, whatever the children and the peers do. Under --start spawn
// here; zygote-loop.ts runs the same tests under --start zygote (both in one
// file would come too near tap's 180 s).
import { fileURLToPath } from 'node:url'
import { connect, type Socket } from 'node:net'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { alive, fdCount, settledFdCount, startServer, stopServer } from '../fixtures/server.js'
import { SPAWN, anyStart, connectionChildren, forEachStart, forkerOf, starts } from '../fixtures/starts.js'

const WHOAMI = fileURLToPath(new URL('../fixtures/handlers/whoami.js', import.meta.url))

forEachStart('20 concurrent connections are served by 20 distinct children', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', WHOAMI, '-v'])
  const sockets = await Promise.all(Array.from({ length: 20 }, () => open(server.port)))
  const reports = await Promise.all(sockets.map(async (s) => JSON.parse(await readLine(s)) as { pid: number; ppid: number }))
  const pids = new Set(reports.map((r) => r.pid))
  t.equal(pids.size, 20, 'one process per connection')
  t.ok(reports.every((r) => r.ppid === forkerOf(server, start)), `all of them children of the ${start.name === 'spawn' ? 'server' : "server's zygote"}`)
  t.notOk(pids.has(server.pid), 'none of them the parent')
  await server.waitFor(/^status: 20\/40$/)
  const closed = sockets.map((s) => collect(s))
  sockets.forEach((s) => s.end())
  await Promise.all(closed)
  await server.waitFor(/^status: 0\/40$/, server.lines.findIndex((l) => l === 'status: 20/40'))
  t.same(await stopServer(server), { code: 0, signal: null })
}, { only: starts([SPAWN]) })

forEachStart('after 100 connections no child is defunct and the parent holds no extra descriptor', async (t, start) => {
  const server = await startServer(t, [...start.args, '-v'])
  const idleFds = fdCount(server.pid)
  for (let batch = 0; batch < 10; batch++) {
    const sent = Array.from({ length: 10 }, (_, i) => `batch ${batch} client ${i}`)
    const replies = await Promise.all(sent.map((text) => exchange(server.port, text)))
    t.same(replies.map((r) => r.data.toString()), sent, `batch ${batch}: each client got its own echo`)
  }
  await server.waitForCount(/^end \d+ status 0$/, 100)
  const idle = server.lines.lastIndexOf('status: 0/40')
  t.ok(idle > 0, 'the table emptied')
  t.same(connectionChildren(server, start), [], 'no child left, defunct or alive')
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'the parent is back to its idle descriptor count')
  t.same(await stopServer(server), { code: 0, signal: null })
}, { only: starts([SPAWN]) })

forEachStart('a child killed with kill -9 is reaped and the server serves on', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', WHOAMI, '-v'])
  const socket = await open(server.port)
  const { pid } = JSON.parse(await readLine(socket)) as { pid: number }
  const closed = collect(socket)
  process.kill(pid, 'SIGKILL')
  await server.waitFor(new RegExp(`^end ${pid} signal SIGKILL$`))
  t.ok(['end', 'reset'].includes((await closed).ended), 'the client sees its connection close')
  t.notOk(connectionChildren(server, start).some((c) => c.pid === pid), 'the dead child was reaped')
  const next = await open(server.port)
  const again = JSON.parse(await readLine(next)) as { pid: number }
  t.not(again.pid, pid, 'a new child serves the next client')
  next.end()
  t.same(await stopServer(server), { code: 0, signal: null })
}, { only: starts([SPAWN]) })

forEachStart('clients that reset during the handoff, or vanish before it, cost nothing', async (t, start) => {
  const server = await startServer(t, [...start.args, '-v'], { DEBUG: 'forkserver:parent' })
  const idleFds = fdCount(server.pid)
  // Reset (RST) as soon as the parent has forked this client's child, while
  // the socket is on its way: one client at a time, 10 times.
  for (let i = 0; i < 10; i++) {
    const socket = await open(server.port)
    await server.waitFor(new RegExp(`^pid \\d+ from 127\\.0\\.0\\.1:${socket.localPort}$`))
    socket.resetAndDestroy()
  }
  // Connect and reset, or connect and close, at once: 10 of each.
  const vanish = (how: 'reset' | 'close') => new Promise<void>((resolve) => {
    const s: Socket = connect({ port: server.port, host: '127.0.0.1' }, () => (how === 'reset' ? s.resetAndDestroy() : s.destroy()))
    s.on('close', () => resolve())
  })
  await Promise.all(Array.from({ length: 20 }, (_, i) => vanish(i % 2 ? 'reset' : 'close')))
  // Some are gone before accept() returns; the rest get a child, which must end.
  await server.waitForCount(/forkserver:parent accept/, 30)
  // Each one accepted is given a child or dropped; a zygote's child has its `pid P from` line only once it is forked.
  const accepted = server.lines.filter((l) => /forkserver:parent accept 127\.0\.0\.1:/.test(l)).length
  await server.waitForCount(/^pid \d+ from |^warning: dropping connection, /, accepted)
  const forked = server.lines.filter((l) => l.startsWith('pid ')).length
  t.comment(`${forked} of 30 clients got a child`)
  await server.waitForCount(/^end \d+ (status|signal) \S+$/, forked)
  const reply = await exchange(server.port, 'still here')
  t.equal(reply.data.toString(), 'still here', 'the server serves on')
  await server.waitForCount(/^end \d+ (status|signal) \S+$/, forked + 1)
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'no descriptor leaked')
  t.same(connectionChildren(server, start), [], 'no child left behind')
  t.same(await stopServer(server), { code: 0, signal: null })
}, { only: starts([SPAWN]) })

t.test('a fork that fails drops that connection with a warning, and the server serves on', anyStart, async (t) => {
  const server = await startServer(t, ['-v'], { FORKSERVER_TEST_EXECPATH: '/nonexistent/node' })
  const reply = await exchange(server.port, 'lost')
  t.equal(reply.data.length, 0, 'the client is closed without an answer')
  await server.waitFor(/^warning: dropping connection, fork failed: spawn \/nonexistent\/node ENOENT: 127\.0\.0\.1:\d+$/)
  t.ok(alive(server.pid), 'the parent is still up')
  const again = await exchange(server.port, 'lost too')
  t.equal(again.data.length, 0)
  await server.waitForCount(/^warning: dropping connection, fork failed/, 2)
  const stopped = await stopServer(server)
  t.same(stopped, { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 0, peak 1, failed 2, denied 0, dropped 2$/)
})

t.test('children that die before taking their socket: every client sees the close, no descriptor leaks', anyStart, async (t) => {
  // /bin/false stands in for a child that crashes at start-up.
  const server = await startServer(t, ['-v'], { FORKSERVER_TEST_EXECPATH: '/bin/false' })
  const idleFds = fdCount(server.pid)
  const replies = await Promise.all(Array.from({ length: 10 }, () => exchange(server.port, 'anyone there?')))
  t.ok(replies.every((r) => r.data.length === 0), 'no client hangs: each is closed unanswered')
  await server.waitForCount(/^end \d+ status 1$/, 10)
  await server.waitFor(/^status: 0\/40$/, server.lines.length - 1)
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, "the parent closed its copy of every client's descriptor")
  t.match((await stopServer(server)), { code: 0 })
  t.match(server.lines.at(-1), /^shutdown: served 0, peak \d+, failed 10, /)
})

forEachStart('DEBUG=forkserver:* traces each step of the loop, in order', async (t, start) => {
  const server = await startServer(t, [...start.args], { DEBUG: 'forkserver:*' })
  const reply = await exchange(server.port, 'traced')
  t.equal(reply.data.toString(), 'traced')
  const steps = [
    /forkserver:parent accept 127\.0\.0\.1:\d+$/,
    /forkserver:parent fork$/,
    /forkserver:parent pid (\d+) spawned$/,
    /forkserver:parent socket handed off to pid (\d+)$/,
    /forkserver:parent pid (\d+) exited status 0 → reaped$/,
  ]
  await server.waitFor(steps.at(-1)!)
  let at = 0
  for (const step of steps) {
    const found = server.lines.findIndex((line, i) => i >= at && step.test(line))
    t.ok(found >= at, `then ${step.source}`)
    at = found
  }
  t.ok(server.lines.some((l) => /forkserver:child pid \d+ serving echo for 127\.0\.0\.1:\d+$/.test(l)), 'the child traces too')
  await stopServer(server)
}, { only: starts([SPAWN]) })
