import { chmodSync } from 'node:fs'
import { createServer, type Socket } from 'node:net'
import { join } from 'node:path'
import t, { type Test } from 'tap'
import { FORWARDED_SIGNALS, NOT_EXECUTABLE, NOT_FOUND, killedStatus, notStartedFormat, programEnv, runProgram } from '../../lib/serve/exec.js'
import type { ServeSpec } from '../../lib/protocol.js'
import { collect, open } from '../fixtures/client.js'

const tcp = { id: 1, protocol: 'TCP' as const, remoteAddress: '127.0.0.1', remotePort: 5555, localAddress: '127.0.0.2', localPort: 7000 }
const unix = { id: 2, protocol: 'UNIX' as const, remoteAddress: '', remotePort: 0, localAddress: '/run/fs.sock', localPort: 0 }
const specFor = (exec: string[]): ServeSpec => ({ service: null, handler: null, exec, logFormat: 'text', idleTimeout: 0 })
const trace = (): void => {}

/** A loopback connection: the server's side accepted paused, as forkserver hands it over, and the client's. */
const connection = async (t: Test): Promise<{ server: Socket; client: Socket }> => {
  const listener = createServer({ pauseOnConnect: true })
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve))
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve))
  t.teardown(() => listener.close())
  const address = listener.address()
  const client = await open(typeof address === 'object' && address !== null ? address.port : 0)
  t.teardown(() => client.destroy())
  return { server: await accepted, client }
}

/** The warning lines written while `run` runs (tap puts stderr back afterwards). */
const warnings = (t: Test): (() => string[]) => {
  const writes = t.capture(process.stderr, 'write', () => true)
  return () => writes().map((call) => String(call.args[0]))
}

t.test('a program killed by a signal has the shell\'s status, 128 plus the signal\'s number', async (t) => {
  t.equal(killedStatus('SIGPIPE'), 141)
  t.equal(killedStatus('SIGKILL'), 137)
})

t.test('a TCP connection gets PROTO and the four TCP variables, as strings', async (t) => {
  const env = programEnv(tcp, { PATH: '/bin' })
  t.same(env, { PATH: '/bin', PROTO: 'TCP', TCPREMOTEIP: '127.0.0.1', TCPREMOTEPORT: '5555', TCPLOCALIP: '127.0.0.2', TCPLOCALPORT: '7000' })
})

t.test('a Unix-domain connection gets PROTO=UNIX and the socket path', async (t) => {
  t.same(programEnv(unix, { PATH: '/bin' }), { PATH: '/bin', PROTO: 'UNIX', UNIXLOCALPATH: '/run/fs.sock' })
})

t.test('variables of another connection and of socket activation are dropped, the rest kept', async (t) => {
  const base = {
    PATH: '/bin',
    HOME: '/root',
    FORKSERVER_TEST_RUN: 'run-1',
    PROTO: 'UNIX',
    UNIXLOCALPATH: '/old.sock',
    UNIXREMOTEPID: '99',
    TCPREMOTEHOST: 'stale.example',
    TCPREMOTEINFO: 'someone',
    TCP6REMOTEIP: '::1',
    TCPREMOTEIP: '10.9.9.9',
    LISTEN_FDS: '1',
    LISTEN_PID: '1',
    LISTEN_FDNAMES: 'http',
    TCPDUMP_OPTIONS: 'kept: not a connection variable',
  }
  const env = programEnv(tcp, base)
  t.same(env, {
    PATH: '/bin',
    HOME: '/root',
    FORKSERVER_TEST_RUN: 'run-1',
    TCPDUMP_OPTIONS: 'kept: not a connection variable',
    PROTO: 'TCP',
    TCPREMOTEIP: '127.0.0.1',
    TCPREMOTEPORT: '5555',
    TCPLOCALIP: '127.0.0.2',
    TCPLOCALPORT: '7000',
  })
  const forUnix = programEnv(unix, base)
  t.notOk(Object.keys(forUnix).some((key) => key.startsWith('TCP') && key !== 'TCPDUMP_OPTIONS'), 'no TCP variables for a Unix socket')
  t.notOk('UNIXREMOTEPID' in forUnix)
  t.equal(base.PROTO, 'UNIX', 'the base is left as it was')
})

t.test('the program gets the connection unread, and the caller closes its own copy', async (t) => {
  const { server, client } = await connection(t)
  const reply = collect(client)
  client.write('sent before the program started\n')
  const ended = runProgram(server, tcp, specFor(['cat']), trace)
  t.ok(server.destroyed, 'our copy is closed as soon as the program has its own')
  client.end('and after\n')
  t.same(await ended, { code: 0, signal: null })
  t.same(await reply, { data: Buffer.from('sent before the program started\nand after\n'), ended: 'end' })
  t.equal(server.bytesRead, 0, 'this process read nothing from the socket')
})

t.test('a program that does not exist: status 127, one warning, the connection closed', async (t) => {
  const { server, client } = await connection(t)
  const written = warnings(t)
  const reply = collect(client)
  t.same(await runProgram(server, tcp, specFor(['forkserver-no-such-program', 'x']), trace), { code: NOT_FOUND, signal: null })
  t.equal(NOT_FOUND, 127)
  t.match(written(), [/^warning: pid \d+: exec forkserver-no-such-program: not found \(spawn forkserver-no-such-program ENOENT\)\n$/])
  t.equal((await reply).data.length, 0)
})

t.test('the zygote child\'s warning is the same line, in either format, as a printf format for the pid, how and why', async (t) => {
  // printf's positional conversions, as the addon's dprintf fills them in.
  const fill = (format: string, pid: number, how: string, why: string): string =>
    format.replace(/%(?:%|1\$d|2\$s|3\$s)/g, (c) => (c === '%%' ? '%' : c === '%1$d' ? String(pid) : c === '%2$s' ? how : why))
  const text = notStartedFormat({ logFormat: 'text' }, 'no-such-100%')
  t.equal(fill(text, 42, 'not found', 'No such file or directory'), 'warning: pid 42: exec no-such-100%: not found (No such file or directory)\n')
  const json = fill(notStartedFormat({ logFormat: 'json' }, 'say "%d"'), 42, 'not executable', 'Permission denied')
  t.match(JSON.parse(json), { event: 'warning', message: 'exec say "%d": not executable (Permission denied)', pid: 42, child: true, time: String })
  t.ok(json.endsWith('}\n'), 'one line')
})

t.test('a program that is not executable: status 126', async (t) => {
  const dir = t.testdir({ 'script.sh': 'echo never\n' })
  const script = join(dir, 'script.sh')
  chmodSync(script, 0o644)
  const { server, client } = await connection(t)
  const written = warnings(t)
  const reply = collect(client)
  t.same(await runProgram(server, tcp, specFor([script]), trace), { code: NOT_EXECUTABLE, signal: null })
  t.match(written(), [/^warning: pid \d+: exec \S+script\.sh: not executable \(spawn /])
  await reply
})

t.test('signals are passed on while the program runs, and no longer once it has exited', async (t) => {
  const before = process.listenerCount('SIGHUP')
  const { server } = await connection(t)
  const ended = runProgram(server, tcp, specFor(['cat']), trace, { forward: FORWARDED_SIGNALS })
  t.equal(process.listenerCount('SIGHUP'), before + 1)
  process.kill(process.pid, 'SIGHUP')
  t.same(await ended, { code: null, signal: 'SIGHUP' })
  t.equal(process.listenerCount('SIGHUP'), before)
})

t.test('stopping kills the program', async (t) => {
  const { server } = await connection(t)
  const stop = new AbortController()
  const ended = runProgram(server, tcp, specFor(['cat']), trace, { stop: stop.signal })
  stop.abort()
  t.same(await ended, { code: null, signal: 'SIGKILL' })
})
