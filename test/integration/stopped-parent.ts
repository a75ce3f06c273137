// A parent stopped for longer than the handoff timeout (SIGSTOP, Ctrl-Z, a
// paused VM) judges its children only once it has read what they sent while
// it was stopped: it kills none that took its socket.
import type { Socket } from 'node:net'
import { open, readBytes } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'
import { forEachStart } from '../fixtures/starts.js'

const CLIENTS = 6
/** Longer than the parent's handoff timeout (HANDOFF_TIMEOUT_S + 1 s). */
const STOPPED_MS = 15_000

const echoes = async (socket: Socket, text: string): Promise<string> => {
  const reply = readBytes(socket, Buffer.byteLength(text), 30_000)
  socket.write(text)
  return (await reply).toString()
}

forEachStart('a parent stopped for 15 s, 50 ms after 6 clients connect, kills none of their children: all 6 get their echo and still echo', async (t, start) => {
  const server = await startServer(t, [...start.args, '--log-format', 'json'])
  const clients: Socket[] = []
  t.teardown(() => {
    server.signal('SIGCONT') // (so that the fixture's teardown finds it running, if this failed while it was stopped)
    clients.forEach((c) => c.destroy())
  })
  for (let i = 0; i < CLIENTS; i++) clients.push(await open(server.port))
  const firsts = clients.map((socket, i) => readBytes(socket, `first ${i}\n`.length, 40_000))
  clients.forEach((socket, i) => socket.write(`first ${i}\n`))
  await server.waitForCount(/"event":"accept"/, CLIENTS)
  // Their handoffs are under way: stop the parent in the middle of them, for longer than its handoff timeout.
  await new Promise((resolve) => setTimeout(resolve, 50))
  server.signal('SIGSTOP')
  await new Promise((resolve) => setTimeout(resolve, STOPPED_MS))
  const resumedAt = server.lines.length
  server.signal('SIGCONT')

  t.same((await Promise.all(firsts)).map(String), clients.map((_, i) => `first ${i}\n`), 'all 6 get their echo')
  t.same(await Promise.all(clients.map((socket, i) => echoes(socket, `again ${i}\n`))), clients.map((_, i) => `again ${i}\n`), 'and still echo')
  const events = server.lines.slice(resumedAt).map((line) => JSON.parse(line) as { event: string; message?: string; signal?: string })
  t.same(events.filter((e) => e.event === 'warning'), [], 'no child was judged to have missed its handoff')
  t.same(events.filter((e) => e.event === 'end' && e.signal !== null), [], 'and none was killed')
  clients.forEach((socket) => socket.end())
  t.same(await stopServer(server), { code: 0, signal: null })
})
