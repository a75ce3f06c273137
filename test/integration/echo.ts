import { randomBytes } from 'node:crypto'
import t from 'tap'
import { collect, exchange, open, readBytes } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'

t.test('echo returns 1 MiB of random binary data byte for byte', async (t) => {
  const server = await startServer(t)
  const payload = randomBytes(1024 * 1024)
  const reply = await exchange(server.port, payload)
  t.equal(reply.ended, 'end')
  t.equal(reply.data.length, payload.length, 'as many bytes back as were sent')
  t.ok(reply.data.equals(payload), 'the same bytes')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('echo answers while the client is still sending, then closes after the half-close', async (t) => {
  const server = await startServer(t)
  const socket = await open(server.port)
  socket.write('first line\n')
  t.equal((await readBytes(socket, 11)).toString(), 'first line\n', 'echoed before the client ended')
  const rest = collect(socket)
  socket.end('last line\n')
  const reply = await rest
  t.equal(reply.data.toString(), 'last line\n', 'flushed after the half-close')
  t.equal(reply.ended, 'end', 'then the server closed its side')
  await stopServer(server)
})

t.test('clients that write at once, before their child exists, lose nothing', async (t) => {
  const server = await startServer(t)
  const payloads = Array.from({ length: 10 }, (_, i) => Buffer.from(`client ${i} ${randomBytes(8).toString('hex')}`))
  const replies = await Promise.all(payloads.map((p) => exchange(server.port, p)))
  replies.forEach((reply, i) => t.equal(reply.data.toString(), payloads[i]!.toString(), `client ${i} got its own bytes`))
  await stopServer(server)
})
