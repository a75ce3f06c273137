// Two forkservers behind a real HAProxy, run from docs/haproxy.cfg: server a
// is sent v2 headers, server b v1. The client is seen as itself through
// either, denied by its own address, served byte for byte; what is not a
// header from the balancer is closed unserved; and a SIGTERM to one instance
// while clients stream through HAProxy costs not one connection. In the fork
// model with --exec, in prefork, and with a --handler. Nothing leaves loopback.
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { collect, freePort, readLine } from '../fixtures/client.js'
import { missing } from '../fixtures/commands.js'
import { EXAMPLE, startHaproxy, type Haproxy } from '../fixtures/haproxy.js'
import { openFrom, v1, v2Tcp } from '../fixtures/proxy-headers.js'
import { alive, startServer, stopServer, type Running } from '../fixtures/server.js'

const ADDRESS_ECHO = fileURLToPath(new URL('../fixtures/handlers/address-echo.js', import.meta.url))
const GRACE_S = 10
const INSTANCE = ['--proxy-protocol', '--proxy-from', '127.0.0.1/32', '--deny', '127.0.0.3/32', '--grace', String(GRACE_S), '-v']
const EXEC = ['--exec', '--', 'sh', '-c', 'echo "$TCPREMOTEIP"; exec cat']

const VARIANTS = [
  { name: 'fork, --exec', args: EXEC, workers: 0 },
  { name: 'prefork, --exec', args: ['--model', 'prefork', '--workers', '2', ...EXEC], workers: 2 },
  { name: 'fork, --handler', args: ['--handler', ADDRESS_ECHO], workers: 0 },
] as const

const skip = missing('haproxy')

t.test('docs/haproxy.cfg has health checks that send the header, retries and redispatch', async (t) => {
  const example = readFileSync(EXAMPLE, 'utf8')
  for (const directive of [/^\s*mode tcp\b/m, /^\s*balance roundrobin\b/m, /^\s*retries 3\b/m, /^\s*option redispatch\b/m,
    /^\s*default-server check\b/m, /^\s*server a \S+ send-proxy-v2$/m, /^\s*server b \S+ send-proxy$/m]) {
    t.match(example, directive, String(directive))
  }
})

interface Cluster {
  readonly a: Running
  readonly b: Running
  readonly haproxy: Haproxy
  readonly port: number
}

/** An instance, with its prefork workers (if any) all accepting. */
const instance = async (t: Test, args: readonly string[], workers: number): Promise<Running> => {
  const server = await startServer(t, [...INSTANCE, ...args], workers > 0 ? { DEBUG: 'forkserver:parent' } : {})
  // (A worker still starting holds the listener before it can hear 'stop': see test/integration/prefork.ts.)
  if (workers > 0) await server.waitForCount(/worker \d+ is accepting$/, workers)
  return server
}

/** Two instances, and HAProxy in front of them with both UP. */
const cluster = async (t: Test, args: readonly string[], workers: number): Promise<Cluster> => {
  const [a, b] = await Promise.all([instance(t, args, workers), instance(t, args, workers)])
  const port = await freePort()
  const haproxy = startHaproxy(t, { frontend: port, servers: [a.port, b.port], inter: '300ms' })
  await haproxy.waitUp(['a', 'b'])
  return { a, b, haproxy, port }
}

/** What a client from 127.0.0.2 must get back: the program's line, then its own bytes. */
const answer = (payload: Buffer): Buffer => Buffer.concat([Buffer.from('127.0.0.2\n'), payload])

/** One connection through HAProxy from 127.0.0.2 that sends `payload` at once; resolves with its port and whether all came back. */
interface Trip {
  readonly port: number
  readonly ok: boolean
  readonly detail: string
}

const roundTrip = async (port: number, payload: Buffer): Promise<Trip> => {
  const socket = await openFrom(port, '127.0.0.2')
  const own = socket.localPort ?? 0
  const reply = collect(socket)
  socket.end(payload)
  const { data, ended } = await reply
  const ok = data.equals(answer(payload)) && ended === 'end'
  return { port: own, ok, detail: `${data.length} of ${answer(payload).length} bytes, ${ended}, starting ${JSON.stringify(data.subarray(0, 12).toString('latin1'))}` }
}

/** The connections that failed, each with HAProxy's log line for it (which instance, and how it ended). */
const failed = (trips: readonly Trip[], haproxy: Haproxy): string[] =>
  trips.filter((trip) => !trip.ok).map((trip) => `${trip.detail}; ${haproxy.lines.find((line) => line.includes(`127.0.0.2:${trip.port} `)) ?? 'no HAProxy line'}`)

/** The ports of the clients from `address` whose connections `instance` logged with `kind` (`pid P from` or `deny`). */
const logged = (instance: Running, kind: 'from' | 'deny', address: string, from = 0): number[] =>
  instance.lines.slice(from).flatMap((line) => {
    const m = new RegExp(`^(?:pid \\d+ from|deny) ${address.replace(/\./g, '\\.')}:(\\d+) via 127\\.0\\.0\\.1:\\d+$`).exec(line)
    return m !== null && line.startsWith(kind === 'deny' ? 'deny ' : 'pid ') ? [Number(m[1])] : []
  })

/** Polls until `ready()` holds (log lines come through a pipe, and may trail the replies). */
const until = async (ready: () => boolean, what: string, limitMs = 20_000): Promise<void> => {
  const deadline = Date.now() + limitMs
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
}

/** A direct connection to an instance, from `from`, that sends `bytes`; resolves with what came back. */
const direct = async (instance: Running, from: string, bytes: Buffer | string) => {
  const socket = await openFrom(instance.port, from)
  const port = socket.localPort
  const reply = collect(socket)
  socket.write(bytes)
  return { port, ...(await reply) }
}

for (const variant of VARIANTS) {
  t.test(`${variant.name}: through HAProxy, the client is itself, 400 kB come back exact, 127.0.0.3 is denied, and what is not a header from HAProxy is dropped`, { skip }, async (t) => {
    const { a, b, haproxy, port } = await cluster(t, variant.args, variant.workers)
    const payload = randomBytes(400 * 1024)
    const trips = await Promise.all(Array.from({ length: 6 }, () => roundTrip(port, payload)))
    t.same(failed(trips, haproxy), [], 'six clients from 127.0.0.2 read "127.0.0.2", then their 400 kB, byte for byte')
    await until(() => logged(a, 'from', '127.0.0.2').length + logged(b, 'from', '127.0.0.2').length >= 6, 'six `from 127.0.0.2` lines')
    const served = new Set([...logged(a, 'from', '127.0.0.2'), ...logged(b, 'from', '127.0.0.2')])
    t.ok(trips.every((trip) => served.has(trip.port)), 'each is logged under its own address and port, via HAProxy')
    t.ok(logged(a, 'from', '127.0.0.2').length > 0 && logged(b, 'from', '127.0.0.2').length > 0,
      `both instances served some (a ${logged(a, 'from', '127.0.0.2').length}, b ${logged(b, 'from', '127.0.0.2').length})`)

    const denied = await Promise.all(Array.from({ length: 4 }, async () => {
      const socket: Socket = await openFrom(port, '127.0.0.3')
      const own = socket.localPort ?? 0
      const reply = collect(socket)
      socket.end('let me in')
      return { port: own, ...(await reply) }
    }))
    t.same(denied.map((d) => d.data.length), [0, 0, 0, 0], 'clients from 127.0.0.3 get nothing but the close')
    await until(() => logged(a, 'deny', '127.0.0.3').length + logged(b, 'deny', '127.0.0.3').length >= 4, 'four `deny 127.0.0.3` lines')
    t.ok(logged(a, 'deny', '127.0.0.3').length > 0 && logged(b, 'deny', '127.0.0.3').length > 0, 'both instances deny it, by the address in the header')

    for (const [name, instance, header] of [['a', a, v2Tcp('127.0.0.2', '127.0.0.1', 40000, port)], ['b', b, v1('TCP4', '127.0.0.2', '127.0.0.1', 40000, port)]] as const) {
      const plain = await direct(instance, '127.0.0.1', 'hello without a header\n')
      const nonsense = await direct(instance, '127.0.0.1', 'PROXY TCP9 nonsense\r\n')
      const stranger = await direct(instance, '127.0.0.5', header)
      for (const [what, reply] of [['no header', plain], ['PROXY TCP9', nonsense], ['a header from 127.0.0.5', stranger]] as const) {
        t.equal(reply.data.length, 0, `${name}: ${what}: closed unserved`)
      }
      await instance.waitFor(new RegExp(`^warning: dropping connection, bad PROXY header: .+: 127\\.0\\.0\\.1:${plain.port}$`))
      await instance.waitFor(new RegExp(`^warning: dropping connection, bad PROXY header: .+: 127\\.0\\.0\\.1:${nonsense.port}$`))
      await instance.waitFor(new RegExp(`^warning: dropping connection, not a trusted balancer \\(--proxy-from\\): 127\\.0\\.0\\.5:${stranger.port}$`))
      t.pass(`${name}: each is logged as a drop, with its reason`)
    }

    const marks = [a.lines.length, b.lines.length]
    const again = await Promise.all(Array.from({ length: 4 }, () => roundTrip(port, payload.subarray(0, 1024))))
    t.same(failed(again, haproxy), [], 'HAProxy clients are served on')
    await until(() => logged(a, 'from', '127.0.0.2', marks[0]).length > 0 && logged(b, 'from', '127.0.0.2', marks[1]).length > 0, 'both to serve again')
    t.ok(alive(a.pid) && alive(b.pid), 'both instances live on')
    t.same(await stopServer(a), { code: 0, signal: null })
    t.same(await stopServer(b), { code: 0, signal: null })
    t.ok(haproxy.proc.exitCode === null, 'HAProxy ran throughout')
  })

  t.test(`${variant.name}: SIGTERM to one instance while four clients stream through HAProxy: every connection completes, and it exits within its grace`, { skip }, async (t) => {
    const { a, b, haproxy, port } = await cluster(t, variant.args, variant.workers)
    // A client of a that is in the middle of its connection when a is drained.
    const held = await openFrom(a.port)
    const heldReply = collect(held)
    held.write(v2Tcp('127.0.0.2', '127.0.0.1', 40000, port))
    t.equal(await readLine(held), '127.0.0.2', 'a connection straight to a, with a header, is served')

    const payload = randomBytes(64 * 1024)
    let streaming = true
    const trips: Trip[] = []
    const loops = Array.from({ length: 4 }, async () => {
      while (streaming) trips.push(await roundTrip(port, payload))
    })
    await until(() => logged(a, 'from', '127.0.0.2').length >= 3 && logged(b, 'from', '127.0.0.2').length >= 2, 'both instances to serve the stream')

    const signalled = Date.now()
    a.signal('SIGTERM')
    await a.waitFor(/^SIGTERM: draining /)
    held.end('after the SIGTERM')
    const exit = await a.exited
    const took = Date.now() - signalled
    t.same(exit, { code: 0, signal: null }, 'the drained instance exits 0')
    t.ok(took < GRACE_S * 1000, `within its grace of ${GRACE_S} s (${took} ms)`)
    t.same(await heldReply, { data: Buffer.from('127.0.0.2\nafter the SIGTERM'), ended: 'end' }, 'its live connection was served to the end')

    const mark = b.lines.length
    await until(() => logged(b, 'from', '127.0.0.2', mark).length >= 8, 'b to serve eight more after a is gone')
    streaming = false
    await Promise.all(loops)
    t.same(failed(trips, haproxy), [], `not one of ${trips.length} connections failed`)
    t.ok(trips.length >= 12, `the clients streamed on throughout (${trips.length} connections)`)
    t.same(await stopServer(b), { code: 0, signal: null })
    t.ok(haproxy.proc.exitCode === null, 'HAProxy ran throughout')
  })
}
