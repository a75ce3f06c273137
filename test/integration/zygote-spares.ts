// The zygote as every user now gets it: --start auto (the default) serves
// from a zygote; --spares forks children ahead from it, each waiting, already
// forked, for its one socket; `ps` shows the loop in the process titles; and a
// reload says each step of the zygote's life. Skipped, with the reason, where
// the native addon is not built.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { childrenOf, startServer, stopServer, type Running } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { echoMany, handler, ppidOf, zygote } from '../fixtures/zygote.js'

const skip = skipUnlessBuilt()

/** A process's title, as `ps` shows it (/proc/PID/cmdline, which Node's process.title overwrites). */
const title = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ')
  } catch {
    return ''
  }
}

/** The children of `pid` whose title is `wanted`. */
const titled = (pid: number, wanted: string): number[] => childrenOf(pid).map((c) => c.pid).filter((child) => title(child) === wanted)

/** Resolves with the children of `pid` titled `wanted`, once there are `count` of them. */
const waitForTitled = async (pid: number, wanted: string, count: number, limitMs = 10_000): Promise<number[]> => {
  const deadline = Date.now() + limitMs
  for (;;) {
    const found = titled(pid, wanted)
    if (found.length === count || Date.now() > deadline) return found
    await new Promise((resolve) => setTimeout(resolve, 25)) // (polled: a title is no event)
  }
}

const zygoteOf = async (server: Running, generation: number): Promise<number> =>
  Number((await server.waitFor(new RegExp(`^zygote (\\d+) ready: generation ${generation}, self-test \\d+ ms$`)))[1])

t.test('with no --start, a machine with the addon serves from a zygote, and ps shows the parent, the zygote and each child by title', { skip }, async (t) => {
  const server = await startServer(t, ['-v'])
  const z = await zygoteOf(server, 1)
  t.equal(title(server.pid), `forkserver: parent 127.0.0.1:${server.port}`)
  t.equal(title(z), 'forkserver: zygote (generation 1)')
  const held = await open(server.port)
  held.write('hi\n')
  t.equal(await readLine(held), 'hi')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  t.equal(ppidOf(pid), z, 'forked by the zygote')
  t.equal(title(pid), `forkserver: 127.0.0.1:${held.localPort}`, 'the child is titled by its client')
  const closed = collect(held)
  held.end()
  await closed
  await stopServer(server)
})

t.test('--start auto whose zygote proves unfit (its handler does not load) serves by spawn, and says why in one line', { skip }, async (t) => {
  const server = await startServer(t, ['-v', '--handler', handler('no-default')])
  t.equal(server.lines.filter((line) => /^start: spawn, not the zygote: .*no-default\.js has no default export function$/.test(line)).length, 1)
  t.notOk(server.lines.some((line) => line.startsWith('fatal: ')), 'not fatal')
  await exchange(server.port, 'x\n')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  await server.waitFor(new RegExp(`^warning: pid ${pid}: .*no-default\\.js failed to load: .*has no default export function$`))
  t.notOk(server.lines.some((line) => / ready: generation /.test(line)), 'no zygote served')
  t.same(childrenOf(server.pid).filter((c) => /^forkserver: zygote/.test(title(c.pid))), [], 'no zygote is kept')
  await stopServer(server)
})

t.test('--spares 2 with the zygote: two children wait, forked ahead; a connection takes one, with no fork on its path, and the zygote forks another', { skip }, async (t) => {
  const server = await zygote(t, ['--spares', '2'])
  const z = await zygoteOf(server, 1)
  const spares = await waitForTitled(z, 'forkserver: spare', 2)
  t.equal(spares.length, 2, 'two spares, children of the zygote')
  const held = await open(server.port)
  held.write('one\n')
  t.equal(await readLine(held), 'one')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  t.ok(spares.includes(pid), `served by a spare forked before it came (${pid} of ${spares.join(', ')})`)
  t.equal(title(pid), `forkserver: 127.0.0.1:${held.localPort}`)
  const after = await waitForTitled(z, 'forkserver: spare', 2)
  t.equal(after.length, 2, 'topped up to two')
  t.notOk(after.includes(pid), 'by a fresh one')
  const closed = collect(held)
  held.end()
  await closed
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  // A spare serves one connection only.
  const served = new Set<number>()
  for (let i = 0; i < 6; i++) {
    const from = server.lines.length
    t.equal((await exchange(server.port, `n${i}\n`)).data.toString(), `n${i}\n`)
    served.add(Number((await server.waitFor(/^pid (\d+) from /, from))[1]))
  }
  t.equal(served.size, 6, 'six connections, six children')
  const status = await stopServer(server)
  t.equal(status.code, 0, 'a clean drain', { lines: status.code === 0 ? [] : server.lines.slice(-30) })
  t.same(childrenOf(server.pid), [], 'nothing left')
})

t.test('SIGHUP with --spares 4 under load: no client error, the zygote says each step, the new generation\'s spares serve', { skip }, async (t) => {
  const server = await zygote(t, ['--spares', '4'])
  const old = await zygoteOf(server, 1)
  await waitForTitled(old, 'forkserver: spare', 4)
  let reloaded = false
  const failures = await echoMany(server.port, 240, (done) => {
    if (done !== 40 || reloaded) return
    reloaded = true
    server.signal('SIGHUP')
  })
  t.same(failures, [], 'every client got its own bytes back')
  await server.waitFor(new RegExp(`^reload: SIGHUP, replacing zygote ${old}, \\d+ spares? and 0 workers$`))
  await server.waitFor(/^zygote starting: generation 2$/)
  const fresh = await zygoteOf(server, 2)
  await server.waitFor(new RegExp(`^zygote ${old} retiring: generation 1, zygote ${fresh} serves in its place$`))
  await server.waitFor(new RegExp(`^zygote ${old} exited \\(status 0\\)$`))
  t.equal(title(fresh), 'forkserver: zygote (generation 2)')
  const spares = await waitForTitled(fresh, 'forkserver: spare', 4)
  t.equal(spares.length, 4, 'four spares of the new generation, children of the new zygote')
  const from = server.lines.length
  t.equal((await exchange(server.port, 'new\n')).data.toString(), 'new\n')
  const pid = Number((await server.waitFor(/^pid (\d+) from /, from))[1])
  t.ok(spares.includes(pid), 'served by one of them')
  t.notOk(server.lines.some((line) => /^warning: spare /.test(line)), 'no spare was lost on the way')
  await stopServer(server)
})

t.test('SIGUSR1 shows the zygote in a row of its own; JSON carries its lifecycle', { skip }, async (t) => {
  const server = await zygote(t, ['--spares', '1', '--log-format', 'json'])
  const ready = await server.waitForEvent({ event: 'zygote', state: 'ready', generation: 1 })
  t.type(ready.selfTestMs, 'number')
  server.signal('SIGUSR1')
  const table = await server.waitForEvent({ event: 'status', trigger: 'SIGUSR1' })
  const rows = table.children as { pid: number; state: string }[]
  t.ok(rows.some((row) => row.pid === ready.pid && row.state === 'zygote'), 'the zygote')
  t.ok(rows.some((row) => row.state === 'spare'), 'and its spare')
  server.signal('SIGHUP')
  await server.waitForEvent({ event: 'reload', zygote: ready.pid })
  await server.waitForEvent({ event: 'zygote', state: 'retiring', pid: ready.pid, generation: 1 })
  await server.waitForEvent({ event: 'zygote', state: 'exited', pid: ready.pid, code: 0 })
  await stopServer(server)
})
