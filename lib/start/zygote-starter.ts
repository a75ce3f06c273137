// --start zygote, the parent's side: children forked by the zygote
// (lib/zygote/zygote.ts), a warm process of the parent's own, instead of
// started whole by child_process.fork. The parent hands a child its
// connection as it would hand it to any child; here the socket goes to the
// zygote with a `fork` request, and the child holds its copy from the moment
// the zygote has forked it (`forked`), so the parent may close its own then.
//
// The parent keeps its copy until the child is forked, so a request that
// was in flight when a zygote died is sent again to the next, and its client
// only waits. Which zygote runs is the parent's supervisor's to decide (it
// starts one, and stops the old one once a new one is ready); requests go to
// the newest ready one. A zygote's children live on without it: the parent
// is their subreaper, and reaps them with all else it adopts (adopted.ts).
import type { Socket } from 'node:net'
import type { Credentials } from '../cli/credentials.js'
import type { Addon } from '../native/addon.js'
import { rawHandle } from '../net/raw-handle.js'
import { isMessage, message, type ConnectionInfo, type MessageOf } from '../protocol.js'
import { signalProcess } from '../serve/process-group.js'
import { zygoteFlags } from '../zygote/warm-fork.js'
import { reapAdopted } from './adopted.js'
import { lowerPriority } from './priority.js'
import { spawnProcess, type Spawned } from './spawn.js'
import type { Child, ChildEvents, Starter, StarterParts, Zygote, ZygoteEvents } from './starter.js'

/**
 * The signals of a memory fault, or of the abort that follows one: a child
 * that dies of one may have been probed for the address layout it shares
 * with its zygote and every sibling (docs/warm-fork.md).
 */
const FAULTS: ReadonlySet<string> = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGABRT'])

/** One child asked of a zygote. */
interface Request {
  readonly id: number
  readonly events: ChildEvents
  pid: number | undefined
  exited: boolean
  /** The connection to fork it for, and who waits to hear that it was. */
  serve: { readonly socket: Socket; readonly info: ConnectionInfo; readonly forked: (held: boolean) => void } | null
  /** --spares: it is forked ahead, and who waits to hear that it was. */
  spare: { readonly forked: () => void } | null
  /** A signal asked for before the child was forked, and whether for its group. */
  kill: { readonly signal: NodeJS.Signals; readonly group: boolean } | null
  /** The zygote it was sent to; null while it waits for one (never two zygotes fork one socket). */
  sentTo: Spawned | null
  /** What it was sent as: a fork with its socket, or a spare (its socket is handed on later). */
  sentAs: 'fork' | 'spare' | null
}

/** A zygote, as this starter knows it. */
interface Known {
  /** Its process, once started. */
  process: Spawned | null
  readonly events: ZygoteEvents
  readonly startedAt: number
  ready: boolean
  /** Told to fork no more. */
  stopped: boolean
  closed: boolean
  /** It has said why it is unfit. */
  told: boolean
  /** The children it has forked. */
  forks: number
}

export class ZygoteStarter implements Starter {
  /** Every zygote started and not yet closed, oldest first. */
  readonly #zygotes: Known[] = []
  #nextId = 0
  /** Asked for, not yet forked: sent again to another zygote if this one dies. */
  readonly #asked = new Map<number, Request>()
  /** Forked and not yet reaped, by pid. */
  readonly #forked = new Map<number, Request>()
  /** Spares whose socket is on its way to them, by id. */
  readonly #handing = new Map<number, Request>()
  /** Reaps what the parent has adopted: the children of a zygote that died, and what they left. */
  readonly #sweep: () => void

  constructor(
    addon: Addon,
    private readonly credentials: Credentials | null,
    private readonly parts: StarterParts,
    /** --zygote-max-forks: a zygote is replaced after this many; 0 = never. */
    private readonly maxForks = 0,
  ) {
    // Orphans of a zygote that dies come to the parent, not to PID 1, and are reaped here.
    addon.setChildSubreaper()
    this.#sweep = reapAdopted(addon, {
      endsGroup: (pid) => this.#forked.has(pid), // (its connection is over: what it left in its group goes with it, as under the zygote)
      reaped: (reaped) => (this.#forked.has(reaped.pid) ? this.#onExited(reaped) : this.parts.trace('adopted pid %d reaped', reaped.pid)),
    })
  }

  start(events: ChildEvents): Child {
    const request: Request = { id: ++this.#nextId, events, pid: undefined, exited: false, serve: null, spare: null, kill: null, sentTo: null, sentAs: null }
    this.#asked.set(request.id, request)
    return {
      get pid() {
        return request.pid
      },
      serve: (socket, info) =>
        new Promise((forked) => {
          request.serve = { socket, info, forked }
          this.#ask(request)
        }),
      // --spares: forked ahead, it waits for its socket in the zygote's child.
      prepare: () =>
        new Promise((forked) => {
          request.spare = { forked }
          this.#ask(request)
        }),
      kill: (signal, group) => {
        if (request.pid === undefined) request.kill = { signal, group }
        else if (!request.exited) signalProcess(request.pid, signal, group)
      },
    }
  }

  readonly startZygote = (events: ZygoteEvents, generation: number): Zygote => {
    const known: Known = { process: null, events, startedAt: Date.now(), ready: false, stopped: false, closed: false, told: false, forks: 0 }
    // (No NODE_OPTIONS: a loader given there runs on a thread of its own, and
    // a process that forks must have no thread but V8's, which it parks.)
    const env = { ...process.env, NODE_OPTIONS: '' }
    const zygote = spawnProcess(this.#eventsOf(known), {
      credentials: this.credentials, execArgv: zygoteFlags, env, endAt: 'close', hear: (m) => this.#hear(known, m), role: () => 'zygote', warn: this.parts.warn,
    })
    known.process = zygote
    this.#zygotes.push(known)
    void zygote.send(message('zygote', { spec: this.parts.spec, generation }))
    return {
      get pid() {
        return zygote.pid
      },
      kill: (signal, group) => zygote.kill(signal, group),
      stop: () => {
        known.stopped = true
        void zygote.send(message('stop', {}))
      },
    }
  }

  /** What a zygote process does, as the parent hears it. */
  #eventsOf(known: Known): ChildEvents {
    const { events } = known
    return {
      running: events.running,
      // (One that never ran is the parent's to replace; one that runs and is not ready says why it is unfit.)
      error: (err) => {
        const ran = known.process?.pid !== undefined
        if (!ran) this.#closed(known)
        if (!ran || known.ready) events.error(err)
        else this.#unfit(known, err.message)
      },
      // At 'close', every message it sent has been read.
      exit: (code, signal) => {
        this.#unfit(known, `the zygote exited (${signal ?? `status ${code}`}) before it was ready`)
        this.#closed(known)
        events.exit(code, signal)
        this.#askAll() // what it had not forked waits for another
      },
    }
  }

  #hear(known: Known, m: unknown): boolean {
    if (isMessage(m, 'ready')) this.#ready(known, m.selfTestMs ?? 0)
    else if (isMessage(m, 'unfit')) this.#unfit(known, m.reason)
    else if (isMessage(m, 'forked')) this.#onForked(known, m)
    else if (isMessage(m, 'exited')) this.#onExited(m, known)
    else if (isMessage(m, 'handed')) this.#onHanded(m)
    else return false
    return true
  }

  // An unfit zygote says why, then exits: one word of it, not two.
  #unfit(known: Known, reason: string): void {
    if (!known.told && !known.ready) known.events.unfit(reason)
    known.told = true
  }

  #ready(known: Known, selfTestMs: number): void {
    const { events, startedAt } = known
    const pid = known.process?.pid
    if (known.stopped) return this.parts.trace('zygote %d ready, but replaced before it served: stopped', pid)
    known.ready = true
    // Nicer than the parent from now on, and so is every child it forks (lib/start/priority.ts); not before: its fork self-test has a deadline.
    lowerPriority(pid)
    this.parts.trace('zygote %d ready in %d ms', pid, Date.now() - startedAt)
    events.ready(selfTestMs)
    this.#askAll()
  }

  /**
   * The zygote requests go to: the newest ready one still forking. A spare
   * waits for the newest of all: one forked by a zygote a reload is
   * replacing would be of the old generation, and retired as soon as made.
   */
  #serving(spare = false): Spawned | null {
    for (let i = this.#zygotes.length - 1; i >= 0; i--) {
      const known = this.#zygotes[i]!
      if (known.stopped || known.closed || known.process === null) continue
      if (known.ready) return known.process
      if (spare) return null
    }
    return null
  }

  #ask(request: Request): void {
    if (request.sentAs === 'spare' && request.pid !== undefined) return this.#hand(request)
    const zygote = this.#serving(request.serve === null)
    if (zygote === null || request.sentTo !== null) return // sent once a zygote is ready
    if (request.serve !== null) {
      const { socket, info } = request.serve
      void zygote.send(message('fork', { id: request.id, info, spec: this.parts.spec }), rawHandle(socket)).then((err) => {
        if (err !== null) this.parts.trace('fork request %d not sent: %s', request.id, err.message) // (sent again to the next zygote)
      })
      request.sentAs = 'fork'
    } else if (request.spare !== null) {
      void zygote.send(message('spare', { id: request.id, spec: this.parts.spec }))
      request.sentAs = 'spare'
    } else return
    request.sentTo = zygote
  }

  // A spare's socket goes to the zygote that forked it, which passes it down the spare's pair.
  #hand(request: Request): void {
    const { serve, sentTo } = request
    if (serve === null || sentTo === null || this.#handing.has(request.id)) return
    this.#handing.set(request.id, request)
    void sentTo.send(message('hand', { id: request.id, info: serve.info }), rawHandle(serve.socket)).then((err) => {
      if (err !== null) this.#onHanded({ id: request.id, error: err.message })
    })
  }

  #onHanded({ id, error }: Pick<MessageOf<'handed'>, 'id' | 'error'>): void {
    const request = this.#handing.get(id)
    if (request === undefined) return
    this.#handing.delete(id)
    if (error !== null) this.parts.trace('socket not handed to spare %d: %s', request.pid, error) // (the spare's pair is closed: it exits)
    request.serve?.forked(error === null)
  }

  #askAll(): void {
    for (const request of this.#asked.values()) this.#ask(request)
  }

  // A zygote is gone: what it was asked and had not forked waits for the next; its children are the parent's now.
  #closed(known: Known): void {
    known.closed = true
    this.#zygotes.splice(this.#zygotes.indexOf(known), 1)
    for (const request of this.#asked.values()) if (request.sentTo !== null && request.sentTo === known.process) Object.assign(request, { sentTo: null, sentAs: null })
    // (A spare it forked has lost its zygote's end: it exits, without the socket on its way.)
    for (const request of this.#handing.values()) if (request.sentTo === known.process) this.#onHanded({ id: request.id, error: 'its zygote is gone' })
    this.#sweep() // (one of its children may have exited already)
  }

  #onForked(known: Known, { id, pid, error }: MessageOf<'forked'>): void {
    const request = this.#asked.get(id)
    if (request === undefined) return
    this.#asked.delete(id)
    if (pid === null) {
      request.events.error(new Error(`fork failed: ${error}`))
      return request.serve?.forked(false)
    }
    request.pid = pid
    this.#forked.set(pid, request)
    if (++known.forks === this.maxForks) this.#worn(known, `it has forked ${known.forks} children (--zygote-max-forks)`, false)
    request.events.running()
    if (request.sentAs === 'spare') {
      request.spare?.forked()
      this.#hand(request) // (its connection may have come while it was forked)
    } else request.serve?.forked(true) // the child inherited the socket at the fork: it holds its copy
    if (request.kill !== null) signalProcess(pid, request.kill.signal, request.kill.group)
  }

  /** A child is reaped: by its zygote (`by`), or by the parent, its zygote gone. */
  #onExited({ pid, code, signal }: Pick<MessageOf<'exited'>, 'pid' | 'code' | 'signal'>, by?: Known): void {
    const request = this.#forked.get(pid)
    if (request === undefined) return
    this.#forked.delete(pid)
    request.exited = true
    request.events.exit(code, signal)
    if (by !== undefined && signal !== null && FAULTS.has(signal)) this.#worn(by, `child ${pid} died by ${signal}`, true)
  }

  /**
   * Every child of a zygote shares its address layout: one exec, copied by
   * each fork. After a child's memory fault (at once: no more children of
   * that layout), or --zygote-max-forks forks, the parent replaces the zygote
   * with a fresh one. (--exec's programs are exec'd: their layouts are their
   * own, and the zygote's is shared with none.)
   */
  #worn(known: Known, why: string, atOnce: boolean): void {
    if (this.parts.spec.exec === null) known.events.replace(why, atOnce)
  }
}
