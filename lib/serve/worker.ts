// A prefork worker, like an Apache prefork child: it accepts for itself on
// the listening socket it shares with its siblings, and serves many
// connections at once with the same services as a fork-model child. Each
// connection takes the same path as in the parent (lib/admission/intake.ts),
// judged by the access rules alone. It stops accepting when the parent says
// stop, when it has served --max-conns-per-child connections, or when the
// parent is gone; then it finishes the connections it has and exits.
import { createServer, type Server, type Socket } from 'node:net'
import { judgeAccess } from '../admission/admission.js'
import { Intake, type Accepted } from '../admission/intake.js'
import { createLog, type Log } from '../log/log.js'
import { LogWriter } from '../log/log-writer.js'
import type { Trace } from '../log/trace.js'
import { loadAddon } from '../native/addon.js'
import { peerOf } from '../net/address.js'
import { parseCidr, type AccessRules } from '../net/cidr.js'
import { takeBacklog } from '../net/listen.js'
import { rawHandle, sendable, type RawHandle } from '../net/raw-handle.js'
import { ExitStatus, message, type ConnectionInfo, type Message, type MessageOf, type WorkSpec } from '../protocol.js'
import { allowsHalfOpen, atOrphanDeadline, handlerFailed, loadHandler, runConnection, warn, wrapConnection } from './connection.js'
import { runProgram, type ProgramExit } from './exec.js'

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
  /** accept → PROXY header → judge: as in the parent. */
  private readonly intake: Intake
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
    const warning = (text: string): void => this.log({ event: 'warning', message: text, pid: process.pid })
    // It accepts: like the parent, it must not stop for a stderr nobody reads (what waits at its exit is lost).
    const writer = new LogWriter(2, (dropped) => warning(`stderr was not read: ${dropped} log lines dropped`))
    this.log = createLog(spec.logFormat, spec.verbose, writer.write)
    const { proxy } = spec
    this.intake = new Intake({
      unixPath: () => spec.unixPath, proxy: proxy && { from: proxy.from.map(parseCidr), timeoutS: proxy.timeoutS },
      counts: this.tally, log: this.log, warn: warning, trace: context.trace,
      judge: (peer) => judgeAccess(this.rules, peer),
      pass: (conn) => this.admit(conn),
      closed: () => this.finishIfIdle(),
    })
    this.paused = spec.exec !== null || proxy !== null
    this.server = createServer({ allowHalfOpen: allowsHalfOpen(spec), pauseOnConnect: this.paused })
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
        server.on('connection', (socket: Socket) => this.intake.accept(socket))
        server.listen(handle, () => this.send(message('ready', {})))
      },
      (err: unknown) => {
        warn(spec, handlerFailed(spec, err, 'failed to load'))
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
    this.log({ event: 'warning', message: `${handlerFailed(spec, err)}; the worker ends, with its ${live.size} connections`, pid: process.pid, child: true })
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
    const { server, spec } = this
    for (const socket of takeBacklog(listener, loadAddon().addon, this.paused, allowsHalfOpen(spec))) this.intake.accept(socket)
    if (server.listening) server.close()
    else listener.close()
    this.finishIfIdle()
  }

  /** The parent is gone: stop, and give the connections until the orphan deadline. */
  orphan(): void {
    this.stop('the parent is gone')
    atOrphanDeadline(this.spec, () => {
      this.orphaned.abort()
      for (const socket of this.live) socket.destroy()
      this.context.exit(ExitStatus.ORPHANED, 'parent gone and connections outlived the deadline')
    })
  }

  /** Serves a connection the access rules let in. */
  private admit({ socket, info, acceptedAt }: Accepted): void {
    const { spec, live } = this
    this.admitted++
    this.log({ event: 'from', pid: process.pid, peer: peerOf(info) })
    // Accepted paused for the peek: a service's socket is wrapped afresh, as accept() would give it (so does child.ts).
    const served = spec.proxy !== null && spec.exec === null ? wrapConnection(rawHandle(socket), spec) : socket
    live.add(served)
    if (spec.maxConnsPerChild > 0 && this.admitted >= spec.maxConnsPerChild) this.stop(`served ${this.admitted} connections`)
    void this.serve!(served, info).then((ended) => this.ended(served, info, acceptedAt, ended))
  }

  /** A connection is over: counted, and in JSON logged (the text `end` line is for processes). */
  private ended(socket: Socket, info: ConnectionInfo, acceptedAt: number, { code, signal }: ProgramExit): void {
    const { spec, tally, live } = this
    if (!live.delete(socket)) return // counted already: the worker crashed
    if (code === ExitStatus.OK) tally.served++
    else tally.failed++
    if (spec.logFormat === 'json') {
      this.log({ event: 'end', conn: info.id, pid: process.pid, peer: peerOf(info), handoffMs: null, endMs: Date.now() - acceptedAt, code, signal })
    }
    this.finishIfIdle()
  }

  /** Once stopped, with nothing left to serve and no header awaited: the last counts, then exit. */
  private finishIfIdle(): void {
    if (!this.stopping || this.live.size > 0 || this.intake.pending > 0) return
    this.report(() => this.context.exit(ExitStatus.OK, 'stopped, nothing left to serve'))
  }
}
