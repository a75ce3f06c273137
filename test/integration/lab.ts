// The README's guided lab, run as a reader runs it: every command of the lab
// that is not typed into, through bash, in order, against the server that
// `make run` starts.
//
// Two changes to the commands, both mechanical: the lab's port 7000 becomes a
// free one (the tests must not depend on 7000 being free), and `make run`
// becomes `make -o build run`, because `make test` has just built dist/ and
// rebuilding it here would rewrite files that other tests' servers are
// loading at the same moment.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { createServer, type AddressInfo } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, open, readBytes } from '../fixtures/client.js'
import { processesWith, watchLines } from '../fixtures/server.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

/** The commands in the lab's ```sh blocks, in order. */
const labCommands = (): string[] => {
  const readme = readFileSync(new URL('README.md', `file://${REPO}`), 'utf8')
  const start = readme.indexOf('## A guided lab')
  const end = readme.indexOf('\n## ', start + 1)
  const lab = readme.slice(start, end)
  return [...lab.matchAll(/```sh\n([\s\S]*?)```/g)].flatMap((m) => m[1]!.split('\n').filter((line) => line.trim() !== ''))
}

// Every command of the lab, and what this test does with it. A command added
// to the lab, or changed, fails the first test until it is listed here.
const SERVE = 'make run'
const TYPE = 'nc 127.0.0.1 7000'
const ONE_GO = 'echo hello | nc -N 127.0.0.1 7000'
const TRACE = 'DEBUG=forkserver:* make run ARGS=-v'
const TREE = `ps --forest -o pid,ppid,stat,etime,args -p "$(pgrep -d, -f 'dist/(server|child)\\.js')"`
const STATUS = `pkill -USR1 -f 'node dist/server\\.js'`
const KILL = 'kill 24387'
const BENCH = 'make bench'
const LAB = [SERVE, TYPE, ONE_GO, TRACE, TREE, STATUS, KILL, BENCH]

const freePort = async (): Promise<number> => {
  const probe = createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  const { port } = probe.address() as AddressInfo
  await new Promise((resolve) => probe.close(resolve))
  return port
}

interface Shell {
  readonly proc: ChildProcess
  /** stdout and stderr, interleaved, line by line. */
  readonly lines: string[]
  /** stdout, as it came. */
  readonly stdout: () => string
  waitFor(pattern: RegExp, from?: number): Promise<RegExpExecArray>
  readonly exited: Promise<number | null>
}

/** Runs a command line with bash in a process group of its own, killed with all it started at the teardown. */
const shell = (t: Test, command: string): Shell => {
  const mark = randomUUID()
  // A reader's shell, not `make test`'s: no make variables that would make `make run` a sub-make.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(?:MAKELEVEL|MAKEFLAGS|MFLAGS|MAKEOVERRIDES)$/.test(key)))
  const proc = spawn('bash', ['-c', command], {
    cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'], env: { ...env, FORKSERVER_TEST_RUN: mark },
  })
  t.teardown(() => {
    for (const pid of [-(proc.pid ?? 0), ...processesWith(`FORKSERVER_TEST_RUN=${mark}`)]) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
  })
  let stdout = ''
  proc.stdout.on('data', (chunk: string) => (stdout += chunk))
  // DEBUG's lines start with a timestamp; the lab reads them without it.
  const { lines, waitForMatches } = watchLines([proc.stdout, proc.stderr], (line) => line.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, ''))
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)))
  const waitFor = async (pattern: RegExp, from = 0) => (await waitForMatches((line) => pattern.exec(line), String(pattern), 1, from, 30_000))[0]!
  return { proc, lines, stdout: () => stdout, waitFor, exited }
}

/** Runs a command to its end and resolves with its exit status and stdout. */
const run = async (t: Test, command: string): Promise<{ code: number | null; output: string }> => {
  const done = shell(t, command)
  const code = await done.exited
  return { code, output: done.stdout() }
}

/**
 * Ctrl-C in the server's terminal: SIGINT to its whole foreground group.
 * The server drains and exits 0; make, interrupted too, says so and exits.
 */
const ctrlC = async (server: Shell): Promise<void> => {
  process.kill(-(server.proc.pid ?? 0), 'SIGINT')
  await server.exited
}

t.test('the lab lists exactly the commands this test knows', async (t) => {
  t.same(labCommands(), LAB)
})

t.test('the lab, step by step', async (t) => {
  const port = await freePort()
  const adapt = (command: string): string => command.replace('make run', `make -o build run PORT=${port}`).replaceAll('7000', String(port))

  // 1. make run, and a line echoed.
  let server = shell(t, adapt(SERVE))
  await server.waitFor(new RegExp(`^listening on 127\\.0\\.0\\.1:${port}, pid \\d+$`))
  t.match(server.lines, [new RegExp(`^forkserver: from a second terminal, connect with: +nc 127\\.0\\.0\\.1 ${port} `)], 'make run says how to connect')
  t.same(await run(t, adapt(ONE_GO)), { code: 0, output: 'hello\n' }, `${ONE_GO}: the line comes back`)
  await ctrlC(server)
  t.match(server.lines.join('\n'), /^SIGINT: draining [01] children, 10s grace$/m, 'Ctrl-C drains')
  t.match(server.lines.join('\n'), /^shutdown: served 1, peak 1, failed 0, denied 0, dropped 0$/m)

  // 2. The traces, one line per step, in the order the README shows.
  server = shell(t, adapt(TRACE))
  await server.waitFor(/^listening on /)
  t.equal((await run(t, adapt(ONE_GO))).output, 'hello\n')
  const reaped = await server.waitFor(/^end (\d+) status 0$/)
  const pid = reaped[1]!
  // The parent's steps in order; the child's, which it writes at the same
  // time, in order among themselves, all after the fork and before the reap.
  const inOrder = (steps: RegExp[], from: number): number => {
    let at = from
    for (const step of steps) {
      const found = server.lines.findIndex((line, i) => i >= at && step.test(line))
      t.ok(found >= at, `then ${step.source}`)
      at = Math.max(at, found)
    }
    return at
  }
  const forked = inOrder([/^forkserver:parent accept 127\.0\.0\.1:\d+$/, /^forkserver:parent fork$/, new RegExp(`^forkserver:parent pid ${pid} spawned$`)], 0)
  inOrder([
    new RegExp(`^pid ${pid} from 127\\.0\\.0\\.1:\\d+$`),
    new RegExp(`^forkserver:parent socket handed off to pid ${pid}$`),
    new RegExp(`^forkserver:parent pid ${pid} exited status 0 → reaped$`),
  ], forked)
  inOrder([
    new RegExp(`^forkserver:child pid ${pid} serving echo for 127\\.0\\.0\\.1:\\d+$`),
    new RegExp(`^forkserver:child pid ${pid} exit 0: connection closed$`),
    new RegExp(`^forkserver:parent pid ${pid} exited status 0 → reaped$`),
    new RegExp(`^end ${pid} status 0$`),
  ], forked)
  const at = server.lines.length - 1

  // 3. A connection held open (as `nc` is, in terminal 2): the tree shows its child under the parent.
  const held = await open(port)
  held.write('still here')
  await readBytes(held, 10)
  const child = Number((await server.waitFor(/^pid (\d+) from /, at + 1))[1])
  const parent = Number((await run(t, `pgrep -f 'node dist/server\\.js --host 127\\.0\\.0\\.1 --port ${port}'`)).output.trim())
  const tree = await run(t, TREE)
  t.equal(tree.code, 0, `${TREE} exits 0`)
  t.match(tree.output, /^ *PID +PPID STAT +ELAPSED COMMAND$/m, 'the header')
  t.match(tree.output, new RegExp(`^ *${parent} +\\d+ .* node dist/server\\.js --host 127\\.0\\.0\\.1 --port ${port} -v$`, 'm'), 'the parent')
  t.match(tree.output, new RegExp(`^ *${child} +${parent} .* \\\\_ \\S*node \\S*dist/child\\.js$`, 'm'), 'its child, under it')

  const before = server.lines.length
  t.equal((await run(t, STATUS)).code, 0, `${STATUS} exits 0`)
  await server.waitFor(/^status: 1\/40 children, accepted 2, served 1, denied 0, dropped 0, failed 0, peak 1$/, before)
  await server.waitFor(new RegExp(`^ +${child} +busy +\\d+\\.\\ds +2 +127\\.0\\.0\\.1:${held.localPort}$`), before)

  // 4. Kill the child named by its `pid P from` line.
  const closed = collect(held)
  t.equal((await run(t, KILL.replace('24387', String(child)))).code, 0)
  await server.waitFor(new RegExp(`^end ${child} signal SIGTERM$`))
  t.match((await closed).ended, /^(?:end|reset)$/, 'the client sees its connection close')
  t.same(await run(t, adapt(ONE_GO)), { code: 0, output: 'hello\n' }, 'and the parent serves on')

  await ctrlC(server)
  t.match(server.lines.join('\n'), /^shutdown: served 2, peak 1, failed 1, denied 0, dropped 0$/m)
})
