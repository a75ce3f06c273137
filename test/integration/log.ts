// The log on stderr. A pipe that nobody reads does not stop the server
// (lib/log-writer.ts): it goes on accepting and reaping, a SIGTERM still ends
// it within its grace, and what it could not write is counted and said once
// stderr is read again. Text from outside cannot split a line.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { exchange } from '../fixtures/client.js'
import { outsideTap, processesWith, runServer, SERVER, type Exit } from '../fixtures/server.js'

interface Unread {
  readonly proc: ChildProcess
  readonly port: number
  /** Reads what is in the pipe now (nothing waits: the read end is non-blocking); null at its end. */
  readonly read: () => string | null
  readonly exited: Promise<Exit>
}

const tick = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 10))

/**
 * Starts the server with stderr a pipe (a FIFO: Node's own stdio 'pipe' is a
 * socket pair), reads up to its listening line, then stops reading.
 */
const startUnread = async (t: Test, args: readonly string[]): Promise<Unread & { readonly text: string }> => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-log-'))
  const fifo = join(dir, 'stderr')
  execFileSync('mkfifo', [fifo])
  const readEnd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK)
  const writeEnd = openSync(fifo, constants.O_WRONLY)
  const mark = randomUUID()
  const env = { ...process.env, FORKSERVER_TEST_RUN: mark }
  // Outside tap's hooks: under them, every child Node writes to stderr as it starts, and would wait for the pipe.
  const proc = spawn('env', [...outsideTap(env), process.execPath, SERVER, '--port', '0', ...args], {
    detached: true,
    stdio: ['ignore', 'ignore', writeEnd],
    env,
  })
  closeSync(writeEnd)
  t.teardown(() => {
    processesWith(`FORKSERVER_TEST_RUN=${mark}`).forEach((pid) => process.kill(pid, 'SIGKILL'))
    closeSync(readEnd)
    rmSync(dir, { recursive: true, force: true })
  })
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const chunk = Buffer.alloc(1 << 16)
  const read = (): string | null => {
    try {
      const n = readSync(readEnd, chunk)
      return n === 0 ? null : chunk.toString('utf8', 0, n)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') return ''
      throw err
    }
  }
  let text = ''
  const listening = /"event":"listening","address":"[^"]*:(\d+)"/
  for (; !listening.test(text); await tick()) {
    const more = read()
    if (more === null) throw new Error(`the server exited early: ${text}`)
    text += more
  }
  // From here on, nobody reads: the pipe fills.
  return { proc, port: Number(listening.exec(text)?.[1]), read, exited, text }
}

/** `count` echo exchanges, `batch` at a time; resolves with how many got their echo. */
const serve = async (port: number, count: number, batch = 20): Promise<number> => {
  let echoed = 0
  for (let i = 0; i < count; i += batch) {
    const replies = await Promise.all(Array.from({ length: Math.min(batch, count - i) }, (_, j) => exchange(port, `hello ${i + j}`)))
    echoed += replies.filter((reply, j) => reply.data.toString() === `hello ${i + j}`).length
  }
  return echoed
}

/** Reads the pipe until `done` says it has what it waits for, or until its end (every writer has gone). */
const readUntil = async (server: Unread, text: string, done: (text: string) => boolean = () => false): Promise<string> => {
  for (let more; !done(text) && (more = server.read()) !== null; await tick()) text += more
  return text
}

/** The JSON events in `text`; a line that is not one fails the test. */
const events = (t: Test, text: string): Record<string, unknown>[] =>
  text.split('\n').filter((line) => line !== '').flatMap((line) => {
    try {
      return [JSON.parse(line) as Record<string, unknown>]
    } catch {
      t.fail(`not a whole JSON line: ${line}`)
      return []
    }
  })

t.test('300 connections into a stderr pipe nobody reads are all served, and SIGTERM ends the server within its grace', async (t) => {
  const server = await startUnread(t, ['--log-format', 'json', '-v', '--grace', '2'])
  t.equal(await serve(server.port, 300), 300, 'every client got its echo')
  const stopped = Date.now()
  server.proc.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  const took = Date.now() - stopped
  t.ok(took < 2000 + 1000, `it exited within its grace (${took} ms)`)
  // What did get through is whole lines: none was split or mixed with another.
  const got = events(t, await readUntil(server, server.text))
  t.ok(got.length > 100, `${got.length} events got through`)
  t.notOk(got.some((e) => e.event === 'shutdown'), 'not all of them: the pipe stayed full')
})

t.test('once stderr is read again, the log says how many lines it dropped, and the summary counts them', async (t) => {
  const server = await startUnread(t, ['--log-format', 'json', '-v'])
  t.equal(await serve(server.port, 300), 300, 'every client got its echo')
  const warned = /"message":"stderr was not read: (\d+) log lines dropped"/
  const text = await readUntil(server, server.text, (text) => warned.test(text))
  const dropped = Number(warned.exec(text)?.[1])
  t.ok(dropped > 0, `${dropped} lines were dropped`)
  server.proc.kill('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  const got = events(t, await readUntil(server, text))
  t.match(got.at(-1), { event: 'shutdown', code: 0, counters: { served: 300 }, logDropped: dropped })
})

t.test('a newline in --path is escaped in the log: it cannot split or forge a line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-log-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const server = runServer(t, ['--path', join(dir, 'a\nfatal: forged')])
  await server.waitFor(/^listening on unix:/)
  t.match(server.lines[0], new RegExp(`^listening on unix:${dir}/a\\\\nfatal: forged, pid \\d+$`))
  server.signal('SIGTERM')
  t.same(await server.exited, { code: 0, signal: null })
  t.notOk(server.lines.some((line) => line.startsWith('fatal:')), 'no forged line')
})
