// A prefork worker, like an Apache prefork child: it accepts for itself on
// the listening socket it shares with its siblings, and serves many
// connections at once with the same services as a fork-model child. It stops
// accepting when the parent says stop, when it has served
// --max-conns-per-child connections, or when the parent is gone; then it
// finishes the connections it has and exits.
import { createServer, type Socket } from 'node:net'
import { formatHostPort, normalizeAddress } from './address.js'
import { isAllowed, parseCidr } from './cidr.js'
import { loadHandler, runConnection, warn } from './connection.js'
import { errorMessage } from './log.js'
import { ExitStatus, ORPHAN_DEADLINE_S, message, type ConnectionInfo, type Message, type MessageOf } from './protocol.js'
import { sendable } from './raw-handle.js'
import type { Handler } from './services/index.js'
import type { Trace } from './trace.js'

export interface WorkerContext {
  readonly trace: Trace
  readonly exit: (status: ExitStatus, why: string) => void
}

export interface WorkerControls {
  /** The parent said stop. */
  readonly stop: () => void
  /** The parent is gone. */
  readonly parentGone: () => void
}

/** Starts the worker; returns how to stop it. */
export function work({ spec, lend }: MessageOf<'work'>, handle: unknown, { trace, exit }: WorkerContext): WorkerControls {
  const send = (m: Message, h?: object, then?: () => void): void => {
    process.send?.(m, h === undefined ? undefined : sendable(h), undefined, (err) => {
      if (err) trace('send %s: %s', m.type, err.message)
      then?.()
    })
  }
  if (typeof handle !== 'object' || handle === null) {
    exit(ExitStatus.NO_SOCKET, 'no listening socket came with the work message')
    return { stop: () => {}, parentGone: () => {} }
  }
  // The parent closed its own listener after handing it out; it keeps this
  // copy, never polled, to hand to the workers it forks later.
  if (lend) send(message('listener', {}), handle)

  const rules = { allow: spec.allow.map(parseCidr), deny: spec.deny.map(parseCidr) }
  const tally = { served: 0, failed: 0, denied: 0 }
  const live = new Set<Socket>()
  let admitted = 0
  let stopping = false

  const finish = (): void => send(message('tally', { tally }), undefined, () => exit(ExitStatus.OK, 'stopped, nothing left to serve'))

  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    trace('pid %d stops accepting: %s', process.pid, why)
    if (server.listening) server.close()
    if (live.size === 0) finish()
  }

  const accept = (handler: Handler, socket: Socket): void => {
    if (socket.remoteAddress === undefined) return void socket.destroy()
    const info: ConnectionInfo = {
      id: admitted + 1,
      remoteAddress: normalizeAddress(socket.remoteAddress),
      remotePort: socket.remotePort ?? 0,
      localAddress: normalizeAddress(socket.localAddress ?? ''),
      localPort: socket.localPort ?? 0,
    }
    const peer = formatHostPort(info.remoteAddress, info.remotePort)
    if (!isAllowed(rules, info.remoteAddress)) {
      tally.denied++
      if (spec.verbose) process.stderr.write(`deny ${peer}\n`)
      return void socket.destroy()
    }
    admitted++
    if (spec.verbose) process.stderr.write(`pid ${process.pid} from ${peer}\n`)
    live.add(socket)
    if (spec.maxConnsPerChild > 0 && admitted >= spec.maxConnsPerChild) stop(`served ${admitted} connections`)
    void runConnection(socket, info, spec, handler, trace).then((status) => {
      live.delete(socket)
      if (status === ExitStatus.OK) tally.served++
      else tally.failed++
      if (stopping && live.size === 0) finish()
    })
  }

  // Load the service before listening, so that every connection finds it ready.
  const server = createServer({ allowHalfOpen: spec.handler === null })
  loadHandler(spec).then(
    (handler) => {
      if (stopping) return // told to stop before it ever listened; finish() is under way
      server.on('connection', (socket: Socket) => accept(handler, socket))
      server.listen(handle, () => send(message('ready', {})))
    },
    (err: unknown) => {
      warn(`${spec.handler ?? spec.service} failed to load: ${errorMessage(err)}`)
      exit(ExitStatus.FAILED, 'no handler')
    },
  )
  return {
    stop: () => stop('the parent said stop'),
    parentGone: () => {
      stop('the parent is gone')
      const seconds = spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S
      setTimeout(() => {
        for (const socket of live) socket.destroy()
        exit(ExitStatus.ORPHANED, 'parent gone and connections outlived the deadline')
      }, seconds * 1000)
    },
  }
}
