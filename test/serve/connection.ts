import { once } from 'node:events'
import { connect, createServer, type AddressInfo, type Socket } from 'node:net'
import t from 'tap'
import { rawHandle } from '../../lib/net/raw-handle.js'
import { allowsHalfOpen, atOrphanDeadline, handlerFailed, loadHandler, ORPHAN_DEADLINE_S, orphanSeconds, wrapConnection } from '../../lib/serve/connection.js'

t.test("a handler's failure is named by the handler, or else by the service", async (t) => {
  t.equal(handlerFailed({ handler: '/srv/h.js', service: null }, new Error('boom')), '/srv/h.js failed: boom')
  t.equal(handlerFailed({ handler: null, service: 'echo' }, 'odd', 'failed to load'), 'echo failed to load: odd')
})

t.test('a built-in service keeps its side open after the client ends its own; a --handler gets what net.createServer gives', async (t) => {
  t.ok(allowsHalfOpen({ handler: null }))
  t.notOk(allowsHalfOpen({ handler: '/srv/h.js' }))
  const server = createServer({ pauseOnConnect: true })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const client = connect((server.address() as AddressInfo).port, '127.0.0.1')
  const [accepted] = (await once(server, 'connection')) as [Socket]
  t.teardown(() => {
    client.destroy()
    accepted.destroy()
    server.close()
  })
  const socket = wrapConnection(rawHandle(accepted), { handler: null })
  t.equal(socket.allowHalfOpen, true, 'wrapped around the same descriptor, half-open allowed')
})

t.test('a handler module must export a function; an unknown service is refused', async (t) => {
  await t.rejects(loadHandler({ service: null, handler: new URL('../fixtures/handlers/no-default.js', import.meta.url).pathname, exec: null, idleTimeout: 0, logFormat: 'text' }), /has no default export function/)
  await t.rejects(loadHandler({ service: 'gopher', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' }), /unknown service gopher/)
  t.type(await loadHandler({ service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' }), 'function')
})

t.test('an orphan has --idle-timeout to finish, or the deadline when that is off', async (t) => {
  t.equal(orphanSeconds({ idleTimeout: 0 }), ORPHAN_DEADLINE_S)
  t.equal(ORPHAN_DEADLINE_S, 60)
  t.equal(orphanSeconds({ idleTimeout: 7 }), 7)
})

t.test('what ends an orphan runs at its deadline, counted from when its parent went', async (t) => {
  const began = Date.now()
  const ended = new Promise<number>((resolve) => t.equal(atOrphanDeadline({ idleTimeout: 1 }, () => resolve(Date.now() - began)), 1, 'its seconds, for the trace'))
  t.ok((await ended) >= 950, 'a second later')
})
