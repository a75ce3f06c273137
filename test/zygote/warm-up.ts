import t from 'tap'
import type { Socket } from 'node:net'
import { loadHandler } from '../../lib/serve/connection.js'
import type { ConnectionInfo, ServeSpec } from '../../lib/protocol.js'
import { SERVICES, type Handler } from '../../lib/serve/services/index.js'
import { WARM_UP_ROUNDS, warmUp } from '../../lib/zygote/warm-up.js'

const spec = (service: string): ServeSpec => ({ service, handler: null, exec: null, logFormat: 'text', idleTimeout: 30 })
const quiet = (): void => {}

// Each built-in service, served for real over loopback: the warm-up ends (chargen never closes on its own).
for (const service of Object.keys(SERVICES)) {
  t.test(`the warm-up serves ${WARM_UP_ROUNDS} connections with ${service} and ends`, async (t) => {
    const handler = await loadHandler(spec(service))
    const seen: { info: ConnectionInfo; bytes: number }[] = []
    const counting: Handler = (socket: Socket, info: ConnectionInfo) => {
      const entry = { info, bytes: 0 }
      seen.push(entry)
      socket.on('data', (chunk: Buffer) => (entry.bytes += chunk.length))
      return handler(socket, info)
    }
    await warmUp(counting, spec(service), quiet)
    t.equal(seen.length, WARM_UP_ROUNDS, 'one handler call per round')
    t.ok(seen.every(({ info }) => info.protocol === 'TCP' && info.remoteAddress === '127.0.0.1' && info.localPort > 0), 'loopback connections')
  })
}

t.test('a service that never closes holds the warm-up up for at most about a second a round', async (t) => {
  const sockets: Socket[] = []
  const silent: Handler = (socket) => void sockets.push(socket)
  await warmUp(silent, spec('echo'), quiet)
  t.equal(sockets.length, WARM_UP_ROUNDS, 'every round connected')
  t.ok(sockets.every((socket) => socket.destroyed), 'each was closed once its client gave up')
})

t.test('a handler that throws ends its round, not the warm-up', async (t) => {
  let calls = 0
  const throwing: Handler = () => {
    calls++
    throw new Error('boom')
  }
  await warmUp(throwing, spec('echo'), quiet)
  t.equal(calls, WARM_UP_ROUNDS)
})
