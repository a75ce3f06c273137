// The loop in server.ts with starters other than child_process.fork
// (test/fixtures/starters/): one that forks slowly, and one whose forks fail.
// The real server, real children, real sockets; only how a child comes to be
// is swapped, through FORKSERVER_TEST_STARTER, and the loop must not care.
import t from 'tap'
import { fileURLToPath } from 'node:url'
import { collect, exchange, open } from '../fixtures/client.js'
import { childrenOf, fdCount, settledFdCount, startServer, stopServer } from '../fixtures/server.js'

const starter = (name: string): string => fileURLToPath(new URL(`../fixtures/starters/${name}.js`, import.meta.url))

const payload = (i: number): string => `client ${i}: ${String(i).repeat(2000 + i)}`

t.test('a starter that forks slowly: every client gets its own bytes back, each child says `from` once', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--max-children', '3'], { FORKSERVER_TEST_STARTER: starter('slow') })
  const replies = await Promise.all(Array.from({ length: 8 }, (_, i) => exchange(server.port, payload(i))))
  replies.forEach((reply, i) => t.equal(reply.data.toString(), payload(i), `client ${i} is echoed, and only its own bytes`))
  const ends = await server.waitForCount(/^end (\d+) status 0$/, 8)
  const pids = ends.map((m) => m[1])
  t.equal(new Set(pids).size, 8, 'eight children, one per connection')
  for (const pid of pids) {
    t.equal(server.lines.filter((line) => line.startsWith(`pid ${pid} from 127.0.0.1:`)).length, 1, `pid ${pid} has one \`from\` line`)
  }
  t.ok(server.lines.every((line) => !/^status: [4-9]\/3$/.test(line)), 'never more than --max-children at once; the rest waited')
  t.same(childrenOf(server.pid), [], 'every child was reaped')
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 8, peak 3, failed 0, denied 0, dropped 0$/)
})

t.test('a starter whose every second fork fails: that client is turned away with the reason, the others are served', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v'], { FORKSERVER_TEST_STARTER: starter('failing') })
  await server.waitFor(/^status: 0\/40$/)
  const idleFds = fdCount(server.pid)
  for (let i = 0; i < 6; i++) {
    const socket = await open(server.port)
    const port = socket.localPort
    const reply = collect(socket)
    socket.end(`round ${i}`)
    if (i % 2 === 0) {
      t.equal((await reply).data.toString(), `round ${i}`, `client ${i} is echoed`)
    } else {
      t.equal((await reply).data.length, 0, `client ${i} is closed unanswered`)
      await server.waitFor(new RegExp(`^warning: dropping connection, fork failed: fork EAGAIN \\(test starter\\): 127\\.0\\.0\\.1:${port}$`))
    }
  }
  await server.waitForCount(/^end \d+ status 0$/, 3)
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'no descriptor leaked')
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 3, peak [12], failed 3, denied 0, dropped 3$/, 'a failed fork counts as failed and dropped (a child may not yet be reaped when the next is asked for)')
})

t.test('spares from a failing starter: the lost spare is replaced after a backoff, and connections are served', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v', '--spares', '2'], { FORKSERVER_TEST_STARTER: starter('failing') })
  await server.waitFor(/^warning: spare \? could not be forked: fork EAGAIN \(test starter\); a new one in 0\.1s$/)
  await server.waitForCount(/^status: 2\/40$/, 1)
  for (let i = 0; i < 3; i++) t.equal((await exchange(server.port, `spare ${i}`)).data.toString(), `spare ${i}`)
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 3, /)
})
