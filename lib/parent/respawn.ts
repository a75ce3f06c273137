// Respawn with backoff, once for every role the supervisor keeps (spares,
// prefork workers, the zygote): after a clean exit the next is started at
// once; while they keep crashing soon after they start, 0.1 s later, then
// 0.2 s, 0.4 s ... up to 10 s.

const FIRST_MS = 100
const MAX_MS = 10_000
/** A child that ran this long before it died was not crashing in a loop. */
const STABLE_MS = 10_000

export class Backoff {
  #crashes = 0

  /** The wait before the next fork, after a child that lived `livedMs` ended cleanly or not. */
  next(crashed: boolean, livedMs: number): number {
    this.#crashes = !crashed || livedMs > STABLE_MS ? 0 : this.#crashes + 1
    return this.#crashes === 0 ? 0 : Math.min(FIRST_MS * 2 ** (this.#crashes - 1), MAX_MS)
  }
}

/** One role's respawn: its backoff, and the wait under way before the next start. */
export class Respawn {
  readonly #backoff = new Backoff()
  #timer: NodeJS.Timeout | null = null

  /** True while the next start of this role waits out its delay. */
  get waiting(): boolean {
    return this.#timer !== null
  }

  /** One of the role was lost: the next may start after the delay, when `due` is called. Returns the delay (ms). */
  after(crashed: boolean, livedMs: number, due: () => void): number {
    const delay = this.#backoff.next(crashed, livedMs)
    clearTimeout(this.#timer ?? undefined)
    this.#timer = setTimeout(() => {
      this.#timer = null
      due()
    }, delay)
    return delay
  }

  /** The wait is over at once (a reload starts a fresh set), or for good (the drain). */
  cancel(): void {
    clearTimeout(this.#timer ?? undefined)
    this.#timer = null
  }
}
