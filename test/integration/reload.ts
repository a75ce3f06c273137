// SIGHUP: every spare and prefork worker is replaced by a fresh process that
// loads the handler as it is on disk now, under a stream of clients, while the
// listener stays open and a connection held across the reloads still echoes.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { collect, exchange, open, readBytes, readLine } from '../fixtures/client.js'
import { alive, childrenOf, startServer, stopServer, type Running } from '../fixtures/server.js'

/** A handler that names its version and pid, then echoes. Rewritten on disk between reloads. */
const handlerAt = (t: Test): { path: string; write: (version: string) => void } => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-reload-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const path = join(dir, 'version.js')
  const write = (version: string): void => writeFileSync(path, `export default function version(socket) {
  socket.write('${version} ' + process.pid + '\\n')
  socket.on('data', (chunk) => socket.write(chunk))
  socket.on('end', () => socket.end())
}
`)
  write('v1')
  return { path, write }
}

/** Two clients connecting one after another until stopped; every reply must be a version line and the echo. */
const stream = (t: Test, port: number) => {
  let running = true
  t.teardown(() => {
    running = false
  })
  const failures: string[] = []
  let served = 0
  const client = async (name: string): Promise<void> => {
    for (let i = 0; running; i++) {
      const payload = `${name} ${i}`
      try {
        const reply = (await exchange(port, payload)).data.toString()
        if (/^v\d \d+\n/.test(reply) && reply.endsWith(`\n${payload}`)) served++
        else failures.push(`${payload}: ${JSON.stringify(reply)}`)
      } catch (err) {
        failures.push(`${payload}: ${(err as Error).message}`)
      }
    }
  }
  const clients = Promise.all([client('a'), client('b')])
  return {
    failures,
    served: () => served,
    stop: async () => {
      running = false
      await clients
    },
  }
}

/** The pids of the children forked in `state` so far (--log-format json). */
const forked = (server: Running, state: string): number[] =>
  server.lines.flatMap((line) => {
    const event = line.startsWith('{') ? (JSON.parse(line) as { event?: string; state?: string; pid?: number }) : {}
    return event.event === 'fork' && event.state === state && event.pid !== undefined ? [event.pid] : []
  })

/** Resolves once each child has exited: its `end` event. */
const ended = (server: Running, pids: readonly number[]) => Promise.all(pids.map((pid) => server.waitForEvent({ event: 'end', pid })))

/** The same for prefork workers, whose connections have `end` events of their own, each with its `conn`. */
const workersEnded = (server: Running, pids: readonly number[]) =>
  Promise.all(pids.map((pid) => server.waitForEvent({ event: 'end', pid, conn: null })))

/** A fresh connection's version. */
const versionNow = async (port: number): Promise<string> => (await exchange(port, 'x')).data.toString().split(' ')[0]!

/** A connection held open: what it reads, and that it still echoes. */
const hold = async (port: number) => {
  const socket = await open(port)
  const [version, pid] = (await readLine(socket)).split(' ')
  const echoes = async (text: string): Promise<boolean> => {
    socket.write(text)
    return (await readBytes(socket, text.length)).toString() === text
  }
  return { socket, version, pid: Number(pid), echoes }
}

t.test('SIGHUP replaces every spare with a fresh one that loads the handler anew, losing no connection', async (t) => {
  const handler = handlerAt(t)
  const server = await startServer(t, ['--start', 'spawn', '--spares', '2', '--handler', handler.path, '--log-format', 'json'])
  await server.waitForCount(/"event":"fork","pid":\d+,"state":"spare"/, 2)
  const held = await hold(server.port)
  t.equal(held.version, 'v1')
  const clients = stream(t, server.port)

  const old = forked(server, 'spare')
  handler.write('v2')
  server.signal('SIGHUP')
  await server.waitForEvent({ event: 'reload', signal: 'SIGHUP', workers: 0 })
  await ended(server, old.filter((pid) => pid !== held.pid))
  t.equal(await versionNow(server.port), 'v2', 'a connection after the reload finds the new code')
  t.ok(await held.echoes('still here'), 'the connection held across the reload still echoes')

  // Twice more, the second while the first's fresh spares are still starting.
  // (Signals sent back to back would merge into one.)
  const before = new Set(forked(server, 'spare'))
  handler.write('v3')
  server.signal('SIGHUP')
  await server.waitForCount(/"event":"reload"/, 2)
  server.signal('SIGHUP')
  await server.waitForCount(/"event":"reload"/, 3)
  await server.waitForCount(/"event":"fork","pid":\d+,"state":"spare"/, before.size + 2)
  await ended(server, [...before].filter((pid) => pid !== held.pid))
  t.equal(await versionNow(server.port), 'v3')
  t.ok(await held.echoes('and here'), 'still echoes after both reloads')

  await clients.stop()
  t.same(clients.failures, [], 'not one client connection failed')
  t.ok(clients.served() > 0, `clients were served throughout (${clients.served()})`)
  const left = childrenOf(server.pid).map((c) => c.pid).filter((pid) => pid !== held.pid)
  t.notOk(left.some((pid) => before.has(pid) || old.includes(pid)), 'no old spare is left, but the one serving the held connection')
  held.socket.end()
  await collect(held.socket)
  t.ok(alive(server.pid), 'the parent stayed')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /"failed":0/, 'replaced spares are no failures')
})

t.test('SIGHUP replaces every prefork worker; old ones finish their connections; the listener never closes', async (t) => {
  const handler = handlerAt(t)
  const server = await startServer(t, ['--model', 'prefork', '--workers', '2', '--handler', handler.path, '--log-format', 'json', '--grace', '60'], {
    DEBUG: 'forkserver:child',
  })
  await server.waitForCount(/"event":"fork","pid":\d+,"state":"worker"/, 2)
  const held = await hold(server.port)
  t.equal(held.version, 'v1')
  const clients = stream(t, server.port)
  const stopped = (pids: readonly number[]) =>
    Promise.all(pids.map((pid) => server.waitFor(new RegExp(`forkserver:child pid ${pid} stops accepting: the parent said stop$`))))

  const first = forked(server, 'worker')
  handler.write('v2')
  server.signal('SIGHUP')
  t.match(await server.waitForEvent({ event: 'reload' }), { signal: 'SIGHUP', spares: 0, workers: 2 }, 'the reload names what it replaces')
  await stopped(first)
  t.equal(await versionNow(server.port), 'v2', 'once the old workers stop accepting, the fresh ones serve the new code')
  await workersEnded(server, first.filter((pid) => pid !== held.pid))
  t.ok(alive(held.pid), 'the old worker with a live connection finishes it')
  t.ok(await held.echoes('still here'))

  const second = forked(server, 'worker').filter((pid) => !first.includes(pid))
  handler.write('v3')
  server.signal('SIGHUP')
  await server.waitForCount(/"event":"reload"/, 2)
  server.signal('SIGHUP')
  await server.waitForCount(/"event":"reload"/, 3)
  await server.waitForCount(/"event":"fork","pid":\d+,"state":"worker"/, 8)
  await stopped(second)
  await workersEnded(server, second)
  t.equal(await versionNow(server.port), 'v3')
  t.ok(await held.echoes('and here'), 'still echoes after both reloads')

  await clients.stop()
  t.same(clients.failures, [], 'not one client connection failed')
  t.ok(clients.served() > 0, `clients were served throughout (${clients.served()})`)
  held.socket.end()
  await collect(held.socket)
  await server.waitForEvent({ event: 'end', pid: held.pid, conn: null, code: 0 })
  // The last two forked are the fresh set; every other worker goes, those stopped before they ever accepted too.
  const all = forked(server, 'worker')
  const fresh = all.slice(-2)
  await workersEnded(server, all.filter((pid) => !fresh.includes(pid)))
  t.same(childrenOf(server.pid).map((c) => c.pid).sort(), [...fresh].sort(), 'two workers, both fresh')
  t.ok(alive(server.pid), 'the parent stayed')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /"failed":0/, 'retired workers are no failures')
})

t.test('an old worker still busy --grace seconds after it was told to stop is ended', async (t) => {
  const handler = handlerAt(t)
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '--handler', handler.path, '--grace', '1', '-v'])
  const held = await hold(server.port)
  const closed = collect(held.socket)
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP, replacing 0 spares and 1 worker$/)
  await server.waitFor(new RegExp(`^warning: pid ${held.pid} still busy --grace 1s after the reload; ending it$`))
  await server.waitFor(new RegExp(`^end ${held.pid} signal SIGTERM$`))
  t.match((await closed).ended, /^(?:end|reset)$/, 'its client sees the connection close')
  t.equal((await exchange(server.port, 'after')).data.toString().split('\n')[1], 'after', 'the fresh worker serves')
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('the reload line names the spares it replaces, and fresh ones take their place', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '--spares', '2', '-v'], { DEBUG: 'forkserver:parent' })
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 2)
  const old = childrenOf(server.pid).map((c) => c.pid)
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP, replacing 2 spares and 0 workers$/)
  await Promise.all(old.map((pid) => server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))))
  await server.waitForCount(/forkserver:parent pid \d+ spawned$/, 4)
  const fresh = childrenOf(server.pid).map((c) => c.pid)
  t.equal(fresh.length, 2, 'two spares again')
  t.notOk(fresh.some((pid) => old.includes(pid)), 'both fresh')
  t.equal((await exchange(server.port, 'hi')).data.toString(), 'hi')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 1, peak \d+, failed 0, /, 'a replaced spare is no failure')
})

t.test('SIGHUP with nothing preloaded replaces nothing and serves on', async (t) => {
  const server = await startServer(t, ['--start', 'spawn', '-v'])
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP, replacing 0 spares and 0 workers$/)
  t.equal((await exchange(server.port, 'hi')).data.toString(), 'hi')
  t.same(await stopServer(server), { code: 0, signal: null })
})
