// child.ts: one child, one connection, then exit.
//
// server.ts started this process with child_process.fork. Unlike C's fork(),
// nothing of the parent's memory came along: this is a fresh Node with its own
// heap, and the options were parsed once, by the parent. What the two
// processes share is the IPC channel and, once it arrives, the client's
// socket, passed as a file descriptor. Every path below ends in process.exit.
import { Socket, type SocketConstructorOpts } from 'node:net'
import { pathToFileURL } from 'node:url'
import { errorMessage, sanitize } from './lib/log.js'
import {
  ExitStatus, HANDOFF_TIMEOUT_S, ORPHAN_DEADLINE_S, isServeMessage, takenMessage, type ServeSpec,
} from './lib/protocol.js'
import { SERVICES, isServiceName, type Handler } from './lib/services/index.js'
import { openTrace } from './lib/trace.js'

const trace = await openTrace('child')

const exit = (status: ExitStatus, why: string): void => {
  trace('pid %d exit %d: %s', process.pid, status, why)
  process.exit(status)
}

const warn = (text: string): void => {
  process.stderr.write(`warning: pid ${process.pid}: ${sanitize(text)}\n`)
}

const loadHandler = async (spec: ServeSpec): Promise<Handler> => {
  if (spec.handler !== null) {
    const module: { default?: unknown } = await import(pathToFileURL(spec.handler).href)
    if (typeof module.default !== 'function') throw new Error(`${spec.handler} has no default export function`)
    return module.default as Handler
  }
  if (spec.service !== null && isServiceName(spec.service)) return (await SERVICES[spec.service]()).default
  throw new Error(`unknown service ${String(spec.service)}`)
}

/** What this child is serving, once the parent has sent it. */
let current: { spec: ServeSpec; socket: Socket | null } | null = null

async function serve(message: unknown, handle: unknown): Promise<void> {
  if (!isServeMessage(message)) return exit(ExitStatus.FAILED, 'the parent sent no serve message')
  // The descriptor can be lost in transit (Node then sends the message alone).
  if (typeof handle !== 'object' || handle === null) return exit(ExitStatus.PEER_GONE, 'peer gone before handoff')
  const { info, spec } = message
  current = { spec, socket: null }
  // We hold our own copy of the descriptor: the parent may close its copy.
  process.send?.(takenMessage(), undefined, undefined, (err) => {
    if (err) trace('could not confirm the handoff: %s', err.message)
  })
  const name = spec.handler ?? spec.service
  let handler: Handler
  try {
    handler = await loadHandler(spec)
  } catch (err) {
    warn(`${name} failed to load: ${errorMessage(err)}`)
    return exit(ExitStatus.FAILED, 'no handler')
  }
  // Wrap the raw handle only now that the service is loaded, so that every
  // event, from the first read on, finds its listener. (A net.Socket sent
  // whole would be wrapped and read by Node at once, and a client that had
  // already half-closed would arrive destroyed, its answer lost.) Built-in
  // services handle the half-close themselves; a --handler gets the socket
  // as net.createServer() would give it.
  const socket = new Socket({ handle, allowHalfOpen: spec.handler === null } as SocketConstructorOpts)
  current.socket = socket
  let status: ExitStatus = ExitStatus.OK
  socket.on('error', (err) => {
    status = ExitStatus.FAILED
    trace('socket error: %s', err.message)
  })
  socket.on('close', () => exit(status, 'connection closed'))
  if (spec.idleTimeout > 0) {
    socket.setTimeout(spec.idleTimeout * 1000, () => {
      status = ExitStatus.IDLE
      socket.destroy()
    })
  }
  trace('pid %d serving %s for %s:%d', process.pid, name, info.remoteAddress, info.remotePort)
  try {
    await handler(socket, info)
  } catch (err) {
    warn(`${name} failed: ${errorMessage(err)}`)
    status = ExitStatus.FAILED
    socket.destroy()
  }
}

const waiting = setTimeout(() => exit(ExitStatus.NO_SOCKET, `no socket within ${HANDOFF_TIMEOUT_S}s`), HANDOFF_TIMEOUT_S * 1000)

process.once('message', (message: unknown, handle: unknown) => {
  clearTimeout(waiting)
  void serve(message, handle)
})

// The parent is gone (even SIGKILL closes the channel). Finish the connection,
// but within a bound, so that no child outlives its parent for long.
process.on('disconnect', () => {
  if (current === null) return exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
  const { spec } = current
  const seconds = spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S
  trace('parent gone: %ds left to finish', seconds)
  setTimeout(() => {
    current?.socket?.destroy()
    exit(ExitStatus.ORPHANED, 'parent gone and the connection outlived the deadline')
  }, seconds * 1000)
})

// The channel may have closed while this module was still loading.
if (!process.connected) exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
