import { fileURLToPath } from 'node:url'
import { collect, exchange, open, readLine } from '../fixtures/client.js'
import { runServer, startServer, stopServer } from '../fixtures/server.js'
import { forEachStart, forkerOf } from '../fixtures/starts.js'

const fixture = (name: string): string => fileURLToPath(new URL(`../fixtures/handlers/${name}`, import.meta.url))
const EXAMPLE = fileURLToPath(new URL('../../docs/examples/greet.js', import.meta.url))

forEachStart('the documented example handler greets, shouts back and says bye', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', EXAMPLE, '-v'])
  const socket = await open(server.port)
  const clientPort = socket.localPort
  const reply = collect(socket)
  socket.write('hello there\n')
  socket.write('\n')
  const { data, ended } = await reply
  const lines = data.toString().split('\n')
  t.match(lines[0], new RegExp(`^hello 127\\.0\\.0\\.1:${clientPort}, you are connection 1, served by pid \\d+$`))
  t.equal(lines[2], 'HELLO THERE')
  t.equal(lines[3], 'bye')
  t.equal(ended, 'end')
  await server.waitFor(/^end \d+ status 0$/)
  await stopServer(server)
})

forEachStart('a handler sees its own process, the parent, and both ends of the connection', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', fixture('whoami.js')])
  const socket = await open(server.port)
  const report = JSON.parse(await readLine(socket)) as { pid: number; ppid: number; info: Record<string, unknown> }
  t.not(report.pid, server.pid, 'served by a child, not the parent')
  t.equal(report.ppid, forkerOf(server, start), start.name === 'spawn' ? 'the child of this server' : "the child of this server's zygote")
  t.same(report.info, {
    id: 1,
    protocol: 'TCP',
    remoteAddress: '127.0.0.1',
    remotePort: socket.localPort,
    localAddress: '127.0.0.1',
    localPort: server.port,
  })
  socket.end()
  await stopServer(server)
})

forEachStart('a handler that throws ends its connection with status 1; the server serves on', async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', fixture('throws.js'), '-v'])
  const first = await exchange(server.port, 'x')
  t.equal(first.data.length, 0)
  const warning = await server.waitFor(/^warning: pid \d+: /)
  t.equal(warning[0].split('\n').length, 1, 'one line')
  t.notMatch(warning.input, /\x1b/, 'no escape characters from the handler reach the log')
  t.match(warning.input, /failed: bad request \\x1b\[31mred\\nforged line$/, 'escaped, not dropped')
  await server.waitFor(/^end \d+ status 1$/)
  await exchange(server.port, 'y')
  await server.waitForCount(/^end \d+ status 1$/, 2)
  t.equal(server.lines.filter((l) => l.startsWith('pid ')).length, 2, 'the next connection gets its own child too')
  t.same(await stopServer(server), { code: 0, signal: null })
})

forEachStart("a throw from a handler's own listener ends its connection with status 1 and one cleaned warning; the server serves on", async (t, start) => {
  const server = await startServer(t, [...start.args, '--handler', fixture('throws-later.js'), '-v'])
  const first = await exchange(server.port, 'boom\nshutdown: served 999, forged')
  t.equal(first.data.length, 0, 'nothing echoed')
  const warning = await server.waitFor(/^warning: pid \d+: /)
  t.match(warning.input, /throws-later\.js failed: bad input: boom\\nshutdown: served 999, forged$/, 'the Error, escaped, on one line')
  await server.waitFor(/^end \d+ status 1$/)
  t.notOk(server.lines.some((l) => l.startsWith('shutdown: served 999') || /^\s+at /.test(l)), 'no forged line, no stack trace')
  t.equal((await exchange(server.port, 'next')).data.toString(), 'next', 'the next connection is served')
  t.same(await stopServer(server), { code: 0, signal: null })
})

forEachStart('a handler module without a default export fails each connection clearly', async (t, start) => {
  if (start.name === 'zygote') {
    // The zygote loads the handler before the server listens: a module that does not load is fatal at once.
    const server = runServer(t, [...start.args, '--port', '0', '--handler', fixture('no-default.js'), '-v'])
    t.same(await server.exited, { code: 1, signal: null }, 'the server does not start')
    await server.waitFor(/^fatal: .*no-default\.js failed to load: .*no-default\.js has no default export function$/)
    return
  }
  const server = await startServer(t, [...start.args, '--handler', fixture('no-default.js'), '-v'])
  await exchange(server.port, 'x')
  await server.waitFor(/^warning: pid \d+: .*no-default\.js failed to load: .*no-default\.js has no default export function$/)
  await server.waitFor(/^end \d+ status 1$/)
  await stopServer(server)
})
