// The path every connection takes in the process that accepts it, with real
// sockets on loopback: accept, its PROXY header, judge, then serve it (pass),
// or deny or drop it, counted.
import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { Peer, Verdict } from '../../lib/admission/admission.js'
import { Intake, type Accepted, type IntakeCounts } from '../../lib/admission/intake.js'
import type { LogEvent } from '../../lib/log/log.js'
import { parseCidr } from '../../lib/net/cidr.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const setup = async (t: Test, judge: (peer: Peer) => Verdict, proxy: { from: string } | null = null) => {
  const events: LogEvent[] = []
  const passed: Accepted[] = []
  const judged: Peer[] = []
  // Those waiting for the next connection passed on, and for the next one the header step closed.
  const onPass: (() => void)[] = []
  const onClosed: (() => void)[] = []
  const counts: IntakeCounts = { accepted: 0, denied: 0, dropped: 0 }
  const intake = new Intake({
    unixPath: () => null, proxy: proxy && { from: [parseCidr(proxy.from)], timeoutS: 3 }, counts,
    log: (e) => void events.push(e), warn: () => {}, trace: () => {},
    judge: (peer) => (judged.push(peer), judge(peer)),
    pass: (conn) => {
      passed.push(conn)
      onPass.splice(0).forEach((resolve) => resolve())
    },
    closed: () => onClosed.splice(0).forEach((resolve) => resolve()),
  })
  const server = createServer({ pauseOnConnect: true }, (socket) => intake.accept(socket))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const clients: Socket[] = []
  t.teardown(() => {
    for (const c of clients) c.destroy()
    for (const p of passed) p.socket.destroy()
    server.close()
  })
  /** A client that connects and sends `bytes`; resolves once the server has dealt with it (passed it on, or closed it). */
  const client = async (bytes = ''): Promise<Socket> => {
    const socket = connect((server.address() as AddressInfo).port, '127.0.0.1', () => void socket.write(bytes))
    socket.on('error', () => {})
    clients.push(socket)
    await once(socket, 'connect')
    return socket
  }
  const nextPass = (): Promise<void> => new Promise((resolve) => onPass.push(resolve))
  const nextClosed = (): Promise<void> => new Promise((resolve) => onClosed.push(resolve))
  return { intake, events, passed, judged, counts, client, nextPass, nextClosed }
}

t.test('a connection the judge admits is counted, logged as accepted, and passed on with who it is from', async (t) => {
  const { events, passed, judged, counts, client, nextPass } = await setup(t, () => ({ kind: 'admit', step: 'max-children' }))
  const next = nextPass()
  const socket = await client()
  await next
  t.equal(counts.accepted, 1)
  t.match(passed[0]!.info, { id: 1, protocol: 'TCP', remoteAddress: '127.0.0.1', remotePort: socket.localPort })
  t.same(judged, [{ address: '127.0.0.1', unix: false }], 'judged by its address')
  t.match(events, [{ event: 'accept', conn: 1, peer: `127.0.0.1:${socket.localPort}` }])
})

t.test('denied: counted, logged, and closed; dropped: counted, logged with why, and closed', async (t) => {
  let verdict: Verdict = { kind: 'deny', step: 'access' }
  const { events, counts, client } = await setup(t, () => verdict)
  const denied = await client()
  await once(denied, 'close')
  t.equal(counts.denied, 1)
  t.match(events.at(-1), { event: 'deny', conn: 1 })
  verdict = { kind: 'drop', step: 'queue', reason: 'queue full (1 waiting)' }
  const dropped = await client()
  await once(dropped, 'close')
  t.same({ dropped: counts.dropped, queueFull: counts.queueFull }, { dropped: 1, queueFull: 1 }, 'the full queue counts')
  t.match(events.at(-1), { event: 'drop', conn: 2, reason: 'queue full (1 waiting)' })
})

t.test('behind a balancer: a peer not trusted to send a PROXY header is dropped before it is judged', { skip: skipUnlessBuilt() }, async (t) => {
  const { judged, counts, client, events, nextClosed, intake } = await setup(t, () => ({ kind: 'admit', step: 'max-children' }), { from: '10.0.0.0/8' })
  const headerStep = nextClosed()
  const socket = await client('PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n')
  await Promise.all([once(socket, 'close'), headerStep])
  t.same(judged, [], 'never judged')
  t.equal(counts.dropped, 1)
  t.match(events.at(-1), { event: 'drop', reason: 'not a trusted balancer (--proxy-from)' })
  t.equal(intake.pending, 0, 'no header awaited')
})

t.test('behind a balancer: the client its header names is the one judged and passed on', { skip: skipUnlessBuilt() }, async (t) => {
  const { judged, passed, client, nextPass } = await setup(t, () => ({ kind: 'admit', step: 'max-children' }), { from: '127.0.0.0/8' })
  const next = nextPass()
  await client('PROXY TCP4 203.0.113.7 127.0.0.1 40001 7000\r\nhello')
  await next
  t.same(judged, [{ address: '203.0.113.7', unix: false }])
  t.match(passed[0]!.info, { remoteAddress: '203.0.113.7', remotePort: 40001, via: /^127\.0\.0\.1:\d+$/ })
})
