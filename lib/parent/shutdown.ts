// The shutdown (SIGTERM, SIGINT, SIGQUIT, or SIGHUP from a closed terminal):
// stop accepting, turn away the waiting connections that would wait for a
// child to end, give the live children --grace seconds to finish, then
// SIGTERM, then SIGKILL. What was accepted and waits only for a child to boot
// (or for its PROXY header) is still served: behind a balancer, whose checks
// see the listener go, that is a rolling drain with no connection lost. A
// second SIGINT cuts it short: SIGKILL to every child at once, and nothing
// waiting is served. Either way the parent exits when the table of children
// is empty and nothing waits, with every child reaped and counted, and says
// what happened.
import { KILL_AFTER_MS, signalChild, type ChildTable } from './child-table.js'
import type { Log } from '../log/log.js'

export interface ShutdownHooks {
  /** Stops new connections: closes the listener, starts no more children. */
  readonly stopAccepting: () => void
  /** Tells the children that wait or accept to stop, and drops the connections that would wait for a child to end. */
  readonly stopChildren: () => void
  /** Drops every connection still waiting (the drain is cut short). */
  readonly dropWaiting: () => void
  /** Connections accepted that have no child yet, and will. */
  readonly waiting: () => number
  /** Last, before the exit: tidies up (the socket file) and logs the summary. */
  readonly finish: (code: number) => void
  readonly log: Log
  readonly warn: (text: string) => void
}

export class Shutdown {
  #draining = false
  /** The grace ran out: children were killed, and the exit status says so. */
  #forced = false
  /** A second SIGINT cut the drain short. */
  #cut = false
  #finished = false
  #began: number | null = null
  readonly #timers: NodeJS.Timeout[] = []
  #exitWith!: (code: number) => void
  /** The exit status, once the shutdown is over. */
  readonly done = new Promise<number>((resolve) => (this.#exitWith = resolve))

  constructor(
    private readonly table: ChildTable,
    private readonly graceS: number,
    private readonly hooks: ShutdownHooks,
  ) {}

  get draining(): boolean {
    return this.#draining
  }

  /**
   * Until when the exit may wait to write the log (ms since the epoch): the
   * end of the grace, counted from the drain's start (or from now, with no
   * drain); no wait once a second SIGINT has asked for the exit at once.
   */
  get flushBy(): number {
    return this.#cut ? Date.now() : (this.#began ?? Date.now()) + this.graceS * 1000
  }

  begin(signal: NodeJS.Signals): void {
    if (this.#draining) return this.#again(signal)
    this.#draining = true
    this.#began = Date.now()
    this.hooks.stopAccepting()
    this.hooks.log({ event: 'drain', signal, live: this.table.size, graceS: this.graceS })
    this.hooks.stopChildren()
    if (this.#idle()) return this.#finish()
    this.#timers.push(setTimeout(() => {
      // What waits for a child or its PROXY header is dropped, each with why; its end ends the drain.
      this.hooks.dropWaiting()
      if (this.table.size === 0) return // no child to kill: the exit still says 0
      this.#forced = true
      this.hooks.warn(`grace over: SIGTERM to ${this.table.size} children`)
      this.#killAll('SIGTERM')
      this.#timers.push(setTimeout(() => this.#killAll('SIGKILL'), KILL_AFTER_MS))
    }, this.graceS * 1000))
  }

  /** A child is gone, or a connection that waited: the last ends the drain. */
  childGone(): void {
    if (this.#draining && this.#idle()) this.#finish()
  }

  #idle(): boolean {
    return this.table.size === 0 && this.hooks.waiting() === 0
  }

  // Only a second SIGINT (Ctrl-C again) cuts the drain short. The exit still
  // waits for the killed children to be reaped, so that each is counted, but
  // no longer than a SIGKILL takes.
  #again(signal: NodeJS.Signals): void {
    if (signal !== 'SIGINT' || this.#cut) return
    this.#cut = true
    this.hooks.warn(`second SIGINT: killing ${this.table.size} children`)
    this.hooks.dropWaiting()
    this.#timers.forEach(clearTimeout)
    this.#killAll('SIGKILL')
    this.#timers.push(setTimeout(() => this.#finish(), KILL_AFTER_MS))
  }

  #killAll(signal: NodeJS.Signals): void {
    for (const entry of this.table) signalChild(entry, signal)
  }

  #finish(code = this.#cut ? 130 : this.#forced ? 1 : 0): void {
    if (this.#finished) return
    this.#finished = true
    this.#timers.forEach(clearTimeout)
    if (this.table.size > 0) this.hooks.warn(`${this.table.size} children were not reaped in time: the counts leave them out`)
    this.hooks.finish(code)
    this.#exitWith(code)
  }
}
