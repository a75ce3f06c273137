// lib/serve/connection.ts, end to end: a child ends when its connection is over,
// even when the handler ended its side without reading what the client sent.
import { once } from 'node:events'
import { connect } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, open } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'
import { anyStart, connectionChildren, forEachStart } from '../fixtures/starts.js'

const ENDER = fileURLToPath(new URL('../fixtures/handlers/ender.js', import.meta.url))
const CLIENTS = 45

/** One client after another: each sends first, reads the reply to the end, and closes. */
const inARow = async (t: Test, port: number): Promise<void> => {
  const replies: string[] = []
  for (let i = 0; i < CLIENTS; i++) {
    const socket = await open(port)
    const reply = collect(socket)
    socket.write(`request ${i}\n`)
    const { data, ended } = await reply
    if (ended !== 'end') t.fail(`client ${i} ended by ${ended}`)
    replies.push(data.toString())
  }
  t.same(replies, Array.from({ length: CLIENTS }, () => 'bye\n'), `all ${CLIENTS} clients got their reply and end-of-file`)
}

forEachStart(`${CLIENTS} clients in a row, each sending first, to a handler that only ends: each child exits once its client closes`, async (t, start) => {
  // Fewer slots than clients: a child that stayed would stop the 41st.
  const server = await startServer(t, [...start.args, '--handler', ENDER, '--max-children', '40', '-v'])
  await inARow(t, server.port)
  const closedAt = Date.now()
  await server.waitForCount(/^end \d+ status 0$/, CLIENTS, 0, 5000)
  t.ok(Date.now() - closedAt < 5000, `every child has exited within 5 s of the last close`)
  t.same(connectionChildren(server, start).filter((c) => c.state !== 'Z'), [], 'no child is left serving')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), new RegExp(`^shutdown: served ${CLIENTS}, `))
})

forEachStart('a client that never ends its side is cut off about 2 s after the handler ended its own', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', ENDER, '-v'])
  const socket = connect({ port: server.port, host: '127.0.0.1', allowHalfOpen: true })
  await once(socket, 'connect')
  t.teardown(() => socket.destroy())
  socket.write('request\n')
  let reply = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => (reply += chunk))
  await once(socket, 'end')
  const endedAt = Date.now()
  const pid = (await server.waitFor(/^pid (\d+) from /))[1]
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  const lingered = Date.now() - endedAt
  t.ok(lingered >= 1500 && lingered < 4500, `the child closed ${lingered} ms after its FIN (LINGER_MS is 2000)`)
  t.equal(reply, 'bye\n')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test(`prefork: ${CLIENTS} clients in a row to a handler that only ends: the worker frees each connection`, anyStart, async (t) => {
  // One worker that retires after its 45th connection: it exits only once all 45 are over.
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--max-conns-per-child', String(CLIENTS), '--handler', ENDER, '--log-format', 'json', '-v'])
  await inARow(t, server.port)
  await server.waitForCount(/"event":"end","conn":\d+/, CLIENTS, 0, 5000)
  t.pass(`all ${CLIENTS} connections ended within 5 s of the last close`)
  t.same(await stopServer(server), { code: 0, signal: null })
})
