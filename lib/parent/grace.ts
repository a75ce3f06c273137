// The drain's deadline. A drain (SIGTERM, SIGINT, SIGQUIT, or SIGHUP from a
// closed terminal) gives the live children --grace seconds to finish; then
// what still waits for a child is dropped, and the children get SIGTERM, and
// SIGKILL 2 s later. A second SIGINT cuts it short: SIGKILL to every child at
// once, and nothing waiting is served. Either way the parent exits once no
// child is left and nothing waits, with every child reaped and counted, and
// says what happened: 0, 1 when children had to be killed, 130 after a
// second SIGINT. (What a drain stops and retires is the supervisor's.)
import { KILL_AFTER_MS, signalChild, type ChildTable } from './child-table.js'

export interface GraceHooks {
  /** Drops every connection still waiting for a child or its PROXY header. */
  readonly dropWaiting: () => void
  /** Connections accepted that have no child yet, and will. */
  readonly waiting: () => number
  /** Last, before the exit: tidies up (the socket file) and logs the summary. */
  readonly finish: (code: number) => void
  readonly warn: (text: string) => void
}

export class Grace {
  #began: number | null = null
  /** The grace ran out: children were killed, and the exit status says so. */
  #forced = false
  /** A second SIGINT cut the drain short. */
  #cut = false
  #finished = false
  readonly #timers: NodeJS.Timeout[] = []
  #exitWith!: (code: number) => void
  /** The exit status, once the drain is over. */
  readonly done = new Promise<number>((resolve) => (this.#exitWith = resolve))

  constructor(
    private readonly table: ChildTable,
    private readonly graceS: number,
    private readonly hooks: GraceHooks,
  ) {}

  /**
   * Until when the exit may wait to write the log (ms since the epoch): the
   * end of the grace, counted from the drain's start (or from now, with no
   * drain); no wait once a second SIGINT has asked for the exit at once.
   */
  get flushBy(): number {
    return this.#cut ? Date.now() : (this.#began ?? Date.now()) + this.graceS * 1000
  }

  /** The drain begins: the grace runs from now. */
  begin(): void {
    this.#began = Date.now()
    this.#timers.push(setTimeout(() => {
      // What waits for a child or its PROXY header is dropped, each with why; its end ends the drain.
      this.hooks.dropWaiting()
      if (this.table.live === 0) return // no child to kill: the exit still says 0
      this.#forced = true
      this.hooks.warn(`grace over: SIGTERM to ${this.table.live} children`)
      this.#killAll('SIGTERM')
      this.#timers.push(setTimeout(() => this.#killAll('SIGKILL'), KILL_AFTER_MS))
    }, this.graceS * 1000))
  }

  /** No child left and nothing waiting: the drain is over. */
  check(): void {
    if (this.#began !== null && this.table.live === 0 && this.hooks.waiting() === 0) this.#finish()
  }

  // Only a second SIGINT (Ctrl-C again) cuts the drain short. The exit still
  // waits for the killed children to be reaped, so that each is counted, but
  // no longer than a SIGKILL takes.
  again(signal: NodeJS.Signals): void {
    if (signal !== 'SIGINT' || this.#cut) return
    this.#cut = true
    this.hooks.warn(`second SIGINT: killing ${this.table.live} children`)
    this.hooks.dropWaiting()
    this.#timers.forEach(clearTimeout)
    this.#killAll('SIGKILL')
    this.#timers.push(setTimeout(() => this.#finish(), KILL_AFTER_MS))
  }

  #killAll(signal: NodeJS.Signals): void {
    for (const entry of this.table) if (entry.role !== 'zygote') signalChild(entry, signal)
  }

  #finish(code = this.#cut ? 130 : this.#forced ? 1 : 0): void {
    if (this.#finished) return
    this.#finished = true
    this.#timers.forEach(clearTimeout)
    if (this.table.live > 0) this.hooks.warn(`${this.table.live} children were not reaped in time: the counts leave them out`)
    this.hooks.finish(code)
    this.#exitWith(code)
  }
}
