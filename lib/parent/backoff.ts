// How long to wait before forking again after a child died: nothing after a
// clean exit, then 0.1 s, 0.2 s, 0.4 s ... up to 10 s while children keep
// crashing soon after they start.

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
