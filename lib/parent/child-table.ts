// The table of live children: the parent's one piece of mutable state. Each
// entry is one process in its role: a busy child with its one connection, a
// spare started ahead, a prefork worker, or the zygote. Every count the
// parent reports (live children, booting ones, per-IP connections, the
// totals) is worked out from it; the children that have ended leave only
// their totals behind.
import type { Socket } from 'node:net'
import type { Counters } from '../log/log.js'
import type { ConnectionInfo, Tally } from '../protocol.js'
import type { Spawned } from '../start/spawn.js'
import type { Child, Process, Zygote } from '../start/starter.js'

/** What every entry has, whatever its role. */
interface Life {
  readonly startedAt: number
  /** The reload it was started in: SIGHUP counts them, and what was started before is replaced. */
  generation: number
  /** Told to go (replaced by a reload, or not wanted by a drain): it counts toward no target. */
  retired: boolean
  /** --max-lifetime. */
  lifetimeTimer: NodeJS.Timeout | null
  /** SIGKILL, for one that was sent SIGTERM and is still here. */
  killTimer: NodeJS.Timeout | null
}

/** A fork-model child with its one connection. */
export interface Busy extends Life {
  readonly role: 'busy'
  readonly child: Child
  readonly info: ConnectionInfo
  /** When the parent accepted the connection, and how long the handoff took (ms). */
  readonly acceptedAt: number
  handoffMs: number | null
  /**
   * The parent's copy of the client's descriptor. Like C's `connfd` after
   * fork(), the parent owns it until it closes it: once the child holds its
   * own copy, or once the child is gone, whichever comes first.
   */
  socket: Socket | null
  /** Kills a child that never takes its socket. */
  handoffTimer: NodeJS.Timeout | null
  /** It was a spare: until it has taken its socket it keeps its spare's place (its successor starts then). */
  readonly wasSpare: boolean
}

/** --spares: a child started ahead, waiting for a connection. */
export interface Spare extends Life {
  readonly role: 'spare'
  readonly child: Child
  /** It has loaded its service (until then it is booting). */
  loaded: boolean
}

/** A prefork worker, which accepts for itself. */
export interface Worker extends Life {
  readonly role: 'worker'
  readonly child: Spawned
  /** It accepts now (a reload stops old workers as fresh ones do). */
  accepting: boolean
  /** Its counts, as it last reported them. */
  tally: Tally | null
  /** Ends it if it is still busy --grace seconds after it was told to stop. */
  graceTimer: NodeJS.Timeout | null
}

/** --start zygote: the warm process children are forked from. It serves no connection itself. */
export interface ZygoteEntry extends Life {
  readonly role: 'zygote'
  readonly child: Zygote
  /** It has loaded the service and proved that it can fork. */
  ready: boolean
}

export type Entry = Busy | Spare | Worker | ZygoteEntry
export type Role = Entry['role']

/** What every entry starts with: born now, in `generation`, with no timer. */
export const life = (generation: number): Life => ({ startedAt: Date.now(), generation, retired: false, lifetimeTimer: null, killTimer: null })

/** What the parent counted of the connections and children that are gone. */
export interface Totals {
  accepted: number
  served: number
  failed: number
  denied: number
  dropped: number
  /** Of the dropped, those the full queue turned away. */
  queueFull: number
}

export class ChildTable {
  readonly #entries = new Map<Process, Entry>()
  #peak = 0
  /** Connections the parent accepted (the next one's number is one more), and how the ended ones went. */
  readonly totals: Totals = { accepted: 0, served: 0, failed: 0, denied: 0, dropped: 0, queueFull: 0 }

  /** `generation()`: the current one, which entries are judged by. */
  constructor(private readonly generation: () => number = () => 0) {}

  add(entry: Entry): void {
    this.#entries.set(entry.child, entry)
    this.#peak = Math.max(this.#peak, this.live)
  }

  /** A spare given its connection: the same process, busy now. */
  replace(entry: Spare, busy: Busy): void {
    this.#entries.set(entry.child, busy)
  }

  /** The entry of `child`, if it is (still) in the table. */
  get(child: Process): Entry | undefined {
    return this.#entries.get(child)
  }

  /** Takes the entry out; false when it was not (or no longer) in the table. */
  remove(entry: Entry): boolean {
    return this.#entries.get(entry.child) === entry && this.#entries.delete(entry.child)
  }

  /**
   * A child has exited: takes it out and counts it. A busy child's status is
   * its connection's; a worker reports its own tally (its exit status is no
   * connection's); a spare or a zygote served no one.
   */
  ended(entry: Entry, code: number | null): void {
    this.remove(entry)
    if (entry.role === 'busy' && code === 0) this.totals.served++
    else if (entry.role === 'busy') this.totals.failed++
    if (entry.role === 'worker' && entry.tally !== null) addTally(this.totals, entry.tally)
  }

  /** The counts so far: the parent's (with ended workers'), and those the live workers last reported. */
  counters(): Counters {
    const all = { ...this.totals }
    for (const entry of this.#entries.values()) if (entry.role === 'worker' && entry.tally !== null) addTally(all, entry.tally)
    return { ...all, peak: this.#peak }
  }

  /** Children that serve connections, or wait to: all but the zygote. --max-children and `status: N/MAX` count these. */
  get live(): number {
    let n = 0
    for (const entry of this.#entries.values()) if (entry.role !== 'zygote') n++
    return n
  }

  /** The most children that were ever alive at once. */
  get peak(): number {
    return this.#peak
  }

  /** True for an entry of the current generation that has not been told to go: it counts toward its role's target. */
  current(entry: Entry): boolean {
    return !this.outdated(entry) && !entry.retired
  }

  /** True for an entry a reload is replacing: started in an older generation. */
  outdated(entry: Entry): boolean {
    return entry.generation < this.generation()
  }

  /** The entries of one role. */
  of<R extends Role>(role: R): Extract<Entry, { role: R }>[] {
    return [...this.#entries.values()].filter((entry): entry is Extract<Entry, { role: R }> => entry.role === role)
  }

  /** Current entries of one role: what its target is held to. */
  count(role: Role): number {
    return this.of(role).filter((entry) => this.current(entry)).length
  }

  /**
   * Children that are booting: spares still loading their service (not those
   * a reload is replacing), and busy children that have not yet taken their socket (the parent holds
   * its copy until then).
   */
  booting(): number {
    let n = 0
    for (const entry of this.#entries.values()) {
      if (entry.role === 'spare' ? !entry.loaded && !this.outdated(entry) : entry.role === 'busy' && entry.socket !== null) n++
    }
    return n
  }

  /** Spares toward their target: the current ones, and those handed a connection they have not yet taken. */
  spares(): number {
    return this.count('spare') + this.of('busy').filter((entry) => entry.wasSpare && entry.socket !== null).length
  }

  /** A current spare waiting for a connection, if any. */
  spare(): Spare | undefined {
    return this.of('spare').find((entry) => this.current(entry))
  }

  /** Live connections from one (normalised) source address. */
  countFrom(address: string): number {
    return this.of('busy').filter((entry) => entry.info.remoteAddress === address).length
  }

  [Symbol.iterator](): IterableIterator<Entry> {
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
 * to its program or its group (lib/serve/process-group.ts). The parent signals a
 * group only while its child is not yet reaped, so the group id is still the
 * child's.
 */
export const signalChild = ({ child, role }: Entry, signal: NodeJS.Signals): void =>
  child.kill(signal, signal === 'SIGKILL' || role === 'worker')

/** Ends a child that hangs: SIGTERM first, then SIGKILL. `warn` says why. */
export const endChild = (entry: Entry, why: string, warn: (text: string) => void): void => {
  warn(`pid ${entry.child.pid} ${why}; ending it`)
  signalChild(entry, 'SIGTERM')
  entry.killTimer ??= setTimeout(() => signalChild(entry, 'SIGKILL'), KILL_AFTER_MS)
}
