// The parent's supervisor, in unicorn's style. The table of children is the
// state, and the targets are data: how many spares and workers, whether a
// zygote runs, which generation is current, whether the server drains.
// Signals change the targets (SIGHUP: generation++; SIGTERM: drain, every
// target 0). Every event (an accept, a `taken`, an exit, a signal, a timer)
// ends in reconcile(), which makes what runs match what should.
//
// Who accepts is the acceptor's business (server.ts in the fork model,
// prefork.ts in prefork); the supervisor starts, reaps and retires children.
import type { Socket } from 'node:net'
import { BOOT_LIMIT, mayStart } from '../admission/admission.js'
import { peerOf } from '../net/address.js'
import { ACCEPT_RESERVE } from '../net/descriptors.js'
import type { Accepted } from '../admission/intake.js'
import type { Bound } from '../net/listen.js'
import { message, type ConnectionInfo } from '../protocol.js'
import { lowerPriority } from '../start/priority.js'
import type { ChildEvents, Process, Starter, Zygote } from '../start/starter.js'
import { ChildTable, endChild, life, signalChild, type Busy, type Entry, type Role, type Spare, type Worker, type ZygoteEntry } from './child-table.js'
import { Grace } from './grace.js'
import type { Parent } from './context.js'
import { Respawn } from './respawn.js'
import { StatusReport, statusEvent } from './status.js'
import { WaitQueue } from '../admission/wait-queue.js'

/** What the supervisor keeps running. */
export interface Targets {
  /** --spares (fork model), --workers (prefork), and 1 zygote under --start zygote (0 once --start auto has fallen back to spawn). */
  readonly spares: number
  readonly workers: number
  zygotes: number
  /** SIGHUP counts up, and so does a zygote's replacement: what was started in an older generation is replaced. */
  generation: number
  /** SIGTERM: new connects are refused, and every target is 0 (the zygote stays while anything may still be forked). */
  draining: boolean
}

/** Who accepts connections, as the supervisor needs it. */
export interface Acceptor {
  /** The most children at once (--max-children, or --workers), as `status: N/MAX` shows it. */
  readonly max: number
  /** socket(), bind(), listen(): resolves with where it listens; rejects with why it cannot. */
  listen(): Promise<Bound>
  /** The drain: new connects are refused from here on. */
  stopAccepting(): void
  /** Connections accepted whose PROXY header is still coming: a drain waits for them, or drops them when it is cut short. */
  readonly headers: { readonly pending: number; cancel(): void }
  /** The fork model: a connection that waited has a slot now, and is given its child. */
  fork?(conn: Accepted): void
  /** Closes a connection unserved, with why, and counts it. */
  drop?(socket: Socket, reason: string, info: ConnectionInfo, how?: { queueFull?: boolean }): void
  /** Prefork: starts one more worker with the listener at hand; false while none is at hand. */
  startWorker?(): boolean
  /** Prefork: whether a fresh set of workers could be given the listener now (a reload needs it). */
  listenerAtHand?(): boolean
}

/** The roles the supervisor keeps at a target, each behind its own backoff. */
type Kept = Exclude<Role, 'busy'>

export class Supervisor {
  readonly targets: Targets
  readonly table: ChildTable
  /** Connections that wait for a child: over --max-children, or for a boot slot. */
  readonly queue: WaitQueue
  /** SIGUSR1: the status table, once the prefork workers have reported. */
  readonly report: StatusReport
  readonly #respawn: Record<Kept, Respawn> = { spare: new Respawn(), worker: new Respawn(), zygote: new Respawn() }
  readonly #grace: Grace
  /** Who accepts: server.ts's loop, or prefork.ts's workers. */
  readonly acceptor: Acceptor
  #reconciling = false
  #again = false
  /** Until the first zygote is ready: the server's start waits for it. */
  #opening: { readonly ready: () => void; readonly unfit: (err: Error) => void } | null = null

  #starter: Starter
  /** --start auto: what serves if the first zygote proves unfit (spawn); null under a forced --start. */
  readonly #fallback: Starter | null

  constructor(
    readonly parent: Parent,
    starter: Starter,
    targets: Pick<Targets, 'spares' | 'workers'>,
    acceptor: (supervisor: Supervisor) => Acceptor,
    fallback: Starter | null = null,
  ) {
    this.#starter = starter
    this.#fallback = fallback
    // (Generations count from 1, as the zygote's title shows them.)
    this.targets = { ...targets, zygotes: starter.startZygote === undefined ? 0 : 1, generation: 1, draining: false }
    this.table = new ChildTable(() => this.targets.generation)
    const { options, addon, trace } = parent
    // A client that left while it waited is dropped like any other, so that the counts add up.
    // (One that closed its side with nothing sent has left only while the server is at --max-children.)
    this.queue = new WaitQueue(options.queueLimit, ({ socket, info }) => {
      trace('queued %s left', peerOf(info))
      this.drop(socket, 'left while it waited', info)
    }, addon, () => this.table.live >= options.maxChildren)
    this.report = new StatusReport(this.table, (worker) => void worker.child.send(message('report', {})), () =>
      parent.log(statusEvent(this.table, this.acceptor.max, this.table.counters(), peerOf)))
    this.#grace = new Grace(this.table, options.grace, {
      dropWaiting: () => this.#dropWaiting(),
      waiting: () => this.queue.size + this.acceptor.headers.pending,
      finish: (code) => {
        parent.listening.removeFile()
        parent.log({ event: 'shutdown', counters: this.table.counters(), code, logDropped: parent.logWriter.lost })
      },
      warn: parent.warn,
    })
    this.acceptor = acceptor(this)
  }

  /** How children are made: --start's starter, or spawn once --start auto has fallen back. */
  get starter(): Starter {
    return this.#starter
  }

  /** The exit status, once the drain is over. */
  get done(): Promise<number> {
    return this.#grace.done
  }

  /** Until when the exit may wait to write the log (lib/parent/grace.ts). */
  get flushBy(): number {
    return this.#grace.flushBy
  }

  // ---- the loop ------------------------------------------------------------

  /** Makes what runs match the targets. Every event handler ends here. */
  reconcile(): void {
    if (this.#reconciling) return void (this.#again = true) // (an event within: one more pass, after this one)
    this.#reconciling = true
    do {
      this.#again = false
      this.#serveQueue()
      if (!this.targets.draining) for (const role of KEPT) this.#topUp(role)
      this.#retire()
      if (this.targets.draining) this.#grace.check()
    } while (this.#again)
    this.#reconciling = false
  }

  /** Hands queued connections to free slots, the one that waited longest first; in a drain, drops those that would wait for a child to end. */
  #serveQueue(): void {
    const { options } = this.parent
    for (let conn; mayStart(options, this.children()) && (conn = this.queue.shift()); ) this.acceptor.fork?.(conn)
    if (!this.targets.draining) return
    const free = Math.max(0, options.maxChildren - this.table.live)
    for (const { socket, info } of this.queue.drain(free)) this.drop(socket, 'shutting down', info)
  }

  /** Starts what its role lacks, as far as its backoff, the boot slots and the room allow. */
  #topUp(role: Kept): void {
    const { table, targets } = this
    if (this.#respawn[role].waiting) return
    if (role === 'zygote' && table.count('zygote') < targets.zygotes) this.#startZygote()
    if (role === 'worker' && table.count('worker') < targets.workers) this.acceptor.startWorker?.()
    if (role === 'spare') while (table.spares() < targets.spares && table.booting() < BOOT_LIMIT && this.#room()) this.#startSpare()
  }

  /** Room for one more child: below --max-children, with descriptors to spare. */
  #room(): boolean {
    return this.table.live < this.parent.options.maxChildren && this.parent.descriptors.short(ACCEPT_RESERVE) === null
  }

  /**
   * Retires what no target wants: an old generation's spares at once (they
   * have nothing to finish), its workers and its zygote as fresh ones are
   * ready in their place; in a drain, every spare and worker.
   */
  #retire(): void {
    const { table } = this
    const { draining, generation, workers, zygotes } = this.targets
    for (const spare of table.of('spare')) if (!spare.retired && (draining || !table.current(spare))) this.#retireSpare(spare)
    const allWorkers = table.of('worker')
    const oldWorkers = draining ? allWorkers.filter((w) => !w.retired) : toRetire(allWorkers, workers, (w) => w.accepting, generation)
    for (const worker of oldWorkers) this.#stopWorker(worker)
    for (const zygote of toRetire(table.of('zygote'), zygotes, (z) => z.ready, generation)) this.#stopZygote(zygote)
  }

  // ---- starting, by role ---------------------------------------------------

  /** Starts a process with `start`, its events reported here, and adds its entry (made by `entry`) to the table. */
  #track<P extends Process, E extends Entry>(start: (events: ChildEvents) => P, entry: (child: P) => E): E {
    let child: P | null = null
    const startedAs = { value: 'busy' as Role }
    child = start({
      running: () => this.#running(child!, startedAs.value),
      exit: (code, signal) => this.#reaped(child!, code, signal),
      error: (err) => this.#failed(child!, err),
    })
    const made = entry(child)
    startedAs.value = made.role
    this.table.add(made)
    return made
  }

  /** The child for a connection: a spare started ahead takes it at once; else a fresh one is started. */
  busy({ socket, info, acceptedAt }: Accepted): Busy {
    const spare = this.table.spare()
    const connection = { role: 'busy' as const, info, acceptedAt, handoffMs: null, socket, handoffTimer: null, wasSpare: spare !== undefined }
    if (spare === undefined) {
      this.parent.trace('fork')
      return this.#track((events) => this.starter.start(events), (child) => ({ ...life(this.targets.generation), ...connection, child }))
    }
    const { loaded: _, ...started } = spare
    const busy: Busy = { ...started, ...connection }
    this.table.replace(spare, busy)
    return busy
  }

  #startSpare(): void {
    const spare = this.#track((events) => this.starter.start(events), (child): Spare => ({ ...life(this.targets.generation), role: 'spare', child, loaded: false }))
    void spare.child.prepare?.().then(() => {
      // (A connection may have reached it first: it is busy now.)
      if (this.table.get(spare.child) !== spare) return
      spare.loaded = true
      this.reconcile()
    })
  }

  /** A prefork worker (lib/parent/prefork.ts starts it with the listener at hand). */
  worker(start: (events: ChildEvents) => Worker['child']): Worker {
    return this.armLifetime(this.#track(start, (child): Worker => ({ ...life(this.targets.generation), role: 'worker', child, accepting: false, tally: null, graceTimer: null })))
  }

  #startZygote(): void {
    const { startZygote } = this.starter
    if (startZygote === undefined) return
    let entry: ZygoteEntry | null = null
    const { generation } = this.targets
    this.parent.log({ event: 'zygote', state: 'starting', pid: null, generation })
    entry = this.#track((events) => startZygote({ ...events, ready: (ms) => this.#zygoteReady(entry!, ms), unfit: (reason) => this.#unfit(entry!, reason),
      replace: (why, atOnce) => this.#replace(entry!, why, atOnce) }, generation),
      (child: Zygote): ZygoteEntry => ({ ...life(generation), role: 'zygote', child, ready: false }))
  }

  /**
   * The first zygote, if there is one: resolves once it is ready; rejects
   * with why it is unfit. Under --start auto, an unfit zygote is not fatal:
   * the server spawns its children instead, and one line says why.
   */
  open(): Promise<void> {
    if (this.targets.zygotes === 0) return Promise.resolve()
    return new Promise((ready, unfit) => {
      const fallback = this.#fallback
      this.#opening = { ready, unfit: fallback === null ? unfit : (err) => ready(this.#fallBack(fallback, err.message)) }
      this.#startZygote()
    })
  }

  #fallBack(spawn: Starter, reason: string): void {
    this.#starter = spawn
    this.targets.zygotes = 0
    this.parent.log({ event: 'start', start: 'spawn', reason, pid: this.parent.pid })
  }

  // ---- what children do ----------------------------------------------------

  /** The child runs, and has a pid now; `startedAs` is the role it was started in. */
  #running(child: Process, startedAs: Role): void {
    const entry = this.table.get(child)
    if (entry === undefined || entry.role === 'zygote' || startedAs === 'zygote') return // (a zygote counts once it is ready)
    const { pid } = child
    this.parent.trace('pid %d spawned', pid)
    if (entry.role !== 'worker') lowerPriority(pid) // (a worker serves many: it keeps the parent's priority)
    this.parent.log({ event: 'fork', pid, state: startedAs, conn: entry.role === 'busy' ? entry.info.id : null })
    this.status()
    // (A spare, or a child still starting, says `from` once it has both its pid and its connection.)
    if (entry.role === 'busy') this.parent.log({ event: 'from', pid, peer: peerOf(entry.info) })
  }

  /** The child has exited and been waited for (SIGCHLD and waitpid() in one event). */
  #reaped(child: Process, code: number | null, signal: NodeJS.Signals | null): void {
    const entry = this.table.get(child)
    if (entry === undefined) return
    clearTimers(entry)
    const wanted = this.table.current(entry) && !this.targets.draining
    this.table.ended(entry, code)
    if (entry.role !== 'zygote') this.#ended(entry, code, signal)
    else this.parent.log({ event: 'zygote', state: 'exited', pid: entry.child.pid ?? null, generation: entry.generation, code, signal })
    if (wanted && entry.role !== 'busy') this.#lost(entry, signal ? `was killed by ${signal}` : `exited with status ${code}`, code !== 0)
    this.reconcile()
  }

  /** The `end` line, and what waits on a child's end. */
  #ended(entry: Busy | Spare | Worker, code: number | null, signal: NodeJS.Signals | null): void {
    const { pid } = entry.child
    const info = entry.role === 'busy' ? entry.info : null
    this.parent.trace('pid %d exited %s → reaped', pid, signal ? `signal ${signal}` : `status ${code}`)
    const endMs = entry.role === 'busy' ? Date.now() - entry.acceptedAt : null
    const handoffMs = entry.role === 'busy' ? entry.handoffMs : null
    this.parent.log({ event: 'end', conn: info?.id ?? null, pid, peer: info && peerOf(info), handoffMs, endMs, code, signal })
    this.status()
    this.report.answered(entry)
  }

  /** A child that could not be started (C: if (pid < 0) perror("fork")): no pid, and no exit to reap either. */
  #failed(child: Process, err: Error): void {
    if (child.pid !== undefined) return this.parent.warn(`pid ${child.pid}: ${err.message}`)
    const entry = this.table.get(child)
    if (entry === undefined) return
    this.table.remove(entry)
    if (entry.role === 'zygote') this.#unfit(entry, err.message)
    else this.table.totals.failed++
    if (entry.role === 'busy' && entry.socket !== null) this.drop(entry.socket, `fork failed: ${err.message}`, entry.info)
    else if (entry.role === 'spare') this.#lost(entry, `could not be forked: ${err.message}`, true)
    else if (entry.role === 'worker') this.#lost(entry, `fork failed: ${err.message}`, true)
    else if (entry.role === 'zygote' && !entry.retired) this.#lost(entry, `could not be started: ${err.message}`, true)
    this.reconcile()
  }

  /**
   * One of a kept role is gone while it was wanted: the next is started after
   * its role's backoff, and the log says when (a worker that retired after
   * --max-conns-per-child is only traced: its successor comes at once).
   */
  #lost(entry: Spare | Worker | ZygoteEntry, how: string, crashed: boolean): void {
    const { pid } = entry.child
    if (entry.role === 'worker' && pid === undefined) return this.workerNotStarted(how) // (it never ran: what failed says it)
    const delay = this.#respawn[entry.role].after(crashed, Date.now() - entry.startedAt, () => this.reconcile())
    if (entry.role === 'worker' && !crashed) this.parent.trace('worker %d retired; forking its successor', pid)
    else this.parent.warn(`${entry.role} ${pid ?? '?'} ${how}; a new one in ${delay / 1000}s`)
  }

  /** No worker could be started (a fork failed, or no listener to give it): the next try is after the workers' backoff. */
  workerNotStarted(why: string): void {
    const delay = this.#respawn.worker.after(true, 0, () => this.reconcile())
    this.parent.warn(`${why}; a new worker in ${delay / 1000}s`)
  }

  /** A worker accepts now: an old one may stop in its place. */
  accepting(entry: Worker): void {
    this.parent.trace('worker %d is accepting', entry.child.pid)
    entry.accepting = true
    this.reconcile()
  }

  #zygoteReady(entry: ZygoteEntry, selfTestMs: number): void {
    entry.ready = true
    this.parent.log({ event: 'zygote', state: 'ready', pid: entry.child.pid ?? null, generation: entry.generation, selfTestMs })
    this.#opening?.ready()
    this.#opening = null
    this.reconcile()
  }

  /**
   * A zygote cannot fork here. At the start, the server cannot start. After a
   * reload, the zygote it was to replace serves on, now of this generation.
   * Else it is replaced, with backoff, once it has exited: the code on disk
   * may be mended meanwhile.
   */
  #unfit(entry: ZygoteEntry, reason: string): void {
    const serving = this.table.of('zygote').find((z) => z !== entry && z.ready && !z.retired)
    if (this.#opening !== null) {
      entry.retired = true
      this.#opening.unfit(new Error(reason))
      this.#opening = null
    } else if (serving !== undefined) {
      this.parent.warn(`reload: the new zygote is unfit: ${reason}`)
      entry.retired = true
      serving.generation = entry.generation
    } else this.parent.warn(`the new zygote is unfit: ${reason}`)
  }

  /**
   * A zygote whose address layout, shared by all its children, should serve
   * no more: a fresh generation, as a reload starts one, and so a fresh exec
   * with a new layout. After a crash the old one forks no more at once, and
   * connections wait for the fresh one; else it forks until the fresh one is
   * ready, as on a reload. Its children serve on.
   */
  #replace(entry: ZygoteEntry, why: string, atOnce: boolean): void {
    if (!this.table.current(entry) || this.targets.draining) return // (replaced already, or about to go)
    this.parent.log({ event: 'replace', pid: entry.child.pid, reason: why })
    if (atOnce) this.#stopZygote(entry)
    this.#newGeneration()
  }

  // ---- retiring ------------------------------------------------------------

  #retireSpare(entry: Spare): void {
    entry.retired = true
    signalChild(entry, 'SIGTERM') // waiting, with nothing to finish
  }

  // Old workers stop accepting as fresh ones take their place, and finish within --grace; in a drain, the drain's grace is theirs.
  #stopWorker(entry: Worker): void {
    entry.retired = true
    void entry.child.send(message('stop', {}))
    if (this.targets.draining) return
    const { grace } = this.parent.options
    this.parent.trace('worker %d retires: a fresh one accepts in its place', entry.child.pid)
    entry.graceTimer = setTimeout(() => endChild(entry, `still busy --grace ${grace}s after the reload`, this.parent.warn), grace * 1000)
  }

  #stopZygote(entry: ZygoteEntry): void {
    entry.retired = true
    const by = this.table.of('zygote').find((z) => z.ready && !z.retired)?.child.pid ?? null
    if (entry.ready) this.parent.log({ event: 'zygote', state: 'retiring', pid: entry.child.pid ?? null, generation: entry.generation, by })
    entry.child.stop() // it forks no more, and exits once its children have
  }

  // ---- signals change the targets ------------------------------------------

  /** SIGHUP: a new generation. Every spare, worker and zygote is replaced by a fresh one that loads the code as it is now. */
  reload(signal: NodeJS.Signals): void {
    if (this.targets.draining) return
    if (this.acceptor.listenerAtHand?.() === false) {
      return this.parent.warn('reload: no copy of the listener to give fresh workers yet; send SIGHUP again')
    }
    const zygote = this.table.of('zygote').find((z) => !z.retired)?.child.pid ?? null
    this.parent.log({ event: 'reload', signal, spares: this.table.count('spare'), workers: this.table.count('worker'), zygote, pid: this.parent.pid })
    this.#newGeneration()
  }

  /** What a reload and a zygote's replacement start: a generation that replaces every spare, worker and zygote. */
  #newGeneration(): void {
    this.targets.generation++
    for (const role of KEPT) this.#respawn[role].cancel() // (the fresh set starts at once)
    this.reconcile()
  }

  /** SIGTERM, SIGINT, SIGQUIT: new connects are refused, and every target is 0; the grace runs. A second SIGINT cuts it short. */
  drain(signal: NodeJS.Signals): void {
    if (this.targets.draining) return this.#grace.again(signal)
    this.targets.draining = true
    for (const role of KEPT) this.#respawn[role].cancel()
    this.acceptor.stopAccepting()
    this.parent.log({ event: 'drain', signal, live: this.table.live, graceS: this.parent.options.grace })
    this.#grace.begin()
    this.reconcile()
  }

  /** Drops every connection still waiting for a child or its header: the grace is over, or a second SIGINT. */
  #dropWaiting(): void {
    for (const { socket, info } of this.queue.drain()) this.drop(socket, 'shutting down', info)
    this.acceptor.headers.cancel()
  }

  // ---- what the acceptors share --------------------------------------------

  /** Closes a connection unserved, with why, and counts it. */
  drop(socket: Socket, reason: string, info: ConnectionInfo, how: { queueFull?: boolean } = {}): void {
    this.acceptor.drop?.(socket, reason, info, how)
  }

  /** The children, as admission counts them: live, whether a spare waits, and how many boot. */
  children(): { live: number; spareWaiting: boolean; booting: number } {
    return { live: this.table.live, spareWaiting: this.table.spare() !== undefined, booting: this.table.booting() }
  }

  /** `status: N/MAX`, whenever the number of children changes. */
  status(): void {
    this.parent.log({ event: 'status', trigger: 'change', live: this.table.live, max: this.acceptor.max })
  }

  /** --max-lifetime, counted from when a child starts its work (a spare's waiting does not count). */
  armLifetime<E extends Entry>(entry: E): E {
    const { maxLifetime } = this.parent.options
    if (maxLifetime > 0) entry.lifetimeTimer = setTimeout(() => endChild(entry, `outlived --max-lifetime ${maxLifetime}s`, this.parent.warn), maxLifetime * 1000)
    return entry
  }
}

/** The kept roles, in the order they are topped up: the zygote first, which the others' children come from. */
const KEPT: readonly Kept[] = ['zygote', 'spare', 'worker']

const clearTimers = (entry: Entry): void => {
  for (const timer of [entry.lifetimeTimer, entry.killTimer]) clearTimeout(timer ?? undefined)
  if (entry.role === 'busy') clearTimeout(entry.handoffTimer ?? undefined)
  if (entry.role === 'worker') clearTimeout(entry.graceTimer ?? undefined)
}

/**
 * The old generation to retire now, of a role kept at `wanted` (workers, the
 * zygote): any not yet ready, and as many of those ready, oldest first, as
 * fresh ones are ready in their place. (Those already retired are left.)
 */
export const toRetire = <E extends Worker | ZygoteEntry>(entries: readonly E[], wanted: number, ready: (entry: E) => boolean, generation: number): E[] => {
  const fresh = entries.filter((entry) => entry.generation === generation && !entry.retired && ready(entry)).length
  const old = entries.filter((entry) => entry.generation < generation && !entry.retired)
  const idle = old.filter((entry) => !ready(entry))
  const serving = old.filter(ready).sort((a, b) => a.startedAt - b.startedAt)
  // Keep one old one serving for each fresh one that is not yet ready.
  const keep = Math.max(0, wanted - fresh)
  return [...idle, ...serving.slice(0, Math.max(0, serving.length - keep))]
}

