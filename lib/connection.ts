// Serving one connection: the same in a fork-model child, which serves one
// and exits, and in a prefork worker, which serves many at once.
import type { Socket } from 'node:net'
import { pathToFileURL } from 'node:url'
import { createLog, errorMessage } from './log.js'
import { ExitStatus, type ConnectionInfo, type ServeSpec } from './protocol.js'
import { SERVICES, isServiceName, type Handler } from './services/index.js'
import type { Trace } from './trace.js'

/** A per-connection failure, from a child: one line in the server's log format, peer text cleaned. */
export const warn = (spec: Pick<ServeSpec, 'logFormat'>, text: string): void =>
  createLog(spec.logFormat, true)({ event: 'warning', message: text, pid: process.pid, child: true })

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

/**
 * Runs the handler on the socket and resolves, once the socket has closed,
 * with how the connection ended. Listeners go on before the handler runs, so
 * that no event of the socket's is missed.
 */
export const runConnection = (socket: Socket, info: ConnectionInfo, spec: ServeSpec, handler: Handler, trace: Trace): Promise<ExitStatus> =>
  new Promise((resolve) => {
    let status: ExitStatus = ExitStatus.OK
    socket.on('error', (err) => {
      status = ExitStatus.FAILED
      trace('connection %d: %s', info.id, err.message)
    })
    socket.on('close', () => resolve(status))
    if (spec.idleTimeout > 0) {
      socket.setTimeout(spec.idleTimeout * 1000, () => {
        status = ExitStatus.IDLE
        socket.destroy()
      })
    }
    const fail = (err: unknown): void => {
      warn(spec, `${spec.handler ?? spec.service} failed: ${errorMessage(err)}`)
      status = ExitStatus.FAILED
      socket.destroy()
    }
    trace('pid %d serving %s for %s:%d', process.pid, spec.handler ?? spec.service, info.remoteAddress, info.remotePort)
    try {
      Promise.resolve(handler(socket, info)).catch(fail)
    } catch (err) {
      fail(err)
    }
  })
