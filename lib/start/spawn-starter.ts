// --start spawn: each child is a fresh Node, started by child_process.fork
// (a fork and an exec: docs/accept-fork.md says what that costs). Nothing of
// the parent's memory comes along, so the socket is sent over the IPC channel
// as a descriptor (SCM_RIGHTS), and the child answers `taken` once it holds
// its own copy.
import type { Socket } from 'node:net'
import type { Credentials } from '../cli/credentials.js'
import { rawHandle } from '../net/raw-handle.js'
import { isMessage, message, type ConnectionInfo } from '../protocol.js'
import { spawnProcess, type Spawned } from './spawn.js'
import type { Child, ChildEvents, Starter, StarterParts } from './starter.js'

export const spawnStarter = (credentials: Credentials | null, parts: StarterParts): Starter => ({
  start: (events) => new SpawnedChild(events, credentials, parts),
})

/**
 * A child of child_process.fork. It is believed to say `taken` once, while
 * the parent waits for it to take its socket, and `ready` once, when it was
 * asked to load its service ahead (a spare, whose connection may come first).
 */
class SpawnedChild implements Child {
  readonly #process: Spawned
  /** Who waits to hear that it took its socket, or that it is gone without it. */
  #taken: ((held: boolean) => void) | null = null
  /** Who waits to hear that it has loaded its service. */
  #loaded: (() => void) | null = null
  #serving = false

  constructor(events: ChildEvents, credentials: Credentials | null, private readonly parts: StarterParts) {
    this.#process = spawnProcess({
      running: events.running,
      exit: (code, signal) => {
        this.#gone()
        events.exit(code, signal)
      },
      error: (err) => {
        if (this.pid === undefined) this.#gone() // (it never ran)
        events.error(err)
      },
    }, { credentials, warn: parts.warn, hear: (m) => this.#hear(m), role: () => (this.#serving || this.#loaded === null ? 'busy' : 'spare') })
  }

  get pid(): number | undefined {
    return this.#process.pid
  }

  kill(signal: NodeJS.Signals, group: boolean): void {
    this.#process.kill(signal, group)
  }

  serve(socket: Socket, info: ConnectionInfo): Promise<boolean> {
    this.#serving = true
    return new Promise((resolve, reject) => {
      this.#taken = resolve
      void this.#process.send(message('serve', { info, spec: this.parts.spec }), rawHandle(socket)).then((err) => {
        if (err === null || this.pid === undefined || this.#taken === null) return // (one never started reports that itself)
        this.#taken = null
        reject(err)
      })
    })
  }

  readonly prepare = (): Promise<void> =>
    new Promise((resolve) => {
      this.#loaded = resolve
      void this.#process.send(message('prepare', { spec: this.parts.spec }))
    })

  #hear(m: unknown): boolean {
    const [taken, loaded] = [this.#taken, this.#loaded]
    if (isMessage(m, 'taken') && taken !== null) {
      this.#taken = null
      taken(true)
    } else if (isMessage(m, 'ready') && loaded !== null) {
      this.#loaded = null
      loaded()
    } else return false
    return true
  }

  #gone(): void {
    this.#taken?.(false)
    this.#taken = null
  }
}
