// Warming the zygote up: before its first fork, the zygote serves a few
// connections of its own over loopback with the service it will fork for.
// V8 compiles a function the first time it runs, and a child forked from a
// cold zygote would compile the whole socket path (Socket, the stream
// machinery, the service) in its own heap, copying every page it writes
// (copy-on-write). Compiled once here, that code is shared by every child.
//
// Only the built-in services are run: they have no effects outside their
// connection. A --handler is the user's code, and running it in the zygote
// could do what the user meant to happen once per client (count, log,
// write a file); its children still share the warmed socket path.
import { createServer, connect, type Socket } from 'node:net'
import { once } from 'node:events'
import { allowsHalfOpen, runConnection } from '../serve/connection.js'
import type { ConnectionInfo, ServeSpec } from '../protocol.js'
import type { Handler } from '../serve/services/index.js'
import type { Trace } from '../log/trace.js'

/** Connections served in the warm-up: enough for V8 to compile the path and fill its inline caches. */
export const WARM_UP_ROUNDS = 4
/** A client reads at most this much (chargen never stops on its own). */
const ENOUGH = 4096
/** A client waits at most this long for the service to close (a warm-up must never hold the zygote up). */
const PATIENCE_MS = 1000
const PAYLOAD = Buffer.alloc(64, 'w')

/** Serves WARM_UP_ROUNDS loopback connections with the handler; never throws. */
export const warmUp = async (handler: Handler, spec: ServeSpec, trace: Trace): Promise<void> => {
  // No idle timeout, no log lines: a warm-up connection is not a client's.
  const quiet: ServeSpec = { ...spec, idleTimeout: 0 }
  const served: Promise<unknown>[] = []
  const open = new Set<Socket>()
  const server = createServer({ allowHalfOpen: allowsHalfOpen(spec) }, (socket) => {
    open.add(socket)
    socket.on('close', () => open.delete(socket))
    served.push(runConnection(socket, infoOf(socket), quiet, handler, trace))
  })
  try {
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    if (address === null || typeof address === 'string') return
    for (let round = 0; round < WARM_UP_ROUNDS; round++) {
      await talk(address.port)
      // Its client is gone: a service still holding its side (half-open) is done with too.
      for (const socket of open) socket.destroy()
    }
    await Promise.all(served)
  } catch (err) {
    trace('zygote warm-up stopped: %s', err instanceof Error ? err.message : String(err))
  } finally {
    server.close()
  }
}

/** One client: sends a line, ends, reads until the service closes or has sent enough. */
const talk = (port: number): Promise<void> =>
  new Promise((resolve) => {
    let received = 0
    const client = connect(port, '127.0.0.1', () => client.end(PAYLOAD))
    client.on('data', (chunk: Buffer) => {
      received += chunk.length
      if (received >= ENOUGH) client.destroy()
    })
    client.setTimeout(PATIENCE_MS, () => client.destroy())
    client.on('error', () => client.destroy())
    client.on('close', () => resolve())
  })

const infoOf = (socket: Socket): ConnectionInfo => ({
  id: 0,
  protocol: 'TCP',
  remoteAddress: socket.remoteAddress ?? '127.0.0.1',
  remotePort: socket.remotePort ?? 0,
  localAddress: socket.localAddress ?? '127.0.0.1',
  localPort: socket.localPort ?? 0,
})
