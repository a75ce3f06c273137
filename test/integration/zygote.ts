// --start zygote: the real server, whose children are forked with a real
// fork(2) from a warm zygote (lib/zygote/zygote.ts, lib/start/zygote-starter.ts). (The
// zygote starts without NODE_OPTIONS, so tap's loaders, threads of their own,
// stay out of it.) Skipped, with the reason, where the addon is not built.
import { spawnSync } from 'node:child_process'
import t from 'tap'
import { exchange, open, readLine } from '../fixtures/client.js'
import { stopServer, SERVER } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { echoMany, handler, ppidOf, zygote, zygotePid } from '../fixtures/zygote.js'

const skip = skipUnlessBuilt()

t.test('400 connections at concurrency 8 are echoed byte for byte, with no error', { skip }, async (t) => {
  const server = await zygote(t)
  const failures = await echoMany(server.port, 400)
  t.same(failures, [], 'every reply is its own request')
  await server.waitForCount(/^end \d+ status 0$/, 400)
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 400, peak \d+, failed 0, denied 0, dropped 0$/)
})

t.test('10 held connections are 10 processes, each a child of the zygote, not of the server', { skip }, async (t) => {
  const server = await zygote(t, ['--handler', handler('whoami')])
  const sockets = await Promise.all(Array.from({ length: 10 }, () => open(server.port)))
  const pids = await Promise.all(sockets.map(async (socket) => (JSON.parse(await readLine(socket)) as { pid: number }).pid))
  t.equal(new Set(pids).size, 10, 'ten processes')
  await server.waitForCount(/^pid \d+ from /, 10)
  const z = zygotePid(server)
  t.ok(pids.every((pid) => ppidOf(pid) === z), 'each is a child of the zygote')
  t.equal(ppidOf(z), server.pid, 'the zygote is a child of the server')
  for (const socket of sockets) socket.end()
  await server.waitForCount(/^end \d+ status 0$/, 10)
  await stopServer(server)
})

t.test('20 children draw 20 different Math.random() and randomUUID() values', { skip }, async (t) => {
  const server = await zygote(t, ['--handler', handler('random')])
  const draws: { pid: number; random: number; uuid: string; web: string }[] = []
  for (let i = 0; i < 20; i++) draws.push(JSON.parse((await exchange(server.port)).data.toString()))
  for (const key of ['pid', 'random', 'uuid', 'web'] as const) t.equal(new Set(draws.map((d) => d[key])).size, 20, `${key}: no two alike`)
  await stopServer(server)
})

t.test('6 concurrent connections to a GC-heavy handler all finish', { skip }, async (t) => {
  const server = await zygote(t, ['--handler', handler('gc-heavy')])
  const replies = await Promise.all(Array.from({ length: 6 }, () => exchange(server.port)))
  t.same(replies.map((r) => r.data.toString()), Array(6).fill('done\n'))
  await server.waitForCount(/^end \d+ status 0$/, 6)
  await stopServer(server)
})

t.test('what --start zygote cannot be given with is a usage error', async (t) => {
  for (const [args, message] of [
    [['--model', 'prefork'], /^forkserver: --start is not available with --model prefork/],
  ] as const) {
    const run = spawnSync(process.execPath, [SERVER, '--start', 'zygote', ...args], { encoding: 'utf8' })
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, message)
  }
})
