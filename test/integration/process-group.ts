// lib/serve/process-group.ts, end to end: when a connection's child exits, what is
// left in its process group is ended, and at shutdown nothing is left.
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import type { Test } from 'tap'
import { collect, open, readLine } from '../fixtures/client.js'
import { exitedWithin, processesWith, startServer } from '../fixtures/server.js'
import { connectionChildren, forEachStart } from '../fixtures/starts.js'

const BACKGROUND = fileURLToPath(new URL('../fixtures/handlers/background.js', import.meta.url))

const command = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim()
  } catch {
    return ''
  }
}

const isZombie = (pid: number): boolean => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z')
  } catch {
    return true
  }
}

/** The live `sleep 30`s carrying `mark` in their environment: every process the server started does. */
const sleepers = (mark: string): number[] => processesWith(mark).filter((pid) => command(pid) === 'sleep 30' && !isZombie(pid))

/** A mark for this test's processes, and a teardown that kills whatever carries it. */
const marked = (t: Test): { env: NodeJS.ProcessEnv; mark: string } => {
  const id = randomUUID()
  const mark = `FORKSERVER_TEST_GROUP=${id}`
  t.teardown(() => {
    for (const pid of processesWith(mark)) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
  })
  return { env: { FORKSERVER_TEST_GROUP: id }, mark }
}

forEachStart("--exec sh -c 'sleep 30 & echo hi': the client reads hi and end-of-file at once, and no sleep is left", async (t, start) => {
  const { env, mark } = marked(t)
  const server = await startServer(t, [...start.args, '-v', '--exec', '--', 'sh', '-c', 'sleep 30 & echo hi'], env)
  const connectedAt = Date.now()
  const socket = await open(server.port)
  const reply = await collect(socket, 10_000)
  const took = Date.now() - connectedAt
  t.equal(reply.data.toString(), 'hi\n')
  t.equal(reply.ended, 'end', 'end-of-file: the background sleep no longer holds the connection open')
  t.ok(took < 3000, `within 3 s (${took} ms)`)
  await server.waitFor(/^end \d+ status 0$/)
  t.same(sleepers(mark), [], 'no sleep 30 is left')
  server.signal('SIGTERM')
  await server.exited
})

forEachStart('a background job that ignores SIGTERM is killed with SIGKILL, and the client still gets end-of-file', async (t, start) => {
  const { env, mark } = marked(t)
  // (An ignored signal stays ignored across exec: sleep ignores SIGTERM too.)
  const server = await startServer(t, [...start.args, '-v', '--exec', '--', 'sh', '-c', "trap '' TERM; sleep 30 & echo hi"], env)
  const socket = await open(server.port)
  const reply = await collect(socket, 10_000)
  t.equal(reply.data.toString(), 'hi\n')
  t.equal(reply.ended, 'end')
  // Under spawn the child ends its group itself, after a second of SIGTERM, and dies of the SIGKILL with it;
  // under zygote the zygote kills the group as it reaps the program.
  await server.waitFor(start.name === 'spawn' ? /^end \d+ signal SIGKILL$/ : /^end \d+ status 0$/)
  t.same(sleepers(mark), [], 'no sleep 30 is left')
  server.signal('SIGTERM')
  await server.exited
})

forEachStart('a handler that starts a background sleep and ends its connection: the sleep ends with the child', async (t, start) => {
  const { env, mark } = marked(t)
  const server = await startServer(t, [...start.args, '-v', '--handler', BACKGROUND], env)
  const socket = await open(server.port)
  const { pid, sleeper } = JSON.parse(await readLine(socket)) as { pid: number; sleeper: number }
  t.same(sleepers(mark), [sleeper], 'the handler started its sleep')
  const reply = collect(socket)
  socket.write('end')
  t.equal((await reply).ended, 'end')
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  t.ok(await exitedWithin(sleeper, 1000), 'its sleep is gone once the child has exited')
  t.same(sleepers(mark), [], 'no sleep 30 is left')
  // Nor a zombie of it: under zygote the orphaned sleep comes to the zygote, which reaps it.
  const underServer = (): boolean => connectionChildren(server, start).some((c) => c.pid === sleeper)
  for (let i = 0; i < 100 && underServer(); i++) await new Promise((resolve) => setTimeout(resolve, 20))
  t.notOk(underServer(), 'and it is reaped: no zombie of it is left under the server or its zygote')
  server.signal('SIGTERM')
  await server.exited
})

forEachStart('SIGTERM while a handler with a background sleep still serves: once the grace is over, nothing of the server is left', async (t, start) => {
  const { env, mark } = marked(t)
  const server = await startServer(t, [...start.args, '-v', '--grace', '1', '--handler', BACKGROUND], env)
  const socket = await open(server.port)
  const { pid, sleeper } = JSON.parse(await readLine(socket)) as { pid: number; sleeper: number }
  socket.write('stay')
  const closed = collect(socket)
  server.signal('SIGTERM')
  // The grace's SIGTERM ends the child, and (passed to its group, or by the zygote as it reaps) its sleep.
  await server.waitFor(new RegExp(`^end ${pid} signal SIGTERM$`))
  t.equal((await server.exited).code, 1, 'the drain was cut short at the grace')
  await closed
  t.ok(await exitedWithin(sleeper, 1000), 'the sleep is gone')
  // (A zygote exits on its own once it sees its parent gone: a moment after the server.)
  const left = async (): Promise<string[]> => {
    const deadline = Date.now() + 2000
    let live = processesWith(mark).filter((p) => !isZombie(p))
    while (live.length > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20))
      live = processesWith(mark).filter((p) => !isZombie(p))
    }
    return live.map(command)
  }
  t.same(await left(), [], 'no process of the server is left')
})
