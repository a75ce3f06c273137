// --max-children with its queue, --overflow reject, --queue-limit,
// --max-per-ip, --allow and --deny, against real clients.
import { connect, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'
import { forEachStart } from '../fixtures/starts.js'

const WHOAMI = fileURLToPath(new URL('../fixtures/handlers/whoami.js', import.meta.url))
const TRACE = { DEBUG: 'forkserver:parent' }

const openFrom = (port: number, localAddress: string, host = '127.0.0.1'): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ port, host, localAddress }, () => resolve(socket))
    socket.once('error', reject)
  })

forEachStart('--max-children 2 queues a third client until a child exits', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', WHOAMI, '--max-children', '2', '-v'], TRACE)
  const first = await open(server.port)
  const second = await open(server.port)
  await readLine(first)
  await readLine(second)
  const third = await open(server.port)
  let early = ''
  third.on('data', (d: Buffer) => (early += d.toString()))
  await server.waitFor(new RegExp(`queued 127\\.0\\.0\\.1:${third.localPort}, 1 waiting$`))
  t.equal(server.lines.filter((l) => l.startsWith('pid ')).length, 2, 'no third child while two are busy')
  t.equal(early, '', 'the queued client has had no answer yet')
  const firstClosed = collect(first)
  first.end()
  await firstClosed
  const report = JSON.parse(early || (await readLine(third))) as { info: { remotePort: number } }
  t.equal(report.info.remotePort, third.localPort, 'a child serves the queued client once a slot is free')
  t.notOk(server.lines.some((l) => l.startsWith('warning:')), 'nobody was dropped')
  second.end()
  third.end()
  t.same(await stopServer(server), { code: 0, signal: null })
})

forEachStart('--overflow reject closes a third client at once, with a warning', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', WHOAMI, '--max-children', '2', '--overflow', 'reject', '-v'])
  const held = [await open(server.port), await open(server.port)]
  await Promise.all(held.map((s) => readLine(s)))
  const third = await open(server.port)
  const port = third.localPort
  const reply = await collect(third)
  t.equal(reply.data.length, 0, 'no data')
  t.equal(reply.ended, 'end', 'the connection is accepted and then closed (EOF)')
  await server.waitFor(new RegExp(`^warning: dropping connection, max-children 2 reached: 127\\.0\\.0\\.1:${port}$`))
  held.forEach((s) => s.end())
  await server.waitFor(/^status: 0\/2$/, server.lines.findIndex((l) => l === 'status: 2/2'))
  t.match((await exchange(server.port, '')).data.toString(), /"pid"/, 'served again once below the limit')
  await stopServer(server)
})

forEachStart('--queue-limit rejects clients past the queue', async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-children', '1', '--queue-limit', '1', '-v'], TRACE)
  const busy = await open(server.port)
  await server.waitFor(/^pid \d+ from /)
  const waiting = await open(server.port)
  await server.waitFor(/queued .*, 1 waiting$/)
  const extra = await open(server.port)
  const port = extra.localPort
  t.equal((await collect(extra)).data.length, 0)
  await server.waitFor(new RegExp(`^warning: dropping connection, queue full \\(1 waiting\\): 127\\.0\\.0\\.1:${port}$`))
  const replies = [collect(busy), collect(waiting)]
  busy.end('one')
  waiting.end('two')
  t.same((await Promise.all(replies)).map((r) => r.data.toString()), ['one', 'two'], 'the busy and the queued client are both served')
  await stopServer(server)
})

forEachStart('a queued client that disconnects leaves the queue; one that half-closed stays', async (t, start) => {
  const server = await startServer(t, [...start.args, '--max-children', '1', '--queue-limit', '2', '-v'], TRACE)
  const busy = await open(server.port)
  await server.waitFor(/^pid \d+ from /)
  const quitter = await open(server.port)
  const quitterPort = quitter.localPort
  const halfClosed = await open(server.port)
  const halfReply = collect(halfClosed)
  halfClosed.end('still wanted')
  await server.waitFor(/queued .*, 2 waiting$/)
  quitter.destroy()
  await server.waitFor(new RegExp(`queued 127\\.0\\.0\\.1:${quitterPort} left$`))
  const next = await open(server.port)
  await server.waitFor(/queued .*, 2 waiting$/, server.lines.findIndex((l) => l.endsWith(`${quitterPort} left`)))
  t.notOk(server.lines.some((l) => l.includes('queue full')), 'the freed place was taken, not refused')
  const nextReply = collect(next)
  next.end('next')
  const busyReply = collect(busy)
  busy.end('busy')
  t.equal((await busyReply).data.toString(), 'busy')
  t.equal((await halfReply).data.toString(), 'still wanted', 'the half-closed client kept its place and its bytes')
  t.equal((await nextReply).data.toString(), 'next')
  t.notOk(server.lines.some((l) => new RegExp(`^pid \\d+ from 127\\.0\\.0\\.1:${quitterPort}$`).test(l)), 'no child was forked for the one that left')
  await stopServer(server)
})

forEachStart('--max-per-ip limits live connections per source address', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', WHOAMI, '--max-per-ip', '2', '-v'])
  const held = [await open(server.port), await open(server.port)]
  await Promise.all(held.map((s) => readLine(s)))
  const third = await open(server.port)
  const port = third.localPort
  t.equal((await collect(third)).data.length, 0, 'a third from 127.0.0.1 is closed')
  await server.waitFor(new RegExp(`^warning: dropping connection, max-per-ip 2 reached: 127\\.0\\.0\\.1:${port}$`))
  const other = await openFrom(server.port, '127.0.0.2')
  const report = JSON.parse(await readLine(other)) as { info: { remoteAddress: string } }
  t.equal(report.info.remoteAddress, '127.0.0.2', 'another address is still served')
  held[0]!.end()
  await server.waitFor(/^end \d+ status 0$/)
  const again = await open(server.port)
  t.match(await readLine(again), /"pid"/, 'a slot freed for 127.0.0.1 is usable again')
  for (const s of [held[1]!, other, again]) s.end()
  await stopServer(server)
})

forEachStart('--deny and --allow turn peers away without a fork, most specific rule first', async (t, start) => {
  const server = await startServer(t, [...start.args, '--deny', '127.0.0.0/8', '--allow', '127.0.0.2', '-v'])
  const denied = await open(server.port)
  const port = denied.localPort
  t.equal((await collect(denied)).data.length, 0)
  await server.waitFor(new RegExp(`^deny 127\\.0\\.0\\.1:${port}$`))
  const allowed = await openFrom(server.port, '127.0.0.2')
  const reply = collect(allowed)
  allowed.end('let in')
  t.equal((await reply).data.toString(), 'let in', '127.0.0.2/32 beats 127.0.0.0/8')
  t.equal(server.lines.filter((l) => l.startsWith('pid ')).length, 1, 'only the allowed peer got a child')
  const stopped = await stopServer(server)
  t.same(stopped, { code: 0, signal: null })
  t.match(server.lines.at(-1), /denied 1, dropped 0$/)
})

forEachStart('--allow alone keeps everyone else out', async (t, start) => {
  const server = await startServer(t, [...start.args, '--allow', '10.0.0.0/8', '-v'])
  const socket = await open(server.port)
  const port = socket.localPort
  await collect(socket)
  await server.waitFor(new RegExp(`^deny 127\\.0\\.0\\.1:${port}$`))
  await stopServer(server)
})

forEachStart('IPv6 and IPv4-mapped peers are matched against the rules', async (t, start) => {
  const v6 = await startServer(t, [...start.args, '--host', '::1', '--deny', '::1', '-v'])
  const socket = await open(v6.port, '::1')
  const port = socket.localPort
  await collect(socket)
  await v6.waitFor(new RegExp(`^deny \\[::1\\]:${port}$`))
  await stopServer(v6)
  // Bound to ::, an IPv4 peer arrives as ::ffff:127.0.0.1 and is logged and matched as 127.0.0.1.
  const dual = await startServer(t, [...start.args, '--host', '::', '--deny', '127.0.0.0/8', '-v'])
  t.ok(dual.lines.some((line) => /^listening on \[::\]:\d+, pid \d+$/.test(line)), 'listening on [::]')
  const mapped = await open(dual.port, '127.0.0.1')
  const mappedPort = mapped.localPort
  await collect(mapped)
  await dual.waitFor(new RegExp(`^deny 127\\.0\\.0\\.1:${mappedPort}$`))
  const reply = await exchange(dual.port, 'over v6', '::1')
  t.equal(reply.data.toString(), 'over v6', 'an IPv6 peer is not caught by an IPv4 rule')
  await stopServer(dual)
})
