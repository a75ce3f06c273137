// --proxy-protocol against a real server, with headers made by hand: the
// header's source is the client everywhere (logs, rules, --exec's variables,
// the handler's info), no byte after it is lost, and whatever is not a
// header from a trusted balancer is closed without a fork.
import { spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, readLine } from '../fixtures/client.js'
import { openFrom, v1, v2Tcp, v2Unix, V2_LOCAL } from '../fixtures/proxy-headers.js'
import { SERVER, startServer, stopServer, type Running } from '../fixtures/server.js'
import { anyStart, forEachStart } from '../fixtures/starts.js'

const ADDRESS_ECHO = fileURLToPath(new URL('../fixtures/handlers/address-echo.js', import.meta.url))
const PROXIED = ['--proxy-protocol', '--proxy-from', '127.0.0.1/32', '-v']
const PREFORK = ['--model', 'prefork', '--workers', '2']
const UCSPI = ['--exec', '--', 'sh', '-c', 'echo "$TCPREMOTEIP $TCPREMOTEPORT $TCPLOCALIP $TCPLOCALPORT"; exec cat']

/** The two models, for the steps the parent (fork) or a worker (prefork) takes alike. */
const MODELS = [['fork', []], ['prefork', PREFORK]] as const

const escape = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')

/** `ADDRESS:PORT`, with IPv6 in brackets, as the log shows a peer. */
const hostPort = (address: string, port: number): string => (address.includes(':') ? `[${address}]:${port}` : `${address}:${port}`)

/** The client's own end, which the server sees as the balancer. */
const balancer = (socket: Socket): string => `${socket.localAddress}:${socket.localPort}`

/** Sends `header` from a connection and resolves with the program's line and the connection. */
const lineAfter = async (port: number, header: Buffer) => {
  const socket = await openFrom(port)
  socket.write(header)
  return { socket, line: await readLine(socket) }
}

/** A connection the server closes without serving it: the client sees nothing but the close. */
const closedUnserved = async (t: Test, socket: Socket, what: string): Promise<void> => {
  const reply = await collect(socket)
  t.equal(reply.data.length, 0, `${what}: nothing comes back`)
  t.match(reply.ended, /^(?:end|reset)$/, `${what}: the connection is closed`)
}

const serving = (server: Running): string[] => server.lines.filter((line) => /^pid \d+ from /.test(line))

/** Checks the three headers' clients reach the log and --exec's variables, on a running server. */
const realClients = async (t: Test, server: Running): Promise<void> => {
  const cases = [
    { name: 'v1 TCP4', header: v1('TCP4', '203.0.113.7', '198.51.100.1', 40001, 7001), client: ['203.0.113.7', 40001], local: ['198.51.100.1', 7001] },
    { name: 'v2 TCP4', header: v2Tcp('203.0.113.8', '198.51.100.2', 40002, 7002), client: ['203.0.113.8', 40002], local: ['198.51.100.2', 7002] },
    { name: 'v2 TCP6', header: v2Tcp('2001:db8::8', '2001:db8:1::2', 40003, 7003), client: ['2001:db8::8', 40003], local: ['2001:db8:1::2', 7003] },
  ] as const
  for (const c of cases) {
    const { socket, line } = await lineAfter(server.port, c.header)
    t.equal(line, `${c.client[0]} ${c.client[1]} ${c.local[0]} ${c.local[1]}`, `${c.name}: TCPREMOTEIP/PORT and TCPLOCALIP/PORT come from the header`)
    await server.waitFor(new RegExp(`^pid \\d+ from ${escape(hostPort(c.client[0], c.client[1]))} via ${escape(balancer(socket))}$`))
    t.pass(`${c.name}: the log names the client, and the balancer beside it`)
    const done = collect(socket)
    socket.end()
    await done
  }
}

forEachStart('v1 TCP4, v2 TCP4 and v2 TCP6 headers give the real client to the log and to --exec', async (t, start) => {
  const server = await startServer(t, [...start.args, ...PROXIED, ...UCSPI])
  await realClients(t, server)
  t.same(await stopServer(server), { code: 0, signal: null })
  t.match(server.lines.at(-1), /^shutdown: served 3, .*dropped 0/)
})

t.test('prefork: v1 TCP4, v2 TCP4 and v2 TCP6 headers give the real client to the log and to --exec', anyStart, async (t) => {
  const server = await startServer(t, [...PREFORK, ...PROXIED, ...UCSPI])
  await realClients(t, server)
  t.same(await stopServer(server), { code: 0, signal: null })
})

/** 200 kB sent in the same write as the header come back byte for byte, through echo, a handler and --exec cat. */
const bytesAfterTheHeader = async (t: Test, args: readonly string[]): Promise<void> => {
  const payload = randomBytes(200 * 1024)
  for (const [name, serve, greeting] of [
    ['echo', [], ''],
    ['--handler', ['--handler', ADDRESS_ECHO], '192.0.2.44\n'],
    ['--exec cat', ['--exec', '--', 'cat'], ''],
  ] as const) {
    const server = await startServer(t, [...args, ...PROXIED, ...serve])
    const socket = await openFrom(server.port)
    const reply = collect(socket)
    socket.end(Buffer.concat([v2Tcp('192.0.2.44', '192.0.2.1', 50000, 7000), payload]))
    const { data, ended } = await reply
    const expected = Buffer.concat([Buffer.from(greeting), payload])
    t.ok(data.equals(expected), `${name}: ${expected.length} bytes back, the same (got ${data.length})`)
    t.equal(ended, 'end', `${name}: the connection ends cleanly`)
    await stopServer(server)
  }
}

forEachStart('a header and 200 kB in one write: every byte after the header reaches the service, exactly once', async (t, start) => {
  await bytesAfterTheHeader(t, start.args)
})

t.test('prefork: a header and 200 kB in one write: every byte after the header reaches the service, exactly once', anyStart, async (t) => {
  await bytesAfterTheHeader(t, PREFORK)
})

/**
 * The rules judge the client a header names: one header's client is denied
 * (the log's `deny CLIENT via BALANCER`), and the next, through the same
 * balancer, is served; only that one is forked for.
 */
const deniedThenServed = async (t: Test, server: Running, denied: { header: Buffer; peer: string }, served: { header: Buffer; address: string }): Promise<void> => {
  const first = await openFrom(server.port)
  const via = balancer(first)
  first.write(denied.header)
  await closedUnserved(t, first, denied.peer)
  await server.waitFor(new RegExp(`^deny ${escape(denied.peer)} via ${escape(via)}$`))
  const { socket, line } = await lineAfter(server.port, served.header)
  t.equal(line, served.address, `${served.address}, through the same balancer, is served`)
  socket.end()
  await collect(socket)
  t.equal(serving(server).length, 1, `${denied.peer} was not forked for`)
  await stopServer(server)
}

for (const [model, args] of MODELS) {
  t.test(`${model}: --deny judges the header's source, not the trusted balancer`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, '--deny', '10.9.9.9/32', '--handler', ADDRESS_ECHO])
    await deniedThenServed(t, server, { header: v1('TCP4', '10.9.9.9', '10.0.0.1', 41000, 7000), peer: '10.9.9.9:41000' }, { header: v1('TCP4', '10.9.9.10', '10.0.0.1', 41001, 7000), address: '10.9.9.10' })
  })

  t.test(`${model}: a client a v2 header names by a Unix path is kept out by --allow, which it cannot match`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, '--allow', '10.0.0.0/8', '--handler', ADDRESS_ECHO])
    await deniedThenServed(t, server, { header: v2Unix('', '/run/balancer-front.sock'), peer: 'unix:/run/balancer-front.sock' }, { header: v1('TCP4', '10.1.2.3', '10.0.0.1', 41002, 7000), address: '10.1.2.3' })
  })
}

forEachStart('--max-per-ip counts the real clients, not the balancer they all come through', async (t, start) => {
  const server = await startServer(t, [...start.args, ...PROXIED, '--max-per-ip', '1', '--handler', ADDRESS_ECHO])
  const first = await lineAfter(server.port, v1('TCP4', '10.1.1.1', '10.0.0.1', 42000, 7000))
  t.equal(first.line, '10.1.1.1')
  const second = await openFrom(server.port)
  const via = balancer(second)
  second.write(v1('TCP4', '10.1.1.1', '10.0.0.1', 42001, 7000))
  await closedUnserved(t, second, 'a second connection from 10.1.1.1')
  await server.waitFor(new RegExp(`^warning: dropping connection, max-per-ip 1 reached: 10\\.1\\.1\\.1:42001 via ${escape(via)}$`))
  const other = await lineAfter(server.port, v1('TCP4', '10.1.1.2', '10.0.0.1', 42002, 7000))
  t.equal(other.line, '10.1.1.2', 'another client through the same balancer is served')
  for (const { socket } of [first, other]) {
    socket.end()
    await collect(socket)
  }
  await stopServer(server)
})

for (const [model, args] of MODELS) {
  t.test(`${model}: data with no header, and PROXY TCP9, are dropped with a warning; serving goes on`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, ...UCSPI])
    for (const [what, bytes] of [
      ['plain data', 'GET / HTTP/1.0\r\n\r\n'],
      ['PROXY TCP9', 'PROXY TCP9 nonsense\r\n'],
    ] as const) {
      const from = server.lines.length
      const socket = await openFrom(server.port)
      const port = socket.localPort
      socket.write(bytes)
      await closedUnserved(t, socket, what)
      const warning = await server.waitFor(new RegExp(`^warning: dropping connection, bad PROXY header: (.+): 127\\.0\\.0\\.1:${port}$`), from)
      t.ok(warning[1] !== undefined && warning[1].length > 0, `${what}: the warning gives the parser's reason (${warning[1]})`)
    }
    const { socket, line } = await lineAfter(server.port, v1('TCP4', '192.0.2.9', '192.0.2.1', 43000, 7000))
    t.equal(line, '192.0.2.9 43000 192.0.2.1 7000', 'a good header after them is served')
    socket.end()
    await collect(socket)
    t.equal(serving(server).length, 1, 'only the good one was served')
    if (model === 'fork') {
      t.same(await stopServer(server), { code: 0, signal: null })
      t.match(server.lines.at(-1), /^shutdown: served 1, .*dropped 2/, 'the two count as dropped')
    } else {
      await stopServer(server)
    }
  })

  t.test(`${model}: half a header and then nothing is dropped after --proxy-timeout`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, '--proxy-timeout', '1', ...UCSPI])
    const socket = await openFrom(server.port)
    const port = socket.localPort
    const header = v1('TCP4', '192.0.2.10', '192.0.2.1', 43001, 7000)
    const sent = Date.now()
    socket.write(header.subarray(0, 20))
    await closedUnserved(t, socket, 'the slow sender')
    const waited = Date.now() - sent
    t.ok(waited >= 900 && waited < 5000, `closed after about 1 s (${waited} ms)`)
    await server.waitFor(new RegExp(`^warning: dropping connection, no PROXY header within 1s: 127\\.0\\.0\\.1:${port}$`))
    t.equal(serving(server).length, 0, 'nothing was forked for it')
    await stopServer(server)
  })

  t.test(`${model}: a header split across two writes is put together`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, ...UCSPI])
    for (const [name, header] of [
      ['v1', v1('TCP4', '192.0.2.11', '192.0.2.1', 43002, 7000)],
      ['v2', v2Tcp('192.0.2.12', '192.0.2.1', 43003, 7000)],
    ] as const) {
      const socket = await openFrom(server.port)
      socket.setNoDelay(true)
      const line = readLine(socket)
      // Its own segment: the server finds an incomplete header first. The
      // pause only makes it likelier that the server has looked at it before
      // the rest comes; the check below holds either way.
      await new Promise<void>((resolve) => socket.write(header.subarray(0, 9), () => resolve()))
      await new Promise((resolve) => setTimeout(resolve, 100))
      socket.write(header.subarray(9))
      const [source, port] = name === 'v1' ? ['192.0.2.11', 43002] : ['192.0.2.12', 43003]
      t.equal(await line, `${source} ${port} 192.0.2.1 7000`, `${name}: served as the client the whole header names`)
      socket.end()
      await collect(socket)
    }
    t.notOk(server.lines.some((line) => line.startsWith('warning:')), 'no warning')
    await stopServer(server)
  })

  t.test(`${model}: a peer outside --proxy-from is dropped, well-formed header or not`, anyStart, async (t) => {
    const server = await startServer(t, [...args, '--proxy-protocol', '--proxy-from', '127.0.0.9/32', '-v', ...UCSPI])
    const socket = await openFrom(server.port)
    const port = socket.localPort
    socket.write(v1('TCP4', '192.0.2.13', '192.0.2.1', 43004, 7000))
    await closedUnserved(t, socket, '127.0.0.1')
    await server.waitFor(new RegExp(`^warning: dropping connection, not a trusted balancer \\(--proxy-from\\): 127\\.0\\.0\\.1:${port}$`))
    const trusted = await openFrom(server.port, '127.0.0.9')
    trusted.write(v1('TCP4', '192.0.2.14', '192.0.2.1', 43005, 7000))
    t.equal(await readLine(trusted), '192.0.2.14 43005 192.0.2.1 7000', 'the balancer it names, 127.0.0.9, is served')
    trusted.end()
    await collect(trusted)
    await stopServer(server)
  })

  t.test(`${model}: a v2 LOCAL header, or a connect and close with nothing sent, is a health check: no line, no fork`, anyStart, async (t) => {
    const server = await startServer(t, [...args, ...PROXIED, ...UCSPI])
    const local = await openFrom(server.port)
    local.end(V2_LOCAL)
    await closedUnserved(t, local, 'v2 LOCAL')
    const empty = await openFrom(server.port)
    empty.end()
    await closedUnserved(t, empty, 'connect and close')
    // A real connection after them: its line is the first of any.
    const { socket, line } = await lineAfter(server.port, v1('TCP4', '192.0.2.15', '192.0.2.1', 43006, 7000))
    t.equal(line, '192.0.2.15 43006 192.0.2.1 7000')
    socket.end()
    await collect(socket)
    t.same(server.lines.filter((l) => /^(?:warning:|pid \d+ from |deny )/.test(l)), serving(server).slice(0, 1),
      "one line, the real connection's: no warning and no fork for the checks")
    if (model === 'fork') {
      t.same(await stopServer(server), { code: 0, signal: null })
      t.match(server.lines.at(-1), /^shutdown: served 1, .*dropped 0/, 'the checks are not counted as drops')
    } else {
      await stopServer(server)
    }
  })
}

t.test('drops past five a second are summed up, not logged one by one', anyStart, async (t) => {
  const server = await startServer(t, [...PROXIED])
  await Promise.all(Array.from({ length: 12 }, async () => {
    const socket = await openFrom(server.port)
    socket.write('not a header\r\n')
    await collect(socket)
  }))
  // The burst takes well under a second, but may straddle the end of one.
  const shown = (): number => server.lines.filter((line) => line.startsWith('warning: dropping connection, bad PROXY header: ')).length
  const summed = (): number => server.lines.reduce((sum, line) => sum + Number(/^warning: (\d+) PROXY header drops not shown$/.exec(line)?.[1] ?? 0), 0)
  while (shown() + summed() < 12) await server.waitFor(/^warning: (?:dropping connection, bad PROXY header: |\d+ PROXY header drops not shown$)/, server.lines.length)
  t.equal(shown() + summed(), 12, 'the lines and the summaries account for all 12')
  t.ok(shown() <= 10, `at most five lines a second (${shown()} in all)`)
  t.ok(summed() >= 2, `the rest are summed up (${summed()})`)
  await stopServer(server)
})

t.test('--proxy-protocol without --proxy-from is a usage error: one line, exit 2', anyStart, async (t) => {
  const run = spawnSync(process.execPath, [SERVER, '--port', '0', '--proxy-protocol'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(run.status, 2)
  t.equal(run.stdout, '')
  t.match(run.stderr, /^[^\n]*--proxy-from[^\n]*\n$/, 'one line, naming --proxy-from')
  t.notMatch(run.stderr, /\n\s+at /, 'no stack trace')
})
