// Faults, against a real server: children killed at random under load, the
// parent killed, a drain that runs out of time, forks that fail, and a parent
// out of file descriptors. The parent survives each one it can survive, every
// client gets an answer or a close (never a hang), and nothing is left behind.
// Under --start spawn here; zygote-faults.ts runs the fork-model tests
// again under --start zygote (both in one file would pass tap's 180 s).
import { randomBytes, randomInt } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, readlinkSync, rmSync, symlinkSync, unlinkSync } from 'node:fs'
import { connect, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, exchange, open, readBytes, type Reply } from '../fixtures/client.js'
import {
  alive,
  childrenOf,
  fdCount,
  settledFdCount,
  startServer,
  stopServer,
  type Exit,
  type Running,
} from '../fixtures/server.js'
import { SPAWN, anyStart, connectionChildren, forEachStart, forkerOf, starts, type Start } from '../fixtures/starts.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/handlers/${name}`, import.meta.url))
const HOLDOUT = fixture('holdout.js')

const END = /^end (\d+) (?:status|signal) \S+$/
const PID_FROM = /^pid (\d+) from 127\.0\.0\.1:(\d+)$/

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))
const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** The `pid P from 127.0.0.1:PORT` line of the client whose local port is `port`, from index `from` on. */
const childOf = async (server: Running, port: number | undefined, from = 0): Promise<number> =>
  Number((await server.waitFor(new RegExp(`^pid (\\d+) from 127\\.0\\.0\\.1:${port}$`), from))[1])

const forkedSoFar = (server: Running): number => server.lines.filter((l) => PID_FROM.test(l)).length

/**
 * Waits until every child forked so far has its `end` line, and then for the
 * `status` line that follows the last one (a separate write, so it may
 * arrive a moment later), which must be `empty`.
 */
const tableEmpty = async (server: Running, start: Start, empty: string, timeoutMs = 20_000): Promise<void> => {
  // A child that ends lets the parent fork the next queued connection in the
  // same turn, so the table is empty only at a `status: 0/N` line with no
  // fork after it and no child alive.
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const lastFork = server.lines.reduce((last, line, i) => (/^pid \d+ from /.test(line) ? i : last), 0)
    await server.waitFor(new RegExp(`^${empty}$`), lastFork, Math.max(1, deadline - Date.now()))
    const settled = server.lines.slice(lastFork + 1).every((line) => !/^pid \d+ from /.test(line))
    if (settled && connectionChildren(server, start).length === 0) return
    if (Date.now() > deadline) throw new Error(`the table did not empty within ${timeoutMs} ms`)
    await sleep(20)
  }
}

/** The `shutdown:` summary line, once it has arrived (stderr may trail the exit a moment). */
const summaryOf = async (server: Running): Promise<string> => (await server.waitFor(/^shutdown: /, 0, 5000)).input

/** State letter, parent and CPU ticks (utime + stime) of a process, from /proc/PID/stat; null once it is gone. */
const procStat = (pid: number): { state: string; ppid: number; ticks: number } | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // Fields after "(comm)": state is field 3 of stat(5), so utime (14) and stime (15) are at 11 and 12.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { state: f[0] ?? '?', ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) }
  } catch {
    return null
  }
}

/** Polls `ok` every `everyMs` until it holds or `limitMs` has passed; resolves with its last answer. */
const until = async (ok: () => boolean, limitMs: number, everyMs = 50): Promise<boolean> => {
  const deadline = Date.now() + limitMs
  for (let i = 0; i < Math.ceil(limitMs / everyMs) + 1; i++) {
    if (ok()) return true
    if (Date.now() >= deadline) break
    await sleep(everyMs)
  }
  return ok()
}

forEachStart('chaos under load: kill -9 a random busy child every 100 ms, 400 connections from 32 clients', async (t, start) => {
  const TOTAL = 400
  const CONCURRENCY = 32
  const CLIENT_LIMIT_MS = 20_000
  const server = await startServer(t, [...start.args, '-v', '--max-children', '40'])
  await server.waitFor(/^status: 0\/40$/)
  const idleFds = fdCount(server.pid)
  const forker = forkerOf(server, start)

  interface Conn {
    readonly index: number
    readonly payload: Buffer
    /** server.lines.length before this client connected: its `pid` line comes later. */
    from: number
    port: number
    pid: number | null
    halfClosed: boolean
    closed: boolean
    killed: boolean
    reply: Reply | null
  }
  const conns: Conn[] = Array.from({ length: TOTAL }, (_, index) => ({
    index,
    payload: randomBytes(4096 + randomInt(60 * 1024 + 1)),
    from: 0,
    port: 0,
    pid: null,
    halfClosed: false,
    closed: false,
    killed: false,
    reply: null,
  }))
  const live = new Set<Conn>()

  // The `pid P from 127.0.0.1:PORT` lines seen so far, parsed once each.
  const forks: { at: number; pid: number; port: number }[] = []
  let parsed = 0
  const learnPids = (among: Iterable<Conn> = live): void => {
    for (; parsed < server.lines.length; parsed++) {
      const m = PID_FROM.exec(server.lines[parsed] ?? '')
      if (m) forks.push({ at: parsed, pid: Number(m[1]), port: Number(m[2]) })
    }
    for (const conn of among) {
      if (conn.pid !== null || conn.port === 0) continue
      conn.pid = forks.find((f) => f.port === conn.port && f.at >= conn.from)?.pid ?? null
    }
  }

  // One connection: send the payload, read its echo, then half-close and
  // wait for the server's close. A child is only killed before its client
  // half-closes, so a killed child can never have finished on its own.
  const converse = (conn: Conn): Promise<void> =>
    new Promise((resolve) => {
      conn.from = server.lines.length
      const chunks: Buffer[] = []
      let received = 0
      let ended: string | null = null
      const socket: Socket = connect({ port: server.port, host: '127.0.0.1' })
      const timer = setTimeout(() => {
        ended = 'hang'
        socket.destroy()
      }, CLIENT_LIMIT_MS)
      socket.on('connect', () => {
        conn.port = socket.localPort ?? 0
        live.add(conn)
        socket.write(conn.payload)
      })
      socket.on('data', (chunk: Buffer) => {
        chunks.push(chunk)
        received += chunk.length
        if (received >= conn.payload.length && !conn.halfClosed) {
          conn.halfClosed = true
          socket.end()
        }
      })
      socket.on('error', (err: NodeJS.ErrnoException) => {
        ended ??= err.code === 'ECONNRESET' ? 'reset' : err.code ?? err.message
      })
      socket.on('close', () => {
        clearTimeout(timer)
        conn.closed = true
        conn.reply = { data: Buffer.concat(chunks), ended: ended ?? 'end' }
        live.delete(conn)
        resolve()
      })
    })

  const killed = new Set<number>()
  const parentDownAt: number[] = []
  let ticks = 0
  const killer = setInterval(() => {
    ticks++
    if (!alive(server.pid) || procStat(server.pid)?.state === 'Z') parentDownAt.push(ticks)
    learnPids()
    const busy = [...live].filter((c) => c.pid !== null && !c.halfClosed && !c.closed && !killed.has(c.pid))
    if (busy.length === 0) return
    const victim = busy[randomInt(busy.length)]!
    const pid = victim.pid!
    // Still this server's live child (not a reused pid, not a zombie)?
    const stat = procStat(pid)
    if (stat === null || stat.ppid !== forker || stat.state === 'Z') return
    process.kill(pid, 'SIGKILL')
    killed.add(pid)
    victim.killed = true
  }, 100)
  t.teardown(() => clearInterval(killer))

  // Bounded in count (TOTAL) and in time: no new connection after RUN_LIMIT_MS.
  const RUN_LIMIT_MS = 75_000
  const started = Date.now()
  let next = 0
  await Promise.all(Array.from({ length: CONCURRENCY }, async () => {
    while (next < TOTAL && Date.now() - started < RUN_LIMIT_MS) await converse(conns[next++]!)
  }))
  clearInterval(killer)
  const elapsed = Date.now() - started
  learnPids(conns)
  t.comment(`${next} connections in ${elapsed} ms; ${killed.size} children killed with SIGKILL`)
  t.equal(next, TOTAL, `all ${TOTAL} connections were made within ${RUN_LIMIT_MS} ms`)

  t.same(parentDownAt, [], 'the parent was alive at every one of the killer\'s checks')
  t.ok(alive(server.pid), 'the parent is alive after the chaos')
  t.ok(killed.size >= 20, `children were killed while busy (${killed.size})`)

  const hung = conns.filter((c) => c.reply?.ended === 'hang')
  t.same(hung.map((c) => c.index), [], `no connection hung for ${CLIENT_LIMIT_MS} ms`)

  const spared = conns.filter((c) => !c.killed)
  const wrong = spared.filter((c) => c.reply?.ended !== 'end' || !c.reply.data.equals(c.payload))
  t.same(
    wrong.map((c) => `#${c.index} pid ${c.pid}: ${c.reply?.ended}, ${c.reply?.data.length} of ${c.payload.length} bytes`),
    [],
    `every connection whose child was not killed (${spared.length}) echoed its bytes exactly`,
  )

  const victims = conns.filter((c) => c.killed)
  const badEnds = victims.filter((c) => !['end', 'reset'].includes(c.reply?.ended ?? '?'))
  t.same(badEnds.map((c) => `#${c.index} pid ${c.pid}: ${c.reply?.ended}`), [], 'every killed one ended with a close or a reset')
  const notPrefix = victims.filter((c) => !c.payload.subarray(0, c.reply?.data.length ?? 0).equals(c.reply?.data ?? Buffer.alloc(0)))
  t.same(notPrefix.map((c) => c.index), [], 'what a killed one got back, if anything, is a prefix of what it sent')

  const unknown = conns.filter((c) => c.pid === null)
  t.same(unknown.map((c) => `#${c.index} port ${c.port}`), [], 'every connection got a child (a `pid P from` line)')

  // Every child forked has ended; how each ended matches what happened to it.
  await server.waitForCount(END, forkedSoFar(server), 0, 15_000)
  const endOf = new Map<number, string>()
  for (const line of server.lines) {
    const m = /^end (\d+) (.+)$/.exec(line)
    if (m) endOf.set(Number(m[1]), m[2]!)
  }
  const notSigkill = [...killed].filter((pid) => endOf.get(pid) !== 'signal SIGKILL')
  t.same(notSigkill.map((pid) => `${pid}: ${endOf.get(pid)}`), [], 'an `end P signal SIGKILL` line for every killed pid')
  const notZero = spared.filter((c) => c.pid !== null && endOf.get(c.pid) !== 'status 0')
  t.same(notZero.map((c) => `${c.pid}: ${endOf.get(c.pid!)}`), [], 'an `end P status 0` line for every spared child')

  const after = await exchange(server.port, 'after the chaos')
  t.equal(after.data.toString(), 'after the chaos', 'the parent serves on')
  await tableEmpty(server, start, 'status: 0/40')
  t.pass('the table is empty (`status: 0/40` after the last `end` line)')
  t.same(connectionChildren(server, start), [], 'no child left, defunct or alive')
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'the parent is back to its idle descriptor count')
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(
    await summaryOf(server),
    new RegExp(`^shutdown: served ${spared.length + 1}, peak \\d+, failed ${killed.size}, denied 0, dropped 0$`),
    'the summary counts the spared as served and the killed as failed',
  )
}, { only: starts([SPAWN]) })

forEachStart('parent SIGKILL with live connections: the children finish, then exit within the idle bound', async (t, start) => {
  // (Long enough for all five to be served before the first falls silent: at most one child per core boots at a time.)
  const IDLE_MS = 5000
  const SLACK_MS = 1500
  const server = await startServer(t, [...start.args, '--idle-timeout', String(IDLE_MS / 1000), '-v'])
  const from = server.lines.length
  const sockets = await Promise.all(Array.from({ length: 5 }, () => open(server.port)))
  const pids = await Promise.all(sockets.map(async (socket, i) => {
    const port = socket.localPort
    socket.write(`first ${i}`)
    t.equal((await readBytes(socket, `first ${i}`.length)).toString(), `first ${i}`, `client ${i} is served`)
    return childOf(server, port, from)
  }))
  t.equal(new Set(pids).size, 5, 'five children')

  process.kill(server.pid, 'SIGKILL')
  t.same(await server.exited, { code: null, signal: 'SIGKILL' }, 'the parent is gone')

  const results = await Promise.all(sockets.map(async (socket, i) => {
    socket.write(`again ${i}`)
    const echo = (await readBytes(socket, `again ${i}`.length)).toString()
    // From here the client is silent.
    const silentAt = Date.now()
    const reply = await collect(socket, IDLE_MS + 5000).catch((err: Error) => ({ data: Buffer.alloc(0), ended: `hang: ${err.message}` }))
    return { echo, reply, closedAfter: Date.now() - silentAt }
  }))
  results.forEach(({ echo, reply, closedAfter }, i) => {
    t.equal(echo, `again ${i}`, `client ${i}: its orphaned child still serves it`)
    t.equal(reply.ended, 'end', `client ${i}: its child closes the connection`)
    t.ok(closedAfter <= IDLE_MS + SLACK_MS, `client ${i}: closed ${closedAfter} ms into the silence, within ${IDLE_MS / 1000} s + slack`)
  })

  // An orphan that has exited stays a zombie (Z) until pid 1 reaps it, which
  // is not up to the server (in some containers pid 1 takes a second or two).
  const closedAt = Date.now()
  const exited = (pid: number): boolean => !alive(pid) || procStat(pid)?.state === 'Z'
  const gone = await until(() => pids.every(exited), IDLE_MS + SLACK_MS)
  t.ok(gone, `every child has exited ${Date.now() - closedAt} ms after the last connection closed` +
    (gone ? '' : `; still running: ${pids.filter((pid) => !exited(pid)).map((pid) => `${pid} (${procStat(pid)?.state})`).join(', ')}`))
  const reaped = await until(() => pids.every((pid) => !alive(pid)), 5000)
  t.comment(`${reaped ? 'all reaped by pid 1' : 'not all reaped by pid 1 yet'} ${Date.now() - closedAt} ms after the last connection closed`)
}, { only: starts([SPAWN]) })

/** Opens a connection, sends `first`, and resolves once its echo is back. */
const served = async (port: number, first: string): Promise<Socket> => {
  const socket = await open(port)
  socket.write(first)
  await readBytes(socket, first.length)
  return socket
}

/**
 * A drain with --grace 1: one connection that never closes, and three short
 * ones that finish during the drain. Resolves with the held child's pid, how
 * long the parent took from SIGTERM to exit, and how it exited.
 */
const drainWithHoldout = async (t: Test, server: Running): Promise<{ held: number; elapsed: number; exit: Exit }> => {
  const from = server.lines.length
  const holder = await served(server.port, 'hold')
  const shorts = await Promise.all([0, 1, 2].map((i) => served(server.port, `short ${i} `)))
  const held = await childOf(server, holder.localPort, from)
  const shortPids = await Promise.all(shorts.map((s) => childOf(server, s.localPort, from)))
  const heldClosed = collect(holder, 10_000)

  const start = Date.now()
  server.signal('SIGTERM')
  await server.waitFor(/^SIGTERM: draining 4 children, 1s grace$/, from)
  const replies = await Promise.all(shorts.map((socket, i) => {
    const reply = collect(socket)
    socket.end(`bye ${i}`)
    return reply
  }))
  replies.forEach((reply, i) => {
    t.equal(reply.data.toString(), `bye ${i}`, `short client ${i} got its echo during the drain`)
    t.equal(reply.ended, 'end', `short client ${i} was closed normally`)
  })
  const exit = await server.exited
  const elapsed = Date.now() - start
  t.ok(['end', 'reset'].includes((await heldClosed).ended), 'the held client sees its connection close')
  t.ok(server.lines.includes('warning: grace over: SIGTERM to 1 children'), 'only the held child was left when the grace ran out')
  for (const pid of shortPids) t.ok(server.lines.includes(`end ${pid} status 0`), `short child ${pid} finished with status 0`)
  t.notOk(alive(held), 'the held child is gone')
  t.equal(await summaryOf(server), 'shutdown: served 3, peak 4, failed 1, denied 0, dropped 0', 'the summary: 3 served, the held one failed')
  return { held, elapsed, exit }
}

forEachStart('drain with a deadline: a client that never closes is cut off after --grace', async (t, start) => {
  const server = await startServer(t, [...start.args, '--grace', '1', '-v'])
  const { held, elapsed, exit } = await drainWithHoldout(t, server)
  t.same(exit, { code: 1, signal: null }, 'exit status 1: a child had to be killed')
  t.ok(elapsed >= 900, `the grace was given (${elapsed} ms)`)
  t.ok(elapsed <= 1000 + 2000 + 1500, `exited ${elapsed} ms after SIGTERM, within --grace + 2 s + 1.5 s`)
  t.ok(server.lines.includes(`end ${held} signal SIGTERM`), 'the held child ended by the SIGTERM')
}, { only: starts([SPAWN]) })

forEachStart('drain with a deadline: a held child that ignores SIGTERM gets SIGKILL 2 s later', async (t, start) => {
  const server = await startServer(t, [...start.args, '--grace', '1', '--handler', HOLDOUT, '-v'])
  const { held, elapsed, exit } = await drainWithHoldout(t, server)
  t.same(exit, { code: 1, signal: null }, 'exit status 1: a child had to be killed')
  t.ok(elapsed >= 2900, `the grace and the 2 s after SIGTERM were given (${elapsed} ms)`)
  t.ok(elapsed <= 1000 + 2000 + 1500, `exited ${elapsed} ms after SIGTERM, within --grace + 2 s + 1.5 s`)
  t.ok(server.lines.includes(`end ${held} signal SIGKILL`), 'the held child ended by SIGKILL')
}, { only: starts([SPAWN]) })

/** A fresh temp dir and the path of a program in it that does not exist (yet). */
const missingProgram = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-faults-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'node')
}

/** Tries real connections until one is echoed: a refused or closed one is expected while no worker exists. */
const echoWithin = async (port: number, limitMs: number): Promise<{ ok: boolean; tries: number; failures: string[] }> => {
  const deadline = Date.now() + limitMs
  const failures: string[] = []
  for (let tries = 1; tries <= 100 && Date.now() < deadline; tries++) {
    const text = `try ${tries}`
    try {
      const socket = await open(port)
      const reply = collect(socket, Math.max(500, Math.min(3000, deadline - Date.now())))
      socket.end(text)
      const { data, ended } = await reply
      if (data.toString() === text) return { ok: true, tries, failures }
      failures.push(`${ended} with ${data.length} bytes`)
    } catch (err) {
      failures.push((err as NodeJS.ErrnoException).code ?? (err as Error).message)
    }
    await sleep(150)
  }
  return { ok: false, tries: failures.length, failures }
}

const DELAY = /^warning: .*; a new (?:one|worker) in ([\d.]+)s$/

const expectedDelays = (n: number): number[] => Array.from({ length: n }, (_, i) => Math.min(0.1 * 2 ** i, 10))

t.test('fork failure, fork model: connections are dropped with a warning, and served again once the fault is gone', anyStart, async (t) => {
  const program = missingProgram(t)
  const server = await startServer(t, ['--start', 'spawn', '-v'], { FORKSERVER_TEST_EXECPATH: program }) // (spawn's fork that fails)
  await server.waitFor(/^status: 0\/40$/)
  const idleFds = fdCount(server.pid)
  const sockets = await Promise.all([0, 1, 2].map(() => open(server.port)))
  const ports = sockets.map((socket) => socket.localPort)
  const replies = await Promise.all(sockets.map((socket, i) => {
    const reply = collect(socket)
    socket.end(`lost ${i}`)
    return reply
  }))
  replies.forEach((reply, i) => {
    t.equal(reply.data.length, 0, `client ${i} is closed unanswered`)
    t.ok(['end', 'reset'].includes(reply.ended), `client ${i} sees a close or a reset (${reply.ended})`)
  })
  for (const port of ports) {
    await server.waitFor(new RegExp(
      `^warning: dropping connection, fork failed: spawn ${escape(program)} ENOENT: 127\\.0\\.0\\.1:${port}$`))
  }
  t.pass('one `dropping connection, fork failed: spawn ... ENOENT` line per client')
  t.ok(alive(server.pid), 'the parent is still up')
  t.same(childrenOf(server.pid), [], 'no child was left')
  t.equal(await settledFdCount(server.pid, idleFds), idleFds, 'no descriptor leaked')

  symlinkSync(process.execPath, program)
  const reply = await exchange(server.port, 'served again')
  t.equal(reply.data.toString(), 'served again', 'once the program exists, a connection is echoed normally')
  await server.waitFor(/^end \d+ status 0$/)
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(await summaryOf(server), /^shutdown: served 1, peak \d+, failed 3, denied 0, dropped 3$/, 'the summary: 1 served, 3 failed and dropped')
})

t.test('fork failure, prefork: no worker can start; the backoff grows, and serving starts once the fault is gone', anyStart, async (t) => {
  const program = missingProgram(t)
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '-v'], { FORKSERVER_TEST_EXECPATH: program })
  const delays = (await server.waitForCount(DELAY, 4, 0, 10_000)).map((m) => Number(m[1]))
  t.same(delays, expectedDelays(4), 'the delays double: 0.1, 0.2, 0.4, 0.8 s')
  t.ok(server.lines.filter((l) => l.includes(`fork failed: spawn ${program} ENOENT`)).length >= 4, 'each failure says why')
  t.ok(alive(server.pid), 'the parent is still up')

  symlinkSync(process.execPath, program)
  const result = await echoWithin(server.port, 15_000)
  t.ok(result.ok, `a connection is echoed once the program exists (${result.tries} tries; before: ${result.failures.join(', ')})` +
    (result.ok ? '' : `\nstderr:\n${server.lines.join('\n')}`))
  const all = server.lines.flatMap((l) => DELAY.exec(l)?.[1] ?? []).map(Number)
  t.same(all, expectedDelays(all.length), `the backoff held all along (${all.join(', ')} s)`)
  if (!alive(server.pid)) return
  t.same(await stopServer(server), { code: 0, signal: null })
})

t.test('fork failure, prefork: a worker dies while forks fail; the backoff holds, and a new worker serves once the fault is gone', anyStart, async (t) => {
  const program = missingProgram(t)
  symlinkSync(process.execPath, program)
  const server = await startServer(t, ['--model', 'prefork', '--workers', '1', '-v'], { FORKSERVER_TEST_EXECPATH: program })
  await server.waitFor(/^status: 1\/1$/)
  t.equal((await exchange(server.port, 'first')).data.toString(), 'first', 'the worker serves')
  const [worker] = childrenOf(server.pid)
  unlinkSync(program)
  process.kill(worker!.pid, 'SIGKILL')
  const lines = await server.waitForCount(DELAY, 4, 0, 10_000)
  t.match(lines[0]![0], new RegExp(`^warning: worker ${worker!.pid} was killed by SIGKILL; a new one in 0\\.1s$`))
  t.same(lines.map((m) => Number(m[1])), expectedDelays(4), 'the delays double: 0.1, 0.2, 0.4, 0.8 s')
  t.ok(lines.slice(1).every((m) => m[0].includes(`fork failed: spawn ${program} ENOENT`)), 'each failed fork says why')
  t.ok(alive(server.pid), 'the parent is still up')

  symlinkSync(process.execPath, program)
  const result = await echoWithin(server.port, 15_000)
  t.ok(result.ok, `a connection is echoed once the program exists (${result.tries} tries; before: ${result.failures.join(', ')})`)
  const all = server.lines.flatMap((l) => DELAY.exec(l)?.[1] ?? []).map(Number)
  t.same(all, expectedDelays(all.length), `the backoff held all along (${all.join(', ')} s)`)
  t.same(await stopServer(server), { code: 0, signal: null })
})

/** The sockets a process holds, counted by kind: Unix (an IPC channel, say) or TCP. */
const socketKinds = (pid: number): string => {
  const inodes = (file: string, column: number): Set<string> =>
    new Set(readFileSync(file, 'utf8').split('\n').slice(1).map((line) => line.trim().split(/\s+/)[column] ?? ''))
  const unix = inodes('/proc/net/unix', 6)
  const tcp = new Set([...inodes('/proc/net/tcp', 9), ...inodes('/proc/net/tcp6', 9)])
  const counts = { unix: 0, tcp: 0, other: 0 }
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target = ''
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`)
    } catch {
      continue
    }
    const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1]
    if (inode === undefined) continue
    counts[unix.has(inode) ? 'unix' : tcp.has(inode) ? 'tcp' : 'other']++
  }
  return `${counts.unix} Unix, ${counts.tcp} TCP, ${counts.other} other`
}

/**
 * Under `ulimit -n 64`, 80 idle echo connections at once: more than the
 * parent has descriptors for. Then a second of more connects while it is out
 * of them, its CPU time measured; then every client goes, and the server
 * must be back to idle and serving.
 */
const overload = async (t: Test, start: Start, maxChildren: number): Promise<void> => {
  const server = await startServer(t, [...start.args, '-v', '--max-children', String(maxChildren)], {}, { nofile: 64 })
  const empty = `status: 0/${maxChildren}`
  await server.waitFor(new RegExp(`^${empty}$`))
  t.match(readFileSync(`/proc/${server.pid}/limits`, 'utf8'), /^Max open files\s+64\s+64\s/m, 'the server runs under ulimit -n 64')
  const idleFds = fdCount(server.pid)
  const idleSockets = socketKinds(server.pid)
  const from = server.lines.length

  const clients = (await Promise.all(Array.from({ length: 80 }, () => open(server.port)))).map((socket) => {
    const client = { socket, port: socket.localPort ?? 0, closedByServer: false }
    socket.on('error', () => {})
    // Until this test destroys them, a client closes only if the server closed it.
    socket.once('close', () => (client.closedByServer = true))
    socket.resume()
    return client
  })
  t.pass('80 clients connected')
  const warning = await server
    .waitFor(/^warning: (?:accept failed: .*EMFILE.*|dropping connection, (?:fork failed: .*EMFILE.*|out of descriptors .*|too few descriptors to fork .*))$/, from, 5000)
    .catch(() => null)
  t.ok(warning, `the parent warns that it is out of descriptors${warning ? `: ${warning[0]}` : ' (no such line within 5 s)'}`)

  // Overload for about a second: keep connecting while the parent is out of
  // descriptors, and measure the CPU time it spends meanwhile.
  const before = procStat(server.pid)
  const extra: Socket[] = []
  const startedAt = Date.now()
  for (let i = 0; i < 20 && Date.now() - startedAt < 1500; i++) {
    const socket = connect({ port: server.port, host: '127.0.0.1' })
    socket.on('error', () => {})
    socket.resume()
    extra.push(socket)
    await sleep(50)
  }
  const after = procStat(server.pid)
  const window = Date.now() - startedAt
  t.ok(before !== null && after !== null && alive(server.pid), 'the parent is alive through the overload')
  // /proc/PID/stat counts in USER_HZ ticks, 100 a second on Linux.
  const cpuMs = ((after?.ticks ?? 0) - (before?.ticks ?? 0)) * 10
  t.ok(cpuMs < window / 2, `the parent used ${cpuMs} ms of CPU in ${window} ms of overload: no busy loop`)

  // Every client the server closed unserved has its `dropping connection` line.
  const closed = clients.filter((c) => c.closedByServer)
  const dropLines = server.lines.slice(from).filter((l) => l.startsWith('warning: dropping connection, '))
  const unlogged = closed.filter((c) => !dropLines.some((l) => l.endsWith(`: 127.0.0.1:${c.port}`)))
  t.comment(`${forkedSoFar(server)} children forked, ${closed.length} of 80 clients closed by the server, ` +
    `${dropLines.length} \`dropping connection\` lines, ${server.lines.filter((l) => l.startsWith('warning: accept failed')).length} \`accept failed\` lines`)
  t.same(unlogged.map((c) => c.port), [], `each of the ${closed.length} clients closed unserved has a \`dropping connection\` line`)

  // The load drops: every client goes.
  for (const socket of [...clients.map((c) => c.socket), ...extra]) socket.destroy()
  await tableEmpty(server, start, empty)
  t.pass(`the table empties (\`${empty}\` after the last \`end\` line)`)
  t.ok(alive(server.pid), 'the parent is alive')
  t.same(connectionChildren(server, start), [], 'no child left, defunct or alive')
  const fds = await settledFdCount(server.pid, idleFds)
  t.equal(fds, idleFds, `the parent is back to its idle descriptor count (sockets when idle: ${idleSockets}; now: ${socketKinds(server.pid)})`)

  const reply = await exchange(server.port, 'load is gone')
  t.equal(reply.data.toString(), 'load is gone', 'a fresh connection is echoed normally')
  await tableEmpty(server, start, empty)
  t.same(await stopServer(server), { code: 0, signal: null })
  const summary = await summaryOf(server)
  const dropped = Number(/, dropped (\d+)/.exec(summary)?.[1])
  t.ok(dropped >= closed.length, `the summary counts the ${closed.length} connections dropped unserved (${summary})`)
}

forEachStart('EMFILE at fork: under ulimit -n 64, 80 connections at once with --max-children 40', async (t, start) => {
  // The parent runs out of descriptors while forking: forks fail with EMFILE.
  await overload(t, start, 40)
}, { only: starts([SPAWN]) })

forEachStart('EMFILE at accept: under ulimit -n 64, 80 connections at once with --max-children 10', async (t, start) => {
  // Ten children, and the queue holds the rest, accepted, until accept() itself fails with EMFILE.
  await overload(t, start, 10)
}, { only: starts([SPAWN]) })
