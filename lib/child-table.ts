// The table of live children: the parent's one piece of mutable state.
// Every count the parent reports (live children, per-IP connections) is
// worked out from it rather than kept beside it.
import type { ChildProcess } from 'node:child_process'
import type { Socket } from 'node:net'
import type { ConnectionInfo, Tally } from './protocol.js'

export interface ChildEntry {
  /**
   * `spare`: forked ahead, waiting for a connection (--spares); `busy`: a
   * fork-model child with its one connection; `worker`: a prefork worker.
   */
  state: 'spare' | 'busy' | 'worker'
  /**
   * Being replaced by a fresh process after a reload (SIGHUP). `serving`: an
   * old worker that accepts on until a fresh one is ready in its place;
   * `stopping`: told to stop, finishing what it has. Null for the current set.
   */
  retiring: 'serving' | 'stopping' | null
  /** A worker that is accepting (a reload stops old workers as fresh ones are). */
  ready: boolean
  /** The connection a busy child serves; null for a spare or a worker. */
  info: ConnectionInfo | null
  /** When the parent accepted that connection, and how long the handoff took (ms). */
  acceptedAt: number | null
  handoffMs: number | null
  /** A worker's counts, as it last reported them. */
  tally: Tally | null
  readonly child: ChildProcess
  readonly startedAt: number
  /**
   * The parent's copy of the client's descriptor. Like C's `connfd` after
   * fork(), the parent owns it until it closes it: when the child confirms it
   * holds its own copy, or when the child exits, whichever comes first.
   */
  socket: Socket | null
  /** Kills a child that never confirms the handoff. */
  handoffTimer: NodeJS.Timeout | null
  /** Ends a child that outlives --max-lifetime. */
  lifetimeTimer: NodeJS.Timeout | null
  /** Ends a retiring worker that is still busy --grace seconds after it was told to stop. */
  graceTimer: NodeJS.Timeout | null
}

export class ChildTable {
  readonly #entries = new Map<ChildProcess, ChildEntry>()
  #peak = 0

  add(entry: ChildEntry): void {
    this.#entries.set(entry.child, entry)
    this.#peak = Math.max(this.#peak, this.#entries.size)
  }

  /** Takes the entry out; false when it was not (or no longer) in the table. */
  remove(entry: ChildEntry): boolean {
    return this.#entries.delete(entry.child)
  }

  get size(): number {
    return this.#entries.size
  }

  /** The most children that were ever alive at once. */
  get peak(): number {
    return this.#peak
  }

  /** Children in a state, not counting those a reload is replacing. */
  count(state: ChildEntry['state']): number {
    let n = 0
    for (const entry of this.#entries.values()) if (entry.state === state && entry.retiring === null) n++
    return n
  }

  /** A spare that is waiting for a connection, if any (never one a reload is replacing). */
  spare(): ChildEntry | undefined {
    for (const entry of this.#entries.values()) if (entry.state === 'spare' && entry.retiring === null) return entry
    return undefined
  }

  /** Live connections from one (normalised) source address. */
  countFrom(address: string): number {
    let n = 0
    for (const entry of this.#entries.values()) if (entry.info?.remoteAddress === address) n++
    return n
  }

  [Symbol.iterator](): IterableIterator<ChildEntry> {
    return this.#entries.values()
  }
}
