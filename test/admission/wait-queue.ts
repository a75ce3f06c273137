import { once } from 'node:events'
import { createServer, connect, type AddressInfo, type Socket } from 'node:net'
import t, { type Test } from 'tap'
import type { ConnectionInfo } from '../../lib/protocol.js'
import type { Accepted } from '../../lib/admission/intake.js'
import { WaitQueue } from '../../lib/admission/wait-queue.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

// Real paused sockets from a real listener, as the parent holds them.
const accepted = async (t: Test, n: number): Promise<{ waiting: Accepted[]; clients: Socket[] }> => {
  const server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as AddressInfo).port
  const waiting: Accepted[] = []
  const clients: Socket[] = []
  for (let id = 1; id <= n; id++) {
    clients.push(connect(port, '127.0.0.1'))
    const [socket] = (await once(server, 'connection')) as [Socket]
    const info: ConnectionInfo = {
      id, protocol: 'TCP', remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '', localPort: socket.localPort ?? 0,
    }
    waiting.push({ socket, info, acceptedAt: Date.now() })
  }
  t.teardown(() => {
    for (const w of waiting) w.socket.destroy()
    for (const c of clients) c.destroy()
    server.close()
  })
  return { waiting, clients }
}

t.test('first in, first out, up to the limit', async (t) => {
  const { waiting } = await accepted(t, 3)
  const queue = new WaitQueue(2, () => t.fail('nobody left'))
  t.ok(queue.push(waiting[0]!))
  t.ok(queue.push(waiting[1]!))
  t.notOk(queue.push(waiting[2]!), 'full')
  t.equal(queue.size, 2)
  t.equal(queue.countFrom('127.0.0.1'), 2)
  t.equal(queue.shift(), waiting[0])
  t.equal(queue.shift(), waiting[1])
  t.equal(queue.shift(), undefined)
})

t.test('a socket closed while waiting leaves the queue', async (t) => {
  const { waiting } = await accepted(t, 2)
  const queue = new WaitQueue(5, () => {})
  queue.push(waiting[0]!)
  queue.push(waiting[1]!)
  waiting[0]!.socket.destroy()
  await once(waiting[0]!.socket, 'close')
  t.equal(queue.size, 1)
  t.equal(queue.shift(), waiting[1])
})

t.test('drain takes everyone', async (t) => {
  const { waiting } = await accepted(t, 2)
  const queue = new WaitQueue(5, () => {})
  waiting.forEach((w) => queue.push(w))
  t.same(queue.drain(), waiting)
  t.equal(queue.size, 0)
})

for (const [how, addon, skip] of [
  ['by asking each socket (the addon)', undefined, skipUnlessBuilt()],
  ['by reading the host\'s table, without the addon', null, process.platform !== 'linux' && 'needs /proc'],
] as const) t.test(`a client that goes away while waiting is noticed and removed, ${how}`, { skip }, async (t) => {
  const { waiting, clients } = await accepted(t, 2)
  const left = new Promise<Accepted>((resolve) => {
    const queue = new WaitQueue(5, resolve, addon)
    waiting.forEach((w) => queue.push(w))
    t.teardown(() => queue.drain())
  })
  clients[0]!.end()
  const gone = await left
  t.equal(gone, waiting[0], 'the one that closed')
  t.ok(gone.socket.destroyed, 'its socket is closed')
})

t.test('a client that reset is passed over as the queue hands out the next, with no sweep needed; one that only closed its side is not', { skip: skipUnlessBuilt() }, async (t) => {
  const { waiting, clients } = await accepted(t, 3)
  const left: Accepted[] = []
  const queue = new WaitQueue(5, (w) => left.push(w))
  waiting.forEach((w) => queue.push(w))
  t.teardown(() => queue.drain())
  clients[0]!.resetAndDestroy()
  clients[1]!.end()
  await Promise.all([once(clients[0]!, 'close'), once(clients[1]!, 'finish')])
  t.equal(queue.shift(), waiting[1], 'the one that closed its side with nothing sent: it may want an answer')
  t.same(left, [waiting[0]], 'the one that reset, told')
  t.ok(waiting[0]!.socket.destroyed, 'its socket is closed')
  t.equal(queue.shift(), waiting[2])
})

for (const [how, addon, skip] of [
  ['by asking each socket (the addon)', undefined, skipUnlessBuilt()],
  ['by reading the host\'s table, without the addon', null, process.platform !== 'linux' && 'needs /proc'],
] as const) t.test(`a client that closed its side with nothing sent keeps its place while the parent says it may want an answer, ${how}`, { skip }, async (t) => {
  const { waiting, clients } = await accepted(t, 2)
  let closedLeft = false
  const left: Accepted[] = []
  const gone = new Promise<void>((resolve) => {
    const queue = new WaitQueue(5, (w) => {
      left.push(w)
      resolve()
    }, addon, () => closedLeft)
    waiting.forEach((w) => queue.push(w))
    t.teardown(() => queue.drain())
  })
  clients[0]!.end()
  clients[1]!.resetAndDestroy()
  await gone
  t.same(left, [waiting[1]], 'the one that reset has left; the one that only closed its side has not')
  // Now the parent is at --max-children: a closed client is taken to have left.
  closedLeft = true
  while (left.length < 2) await new Promise((resolve) => setTimeout(resolve, 50))
  t.same(left, [waiting[1], waiting[0]], 'then the one that closed its side leaves too')
})
