// --start zygote: the real server, whose children are forked with a real
// fork(2) from a warm zygote (lib/zygote.ts, lib/zygote-starter.ts). (The
// zygote starts without NODE_OPTIONS, so tap's loaders, threads of their own,
// stay out of it.) Skipped, with the reason, where the addon is not built.
import { fileURLToPath } from 'node:url'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { childrenOf, startServer, stopServer, type Running } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { spawnSync } from 'node:child_process'
import { SERVER } from '../fixtures/server.js'

const skip = skipUnlessBuilt()
const handler = (name: string): string => fileURLToPath(new URL(`../fixtures/handlers/${name}.js`, import.meta.url))
const zygote = (t: Parameters<typeof startServer>[0], args: readonly string[] = []): Promise<Running> =>
  startServer(t, ['--start', 'zygote', '-v', ...args])

/** The zygote: the server's one child that is not serving a connection. */
const zygotePid = (server: Running): number => {
  const children = childrenOf(server.pid).map((c) => c.pid)
  const serving = new Set(server.lines.flatMap((line) => /^pid (\d+) from /.exec(line)?.[1] ?? []).map(Number))
  const found = children.filter((pid) => !serving.has(pid))
  if (found.length !== 1) throw new Error(`expected one zygote among ${children.join(', ')}`)
  return found[0]!
}

const ppidOf = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
}

/**
 * Echoes `count` distinct payloads through the server, 8 at a time; resolves
 * with every reply that was not its own request. `after(n)` hears each finish.
 */
const echoMany = async (port: number, count: number, after: (done: number) => void = () => {}): Promise<string[]> => {
  let next = 0
  let done = 0
  const failures: string[] = []
  const lane = async (): Promise<void> => {
    for (let i; (i = next++) < count; ) {
      const payload = `${i}:${'x'.repeat(i % 97)}\n`
      const reply = await exchange(port, payload)
      if (reply.data.toString() !== payload) failures.push(`#${i}: ${JSON.stringify(reply.data.toString().slice(0, 40))} (${reply.ended})`)
      after(++done)
    }
  }
  await Promise.all(Array.from({ length: 8 }, lane))
  return failures
}

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

t.test('kill -9 of the zygote: a held connection still echoes, the next 20 are served, no zombie is left', { skip }, async (t) => {
  const server = await zygote(t)
  const held = await open(server.port)
  held.write('before\n')
  t.equal(await readLine(held), 'before')
  const heldPid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: zygote ${z} was killed by SIGKILL; a new one in [\\d.]+s$`))
  held.write('after\n')
  t.equal(await readLine(held), 'after', 'the held connection is served by its child, orphaned')
  t.equal(ppidOf(heldPid), server.pid, 'which the server took in as its subreaper')
  for (let i = 0; i < 20; i++) t.equal((await exchange(server.port, `next ${i}`)).data.toString(), `next ${i}`)
  const closed = collect(held)
  held.end()
  await closed
  await server.waitFor(new RegExp(`^end ${heldPid} status 0$`))
  t.same(childrenOf(server.pid).filter((c) => c.state === 'Z'), [], 'no zombie')
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 21, /)
})

t.test('SIGHUP replaces the zygote; a held connection finishes, and new ones are served by the new one', { skip }, async (t) => {
  const server = await zygote(t, ['--handler', handler('whoami')])
  const held = await open(server.port)
  const first = JSON.parse(await readLine(held)) as { pid: number; ppid: number }
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP/)
  let again = first
  for (let tries = 0; again.ppid === first.ppid && tries < 100; tries++) {
    const socket = await open(server.port)
    again = JSON.parse(await readLine(socket)) as { pid: number; ppid: number }
    socket.end()
  }
  t.not(again.ppid, first.ppid, 'a new zygote forks the new children')
  held.end()
  await server.waitFor(new RegExp(`^end ${first.pid} status 0$`))
  await stopServer(server)
})

t.test('SIGHUP twice under load: every connection is forked once and echoed byte for byte', { skip }, async (t) => {
  const server = await zygote(t)
  const failures = await echoMany(server.port, 150, (done) => {
    if (done === 30 || done === 90) server.signal('SIGHUP')
  })
  t.same(failures, [], 'every reply is its own request')
  await stopServer(server)
  t.equal(server.lines.filter((line) => /^pid \d+ from /.test(line)).length, 150, 'one child per connection, none forked twice')
  t.match(server.lines.at(-1), /^shutdown: served 150, peak \d+, failed 0, denied 0, dropped 0$/)
})

t.test('a reload to code that does not load: one warning, and the old zygote serves on', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-zygote-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const module = join(dir, 'handler.js')
  writeFileSync(module, readFileSync(handler('random')))
  const server = await zygote(t, ['--handler', module])
  const before = JSON.parse((await exchange(server.port)).data.toString()) as { pid: number }
  writeFileSync(module, 'export default 42\n')
  server.signal('SIGHUP')
  await server.waitFor(/^warning: reload: the new zygote is unfit: .*has no default export function$/)
  const after = JSON.parse((await exchange(server.port)).data.toString()) as { pid: number }
  t.not(after.pid, before.pid, 'a new child, forked by the old zygote')
  await stopServer(server)
  t.equal(server.lines.filter((line) => line.includes('the new zygote is unfit')).length, 1, 'said once')
})

t.test('--exec -- cat: 20 connections are echoed byte for byte by cat', { skip }, async (t) => {
  const server = await zygote(t, ['--exec', '--', 'cat'])
  for (let i = 0; i < 20; i++) {
    const payload = Buffer.from(`${i}:${'z'.repeat(i * 37)}\u0000\xff\n`, 'latin1')
    const reply = await exchange(server.port, payload)
    t.ok(reply.data.equals(payload), `#${i}: the same ${payload.length} bytes (got ${reply.data.length})`)
    t.equal(reply.ended, 'end', `#${i}: closed when cat ends`)
  }
  await server.waitForCount(/^end \d+ status 0$/, 20)
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 20, peak \d+, failed 0, denied 0, dropped 0$/)
})

t.test('--exec: a held connection is served by cat itself, a child of the zygote, holding only 0, 1 and 2', { skip }, async (t) => {
  const server = await zygote(t, ['--exec', '--', 'cat'])
  const held = await open(server.port)
  held.write('hello\n')
  t.equal(await readLine(held), 'hello')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  t.equal(readFileSync(`/proc/${pid}/comm`, 'utf8'), 'cat\n', 'the pid the parent logs is the program')
  t.equal(ppidOf(pid), zygotePid(server), 'a child of the zygote, with no Node in between')
  t.same(readdirSync(`/proc/${pid}/fd`).sort(), ['0', '1', '2'], 'no descriptor of the zygote is left open')
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const [pgrp, session] = stat.slice(stat.lastIndexOf(')') + 2).split(' ').slice(2, 4).map(Number)
  t.same([pgrp, session], [pid, pid], 'a session and process group of its own')
  // (Signals 32 and 33 are glibc's own: no libc call can reset them, so one an
  // ancestor of the server ignored stays ignored, as under any exec.)
  const ignored = BigInt(`0x${/^SigIgn:\s+([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 'f'}`)
  t.equal(ignored & ~0x180000000n, 0n, 'no signal ignored (Node ignores SIGPIPE)')
  t.match(readFileSync(`/proc/${pid}/status`, 'utf8'), /^SigBlk:\s+0+$/m, 'no signal blocked')
  const closed = collect(held)
  held.end()
  await closed
  await server.waitFor(new RegExp(`^end ${pid} status 0$`))
  await stopServer(server)
})

t.test('--exec: the program sees the UCSPI variables of its connection', { skip }, async (t) => {
  const server = await zygote(t, ['--exec', '--', 'sh', '-c', 'echo "$TCPREMOTEIP $PROTO"'])
  t.equal((await exchange(server.port)).data.toString(), '127.0.0.1 TCP\n')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

t.test('--exec: a missing program is a warning and status 127, and the server serves on', { skip }, async (t) => {
  const server = await zygote(t, ['--exec', '--', 'forkserver-no-such-program'])
  const reply = await exchange(server.port, 'anyone?\n')
  t.equal(reply.data.length, 0, 'nothing is said')
  const pid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  await server.waitFor(new RegExp(`^warning: pid ${pid}: exec forkserver-no-such-program: not found \\(No such file or directory\\)$`))
  await server.waitFor(new RegExp(`^end ${pid} status 127$`))
  t.equal((await exchange(server.port)).data.length, 0, 'the next connection is served too')
  await server.waitForCount(/^end \d+ status 127$/, 2)
  await stopServer(server)
})

t.test('--exec --log-format json: a missing program is a JSON warning from the child, as under spawn', { skip }, async (t) => {
  const server = await zygote(t, ['--log-format', 'json', '--exec', '--', 'forkserver-no-such-program'])
  t.equal((await exchange(server.port, 'anyone?\n')).data.length, 0, 'nothing is said')
  const end = await server.waitForEvent({ event: 'end', code: 127 })
  const warning = await server.waitForEvent({ event: 'warning' })
  t.same({ ...warning, time: typeof warning.time }, {
    time: 'string',
    event: 'warning',
    message: 'exec forkserver-no-such-program: not found (No such file or directory)',
    pid: end.pid,
    child: true,
  }, 'one JSON line, with the pid of the child that ended 127')
  t.notOk(server.lines.some((line) => !line.startsWith('{')), 'and no text line')
  await stopServer(server)
})

t.test('--exec: a program killed by a signal ends with that signal', { skip }, async (t) => {
  const server = await zygote(t, ['--exec', '--', 'sh', '-c', 'kill -TERM $$'])
  const reply = await exchange(server.port)
  t.equal(reply.data.length, 0, 'nothing is said')
  t.ok(await server.waitFor(/^end \d+ signal SIGTERM$/), 'the zygote reaps the signal, and the parent logs it')
  await stopServer(server)
})

t.test('what --start zygote cannot be given with is a usage error', async (t) => {
  for (const [args, message] of [
    [['--spares', '2'], /^forkserver: --spares cannot be given with --start zygote/],
    [['--model', 'prefork'], /^forkserver: --start is not available with --model prefork/],
  ] as const) {
    const run = spawnSync(process.execPath, [SERVER, '--start', 'zygote', ...args], { encoding: 'utf8' })
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, message)
  }
})
