// The table of live children: the parent's one piece of mutable state.
// Every count the parent reports (live children, booting spares, per-IP
// connections, the totals) is worked out from it rather than kept beside it;
// the children that have ended leave only their totals behind.
import type { Socket } from 'node:net'
import type { Counters } from '../log/log.js'
import type { ConnectionInfo, Tally } from '../protocol.js'
import type { Child } from '../start/starter.js'

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
  /**
   * A spare that has loaded its service (until then it is booting), or a
   * worker that is accepting (a reload stops old workers as fresh ones are).
   */
  ready: boolean
  /** The connection a busy child serves; null for a spare or a worker. */
  info: ConnectionInfo | null
  /** When the parent accepted that connection, and how long the handoff took (ms). */
  acceptedAt: number | null
  handoffMs: number | null
  /** A worker's counts, as it last reported them. */
  tally: Tally | null
  readonly child: Child
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
  /** SIGKILL, for a child that was sent SIGTERM and is still here. */
  killTimer: NodeJS.Timeout | null
}

/** The entry for a child just started, as `state`, with no connection yet. */
export const newEntry = (state: ChildEntry['state'], child: Child): ChildEntry => ({
  state, retiring: null, ready: false, info: null, socket: null, acceptedAt: null, handoffMs: null, tally: null,
  child, startedAt: Date.now(), handoffTimer: null, lifetimeTimer: null, graceTimer: null, killTimer: null,
})

/** What the parent counted of the connections and children that are gone. */
interface Totals {
  accepted: number
  served: number
  failed: number
  denied: number
  dropped: number
  /** Of the dropped, those the full queue turned away. */
  queueFull: number
}

export class ChildTable {
  readonly #entries = new Map<Child, ChildEntry>()
  #peak = 0
  /** Connections the parent accepted (the next one's number is one more), and how the ended ones went. */
  readonly totals: Totals = { accepted: 0, served: 0, failed: 0, denied: 0, dropped: 0, queueFull: 0 }

  add(entry: ChildEntry): void {
    this.#entries.set(entry.child, entry)
    this.#peak = Math.max(this.#peak, this.#entries.size)
  }

  /** Takes the entry out; false when it was not (or no longer) in the table. */
  remove(entry: ChildEntry): boolean {
    return this.#entries.delete(entry.child)
  }

  /**
   * A child has exited: takes it out and counts it. A busy child's status is
   * its connection's; a worker reports its own tally (its exit status is no
   * connection's); a spare served no one.
   */
  ended(entry: ChildEntry, code: number | null): void {
    this.remove(entry)
    if (entry.state === 'busy' && code === 0) this.totals.served++
    else if (entry.state === 'busy') this.totals.failed++
    if (entry.tally !== null) addTally(this.totals, entry.tally)
  }

  /** The counts so far: the parent's (with ended workers'), and those the live workers last reported. */
  counters(): Counters {
    const all = { ...this.totals }
    for (const { tally } of this.#entries.values()) if (tally !== null) addTally(all, tally)
    return { ...all, peak: this.#peak }
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

  /**
   * Children that are booting: spares still loading their service (not those
   * a reload is replacing), and busy children that have not yet taken their
   * socket (the parent holds its copy until then).
   */
  booting(): number {
    let n = 0
    for (const entry of this.#entries.values()) {
      if (entry.state === 'spare' ? !entry.ready && entry.retiring === null : entry.state === 'busy' && entry.socket !== null) n++
    }
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

/** Adds a prefork worker's counts to `totals`. */
const addTally = (totals: Totals, tally: Tally): void => {
  totals.accepted += tally.accepted
  totals.served += tally.served
  totals.failed += tally.failed
  totals.denied += tally.denied
  totals.dropped += tally.dropped
}

/** After SIGTERM, how long a child has before SIGKILL. */
export const KILL_AFTER_MS = 2000

/**
 * Each child leads a process group of its own (it was started detached, or,
 * forked by a zygote, it made one), with whatever it started: the --exec
 * program, or a handler's own processes.
 * SIGKILL, which a child cannot pass on, goes to the whole group, and so does
 * everything sent to a prefork worker; a busy child passes SIGTERM on itself,
 * to its program or its group (lib/process-group.ts). The parent signals a
 * group only while its child is not yet reaped, so the group id is still the
 * child's.
 */
export const signalChild = ({ child, state }: ChildEntry, signal: NodeJS.Signals): void =>
  child.kill(signal, signal === 'SIGKILL' || state === 'worker')

/** Ends a child that hangs: SIGTERM first, then SIGKILL. `warn` says why. */
export const endChild = (entry: ChildEntry, why: string, warn: (text: string) => void): void => {
  warn(`pid ${entry.child.pid} ${why}; ending it`)
  signalChild(entry, 'SIGTERM')
  entry.killTimer ??= setTimeout(() => signalChild(entry, 'SIGKILL'), KILL_AFTER_MS)
}
