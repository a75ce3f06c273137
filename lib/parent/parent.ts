// What the parent's loop (server.ts) stands on: its one piece of mutable
// state, the table of live children, and the parts that look after children
// beside the loop, each in a file of its own: the wait queue, the spares, the
// prefork workers, the reload, the shutdown and the status report. Nothing
// here accepts or forks; server.ts does, and this wires the parts to it.
import { createServer, type Server, type Socket } from 'node:net'
import { peerOf } from '../net/address.js'
import { hasRoom, type LiveCounts } from '../admission/admission.js'
import { ChildTable, endChild, signalChild, type ChildEntry } from './child-table.js'
import { ACCEPT_RESERVE, Descriptors } from '../net/descriptors.js'
import { Listening, refuseNew, takeBacklog } from '../net/listen.js'
import { createLog, type Log } from '../log/log.js'
import { LogWriter } from '../log/log-writer.js'
import type { Options } from '../cli/options.js'
import { superviseWorkers, type Supervisor } from './prefork.js'
import { lowerPriority } from '../start/priority.js'
import { isMessage, isTally, message, type ConnectionInfo, type ServeSpec, type WorkSpec } from '../protocol.js'
import { headerCalls, ProxyReader } from '../proxy/proxy-read.js'
import { RateLimiter } from '../admission/rate-limit.js'
import { rawHandle, type RawHandle } from '../net/raw-handle.js'
import { Reload } from './reload.js'
import { Shutdown } from './shutdown.js'
import { SparePool } from './spare-pool.js'
import type { Starter, StarterParts } from '../start/starter.js'
import { StatusReport, statusEvent } from './status.js'
import type { Trace } from '../log/trace.js'
import { WaitQueue, type Waiting } from './wait-queue.js'
import { loadAddon } from '../native/addon.js'

export abstract class Parent {
  readonly pid = process.pid
  readonly prefork: boolean
  /** The most children at once: --workers for prefork, else --max-children. */
  readonly max: number
  readonly log: Log
  /** Where the log goes: stderr, never blocking the loop (lib/log-writer.ts). */
  readonly logWriter: LogWriter
  readonly table = new ChildTable()
  /** Connections over --max-children, waiting for a child. */
  readonly queue: WaitQueue
  readonly rate: RateLimiter | null
  /** --proxy-protocol: reads each connection's PROXY header before it is judged; null when off. */
  readonly proxy: ProxyReader | null
  readonly descriptors = new Descriptors()
  /** The native addon (lib/native/fork.c), where it is built; null elsewhere. */
  readonly addon = loadAddon().addon
  readonly listening: Listening
  /** What a child needs to serve a connection, parsed once here. */
  readonly spec: ServeSpec
  // Who serves a connection: the one place where the two models differ.
  //   fork:    the parent accepts, paused, and forks a child for each connection;
  //   prefork: the workers accept for themselves; the parent keeps them alive.
  readonly server: Server
  readonly spares: SparePool
  readonly supervisor: Supervisor
  readonly reloads: Reload
  readonly shutdown: Shutdown
  readonly report: StatusReport

  /** How each child comes to be (lib/starter.ts). */
  readonly starter: Starter

  constructor(
    readonly options: Options,
    makeStarter: (parts: StarterParts) => Starter,
    readonly trace: Trace,
  ) {
    const { table } = this
    const { service, handler, exec, idleTimeout, logFormat } = options
    this.spec = { service, handler, exec, idleTimeout, logFormat }
    this.starter = makeStarter({ spec: this.spec, warn: this.warn, trace })
    this.prefork = options.model === 'prefork'
    this.max = this.prefork ? options.workers : options.maxChildren
    this.logWriter = new LogWriter(2, (dropped) => this.warn(`stderr was not read: ${dropped} log lines dropped`))
    this.log = createLog(options.logFormat, options.verbose, this.logWriter.write)
    // A client that left while it waited is dropped like any other, so that the counts add up.
    // (One that closed its side with nothing sent has left only while the server is at --max-children.)
    this.queue = new WaitQueue(options.queueLimit, ({ socket, info }) => {
      trace('queued %s left', peerOf(info))
      this.drop(socket, 'left while it waited', info)
    }, this.addon, () => !hasRoom(options, table.size, false))
    this.rate = options.rate && new RateLimiter(options.rate)
    this.proxy = options.proxy && new ProxyReader(options.proxy, headerCalls(), (socket, reason, info, shown) => this.drop(socket, reason, info, { shown }), this.warn, trace)
    this.listening = new Listening(options.endpoint)
    this.server = this.prefork ? createServer() : createServer({ pauseOnConnect: true }, (socket) => this.accept(socket))
    this.spares = new SparePool(options.spares, table, {
      start: () => this.fork('spare').child.send(message('prepare', { spec: this.spec }), undefined, () => {}),
      room: () => table.size < options.maxChildren && this.descriptors.short(ACCEPT_RESERVE) === null,
      warn: this.warn,
    })
    this.supervisor = superviseWorkers(options.workers, {
      start: () => this.armLifetime(this.fork('worker')),
      workSpec: () => this.workSpec(),
      listening: this.listening,
      table,
      warn: this.warn,
      trace,
    })
    this.reloads = new Reload(table, {
      workers: options.workers,
      graceS: options.grace,
      startWorkers: this.prefork ? () => this.supervisor.reload() : null,
      reloadStarter: () => this.starter.reload?.(),
      replenish: () => this.spares.replenish(),
      log: this.log,
      warn: this.warn,
      trace,
    })
    this.shutdown = new Shutdown(table, options.grace, {
      stopAccepting: () => this.stopAccepting(),
      stopChildren: () => this.stopChildren(),
      dropWaiting: () => {
        for (const { socket, info } of this.queue.drain()) this.drop(socket, 'shutting down', info)
        this.proxy?.cancel()
      },
      waiting: () => this.queue.size + (this.proxy?.pending ?? 0),
      finish: (code) => {
        this.listening.removeFile()
        this.log({ event: 'shutdown', counters: table.counters(), code, logDropped: this.logWriter.lost })
      },
      log: this.log,
      warn: this.warn,
    })
    // SIGUSR1: the status table, once the prefork workers have reported.
    this.report = new StatusReport(table, (entry) => entry.child.send(message('report', {}), undefined, () => {}), () =>
      this.log(statusEvent(table, this.max, table.counters(), peerOf)))
  }

  /** A connection has come (the fork model). */
  abstract accept(socket: Socket): void
  /** Starts a child in `state`, and adds it to the table. */
  abstract fork(state: ChildEntry['state']): ChildEntry
  /** The child confirms that it holds its copy of the socket. */
  abstract handedOff(entry: ChildEntry): void

  /** What the parent knows of `address`'s connections, and of its children, as it accepts one. */
  liveCounts(address: string): LiveCounts {
    const { table, queue } = this
    return {
      draining: this.shutdown.draining,
      descriptorsShort: this.descriptors.short(ACCEPT_RESERVE),
      recent: this.rate?.recent(address) ?? 0,
      fromPeer: table.countFrom(address) + queue.countFrom(address),
      ...this.children(),
      queued: queue.size,
    }
  }

  /** The children, as admission counts them: live, whether a spare waits, and how many boot. */
  children(): Pick<LiveCounts, 'live' | 'spareWaiting' | 'booting'> {
    const { table } = this
    return { live: table.size, spareWaiting: table.spare() !== undefined, booting: table.booting() }
  }

  readonly warn = (text: string): void => this.log({ event: 'warning', message: text, pid: this.pid })

  /** `status: N/MAX`, whenever the number of children changes. */
  status(): void {
    this.log({ event: 'status', trigger: 'change', live: this.table.size, max: this.max })
  }

  /** Over --max-children (or waiting to boot): the connection waits in the queue. */
  wait(waiting: Waiting): void {
    this.queue.push(waiting)
    this.trace('queued %s, %d waiting', peerOf(waiting.info), this.queue.size)
  }

  /** --allow/--deny turned the peer away. */
  deny(socket: Socket, info: ConnectionInfo): void {
    this.table.totals.denied++
    this.log({ event: 'deny', conn: info.id, peer: peerOf(info), pid: this.pid })
    socket.destroy()
  }

  /**
   * Closes a connection unserved, and counts it; `queueFull`: the full queue
   * turned it away; `shown: false`: one of a flood whose lines are held back.
   */
  drop(socket: Socket, reason: string, info: ConnectionInfo, { queueFull = false, shown = true } = {}): void {
    this.table.totals.dropped++
    if (queueFull) this.table.totals.queueFull++
    if (shown) this.log({ event: 'drop', conn: info.id, peer: peerOf(info), reason, pid: this.pid })
    socket.destroy()
  }

  // --max-lifetime, counted from when a child starts its work (a spare's waiting does not count).
  armLifetime(entry: ChildEntry): ChildEntry {
    const { maxLifetime } = this.options
    if (maxLifetime > 0) entry.lifetimeTimer = setTimeout(() => endChild(entry, `outlived --max-lifetime ${maxLifetime}s`, this.warn), maxLifetime * 1000)
    return entry
  }

  /** The child runs, and has a pid now; `state` is what it was started as. */
  spawned(entry: ChildEntry, state: ChildEntry['state']): void {
    const { child, info } = entry
    this.trace('pid %d spawned', child.pid)
    if (state !== 'worker') lowerPriority(child.pid) // (a worker serves many: it keeps the parent's priority)
    this.log({ event: 'fork', pid: child.pid, state, conn: info?.id ?? null })
    this.status()
    // (A spare, or a child still starting, says `from` once it has both its pid and its connection.)
    if (entry.state === 'busy' && info !== null) this.log({ event: 'from', pid: child.pid, peer: peerOf(info) })
  }

  /**
   * What a child says (lib/protocol.ts), believed only from the role that may
   * say it: a handler runs in the child and can send anything. `taken` comes
   * once, from a busy child, while the parent still holds its socket; `ready`
   * from a spare or a worker (once from a spare that a connection reached
   * first); `listener` and `tally` from a prefork worker.
   */
  heard(entry: ChildEntry, m: unknown, handle: unknown): void {
    const { state } = entry
    if (isMessage(m, 'taken') && state === 'busy' && entry.socket !== null) this.handedOff(entry)
    else if (isMessage(m, 'ready') && state === 'spare') this.spares.ready(entry)
    else if (isMessage(m, 'ready') && state === 'worker') this.reloads.workerReady(entry)
    else if (isMessage(m, 'ready') && state === 'busy' && !entry.ready) entry.ready = true // a spare's, overtaken by its connection
    else if (isMessage(m, 'listener') && state === 'worker' && isHandle(handle)) this.supervisor.keep(handle)
    else if (isMessage(m, 'tally') && state === 'worker' && isTally(m.tally)) {
      entry.tally = m.tally
      this.report.heard(entry)
    } else this.#unbelieved(entry, m, handle)
  }

  /** Children that have sent something they may not: each is warned of once, so that none can flood the log. */
  readonly #doubted = new WeakSet<ChildEntry>()

  #unbelieved(entry: ChildEntry, m: unknown, handle: unknown): void {
    release(handle) // (a descriptor sent with it would leak)
    if (this.#doubted.has(entry)) return
    this.#doubted.add(entry)
    const type = typeof m === 'object' && m !== null ? String((m as { type?: unknown }).type) : typeof m
    this.warn(`pid ${entry.child.pid} (${entry.state}) sent a '${type}' message it may not send; ignoring it and any more it sends`)
  }

  /** Before the exit: writes what of the log waits, for as long as the grace lasts (lib/shutdown.ts flushBy). */
  flushLog(): Promise<void> {
    return this.logWriter.flush(this.shutdown.flushBy)
  }

  /**
   * A signal that came while the server started (a zygote loading, say) has
   * drained it already, with nothing to wait for: close what has opened since,
   * and never say `listening`.
   */
  startedTooLate(): boolean {
    if (!this.shutdown.draining) return false
    this.stopAccepting()
    return true
  }

  /** SIGHUP, unless the server is shutting down. */
  reload(signal: NodeJS.Signals): void {
    if (!this.shutdown.draining) this.reloads.reload(signal)
  }

  // New connects are refused from here: the parent closes its listener (its
  // callback may never come), and workers close theirs when told to stop.
  private stopAccepting(): void {
    // An inherited listener (--fd, systemd's) lives on after us: it must not be left refusing.
    const refuse = (listener: object): void => {
      if (this.options.endpoint.kind !== 'fd') refuseNew(listener, this.addon)
    }
    if (this.server.listening) {
      // (What waits in the backlog has connected: it is served, not reset by the close.)
      refuse(rawHandle(this.server))
      for (const socket of takeBacklog(rawHandle(this.server), this.addon, true)) this.accept(socket)
      this.listening.stop(this.server)
    }
    // prefork: through the parent's copy, the workers' listener takes no new connection either.
    this.supervisor.stop(refuse)
    this.starter.stop?.()
  }

  private stopChildren(): void {
    for (const { child, state } of this.table) if (state === 'worker') child.send(message('stop', {}), undefined, () => {})
    // Those with a child slot free wait only for a boot slot, and are served; the rest would wait for a child to end.
    const free = Math.max(0, this.options.maxChildren - this.table.size)
    for (const { socket, info } of this.queue.drain(free)) this.drop(socket, 'shutting down', info)
    this.spares.stop()
    for (const entry of this.table) if (entry.state === 'spare') signalChild(entry, 'SIGTERM') // nothing to finish
  }

  /** What a prefork worker needs: the service and its own copy of the rules and limits. */
  private workSpec(): WorkSpec {
    const { access, verbose, maxConnsPerChild, proxy } = this.options
    const rules = { allow: access.allow.map((c) => c.text), deny: access.deny.map((c) => c.text) }
    const header = proxy && { from: proxy.from.map((c) => c.text), timeoutS: proxy.timeoutS }
    return { ...this.spec, ...rules, verbose, maxConnsPerChild, unixPath: this.listening.unixPath, proxy: header }
  }
}

/** A handle that came with a message (a listening socket, or anything a child chose to send). */
const isHandle = (handle: unknown): handle is RawHandle =>
  typeof handle === 'object' && handle !== null && typeof (handle as { close?: unknown }).close === 'function'

/** Closes whatever handle came with a message that is not believed: a socket, a server, a raw handle. */
const release = (handle: unknown): void => {
  if (typeof handle !== 'object' || handle === null) return
  const { destroy, close } = handle as { destroy?: unknown; close?: unknown }
  if (typeof destroy === 'function') destroy.call(handle)
  else if (typeof close === 'function') close.call(handle)
}
