import { readFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { chargenCycle } from '../../lib/serve/services/chargen.js'
import { EPOCH_1900 } from '../../lib/serve/services/time.js'
import { collect, exchange, open, readBytes } from '../fixtures/client.js'
import { startServer, stopServer } from '../fixtures/server.js'
import { forEachStart } from '../fixtures/starts.js'

forEachStart('discard reads everything and answers nothing', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'discard', '-v'])
  const reply = await exchange(server.port, randomBytes(4 * 1024 * 1024))
  t.equal(reply.data.length, 0)
  t.equal(reply.ended, 'end')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

forEachStart('discard closes for a client that half-closed before its child was ready', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'discard', '-v'])
  const reply = await exchange(server.port)
  t.equal(reply.ended, 'end')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

forEachStart('daytime sends one date line and closes', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'daytime'])
  const before = Date.now()
  const reply = await exchange(server.port)
  const text = reply.data.toString()
  t.match(text, /^[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n$/)
  t.ok(Math.abs(Date.parse(text) - before) < 60_000, 'the date is now')
  await stopServer(server)
})

forEachStart('time sends 4 big-endian bytes of seconds since 1900 and closes', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'time'])
  const reply = await exchange(server.port)
  t.equal(reply.data.length, 4)
  const seconds = reply.data.readUInt32BE(0) - EPOCH_1900
  t.ok(Math.abs(seconds - Date.now() / 1000) < 60, 'the count is now')
  await stopServer(server)
})

forEachStart('chargen sends the rotating 72-character lines until the client leaves', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'chargen', '-v'])
  const socket = await open(server.port)
  const cycle = chargenCycle()
  const got = await readBytes(socket, cycle.length * 2 + 100)
  t.ok(got.subarray(0, cycle.length).equals(cycle), 'the first rotation')
  t.ok(got.subarray(cycle.length, 2 * cycle.length).equals(cycle), 'then it starts over')
  const closed = collect(socket)
  socket.end()
  t.equal((await closed).ended, 'end', 'the client half-closes, the server closes')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

const rssKiB = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1])

forEachStart('chargen to a client that never reads does not grow the child', async (t, start) => {
  const server = await startServer(t, [...start.args, '--service', 'chargen', '-v'])
  const socket = await open(server.port)
  socket.pause()
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  await server.waitFor(/^status: 1\//)
  // Sample the child's memory for a while after the kernel's buffers filled.
  const samples: number[] = []
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      samples.push(rssKiB(pid))
      if (samples.length === 15) {
        clearInterval(timer)
        resolve()
      }
    }, 200)
  })
  const settled = samples.slice(5)
  const growth = Math.max(...settled) - Math.min(...settled)
  t.ok(growth < 4096, `RSS held within 4 MiB over 2 s (grew ${growth} KiB: ${settled.join(' ')})`)
  socket.destroy()
  await server.waitFor(new RegExp(`^end ${pid} `))
  await stopServer(server)
})
