// --spares: keep that many children started ahead, loading the service, so
// that a connection finds one ready. Spares count toward --max-children. One
// that dies waiting is replaced later and later while they keep dying. They
// boot within the parent's BOOT_LIMIT (one per core, with the children that
// are booting for a connection): a burst of Node start-ups would take the CPU
// from the spares serving.
import { BOOT_LIMIT } from '../admission/admission.js'
import { Backoff } from './backoff.js'
import type { ChildEntry, ChildTable } from './child-table.js'

export interface SpareHooks {
  /** Starts a spare and sends it `prepare`. */
  readonly start: () => void
  /** True while there is room for one more child (--max-children, descriptors). */
  readonly room: () => boolean
  /** Writes a warning line to the log. */
  readonly warn: (text: string) => void
}

export class SparePool {
  readonly #backoff = new Backoff()
  /** Set while waiting out a backoff before the next spare. */
  #timer: NodeJS.Timeout | null = null
  #stopped = false

  constructor(
    readonly wanted: number,
    private readonly table: ChildTable,
    private readonly hooks: SpareHooks,
  ) {}

  /** Starts spares until there are `wanted`, as far as the limits allow. */
  replenish(): void {
    while (!this.#stopped && this.#timer === null && this.table.booting() < BOOT_LIMIT) {
      if (this.table.count('spare') >= this.wanted || !this.hooks.room()) return
      this.hooks.start()
    }
  }

  /** A spare has its service loaded: start the next. */
  ready(entry: ChildEntry): void {
    entry.ready = true
    this.replenish()
  }

  /** A spare died waiting, or could not be started: start another after a backoff. */
  lost(pid: number | undefined, how: string, code: number | null, livedMs: number): void {
    if (this.#stopped) return
    const delay = this.#backoff.next(code !== 0, livedMs)
    this.hooks.warn(`spare ${pid ?? '?'} ${how}; a new one in ${delay / 1000}s`)
    this.#timer = setTimeout(() => {
      this.#timer = null
      this.replenish()
    }, delay)
  }

  /** Shutdown: start no more. (The spares themselves are ended with the other children.) */
  stop(): void {
    this.#stopped = true
    clearTimeout(this.#timer ?? undefined)
  }
}
