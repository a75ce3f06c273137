// A prefork worker, like an Apache prefork child: it accepts for itself on
// the listening socket it shares with its siblings, and serves many
// connections at once with the same services as a fork-model child. It stops
// accepting when the parent says stop, when it has served
// --max-conns-per-child connections, or when the parent is gone; then it
// finishes the connections it has and exits.
import { createServer, Socket, type Server, type SocketConstructorOpts } from 'node:net'
import { connectionInfo, judgedByAddress, peerOf } from '../net/address.js'
import { isAllowed, parseCidr, type AccessRules } from '../net/cidr.js'
import { loadHandler, runConnection, warn } from './connection.js'
import { runProgram, type ProgramExit } from './exec.js'
import { takeBacklog } from '../net/listen.js'
import { createLog, errorMessage, type Log } from '../log/log.js'
import { LogWriter } from '../log/log-writer.js'
import { ExitStatus, message, orphanSeconds, type ConnectionInfo, type Message, type MessageOf, type WorkSpec } from '../protocol.js'
import { headerCalls, ProxyReader } from '../proxy/proxy-read.js'
import { rawHandle, sendable, type RawHandle } from '../net/raw-handle.js'
import type { Trace } from '../log/trace.js'
import { loadAddon } from '../native/addon.js'

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

/**
 * With --exec, a program per connection; else the service or handler,
 * loaded before listening, so that every connection finds it ready.
 */
const prepareServe = (spec: WorkSpec, trace: Trace, orphaned: AbortSignal): Promise<Serve> =>
  spec.exec !== null
    ? Promise.resolve((socket, info) => runProgram(socket, info, spec, trace, { stop: orphaned }))
    : loadHandler(spec).then((handler) => async (socket, info) => ({ code: await runConnection(socket, info, spec, handler, trace), signal: null }))

/** Starts the worker; returns how to stop it. */
export function work({ spec, lend }: MessageOf<'work'>, handle: unknown, context: WorkerContext): WorkerControls {
  if (typeof handle !== 'object' || handle === null) {
    context.exit(ExitStatus.NO_SOCKET, 'no listening socket came with the work message')
    return { stop: () => {}, parentGone: () => {}, report: () => {} }
  }
  const worker = new PreforkWorker(spec, context)
  // The parent closed its own listener after handing it out; it keeps this
  // copy, never polled, to hand to the workers it forks later.
  if (lend) worker.send(message('listener', {}), handle)
  worker.listen(handle)
  return {
    stop: () => worker.stop('the parent said stop'),
    report: () => worker.report(),
    parentGone: () => worker.orphan(),
  }
}

/** A worker's state: its server, the connections it serves, and its counts. */
class PreforkWorker {
  private readonly tally = { accepted: 0, served: 0, failed: 0, denied: 0, dropped: 0 }
  private readonly rules: AccessRules
  private readonly log: Log
  /** --proxy-protocol: reads each connection's PROXY header first; null when off. */
  private readonly proxy: ProxyReader | null
  private readonly live = new Set<Socket>()
  /** An orphan's programs are killed at its deadline, with its connections. */
  private readonly orphaned = new AbortController()
  private readonly server: Server
  /** Accepted paused: for an --exec program to read, or for a PROXY header to be read by a peek. */
  private readonly paused: boolean
  private admitted = 0
  private stopping = false
  /** How each connection is served, once loaded (the backlog taken at a stop needs it too). */
  private serve: Serve | null = null

  constructor(
    private readonly spec: WorkSpec,
    private readonly context: WorkerContext,
  ) {
    this.rules = { allow: spec.allow.map(parseCidr), deny: spec.deny.map(parseCidr) }
    // It accepts: like the parent, it must not stop for a stderr nobody reads (what waits at its exit is lost).
    const writer = new LogWriter(2, (dropped) => this.log({ event: 'warning', message: `stderr was not read: ${dropped} log lines dropped`, pid: process.pid }))
    this.log = createLog(spec.logFormat, spec.verbose, writer.write)
    const { proxy } = spec
    this.proxy = proxy && new ProxyReader({ from: proxy.from.map(parseCidr), timeoutS: proxy.timeoutS }, headerCalls(), (socket, reason, info, shown) => {
      this.tally.dropped++
      if (shown) this.log({ event: 'drop', conn: info.id, peer: peerOf(info), reason, pid: process.pid })
      socket.destroy()
    }, (text) => this.log({ event: 'warning', message: text, pid: process.pid }), context.trace)
    this.paused = spec.exec !== null || proxy !== null
    this.server = createServer({ allowHalfOpen: spec.handler === null, pauseOnConnect: this.paused })
  }

  /** Sends a message to the parent, with a handle if given; a failure is only traced. */
  send(m: Message, h?: object, then?: () => void): void {
    process.send?.(m, h === undefined ? undefined : sendable(h), undefined, (err) => {
      if (err) this.context.trace('send %s: %s', m.type, err.message)
      then?.()
    })
  }

  /** Prepares the service, then accepts on the shared listening socket. */
  listen(handle: object): void {
    const { spec, server } = this
    prepareServe(spec, this.context.trace, this.orphaned.signal).then(
      (serve) => {
        this.serve = serve
        process.on('uncaughtException', (err) => this.crash(err))
        // Told to stop while it loaded: it never listens, but serves what queued on the listener meanwhile.
        if (this.stopping) return this.close(handle as RawHandle)
        server.on('connection', (socket: Socket) => this.accept(serve, socket))
        server.listen(handle, () => this.send(message('ready', {})))
      },
      (err: unknown) => {
        warn(spec, `${spec.handler ?? spec.service} failed to load: ${errorMessage(err)}`)
        this.context.exit(ExitStatus.FAILED, 'no handler')
      },
    )
  }

  /**
   * A throw from a handler's own callbacks (an event listener, a timer)
   * reaches no caller, and no connection can be told to be its cause: the
   * worker ends, as Node would end it, and every connection it held with it.
   * But it says so in one warning line (Node would print the raw stack, with
   * whatever a client sent in it), and counts them as failed first.
   */
  private crash(err: unknown): void {
    const { spec, live, tally } = this
    this.log({ event: 'warning', message: `${spec.handler ?? spec.service} failed: ${errorMessage(err)}; the worker ends, with its ${live.size} connections`, pid: process.pid, child: true })
    tally.failed += live.size
    live.clear()
    this.report(() => this.context.exit(ExitStatus.FAILED, 'a handler threw'))
  }

  /** Sends the counts so far. */
  report(then?: () => void): void {
    this.send(message('tally', { tally: this.tally }), undefined, then)
  }

  stop(why: string): void {
    if (this.stopping) return
    this.stopping = true
    this.context.trace('pid %d stops accepting: %s', process.pid, why)
    // (Still loading, it closes the listener once it can serve: listen() above.)
    if (this.serve !== null) this.close(rawHandle(this.server))
  }

  /**
   * Stops accepting for good. What waits in the backlog has connected, so it
   * is accepted and served first: the last worker's close would reset it.
   */
  private close(listener: RawHandle): void {
    const { server, serve, spec } = this
    if (serve !== null) for (const socket of takeBacklog(listener, loadAddon().addon, this.paused, spec.handler === null)) this.accept(serve, socket)
    if (server.listening) server.close()
    else listener.close()
    if (this.live.size === 0) this.finish()
  }

  /** The parent is gone: stop, and give the connections until the orphan deadline. */
  orphan(): void {
    this.stop('the parent is gone')
    const seconds = orphanSeconds(this.spec)
    setTimeout(() => {
      this.orphaned.abort()
      for (const socket of this.live) socket.destroy()
      this.context.exit(ExitStatus.ORPHANED, 'parent gone and connections outlived the deadline')
    }, seconds * 1000)
  }

  /** Takes one connection; behind a balancer, its PROXY header first says whose it is. */
  private accept(serve: Serve, socket: Socket): void {
    const { spec, tally, live } = this
    const path = spec.unixPath
    if (path === null && socket.remoteAddress === undefined) return void socket.destroy() // the peer is gone
    const acceptedAt = Date.now()
    const info = connectionInfo(socket, ++tally.accepted, path)
    if (this.proxy === null) return this.admit(serve, socket, info, acceptedAt)
    live.add(socket) // (a drain waits for its header too)
    void this.proxy.read(socket, info).then((real) => {
      live.delete(socket)
      if (real === null) return void (this.stopping && live.size === 0 && this.finish())
      // Accepted paused for the peek: a service's socket is wrapped afresh, as accept() would give it (so does child.ts).
      const fresh = spec.exec === null ? new Socket({ handle: rawHandle(socket), allowHalfOpen: spec.handler === null } as SocketConstructorOpts) : socket
      this.admit(serve, fresh, real, acceptedAt)
    })
  }

  /** Admits one connection, or turns it away, and serves it. */
  private admit(serve: Serve, socket: Socket, info: ConnectionInfo, acceptedAt: number): void {
    const { spec, tally, log, live } = this
    const peer = peerOf(info)
    const { pid } = process
    log({ event: 'accept', conn: info.id, peer, pid })
    if (judgedByAddress(info) && !isAllowed(this.rules, info.remoteAddress)) {
      tally.denied++
      log({ event: 'deny', conn: info.id, peer, pid })
      return void socket.destroy()
    }
    this.admitted++
    log({ event: 'from', pid, peer })
    live.add(socket)
    if (spec.maxConnsPerChild > 0 && this.admitted >= spec.maxConnsPerChild) this.stop(`served ${this.admitted} connections`)
    void serve(socket, info).then(({ code, signal }) => {
      if (!live.delete(socket)) return // counted already: the worker crashed
      if (code === ExitStatus.OK) tally.served++
      else tally.failed++
      // A connection's end, not a process's: JSON only (the text `end` line is for processes).
      if (spec.logFormat === 'json') {
        log({ event: 'end', conn: info.id, pid, peer, handoffMs: null, endMs: Date.now() - acceptedAt, code, signal })
      }
      if (this.stopping && live.size === 0) this.finish()
    })
  }

  /** Nothing left to serve: the last counts, then exit. */
  private finish(): void {
    this.report(() => this.context.exit(ExitStatus.OK, 'stopped, nothing left to serve'))
  }
}
