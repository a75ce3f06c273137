// lib/start/adopted.ts, end to end: what the server adopts is reaped. Under
// --start zygote the server is a child subreaper, and takes in the children
// of a zygote killed with kill -9, the processes a handler started that
// outlive their child, and what an old zygote had adopted when a reload
// retires it. None of them may stay a zombie. (Under --start spawn the server
// adopts nothing: a handler's detached process goes to PID 1, or to the
// nearest subreaper above the server.) The sleeps are short, so that each
// test can wait for them to end on their own.
import { existsSync, readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import type { Test } from 'tap'
import { collect, open, readLine } from '../fixtures/client.js'
import { childrenOf, startServer, stopServer, type Running } from '../fixtures/server.js'
import { SPAWN, ZYGOTE, forEachStart } from '../fixtures/starts.js'
import { handler, ppidOf, zygotePid } from '../fixtures/zygote.js'

/** A connection to the sleepers handler, and the processes it started. */
interface Held {
  readonly socket: Socket
  /** The connection's child. */
  readonly pid: number
  readonly sleepers: readonly number[]
}

/** Opens a connection whose handler starts 3 `sleep SECONDS`, detached or in its child's group. */
const hold = async (server: Running, mode: 'group' | 'detached', seconds: number): Promise<Held> => {
  const socket = await open(server.port)
  socket.write(`${mode} ${seconds}\n`)
  const { pid, sleepers } = JSON.parse(await readLine(socket)) as { pid: number; sleepers: number[] }
  return { socket, pid, sleepers }
}

/** Ends the client's side and waits for the connection to close, and for its child's `end` line. */
const finish = async (server: Running, held: Held): Promise<void> => {
  const closed = collect(held.socket)
  held.socket.end()
  await closed
  await server.waitFor(new RegExp(`^end ${held.pid} status 0$`))
}

/** The state letter of a process (Z: a zombie), or null once it is gone for good (reaped). */
const stateOf = (pid: number): string | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2)[0] ?? null
  } catch {
    return null
  }
}

/** Resolves once every one of `pids` is gone from /proc (reaped, not a zombie); rejects after `limitMs` with what is left. */
const reapedWithin = async (pids: readonly number[], limitMs: number): Promise<void> => {
  const deadline = Date.now() + limitMs
  for (let left = pids; left.length > 0; left = left.filter((pid) => existsSync(`/proc/${pid}`))) {
    if (Date.now() > deadline) throw new Error(`not reaped within ${limitMs} ms: ${left.map((pid) => `${pid} (${stateOf(pid)}, parent ${ppidOf(pid)})`).join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

/** Resolves once `pid` is gone from /proc. */
const goneWithin = (pid: number, limitMs: number): Promise<void> => reapedWithin([pid], limitMs)

const zombiesOf = (server: Running): number[] => childrenOf(server.pid).filter((c) => c.state === 'Z').map((c) => c.pid)

const sleepersServer = (t: Test): Promise<Running> => startServer(t, [...ZYGOTE.args, '-v', '--handler', handler('sleepers')])

forEachStart('kill -9 of the zygote with 3 connections held, each with 3 sleeps in its group: once they end, no process a handler started is left, not even a zombie', async (t) => {
  const server = await sleepersServer(t)
  const held = await Promise.all([1, 2, 3].map(() => hold(server, 'group', 30)))
  await server.waitForCount(/^pid \d+ from /, 3)
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: zygote ${z} was killed by SIGKILL; a new one in [\\d.]+s$`))
  t.same(held.map((h) => ppidOf(h.pid)), [server.pid, server.pid, server.pid], 'the connections\' children are the server\'s now')
  await Promise.all(held.map((h) => finish(server, h)))
  // Each child's group is killed as the server reaps it; the sleeps come to the server, which reaps them too.
  await reapedWithin(held.flatMap((h) => h.sleepers), 10_000)
  t.same(zombiesOf(server), [], 'no zombie under the server')
  t.match(await stopServer(server), { code: 0 })
}, { only: [ZYGOTE] })

forEachStart('detached sleeps outlive their connection and a kill -9 of the zygote, and the server reaps each as it ends', async (t) => {
  const server = await sleepersServer(t)
  const held = await hold(server, 'detached', 4)
  await server.waitFor(/^pid \d+ from /)
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: zygote ${z} was killed by SIGKILL; a new one in [\\d.]+s$`))
  await finish(server, held)
  t.same(held.sleepers.map(stateOf).filter((state) => state === null || state === 'Z'), [], 'they outlived their connection: a group of their own is not ended with it')
  t.same(held.sleepers.map(ppidOf), held.sleepers.map(() => server.pid), 'and came to the server, their child\'s subreaper')
  await reapedWithin(held.sleepers, 10_000)
  t.same(zombiesOf(server), [], 'no zombie under the server')
  t.match(await stopServer(server), { code: 0 })
}, { only: [ZYGOTE] })

forEachStart('after a SIGHUP, the detached sleeps the old zygote had adopted come to the server, which reaps them', async (t) => {
  const server = await sleepersServer(t)
  const held = await hold(server, 'detached', 5)
  await finish(server, held)
  const z = zygotePid(server)
  t.same(held.sleepers.map(ppidOf), held.sleepers.map(() => z), 'their child gone, the zygote adopted them')
  server.signal('SIGHUP')
  await goneWithin(z, 10_000) // (it retires once the new one is ready, and has no child to wait for)
  t.same(held.sleepers.map(ppidOf), held.sleepers.map(() => server.pid), 'the old zygote gone, the server adopted them')
  await reapedWithin(held.sleepers, 10_000)
  t.same(zombiesOf(server), [], 'no zombie under the server')
  t.match(await stopServer(server), { code: 0 })
}, { only: [ZYGOTE] })

forEachStart('a handler\'s detached sleeps outlive their connection, and are not the server\'s to reap', async (t) => {
  const server = await startServer(t, ['-v', '--handler', handler('sleepers')])
  const held = await hold(server, 'detached', 30)
  await finish(server, held)
  t.same(held.sleepers.map(stateOf).filter((state) => state === null || state === 'Z'), [], 'they outlived their connection')
  t.notOk(held.sleepers.some((pid) => ppidOf(pid) === server.pid), 'the server is no subreaper: they went above it')
  t.match(await stopServer(server), { code: 0 })
  // (The teardown kills them: they carry the run's mark.)
}, { only: [SPAWN] })
