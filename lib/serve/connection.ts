// Serving one connection: the same in a fork-model child, which serves one
// and exits, and in a prefork worker, which serves many at once.
import { Socket, type SocketConstructorOpts } from 'node:net'
import { pathToFileURL } from 'node:url'
import { createLog, errorMessage } from '../log/log.js'
import { ExitStatus, type ConnectionInfo, type ServeSpec } from '../protocol.js'
import { SERVICES, isServiceName, type Handler } from './services/index.js'
import type { Trace } from '../log/trace.js'

/** A per-connection failure, from a child: one line in the server's log format, peer text cleaned. */
export const warn = (spec: Pick<ServeSpec, 'logFormat'>, text: string): void =>
  createLog(spec.logFormat, true)({ event: 'warning', message: text, pid: process.pid, child: true })

/** A handler's failure, as the warning names it: `HANDLER failed: ...`, or `HANDLER failed to load: ...`. */
export const handlerFailed = (spec: Pick<ServeSpec, 'handler' | 'service'>, err: unknown, stage: 'failed' | 'failed to load' = 'failed'): string =>
  `${spec.handler ?? spec.service} ${stage}: ${errorMessage(err)}`

/**
 * Whether a connection's socket stays open for writing once the client has
 * ended its side: built-in services handle the half-close themselves; a
 * --handler gets the socket as net.createServer() would give it.
 */
export const allowsHalfOpen = (spec: Pick<ServeSpec, 'handler'>): boolean => spec.handler === null

/** A connection's descriptor (a raw handle, or a bare fd: a zygote's spare), wrapped as the service gets it. */
export const wrapConnection = (from: object | number, spec: Pick<ServeSpec, 'handler'>): Socket => {
  const source = typeof from === 'number' ? { fd: from, readable: true, writable: true } : { handle: from }
  return new Socket({ ...source, allowHalfOpen: allowsHalfOpen(spec) } as SocketConstructorOpts)
}

/** The built-in service or the --handler module, imported on first use. */
export const loadHandler = async (spec: ServeSpec): Promise<Handler> => {
  if (spec.handler !== null) {
    const module: { default?: unknown } = await import(pathToFileURL(spec.handler).href)
    if (typeof module.default !== 'function') throw new Error(`${spec.handler} has no default export function`)
    return module.default as Handler
  }
  if (spec.service !== null && isServiceName(spec.service)) return (await SERVICES[spec.service]()).default
  throw new Error(`unknown service ${String(spec.service)}`)
}

/** Once the handler has ended its side, how long the client has to end its own. */
export const LINGER_MS = 2000

/**
 * The handler has ended its side (its writes are flushed), so the connection
 * is over once the client ends too. But what the client sent and the handler
 * never read stays buffered, and a stream that is not read never reaches its
 * end: no 'end', so no 'close', and the child would wait for ever. So read
 * and discard up to the client's FIN, as a lingering close does; then the
 * socket closes itself. A client that never ends is cut off after LINGER_MS.
 * (A handler that still reads, with 'data' or 'readable', reads on.)
 */
const linger = (socket: Socket): void => {
  socket.resume()
  const timer = setTimeout(() => socket.destroy(), LINGER_MS)
  socket.once('close', () => clearTimeout(timer))
}

/**
 * Runs the handler on the socket and resolves, once the socket has closed,
 * with how the connection ended. Listeners go on before the handler runs, so
 * that no event of the socket's is missed. `alone`: this process serves only
 * this connection (a fork-model child).
 */
export const runConnection = (socket: Socket, info: ConnectionInfo, spec: ServeSpec, handler: Handler, trace: Trace, alone = false): Promise<ExitStatus> =>
  new Promise((resolve) => {
    let status: ExitStatus = ExitStatus.OK
    socket.on('error', (err) => {
      status = ExitStatus.FAILED
      trace('connection %d: %s', info.id, err.message)
    })
    socket.on('close', () => resolve(status))
    socket.once('finish', () => linger(socket))
    if (spec.idleTimeout > 0) {
      socket.setTimeout(spec.idleTimeout * 1000, () => {
        status = ExitStatus.IDLE
        socket.destroy()
      })
    }
    const fail = (err: unknown): void => {
      warn(spec, handlerFailed(spec, err))
      status = ExitStatus.FAILED
      socket.destroy()
    }
    // A throw from one of the handler's own callbacks (an event listener, a
    // timer) reaches no caller, and Node would print its stack raw, with
    // whatever the client sent in it. In a child of its own, it ends the
    // connection as a throw from the handler does: one warning, status 1.
    if (alone) process.on('uncaughtException', fail)
    trace('pid %d serving %s for %s:%d', process.pid, spec.handler ?? spec.service, info.remoteAddress, info.remotePort)
    try {
      Promise.resolve(handler(socket, info)).catch(fail)
    } catch (err) {
      fail(err)
    }
  })

// An orphan's deadline. A process that serves connections and finds its
// parent gone (even SIGKILL closes the IPC channel) finishes what it serves,
// but within a bound: --idle-timeout, or ORPHAN_DEADLINE_S when that is off.
// Then what is left is ended. The same for a spawned child, for a zygote's
// children (the zygote's, or each child's own once the zygote is gone too),
// and for a prefork worker.

/** Seconds an orphaned child may keep its connection when --idle-timeout is off. */
export const ORPHAN_DEADLINE_S = 60

/** Seconds an orphaned child may go on serving: --idle-timeout, or the deadline when that is off. */
export const orphanSeconds = (spec: Pick<ServeSpec, 'idleTimeout'>): number => (spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S)

/**
 * Calls `end` at the orphan deadline, counted from now, and returns its
 * seconds (for the trace). `unref`: the timer alone does not keep the
 * process alive (a child whose connection ends first exits at once).
 */
export const atOrphanDeadline = (spec: Pick<ServeSpec, 'idleTimeout'>, end: () => void, { unref = false } = {}): number => {
  const seconds = orphanSeconds(spec)
  const timer = setTimeout(end, seconds * 1000)
  if (unref) timer.unref()
  return seconds
}
