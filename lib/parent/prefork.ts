// The prefork model's acceptor, like Apache's prefork parent: the parent
// never accepts. It listens, hands the listener to the first worker before
// anything can be accepted, and closes its own (a net.Server sent to a child
// stays open, and accepting, in the sender). The workers accept for
// themselves (lib/serve/worker.ts); the supervisor keeps --workers of them.
//
// For the workers it starts after that, the parent keeps one more copy of
// the listening socket, lent back by the first worker: a raw handle that
// nothing polls. It starts them one per turn of the event loop, never in one
// blocking loop, so that signals and exits are heard while many start. When
// no process holds the listener any more, it listens afresh.
import { createServer, type Server } from 'node:net'
import { errorMessage } from '../log/log.js'
import { refuseNew, type Bound } from '../net/listen.js'
import { rawHandle, type RawHandle } from '../net/raw-handle.js'
import { isMessage, isTally, message, type WorkSpec } from '../protocol.js'
import { spawnProcess } from '../start/spawn.js'
import { signalChild, type Worker } from './child-table.js'
import type { Acceptor, Supervisor } from './supervisor.js'

export class PreforkAcceptor implements Acceptor {
  readonly max: number
  /** (Each worker reads its own connections' PROXY headers.) */
  readonly headers = { pending: 0, cancel: (): void => {} }
  /** A listener of the parent's own, until the first worker holds it. */
  #own: Server | null = null
  /** The copy a worker lent back. */
  #kept: RawHandle | null = null
  #relistening = false
  /** A worker was started this turn of the event loop. */
  #pacing = false
  #stopped = false

  /** `spawn` starts a worker's process (tests record it instead). */
  constructor(
    readonly supervisor: Supervisor,
    private readonly spawn: typeof spawnProcess = spawnProcess,
  ) {
    this.max = supervisor.parent.options.workers
  }

  async listen(): Promise<Bound> {
    const server = createServer()
    const bound = await this.supervisor.parent.listening.open(server, this.supervisor.parent.options)
    this.#own = server
    return bound
  }

  /** A reload starts a fresh set of workers: they need the kept copy. */
  listenerAtHand(): boolean {
    return this.#kept !== null
  }

  /**
   * Starts one more worker with the listener at hand: the parent's own, which
   * it then closes, asking the worker to lend a copy back; else the kept copy,
   * one per turn of the event loop. False while none is at hand.
   */
  startWorker(): boolean {
    const own = this.#own
    if (this.#stopped || this.#pacing) return false
    if (own !== null) {
      this.#own = null
      this.#start(rawHandle(own), true)
      this.supervisor.parent.listening.close(own)
      return true
    }
    if (this.#kept === null) return this.#relisten()
    this.#start(this.#kept, false)
    this.#pacing = true
    setImmediate(() => {
      this.#pacing = false
      this.supervisor.reconcile()
    })
    return true
  }

  #start(listener: RawHandle, lend: boolean): void {
    const { options, warn } = this.supervisor.parent
    const worker: Worker = this.supervisor.worker((events) =>
      this.spawn(events, { credentials: options.credentials, warn, role: () => 'worker', hear: (m, handle) => this.#hear(worker, m, handle) }))
    void worker.child.send(message('work', { spec: this.#workSpec(), lend }), listener).then((err) => {
      if (err === null || worker.child.pid === undefined) return // (one never started reports that itself)
      warn(`handoff to worker ${worker.child.pid} failed: ${err.message}`)
      signalChild(worker, 'SIGKILL')
    })
  }

  /** What a worker says: `ready` (it accepts), `listener` (the lent copy), `tally` (its counts). */
  #hear(worker: Worker, m: unknown, handle: unknown): boolean {
    if (isMessage(m, 'ready')) this.supervisor.accepting(worker)
    else if (isMessage(m, 'listener') && isHandle(handle)) this.#keep(handle)
    else if (isMessage(m, 'tally') && isTally(m.tally)) {
      worker.tally = m.tally
      this.supervisor.report.answered(worker)
    } else return false
    return true
  }

  /** A worker lent its copy of the listening socket: keep one, for later workers. */
  #keep(listener: RawHandle): void {
    if (this.#stopped) this.#refuse(listener) // (the first worker was still starting at the stop)
    if (this.#kept !== null || this.#stopped) return listener.close()
    this.#kept = listener
    this.supervisor.reconcile()
  }

  /** No worker holds the listener, and none lent a copy: the listener went with them (new connects are refused). Listen afresh. */
  #relisten(): boolean {
    if (this.#relistening || this.supervisor.table.count('worker') > 0) return false
    this.#relistening = true
    void this.supervisor.parent.listening.again().then(
      (server) => {
        this.#relistening = false
        if (this.#stopped) return this.supervisor.parent.listening.close(server)
        this.#own = server
        this.supervisor.reconcile()
      },
      (err: unknown) => {
        this.#relistening = false
        this.supervisor.workerNotStarted(`cannot listen again: ${errorMessage(err)}`)
      },
    )
    return false
  }

  // The drain: through the parent's copy, the workers' listener takes no new connection either. (They close theirs when told to stop.)
  stopAccepting(): void {
    this.#stopped = true
    if (this.#kept !== null) this.#refuse(this.#kept)
    this.#kept?.close()
    this.#kept = null
    if (this.#own !== null) this.supervisor.parent.listening.stop(this.#own)
    this.#own = null
  }

  /** New SYNs are dropped from now on (lib/net/listen.ts refuseNew); an inherited listener (--fd, systemd's) outlives us, and is not told. */
  #refuse(listener: RawHandle): void {
    const { options, addon } = this.supervisor.parent
    if (options.endpoint.kind !== 'fd') refuseNew(listener, addon)
  }

  /** What a worker needs: the service and its own copy of the rules and limits. */
  #workSpec(): WorkSpec {
    const { options, spec, listening } = this.supervisor.parent
    const { access, verbose, maxConnsPerChild, proxy } = options
    const rules = { allow: access.allow.map((c) => c.text), deny: access.deny.map((c) => c.text) }
    const header = proxy && { from: proxy.from.map((c) => c.text), timeoutS: proxy.timeoutS }
    return { ...spec, ...rules, verbose, maxConnsPerChild, unixPath: listening.unixPath, proxy: header }
  }
}

/** A handle that came with a message (a listening socket, or anything a child chose to send). */
const isHandle = (handle: unknown): handle is RawHandle =>
  typeof handle === 'object' && handle !== null && typeof (handle as { close?: unknown }).close === 'function'
