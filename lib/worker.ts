// A prefork worker, like an Apache prefork child: it accepts for itself on
// the listening socket it shares with its siblings, and serves many
// connections at once with the same services as a fork-model child. It stops
// accepting when the parent says stop, when it has served
// --max-conns-per-child connections, or when the parent is gone; then it
// finishes the connections it has and exits.
import { createServer, type Socket } from 'node:net'
import { connectionInfo, peerOf } from './address.js'
import { isAllowed, parseCidr } from './cidr.js'
import { loadHandler, runConnection, warn } from './connection.js'
import { runProgram, type ProgramExit } from './exec.js'
import { createLog, errorMessage } from './log.js'
import { ExitStatus, ORPHAN_DEADLINE_S, message, type ConnectionInfo, type Message, type MessageOf } from './protocol.js'
import { sendable } from './raw-handle.js'
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
  /** The parent asks for the counts so far (SIGUSR1). */
  readonly report: () => void
}

/** Serves one connection; resolves with how it ended: a service's ExitStatus, or an --exec program's exit. */
type Serve = (socket: Socket, info: ConnectionInfo) => Promise<ProgramExit>

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
    return { stop: () => {}, parentGone: () => {}, report: () => {} }
  }
  // The parent closed its own listener after handing it out; it keeps this
  // copy, never polled, to hand to the workers it forks later.
  if (lend) send(message('listener', {}), handle)

  const rules = { allow: spec.allow.map(parseCidr), deny: spec.deny.map(parseCidr) }
  const tally = { accepted: 0, served: 0, failed: 0, denied: 0 }
  const log = createLog(spec.logFormat, spec.verbose)
  const live = new Set<Socket>()
  let admitted = 0
  let stopping = false
  const path = spec.unixPath

  const finish = (): void => send(message('tally', { tally }), undefined, () => exit(ExitStatus.OK, 'stopped, nothing left to serve'))

  const stop = (why: string): void => {
    if (stopping) return
    stopping = true
    trace('pid %d stops accepting: %s', process.pid, why)
    if (server.listening) server.close()
    if (live.size === 0) finish()
  }

  const accept = (serve: Serve, socket: Socket): void => {
    if (path === null && socket.remoteAddress === undefined) return void socket.destroy() // the peer is gone
    const acceptedAt = Date.now()
    const info = connectionInfo(socket, ++tally.accepted, path)
    const peer = peerOf(info)
    const { pid } = process
    log({ event: 'accept', conn: info.id, peer, pid })
    if (path === null && !isAllowed(rules, info.remoteAddress)) {
      tally.denied++
      log({ event: 'deny', conn: info.id, peer, pid })
      return void socket.destroy()
    }
    admitted++
    log({ event: 'from', pid, peer })
    live.add(socket)
    if (spec.maxConnsPerChild > 0 && admitted >= spec.maxConnsPerChild) stop(`served ${admitted} connections`)
    void serve(socket, info).then(({ code, signal }) => {
      live.delete(socket)
      if (code === ExitStatus.OK) tally.served++
      else tally.failed++
      // A connection's end, not a process's: JSON only (the text `end` line is for processes).
      if (spec.logFormat === 'json') {
        log({ event: 'end', conn: info.id, pid, peer, handoffMs: null, endMs: Date.now() - acceptedAt, code, signal })
      }
      if (stopping && live.size === 0) finish()
    })
  }

  // An orphan's programs are killed at its deadline, with its connections.
  const orphaned = new AbortController()
  // With --exec, a program per connection; else the service or handler,
  // loaded before listening, so that every connection finds it ready.
  const prepared: Promise<Serve> =
    spec.exec !== null
      ? Promise.resolve((socket, info) => runProgram(socket, info, spec, trace, { stop: orphaned.signal }))
      : loadHandler(spec).then((handler) => async (socket, info) => ({ code: await runConnection(socket, info, spec, handler, trace), signal: null }))
  // --exec: accepted paused, for the program, not this process, to read.
  const server = createServer({ allowHalfOpen: spec.handler === null, pauseOnConnect: spec.exec !== null })
  prepared.then(
    (serve) => {
      if (stopping) return // told to stop before it ever listened; finish() is under way
      server.on('connection', (socket: Socket) => accept(serve, socket))
      server.listen(handle, () => send(message('ready', {})))
    },
    (err: unknown) => {
      warn(spec, `${spec.handler ?? spec.service} failed to load: ${errorMessage(err)}`)
      exit(ExitStatus.FAILED, 'no handler')
    },
  )
  return {
    stop: () => stop('the parent said stop'),
    report: () => send(message('tally', { tally })),
    parentGone: () => {
      stop('the parent is gone')
      const seconds = spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S
      setTimeout(() => {
        orphaned.abort()
        for (const socket of live) socket.destroy()
        exit(ExitStatus.ORPHANED, 'parent gone and connections outlived the deadline')
      }, seconds * 1000)
    },
  }
}
