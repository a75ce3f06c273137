// The guided lab (docs/lab.md), run as a reader runs it: every command of the lab
// through bash, in order, against the server that `make run` starts, and the
// outputs the lab shows checked against what the server really prints.
//
// The changes to the commands are mechanical: the lab's port 7000 becomes a
// free one (the tests must not depend on 7000 being free); the example pids
// become the real ones, as the lab tells the reader to do; and `make run`
// becomes `make -o build run`, because `make test` has just built dist/ and
// rebuilding it here would rewrite files that other tests' servers are
// loading at the same moment. The nc that a reader types into reads from a
// pipe instead of a keyboard; Ctrl-D is the end of that pipe.
//
// Without nc, as on a fresh machine, the steps that run it are skipped, each
// with the reason, and a Node client does the same in its place, so that every
// step after it still finds the server as the lab leaves it.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, exchange, freePort, open, readBytes } from '../fixtures/client.js'
import { missing } from '../fixtures/commands.js'
import { childrenOf, processesWith, watchLines } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
const NO_NC = missing('nc')

/** The lab: docs/lab.md, from its title on. */
const lab = (): string => {
  const doc = readFileSync(new URL('docs/lab.md', `file://${REPO}`), 'utf8')
  return doc.slice(doc.indexOf('# A guided lab'))
}

/** The lab's fenced blocks, in order: their language (after the ```) and their lines. */
const fences = (): { lang: string; lines: string[] }[] => {
  const blocks: { lang: string; lines: string[] }[] = []
  let open: { lang: string; lines: string[] } | null = null
  for (const line of lab().split('\n')) {
    const fence = /^```(\S*)$/.exec(line)
    if (fence && open === null) blocks.push((open = { lang: fence[1]!, lines: [] }))
    else if (fence) open = null
    else open?.lines.push(line)
  }
  return blocks
}

/** The commands in the lab's ```sh blocks, in order. */
const labCommands = (): string[] => fences().filter((b) => b.lang === 'sh').flatMap((b) => b.lines.filter((line) => line.trim() !== ''))

/** The outputs the lab shows (its ``` blocks without a language), line by line. */
const labOutputs = (): string[][] => fences().filter((b) => b.lang === '').map((b) => b.lines)

// Every command of the lab, and what this test does with it. A command added
// to the lab, or changed, fails the first test until it is listed here.
const SERVE = 'make run ARGS="--start spawn"'
const TYPE = 'nc -N 127.0.0.1 7000'
const ONE_GO = 'echo hello | nc -N 127.0.0.1 7000'
const TRACE = 'DEBUG=forkserver:* make run ARGS="--start spawn -v"'
const TREE = 'ps --forest -o pid,ppid,stat,etime,args --pid 24361 --ppid 24361'
const STATUS = 'kill -USR1 24361'
const KILL = 'kill 24402'
const ZYGOTE = 'make run'
const ZYGOTE_TREE = 'ps --forest -o pid,ppid,args --pid 24455 --ppid 24455,$(pgrep -P 24455)'
const COST = "grep -E '^(Rss|Pss):' /proc/24470/smaps_rollup"
const BENCH = 'make bench'
const LAB = [SERVE, TYPE, ONE_GO, TRACE, TREE, STATUS, KILL, ZYGOTE, ZYGOTE_TREE, COST, BENCH]

// The numbers in the lab's examples: the traced server, the child of step 2's
// connection and its client's port, the child held in step 3 and its port.
const EXAMPLE = { server: 24361, traced: 24374, tracedPort: 36536, held: 24387, heldPort: 36542 }
// Step 5's: the server started as a user gets it (the zygote), its zygote, and the zygote's two children.
const ZYGOTE_EXAMPLE = { server: 24455, zygote: 24461, children: [24470, 24471] }

/** Step 3's process tree, as ps prints it: the header, the server, and its child if it has one. */
const treeShape = (server: number, port: number, child: number | null): RegExp[] => [
  /^ *PID +PPID +STAT +ELAPSED +COMMAND$/,
  new RegExp(`^ *${server} +\\d+ +\\S+ +[\\d:-]+ forkserver: parent 127\\.0\\.0\\.1:${port}$`),
  ...(child === null ? [] : [new RegExp(`^ *${child} +${server} +\\S+ +[\\d:-]+ {2}\\\\_ ${CHILD_TITLE}$`)]),
]

/** A child's title in ps: the client it serves. */
const CHILD_TITLE = 'forkserver: 127\\.0\\.0\\.1:\\d+'

/** Step 5's process tree: the header, the server, its zygote under it, and the zygote's children under that. */
const zygoteTreeShape = (server: number, port: number, zygote: number, children: readonly number[]): RegExp[] => [
  /^ *PID +PPID +COMMAND$/,
  new RegExp(`^ *${server} +\\d+ forkserver: parent 127\\.0\\.0\\.1:${port}$`),
  new RegExp(`^ *${zygote} +${server} {2}\\\\_ forkserver: zygote \\(generation 1\\)$`),
  ...children.map((child) => new RegExp(`^ *${child} +${zygote} {6}\\\\_ ${CHILD_TITLE}$`)),
]

/** Step 5's cost of a child: its Rss and its Pss, in kB. */
const COST_SHAPE = [/^Rss: +\d+ kB$/, /^Pss: +\d+ kB$/]
const kilobytes = (lines: readonly string[]): number[] => lines.map((line) => Number(/(\d+) kB$/.exec(line)?.[1]))

/** Step 3's SIGUSR1 table: one busy child, for the second connection, from `peerPort`. */
const statusShape = (child: number, peerPort: number): RegExp[] => [
  /^status: 1\/40 children, accepted 2, served 1, denied 0, dropped 0, failed 0, peak 1$/,
  /^ +PID +STATE +AGE +CONN +PEER$/,
  new RegExp(`^ +${child} +busy +\\d+\\.\\ds +2 +127\\.0\\.0\\.1:${peerPort}$`),
]

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/**
 * An example line of the lab as a pattern for the real one: without its note
 * (after ←), with any trace time, and with each example number in `numbers`
 * replaced by the real one (a pattern).
 */
const exampleLine = (line: string, numbers: ReadonlyMap<number, string>): RegExp => {
  const source = escape(line.replace(/\s+← .*$/, ''))
    .replace(/\\\+\d+(?:ms|s|m|h|d)$/, '\\+\\d+(?:ms|s|m|h|d)')
    .replace(new RegExp(`\\b(?:${[...numbers.keys()].join('|')})\\b`, 'g'), (example) => numbers.get(Number(example)) ?? example)
  return new RegExp(`^${source}$`)
}

interface Shell {
  readonly proc: ChildProcess
  /** stdout and stderr, interleaved, line by line. */
  readonly lines: string[]
  /** stdout, as it came. */
  readonly stdout: () => string
  /** Every process the command started, still running, itself included. */
  readonly pids: () => number[]
  /** Resolves with the first line, from index `from` on, that matches, and its index. */
  waitFor(pattern: RegExp, from?: number): Promise<{ match: RegExpExecArray; at: number }>
  readonly exited: Promise<number | null>
}

/**
 * Runs a command line with bash in a process group of its own, killed with
 * all it started at the teardown of `t`. With `keyboard`, its stdin is a pipe
 * that the test writes to, else it reads nothing.
 */
const shell = (t: Test, command: string, keyboard = false): Shell => {
  const mark = `FORKSERVER_TEST_RUN=${randomUUID()}`
  // A reader's shell, not `make test`'s: no make variables that would make `make run` a sub-make.
  const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(?:MAKELEVEL|MAKEFLAGS|MFLAGS|MAKEOVERRIDES)$/.test(key)))
  const proc = spawn('bash', ['-c', command], {
    cwd: REPO,
    detached: true,
    stdio: [keyboard ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    // DEBUG_COLORS: the traces as a terminal shows them (indented, with the
    // time since the previous one), though they go to a pipe here.
    env: { ...env, DEBUG_COLORS: '1', FORKSERVER_TEST_RUN: mark.split('=')[1] },
  })
  const pids = (): number[] => processesWith(mark)
  t.teardown(() => {
    for (const pid of [-(proc.pid ?? 0), ...pids()]) {
      try {
        process.kill(pid, 'SIGKILL')
      } catch {
        // gone
      }
    }
  })
  let stdout = ''
  proc.stdout!.on('data', (chunk: string) => (stdout += chunk))
  // The colours of the traces are escape sequences; the lab shows the text.
  const { lines, waitForMatches } = watchLines([proc.stdout!, proc.stderr!], (line) => line.replace(/\x1b\[[\d;]*m/g, ''))
  const exited = new Promise<number | null>((resolve) => proc.once('close', (code) => resolve(code)))
  const waitFor = async (pattern: RegExp, from = 0) => {
    const [match] = await waitForMatches((line) => pattern.exec(line), String(pattern), 1, from, 30_000)
    return { match: match!, at: lines.indexOf(match!.input, from) }
  }
  return { proc, lines, stdout: () => stdout, pids, waitFor, exited }
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

/** The pid of the server (the process titled `forkserver: parent`) among those `server` started. */
const serverPid = (server: Shell): number | undefined =>
  server.pids().find((pid) => {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').startsWith('forkserver: parent ') // (its title, once it listens)
    } catch {
      return false
    }
  })

/**
 * A step that needs nc: its own subtest when nc is installed. Without nc, it
 * is reported skipped, with the reason, and `instead` does the same with a
 * Node client.
 */
const withNc = async (t: Test, name: string, step: (t: Test) => Promise<void>, instead: () => Promise<void>): Promise<void> => {
  if (NO_NC) {
    await t.test(name, { skip: NO_NC }, async () => {})
    await instead()
  } else {
    await t.test(name, step)
  }
}

/** A connection held open from terminal 2, by nc or, without it, a Node client. */
interface Held {
  /** Sends a line and resolves once it has come back. */
  say(line: string): Promise<void>
  /** Ctrl-D: ends the input, and resolves once the connection is closed. */
  end(t: Test): Promise<void>
  /** The nc process, when nc holds it. */
  readonly nc: Shell | null
  readonly socket: Socket | null
}

const holdWithNc = (t: Test, port: number): Held => {
  const nc = shell(t, TYPE.replace('7000', String(port)), true)
  let heard = 0
  return {
    nc,
    socket: null,
    say: async (line) => {
      nc.proc.stdin!.write(`${line}\n`)
      heard = (await nc.waitFor(new RegExp(`^${escape(line)}$`), heard)).at + 1
    },
    end: async (t) => {
      nc.proc.stdin!.end()
      t.equal(await nc.exited, 0, 'Ctrl-D: nc ends the connection, and exits 0')
    },
  }
}

const holdWithNode = async (t: Test, port: number): Promise<Held> => {
  const socket = await open(port)
  t.teardown(() => socket.destroy())
  return {
    nc: null,
    socket,
    say: async (line) => {
      socket.write(`${line}\n`)
      await readBytes(socket, line.length + 1)
    },
    end: async (t) => {
      const closed = collect(socket)
      socket.end()
      t.equal((await closed).ended, 'end', 'the server closes its side in turn')
    },
  }
}

/** Holds a connection as step 3 does: nc -N, typed into and left; or a Node client. */
const hold = async (t: Test, port: number, label: string): Promise<Held> => {
  let held: Held | null = null
  await withNc(t, `${TYPE}, ${label}`, async (st) => {
    held = holdWithNc(t, port)
    await held.say('still here')
    st.pass('a line typed comes back')
  }, async () => {
    held = await holdWithNode(t, port)
    await held.say('still here')
  })
  return held!
}

/** The kernel's state of the loopback connection from `localPort` to `remotePort` (hex, as in /proc/net/tcp), or null. */
const tcpState = (localPort: number, remotePort: number): string | null => {
  for (const line of readFileSync('/proc/net/tcp', 'utf8').split('\n').slice(1)) {
    const [, local, remote, state] = line.trim().split(/\s+/)
    if (parseInt(local?.split(':')[1] ?? '', 16) === localPort && parseInt(remote?.split(':')[1] ?? '', 16) === remotePort) return state ?? null
  }
  return null
}

/** The state letter of a process (R running, S asleep, Z defunct), or null once it is gone. */
const processState = (pid: number): string | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  } catch {
    return null
  }
}

/** Resolves once `check` holds, polled every 20 ms; rejects after `limitMs`. */
const until = async (label: string, check: () => boolean, limitMs = 20_000): Promise<void> => {
  const deadline = Date.now() + limitMs
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting until ${label}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

t.test('the lab lists exactly the commands this test knows', async (t) => {
  t.same(labCommands(), LAB)
})

t.test('the outputs the lab shows name one server, and have the shapes of the real ones', async (t) => {
  const [first, trace, tree, status, zygoteTree, cost, ...rest] = labOutputs()
  t.same(rest, [], 'six outputs: the listening line, the traces, the process tree, the SIGUSR1 table, the zygote\'s tree, a child\'s cost')
  t.match(first, [/^listening on 127\.0\.0\.1:7000, pid \d+$/], 'step 1: the listening line')
  t.equal(first?.length, 1, 'alone')
  t.ok(trace?.some((line) => line.startsWith(`listening on 127.0.0.1:7000, pid ${EXAMPLE.server} `)), `step 2: the server is pid ${EXAMPLE.server}, the pid step 3 names`)
  t.match(tree, treeShape(EXAMPLE.server, 7000, EXAMPLE.held), 'step 3: the tree')
  t.equal(tree?.length, 3, 'and nothing else')
  t.match(status, statusShape(EXAMPLE.held, EXAMPLE.heldPort), 'step 3: the SIGUSR1 table, for the child in the tree')
  t.equal(status?.length, 3, 'and nothing else')
  const { server, zygote, children } = ZYGOTE_EXAMPLE
  t.match(zygoteTree, zygoteTreeShape(server, 7000, zygote, children), 'step 5: the server, its zygote, and two children under the zygote')
  t.equal(zygoteTree?.length, 5, 'and nothing else')
  t.ok(ZYGOTE_TREE.includes(`--pid ${server} --ppid ${server},$(pgrep -P ${server})`) && COST.includes(`/proc/${children[0]}/`), 'step 5\'s commands name the tree\'s pids')
  t.match(cost, COST_SHAPE, 'step 5: a child\'s Rss and Pss')
  const [rss = 0, pss = Infinity] = kilobytes(cost ?? [])
  t.ok(pss < rss / 2, 'the Pss it shows is under half the Rss, as the text says')
})

/** A lab command as the test runs it: on `port`, and with dist/ as `make test` built it. */
const adaptTo = (port: number) => (command: string): string =>
  command.replace('make run', `make -o build run PORT=${port}`).replaceAll('7000', String(port))

t.test('the lab, step by step', async (t) => {
  const port = await freePort()
  const adapt = adaptTo(port)
  // A client sees the close a moment before its child exits; the counts the
  // lab shows hold once each child is reaped before the next step.
  const reaped = (server: number): Promise<void> => until('every child is reaped', () => childrenOf(server).length === 0)
  const oneGo = async (server: number): Promise<void> => {
    await withNc(t, ONE_GO, async (t) => {
      t.same(await run(t, adapt(ONE_GO)), { code: 0, output: 'hello\n' }, 'the line comes back')
    }, async () => {
      t.equal((await exchange(port, 'hello\n')).data.toString(), 'hello\n', 'the same echo, from a Node client')
    })
    await reaped(server)
  }

  // 1. make run: the listening line names the server's own pid; a line typed, and one in one go.
  let server = shell(t, adapt(SERVE))
  const { match: ready } = await server.waitFor(new RegExp(`^listening on 127\\.0\\.0\\.1:${port}, pid (\\d+)$`))
  const first = Number(ready[1])
  t.equal(first, serverPid(server), 'the pid on the listening line is the server\'s')
  t.match(server.lines, [new RegExp(`^forkserver: from a second terminal, connect with: +nc -N 127\\.0\\.0\\.1 ${port} `)], 'make run says how to connect')
  await withNc(t, TYPE, async (st) => {
    const typed = holdWithNc(st, port)
    await typed.say('hello')
    await typed.end(st)
    st.equal(typed.nc?.stdout(), 'hello\n', 'the line came back')
  }, async () => {
    t.equal((await exchange(port, 'hello\n')).data.toString(), 'hello\n', 'the same echo, from a Node client')
  })
  await reaped(first)
  await oneGo(first)
  await ctrlC(server)
  t.match(server.lines.join('\n'), /^SIGINT: draining 0 children, 10s grace$/m, 'Ctrl-C drains')
  t.match(server.lines.join('\n'), /^shutdown: served 2, peak 1, failed 0, denied 0, dropped 0$/m, 'and sums up')

  // 2. The traces: every line the lab shows, in its order (the child's among themselves).
  server = shell(t, adapt(TRACE))
  const parent = Number((await server.waitFor(/^listening on .*, pid (\d+)$/)).match[1])
  t.equal(parent, serverPid(server), 'a new server, named by its listening line')
  await oneGo(parent)
  const { match: end, at: ended } = await server.waitFor(/^end (\d+) status 0$/)
  // The trace ends with the count the reap leaves, a line of its own that
  // may reach the pipe after the `end` line.
  const { at: traced } = await server.waitFor(/^status: 0\/\d+$/, ended + 1)
  const numbers = new Map([[EXAMPLE.server, String(parent)], [EXAMPLE.traced, end[1]!], [EXAMPLE.tracedPort, '\\d+'], [7000, String(port)]])
  const trace = labOutputs()[1] ?? []
  const place = (lines: readonly string[], from: number, to = server.lines.length): number => {
    let at = from
    for (const line of lines) {
      const pattern = exampleLine(line, numbers)
      const found = server.lines.findIndex((real, i) => i >= at && i < to && pattern.test(real))
      t.ok(found >= 0, `then: ${line.replace(/\s+← .*$/, '').trim()}`, { pattern: String(pattern) })
      if (found >= 0) at = found + 1
    }
    return at
  }
  const parentLines = trace.filter((line) => !line.includes('forkserver:child'))
  place(parentLines, 0)
  // The child's lines come after the parent forks it and before the parent reaps it.
  const spawned = server.lines.findIndex((line) => line.includes(`pid ${end[1]} spawned`))
  const reaping = server.lines.findIndex((line) => line.includes(`pid ${end[1]} exited status 0`))
  place(trace.filter((line) => line.includes('forkserver:child')), spawned, reaping)
  const at = traced + 1

  // 3. A connection held open: the server's tree shows its child under it.
  const held = await hold(t, port, 'held open')
  const { match: from } = await server.waitFor(/^pid (\d+) from 127\.0\.0\.1:(\d+)$/, at)
  const [child, peerPort] = [Number(from[1]), Number(from[2])]
  const tree = TREE.replaceAll(String(EXAMPLE.server), String(parent))
  const shown = await run(t, tree)
  t.equal(shown.code, 0, `${TREE} exits 0`)
  t.match(shown.output.trimEnd().split('\n'), treeShape(parent, port, child), 'the server, and its child under it')
  t.equal(shown.output.trimEnd().split('\n').length, 3, 'and nothing else')

  const before = server.lines.length
  t.equal((await run(t, STATUS.replace(String(EXAMPLE.server), String(parent)))).code, 0, `${STATUS} exits 0`)
  let row = before
  for (const pattern of statusShape(child, peerPort)) row = (await server.waitFor(pattern, row)).at + 1

  // Ctrl-D: the child serves to the end, exits 0, is reaped, and is gone from the tree.
  await held.end(t)
  await server.waitFor(new RegExp(`^end ${child} status 0$`), at)
  const after = await run(t, tree)
  t.match(after.output.trimEnd().split('\n'), treeShape(parent, port, null), 'the child is gone from the tree')
  t.equal(after.output.trimEnd().split('\n').length, 2, 'and only the server is left')

  // 4. Kill the child named by its `pid P from` line.
  const second = await hold(t, port, 'held again')
  const { match: killed } = await server.waitFor(new RegExp(`^pid (?!${child} )(\\d+) from 127\\.0\\.0\\.1:(\\d+)$`), at)
  const [victim, victimPort] = [Number(killed[1]), Number(killed[2])]
  const closed = second.socket ? collect(second.socket) : null
  t.equal((await run(t, KILL.replace('24402', String(victim)))).code, 0, `${KILL} exits 0`)
  await server.waitFor(new RegExp(`^end ${victim} signal SIGTERM$`))
  await withNc(t, 'nc waits until a line is typed, and then exits', async (st) => {
    const nc = second.nc!
    const ncPid = nc.pids().find((pid) => {
      try {
        return readFileSync(`/proc/${pid}/comm`, 'utf8') === 'nc\n'
      } catch {
        return false
      }
    })
    if (ncPid === undefined) {
      st.fail('no nc process')
      return
    }
    // The server's side is closed: nc's end is in CLOSE_WAIT. Once nc is
    // asleep again after that, it has read the close and chosen to wait.
    await until('the connection is half-closed by the server', () => tcpState(victimPort, port) === '08')
    await until('nc is asleep again', () => processState(ncPid) === 'S')
    st.ok(processState(ncPid) === 'S' && tcpState(victimPort, port) === '08', 'nc is still running, its connection open')
    nc.proc.stdin!.write('anyone there?\n')
    st.equal(await nc.exited, 0, 'a line typed: the kernel resets the connection, and nc exits 0')
    st.equal(nc.stdout(), 'still here\n', 'without a word')
  }, async () => {
    t.match((await closed!).ended, /^(?:end|reset)$/, 'a Node client sees its connection close')
  })
  await oneGo(parent)

  await ctrlC(server)
  t.match(server.lines.join('\n'), /^shutdown: served 3, peak 1, failed 1, denied 0, dropped 0$/m, 'the summary counts the killed child as failed')
})

// Step 5 needs the fork addon: without it, the server spawns as in step 1,
// and the step is skipped with the reason. The connections are held as in
// step 3, by nc or, without it, a Node client.
t.test('the lab, step 5: the zygote, its children, and what a child costs', { skip: skipUnlessBuilt() }, async (t) => {
  const port = await freePort()
  const server = shell(t, adaptTo(port)(ZYGOTE))
  const parent = Number((await server.waitFor(new RegExp(`^listening on 127\\.0\\.0\\.1:${port}, pid (\\d+)$`))).match[1])
  t.equal(parent, serverPid(server), 'the pid on the listening line is the server\'s')
  const held = [await hold(t, port, 'held open in terminal 2'), await hold(t, port, 'held open in terminal 3')]
  // Each has echoed a line: its child is forked, and serving.
  const zygotes = childrenOf(parent).map((c) => c.pid)
  t.equal(zygotes.length, 1, 'the server has one child: the zygote')
  const zygote = zygotes[0] ?? 0
  const children = childrenOf(zygote).map((c) => c.pid).sort((a, b) => a - b)
  t.equal(children.length, 2, 'the zygote has two: one per connection')

  const tree = await run(t, ZYGOTE_TREE.replaceAll(String(ZYGOTE_EXAMPLE.server), String(parent)))
  t.equal(tree.code, 0, `${ZYGOTE_TREE} exits 0`)
  t.match(tree.output.trimEnd().split('\n'), zygoteTreeShape(parent, port, zygote, children), 'the server, the zygote under it, the children under the zygote')
  t.equal(tree.output.trimEnd().split('\n').length, 5, 'and nothing else')

  const cost = await run(t, COST.replace(String(ZYGOTE_EXAMPLE.children[0]), String(children[0])))
  t.equal(cost.code, 0, `${COST} exits 0`)
  const lines = cost.output.trimEnd().split('\n')
  t.match(lines, COST_SHAPE, 'the child\'s Rss and Pss')
  t.equal(lines.length, 2, 'and nothing else')
  const [rss = 0, pss = Infinity] = kilobytes(lines)
  t.ok(pss < rss / 2, `its Pss (${pss} kB) is under half its Rss (${rss} kB): it shares most of its pages with the zygote and its sibling`)

  for (const connection of held) await connection.end(t)
  await ctrlC(server)
  t.match(server.lines.join('\n'), /^shutdown: served 2, peak \d+, failed 0, denied 0, dropped 0$/m, 'Ctrl-C: the server drains and sums up')
})
