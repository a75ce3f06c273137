import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import { proxiedInfo } from '../../lib/proxy/proxy-read.js'
import { parseCidr } from '../../lib/net/cidr.js'
import { fdOf } from '../../lib/net/peer-state.js'
import type { ConnectionInfo } from '../../lib/protocol.js'
import { ProxyReader, readProxyHeader, trusted, WarningLimit, type Arrival, type HeaderCalls, type ProxySettings } from '../../lib/proxy/proxy-read.js'
import { loadAddon } from '../../lib/native/addon.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

// The header step over real loopback sockets, accepted paused as the parent
// and the workers accept them, with the real addon's peek, discard and watch.
const skip = skipUnlessBuilt()
const calls = loadAddon().addon as HeaderCalls
const settings: ProxySettings = { from: [parseCidr('127.0.0.1/32')], timeoutS: 3 }

const V1 = 'PROXY TCP4 192.0.2.7 198.51.100.1 40000 443\r\n'
const SIGNATURE = Buffer.from('0d0a0d0a000d0a515549540a', 'hex')
/** A v2 header: command 0 (LOCAL) or 1 (PROXY), TCP over IPv4, with these addresses. */
const v2 = (command: 0 | 1): Buffer =>
  Buffer.concat([SIGNATURE, Buffer.from([0x20 | command, 0x11, 0, 12]), Buffer.from([192, 0, 2, 9, 198, 51, 100, 1, 0x9c, 0x41, 0x01, 0xbb])])

/** A client connected to a paused server socket; everything is closed at the test's end. */
const pair = async (t: Test): Promise<{ client: Socket; accepted: Socket }> => {
  const server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  client.on('error', () => {})
  const [accepted] = (await once(server, 'connection')) as [Socket]
  accepted.on('error', () => {})
  t.teardown(() => {
    accepted.destroy()
    client.destroy()
    server.close()
  })
  return { client, accepted }
}

/** Resolves once `bytes` bytes wait unread on the accepted socket (a peek reads nothing). */
const arrived = async (accepted: Socket, bytes: number): Promise<void> => {
  while ((calls.peek(fdOf(accepted)!, 4096)?.length ?? 0) < bytes) await new Promise((resolve) => setImmediate(resolve))
}

/** What the service reads once the header is gone: everything the client sent after it, to its end. */
const rest = async (accepted: Socket): Promise<string> => {
  let text = ''
  accepted.on('data', (chunk: Buffer) => (text += chunk.toString()))
  accepted.resume()
  await once(accepted, 'end')
  return text
}

const read = (accepted: Socket, options: Partial<ProxySettings> = {}, abort?: AbortSignal): Promise<Arrival> =>
  readProxyHeader(accepted, accepted.remoteAddress ?? null, { ...settings, ...options }, calls, abort)

t.test('a header and data in one write: the client it names, and every byte after it left for the service', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.end(`${V1}hello, after the header`)
  const arrival = await read(accepted)
  t.match(arrival, { kind: 'client', header: { kind: 'proxy', version: 1, source: { address: '192.0.2.7', port: 40000 } } })
  t.equal(await rest(accepted), 'hello, after the header', 'the service reads from the first byte after the header')
})

t.test('a header in two pieces: the first is seen, the watch wakes for the second', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.write(V1.slice(0, 20))
  await arrived(accepted, 20)
  const reading = read(accepted)
  client.end(`${V1.slice(20)}data`)
  t.match(await reading, { kind: 'client', header: { version: 1, destination: { address: '198.51.100.1', port: 443 } } })
  t.equal(await rest(accepted), 'data')
})

t.test('a v2 header before any byte has come: the watch wakes for it', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  const reading = read(accepted)
  client.end(Buffer.concat([v2(1), Buffer.from('v2 data')]))
  t.match(await reading, { kind: 'client', header: { kind: 'proxy', version: 2, source: { address: '192.0.2.9', port: 40001 } } })
  t.equal(await rest(accepted), 'v2 data')
})

t.test("a v2 LOCAL header is the balancer's health check", { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.end(v2(0))
  t.same(await read(accepted), { kind: 'check' })
})

t.test('a connect and close with nothing sent is a health check', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.end()
  t.same(await read(accepted), { kind: 'check' })
})

t.test('a peer that resets before its header is gone, quietly', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  const reading = read(accepted)
  client.resetAndDestroy()
  t.same(await reading, { kind: 'check' })
})

t.test('bytes that are no header are dropped at once, with the reason', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.write('GET / HTTP/1.1\r\n\r\n')
  t.same(await read(accepted), { kind: 'drop', reason: 'bad PROXY header: not a PROXY header' })
})

t.test('part of a header, then the close: cut short', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.write(V1.slice(0, 10))
  await arrived(accepted, 10)
  const reading = read(accepted)
  client.end()
  t.same(await reading, { kind: 'drop', reason: 'bad PROXY header: cut short after 10 bytes' })
})

t.test('part of a header, then silence: dropped at --proxy-timeout', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.write(V1.slice(0, 10))
  const startedAt = Date.now()
  t.same(await read(accepted, { timeoutS: 1 }), { kind: 'drop', reason: 'no PROXY header within 1s' })
  t.ok(Date.now() - startedAt >= 990, 'not before the second is over')
})

t.test('a peer that is not a trusted balancer is dropped without a look at its bytes', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  client.write(V1)
  await arrived(accepted, V1.length)
  t.same(await read(accepted, { from: [parseCidr('10.0.0.0/8')] }), { kind: 'drop', reason: 'not a trusted balancer (--proxy-from)' })
  t.equal(calls.peek(fdOf(accepted)!, 4096)?.toString(), V1, 'its bytes are all still there')
})

t.test('an abort (a drain cut short) ends the wait at once', { skip }, async (t) => {
  const { accepted } = await pair(t)
  const abort = new AbortController()
  const reading = read(accepted, {}, abort.signal)
  abort.abort()
  t.same(await reading, { kind: 'drop', reason: 'shutting down' })
})

t.test('a watch that cannot be set (no descriptor left for its dup) drops the connection, and the server goes on', { skip }, async (t) => {
  const { accepted } = await pair(t)
  const failing: HeaderCalls = { ...calls, whenReadable: () => { throw new Error('dup: Too many open files') } }
  t.same(await readProxyHeader(accepted, '127.0.0.1', settings, failing), { kind: 'drop', reason: 'cannot wait for its PROXY header: dup: Too many open files' })
})

t.test('trusted(): the --proxy-from rules, IPv4-mapped addresses as IPv4, and a Unix-domain peer always', async (t) => {
  t.ok(trusted(settings, '127.0.0.1'))
  t.ok(trusted(settings, '::ffff:127.0.0.1'))
  t.notOk(trusted(settings, '127.0.0.2'))
  t.ok(trusted(settings, null))
})

t.test('proxiedInfo(): the header names the client and its destination, the balancer goes beside them', async (t) => {
  const info: ConnectionInfo = { id: 7, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: 5000, localAddress: '127.0.0.1', localPort: 7000 }
  const tcp = { kind: 'proxy', version: 2, length: 28, tlvs: [] } as const
  t.same(proxiedInfo(info, { ...tcp, family: 'TCP6', source: { address: '::ffff:192.0.2.1', port: 1 }, destination: { address: '2001:DB8::1', port: 2 } }), {
    id: 7, protocol: 'TCP', remoteAddress: '192.0.2.1', remotePort: 1, localAddress: '2001:db8::1', localPort: 2, via: '127.0.0.1:5000',
  })
  t.same(proxiedInfo(info, { ...tcp, family: 'UNIX', source: { address: '/run/a', port: 0 }, destination: { address: '/run/b', port: 0 } }), {
    id: 7, protocol: 'UNIX', remoteAddress: '/run/a', remotePort: 0, localAddress: '/run/b', localPort: 0, via: '127.0.0.1:5000',
  })
  t.same(proxiedInfo(info, { kind: 'unknown', version: 1, length: 15 }), { ...info, via: '127.0.0.1:5000' }, 'UNKNOWN: the connection\'s own')
})

t.test('WarningLimit: five lines a second, then a count of the rest once the second is over', async (t) => {
  const alive = setInterval(() => {}, 1000) // (its own timer is unref'd: it never keeps a process up)
  t.teardown(() => clearInterval(alive))
  const said = new Promise<string>((resolve) => {
    const limit = new WarningLimit(resolve)
    const shown = Array.from({ length: 8 }, () => limit.allow())
    t.same(shown, [true, true, true, true, true, false, false, false])
  })
  t.equal(await said, '3 PROXY header drops not shown')
})

t.test('ProxyReader: counts the headers awaited, and closes and reports what it drops', { skip }, async (t) => {
  const { client, accepted } = await pair(t)
  const dropped: string[] = []
  const reader = new ProxyReader(settings, calls, (socket, reason, info, shown) => {
    dropped.push(`${reason} ${info.id} ${shown}`)
    socket.destroy()
  }, () => {}, () => {})
  const info: ConnectionInfo = { id: 1, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: client.localPort ?? 0, localAddress: '127.0.0.1', localPort: 0 }
  const reading = reader.read(accepted, info)
  t.equal(reader.pending, 1, 'one header awaited')
  client.write('nonsense')
  t.equal(await reading, null, 'closed: no client')
  t.equal(reader.pending, 0)
  t.same(dropped, ['bad PROXY header: not a PROXY header 1 true'])
  t.ok(accepted.destroyed, 'the socket is closed')
})

t.test('ProxyReader: a dozen headers awaited at once raise no listener-leak warning', { skip }, async (t) => {
  const warnings: string[] = []
  const onWarning = (warning: Error): number => warnings.push(warning.name)
  process.on('warning', onWarning)
  t.teardown(() => process.off('warning', onWarning))
  const reader = new ProxyReader(settings, calls, (socket) => socket.destroy(), () => {}, () => {})
  const pairs = await Promise.all(Array.from({ length: 12 }, () => pair(t)))
  const info: ConnectionInfo = { id: 1, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: 0, localAddress: '127.0.0.1', localPort: 0 }
  const reading = pairs.map(({ accepted }) => reader.read(accepted, info))
  t.equal(reader.pending, 12)
  for (const { client } of pairs) client.end()
  t.same(await Promise.all(reading), Array(12).fill(null), 'each a health check, closed')
  await new Promise((resolve) => setImmediate(resolve)) // (a warning is emitted on the next tick)
  t.same(warnings, [], 'no MaxListenersExceededWarning')
})
