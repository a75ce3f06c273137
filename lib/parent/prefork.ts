// The prefork model's parent side, like Apache's prefork parent: keep
// --workers workers alive, each with a copy of the listening socket, and
// replace any that exits, with a growing delay while they keep crashing.
//
// The parent itself never accepts. It listens, hands the listener to the
// first worker from the 'listening' callback, and closes its own listener
// (a net.Server sent to a child stays open, and accepting, in the sender).
// For the workers it forks after that, it keeps one more copy of the
// listening socket, lent back by the first worker: a raw handle that nothing
// polls. It forks them one per turn of the event loop, never in one blocking
// loop, so that signals and exits are heard while many start.
import type { Server } from 'node:net'
import { Backoff } from './backoff.js'
import { signalChild, type ChildEntry, type ChildTable } from './child-table.js'
import type { Listening } from '../net/listen.js'
import { errorMessage } from '../log/log.js'
import { message, type WorkSpec } from '../protocol.js'
import { rawHandle, sendable, type RawHandle } from '../net/raw-handle.js'
import type { Trace } from '../log/trace.js'

export interface SupervisorHooks {
  /** Forks one worker and sends it the listening socket; `lend` asks for a copy back. */
  readonly spawn: (listener: RawHandle, lend: boolean) => void
  /** Closes the parent's own copy of the listener, once the workers have theirs. */
  readonly closeListener: (server: Server) => void
  /** Listens afresh, then calls start(); for when no process holds the listener any more. */
  readonly relisten: () => void
  /** Workers alive now, each holding a copy of the listener. */
  readonly liveWorkers: () => number
  /** Writes a warning line to the log. */
  readonly warn: (text: string) => void
  readonly trace: Trace
}

export class Supervisor {
  #keeper: RawHandle | null = null
  /** Workers to fork once a listener is at hand again. */
  #owed: number
  readonly #backoff = new Backoff()
  #relistening = false
  #stopped = false
  /** The drain's last word to a listener (it refuses new connects), for a copy lent after the stop. */
  #last: ((kept: RawHandle) => void) | null = null
  readonly #timers = new Set<NodeJS.Timeout>()
  /** The next turn's fork, while workers are owed. */
  #pacing: NodeJS.Immediate | null = null

  constructor(
    readonly workers: number,
    private readonly hooks: SupervisorHooks,
  ) {
    this.#owed = workers
  }

  /**
   * Call from the server's 'listening' callback, when nothing has been
   * accepted yet: forks the first worker owed, asking it to lend a copy of
   * the listener back, then closes the parent's listener. The others are
   * forked from that copy (keep()).
   */
  start(server: Server): void {
    this.#relistening = false
    if (!this.#stopped && this.#owed > 0) {
      this.#owed--
      this.hooks.spawn(rawHandle(server), true)
    }
    this.hooks.closeListener(server)
  }

  /** A worker lent its copy of the listening socket: keep one, for later workers. */
  keep(listener: RawHandle): void {
    if (this.#stopped) this.#last?.(listener) // (the first worker was still starting at the stop)
    if (this.#keeper !== null || this.#stopped) return listener.close()
    this.#keeper = listener
    this.#forkOwed()
  }

  /**
   * Forks the workers owed from the kept copy, one per turn of the event
   * loop: a fork blocks the parent for milliseconds, and between them it
   * still hears signals (a SIGINT stops a start in progress) and reaps.
   */
  #forkOwed(): void {
    if (this.#stopped || this.#keeper === null || this.#owed === 0 || this.#pacing !== null) return
    this.#owed--
    this.hooks.spawn(this.#keeper, false)
    this.#pacing = setImmediate(() => {
      this.#pacing = null
      this.#forkOwed()
    })
  }

  /**
   * A worker is gone, or could not be forked (`failure` says why): fork
   * another, at once after a clean exit, later and later while they crash.
   */
  replace(pid: number | undefined, code: number | null, signal: string | null, livedMs: number, failure?: string): void {
    if (this.#stopped) return
    const crashed = code !== 0
    const delay = this.#backoff.next(crashed, livedMs)
    if (failure !== undefined) {
      this.hooks.warn(`${failure}; a new worker in ${delay / 1000}s`)
    } else if (crashed) {
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`
      this.hooks.warn(`worker ${pid ?? '?'} ${how}; a new one in ${delay / 1000}s`)
    } else {
      this.hooks.trace('worker %d retired; forking its successor', pid)
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer)
      if (this.#stopped) return
      this.#owed++
      if (this.#keeper !== null) return this.#forkOwed()
      // Nobody lent a copy and no worker is left: the listener is gone with
      // them (new connects are refused). Listen afresh.
      if (this.hooks.liveWorkers() === 0 && !this.#relistening) {
        this.#relistening = true
        this.hooks.relisten()
      }
    }, delay)
    this.#timers.add(timer)
  }

  /**
   * SIGHUP: forks a fresh set of workers beside the old ones, which the
   * parent stops as the fresh ones accept. False, and nothing forked, while
   * the parent holds no copy of the listener to give them.
   */
  reload(): boolean {
    if (this.#stopped || this.#keeper === null) return false
    // Replacements still waiting out a backoff are part of the fresh set.
    for (const timer of this.#timers) clearTimeout(timer)
    this.#timers.clear()
    this.#owed = this.workers
    this.#forkOwed()
    return true
  }

  /** Listening afresh failed: try again later. */
  relistenFailed(why: string): void {
    this.#relistening = false
    this.#owed--
    this.replace(undefined, 1, null, 0, why)
  }

  /** Shutdown: fork no more workers, and let go of the parent's copy of the listener (`last`, first, for a last word to it). */
  stop(last?: (kept: RawHandle) => void): void {
    this.#stopped = true
    this.#last = last ?? null
    for (const timer of this.#timers) clearTimeout(timer)
    clearImmediate(this.#pacing ?? undefined)
    if (this.#keeper !== null) last?.(this.#keeper)
    this.#keeper?.close()
    this.#keeper = null
  }
}

export interface WorkerParts {
  /** Starts a worker process, with its entry in the table. */
  readonly start: () => ChildEntry
  /** What a worker needs, once the server listens. */
  readonly workSpec: () => WorkSpec
  readonly listening: Listening
  readonly table: ChildTable
  readonly warn: (text: string) => void
  readonly trace: Trace
}

/** The supervisor, wired to start workers, hand each the listener, and listen again when none holds it. */
export const superviseWorkers = (workers: number, parts: WorkerParts): Supervisor => {
  const { listening, warn } = parts
  const supervisor: Supervisor = new Supervisor(workers, {
    spawn: (listener, lend) => {
      const entry = parts.start()
      entry.child.send(message('work', { spec: parts.workSpec(), lend }), sendable(listener), (err) => {
        if (err === null || entry.child.pid === undefined) return // (one never started reports that itself)
        warn(`handoff to worker ${entry.child.pid} failed: ${err.message}`)
        signalChild(entry, 'SIGKILL')
      })
    },
    closeListener: (server) => listening.close(server),
    relisten: () =>
      void listening.again().then(
        (server) => supervisor.start(server),
        (err: unknown) => supervisor.relistenFailed(`cannot listen again: ${errorMessage(err)}`),
      ),
    liveWorkers: () => parts.table.count('worker'),
    warn,
    trace: parts.trace,
  })
  return supervisor
}
