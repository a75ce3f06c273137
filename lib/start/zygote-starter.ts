// --start zygote, the parent's side: a starter (lib/starter.ts) whose children
// are forked by the zygote (lib/zygote.ts), a warm process of the parent's
// own, instead of started whole by child_process.fork. The loop in server.ts
// does not know the difference: it asks for a child, sends it `serve` and the
// socket, and hears `taken` and the exit, here translated from the zygote's
// `forked` and `exited`.
//
// The parent keeps its copy of each socket until the child is forked (as it
// does until `taken`), so a request that was in flight when the zygote died
// is sent again to the next zygote, and its client only waits. The zygote's
// own children live on without it: the parent is their subreaper, and reaps
// them by pid.
import { fork, type ChildProcess, type SendHandle } from 'node:child_process'
import { Backoff } from '../parent/backoff.js'
import { lowerPriority } from './priority.js'
import { isMessage, message, type MessageOf } from '../protocol.js'
import type { Credentials } from '../cli/credentials.js'
import { CHILD, EXEC_PATH, type Child, type ChildEvents, type Starter, type StarterParts } from './starter.js'
import { signalProcess } from '../serve/process-group.js'
import { reap, zygoteFlags } from '../zygote/warm-fork.js'
import type { Addon } from '../native/addon.js'

/** How often the parent looks for the orphans of a zygote that died. */
const ORPHAN_POLL_MS = 100

/** One child asked of the zygote. */
interface Request {
  readonly id: number
  readonly events: ChildEvents
  pid: number | undefined
  exited: boolean
  /** What to send the zygote once one is ready: the serve message and its socket. */
  serve: { readonly m: MessageOf<'serve'>; readonly handle: SendHandle | undefined; readonly done: (err: Error | null) => void } | null
  /** A signal asked for before the child was forked, and whether for its group. */
  kill: { readonly signal: NodeJS.Signals; readonly group: boolean } | null
  /** The zygote it was sent to; null while it waits for one (never two zygotes fork one socket). */
  sentTo: ChildProcess | null
}

/** Tells a zygote to fork no more and exit once its children have. */
const stopZygote = (zygote: ChildProcess): void => void zygote.send(message('stop', {}), undefined, undefined, () => {})

export class ZygoteStarter implements Starter {
  #zygote: ChildProcess | null = null
  #ready = false
  /** The zygote started last. One started before it that says ready is stopped unused: a later one (a second SIGHUP) replaces it. */
  #newest: ChildProcess | null = null
  #nextId = 0
  /** Asked for, not yet forked: sent again to a new zygote if this one dies. */
  readonly #asked = new Map<number, Request>()
  /** Forked and not yet reaped, by pid. */
  readonly #forked = new Map<number, Request>()
  readonly #backoff = new Backoff()
  #stopped = false

  constructor(
    private readonly addon: Addon,
    private readonly credentials: Credentials | null,
    private readonly hooks: StarterParts,
  ) {
    // Orphans of a zygote that dies come to the parent, not to PID 1.
    addon.setChildSubreaper()
  }

  /** Starts the first zygote; rejects with why, when it is unfit to fork. */
  open(): Promise<void> {
    return new Promise((resolve, reject) => this.#startZygote(resolve, reject))
  }

  start(events: ChildEvents): Child {
    const request: Request = { id: ++this.#nextId, events, pid: undefined, exited: false, serve: null, kill: null, sentTo: null }
    this.#asked.set(request.id, request)
    return {
      get pid() {
        return request.pid
      },
      send: (m, handle, done) => {
        // Only `serve` means anything to a zygote's child; the rest (spares, workers) never come here.
        if (!isMessage(m, 'serve')) return done(null)
        request.serve = { m, handle, done }
        this.#ask(request)
      },
      kill: (signal, group) => {
        if (request.pid === undefined) request.kill = { signal, group }
        else if (!request.exited) signalProcess(request.pid, signal, group)
      },
    }
  }

  /**
   * SIGHUP: a fresh zygote loads the code as it is now. Once it is ready, the
   * one it replaces finishes with its children (#startZygote). With no zygote
   * left to serve, an unfit one is tried again with backoff.
   */
  reload(): void {
    this.#startZygote(() => {}, (err) => this.hooks.warn(`reload: the new zygote is unfit: ${err.message}`), true)
  }

  /** Shutdown: start no new zygote. */
  stop(): void {
    this.#stopped = true
  }

  #ask(request: Request): void {
    if (!this.#ready || this.#zygote === null || request.serve === null || request.sentTo !== null) return // sent once a zygote is ready
    const { m, handle, done } = request.serve
    request.sentTo = this.#zygote
    this.#zygote.send(message('fork', { id: request.id, info: m.info, spec: m.spec }), handle, { keepOpen: true }, (err) => {
      if (err !== null) this.hooks.trace('fork request %d not sent: %s', request.id, err.message)
      done(null) // (a request lost with its zygote is sent again to the next)
    })
  }

  /** `replacing`: not the first; when no zygote serves, it is tried again, with backoff, if it is unfit. */
  #startZygote(ready: () => void, unfitOnce: (err: Error) => void, replacing = false): void {
    // (No NODE_OPTIONS: a loader given there runs on a thread of its own, and
    // a process that forks must have no thread but V8's, which it parks.)
    const env = { ...process.env, NODE_OPTIONS: '' }
    const zygote = fork(CHILD, [], {
      execArgv: [...zygoteFlags], execPath: EXEC_PATH, env, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...this.credentials,
    })
    this.#newest = zygote
    const startedAt = Date.now()
    let fit = false
    // (An unfit zygote says why, then exits: one warning, not two.)
    let told = false
    const unfit = (err: Error): void => {
      if (!told) unfitOnce(err)
      told = true
    }
    zygote.on('message', (m: unknown) => {
      if (isMessage(m, 'ready')) {
        fit = true
        if (zygote !== this.#newest) {
          this.hooks.trace('zygote %d ready, but replaced before it served: stopped', zygote.pid)
          return stopZygote(zygote) // (it has no child: it exits at once)
        }
        // Nicer than the parent from now on, and so is every child it forks (lib/priority.ts); not before: its fork self-test has a deadline.
        lowerPriority(zygote.pid)
        const replaced = this.#zygote
        this.#zygote = zygote
        this.#ready = true
        this.hooks.trace('zygote %d ready in %d ms', zygote.pid, Date.now() - startedAt)
        for (const request of this.#asked.values()) this.#ask(request)
        if (replaced !== null) stopZygote(replaced) // it forks no more, and exits once its children have
        ready()
      } else if (isMessage(m, 'unfit')) unfit(new Error(m.reason))
      else if (isMessage(m, 'forked')) this.#onForked(m)
      else if (isMessage(m, 'exited')) this.#onExited(m)
    })
    zygote.on('error', (err) => fit || unfit(err))
    // 'close', not 'exit': every message it sent has been read by then.
    zygote.on('close', (code: number | null, signal: NodeJS.Signals | null) => {
      if (!fit) {
        unfit(new Error(`the zygote exited (${signal ?? `status ${code}`}) before it was ready`))
        // With no zygote at all, the connections waiting for one wait for the next try (the code may be mended on disk).
        if (replacing && this.#zygote === null && zygote === this.#newest) this.#zygoteLost(zygote.pid, code, signal, Date.now() - startedAt)
        return
      }
      // What it was asked and had not forked waits for the current zygote; its children are the parent's now.
      for (const request of this.#asked.values()) if (request.sentTo === zygote) request.sentTo = null
      if (this.#forked.size > 0) this.#reapOrphans()
      if (this.#zygote === zygote) return this.#zygoteLost(zygote.pid, code, signal, Date.now() - startedAt)
      for (const request of this.#asked.values()) this.#ask(request) // an old one, replaced by a reload
    })
    zygote.send(message('zygote', { spec: this.hooks.spec }), undefined, undefined, () => {})
  }

  #onForked({ id, pid, error }: MessageOf<'forked'>): void {
    const request = this.#asked.get(id)
    if (request === undefined) return
    this.#asked.delete(id)
    if (pid === null) return request.events.error(new Error(`fork failed: ${error}`))
    request.pid = pid
    this.#forked.set(pid, request)
    request.events.spawn()
    // The child inherited the socket at the fork: the parent may close its copy.
    request.events.message(message('taken', {}), undefined)
    if (request.kill !== null) signalProcess(pid, request.kill.signal, request.kill.group)
  }

  #onExited({ pid, code, signal }: MessageOf<'exited'>): void {
    const request = this.#forked.get(pid)
    if (request === undefined) return
    this.#forked.delete(pid)
    request.exited = true
    request.events.exit(code, signal)
  }

  // The zygote died: the next is started after a backoff, and the requests in flight wait for it.
  #zygoteLost(pid: number | undefined, code: number | null, signal: NodeJS.Signals | null, livedMs: number): void {
    this.#zygote = null
    this.#ready = false
    if (this.#stopped) return
    const delay = this.#backoff.next(true, livedMs)
    this.hooks.warn(`zygote ${pid ?? '?'} ${signal ? `was killed by ${signal}` : `exited with status ${code}`}; a new one in ${delay / 1000}s`)
    const newest = this.#newest
    setTimeout(() => {
      if (this.#stopped || this.#zygote !== null || this.#newest !== newest) return // a reload started one meanwhile
      this.#startZygote(() => {}, (err) => this.hooks.warn(`the new zygote is unfit: ${err.message}`), true)
    }, delay)
  }

  #reapOrphans(): void {
    const orphans = new Set(this.#forked.keys())
    const timer = setInterval(() => {
      for (const pid of orphans) {
        if (!this.#forked.has(pid)) orphans.delete(pid) // reported by a live zygote: one of its own
        for (const { code, signal } of reap(this.addon, pid, true)) { // (what it left in its group goes with it, as under the zygote)
          orphans.delete(pid)
          this.#onExited({ type: 'exited', pid, code, signal })
        }
      }
      if (orphans.size === 0) clearInterval(timer)
    }, ORPHAN_POLL_MS)
  }
}
