// --start zygote --exec: the zygote starts the program itself, with the
// connection as its stdin and stdout and no Node in between, as tcpserver
// does. Skipped, with the reason, where the addon is not built.
import { readdirSync, readFileSync } from 'node:fs'
import t from 'tap'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { stopServer } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { ppidOf, zygote, zygotePid } from '../fixtures/zygote.js'

const skip = skipUnlessBuilt()

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
