// --rate N/SECONDS: new connections allowed per source address in a sliding
// window. Unlike xinetd's `cps`, which switches the whole service off, only
// the address that goes over its rate is turned away.

export interface Rate {
  readonly count: number
  readonly seconds: number
}

/** Parses `N/SECONDS`, e.g. `20/10`; throws a one-line message otherwise. */
export const parseRate = (text: string): Rate => {
  const match = /^(\d+)\/(\d+)$/.exec(text)
  const count = Number(match?.[1])
  const seconds = Number(match?.[2])
  if (!match || !(count >= 1) || !(seconds >= 1) || !Number.isSafeInteger(count) || !Number.isSafeInteger(seconds)) {
    throw new Error(`expected N/SECONDS with both at least 1, such as 20/10, got "${text}"`)
  }
  return { count, seconds }
}

/** Addresses past which a check also sweeps out the ones whose window is empty. */
const SWEEP_OVER = 1024

export class RateLimiter {
  /** Per address, the times of its recent admitted connections, oldest first (at most `count`). */
  readonly #recent = new Map<string, number[]>()

  constructor(readonly rate: Rate) {}

  /** Connections counted from `address` within the window ending `now`. */
  recent(address: string, now = Date.now()): number {
    return this.#window(address, now).length
  }

  /** Counts a new connection from `address`. */
  record(address: string, now = Date.now()): void {
    this.#recent.set(address, [...this.#window(address, now), now])
  }

  /** Counts a new connection from `address`; false, and not counted, when it is over the rate. */
  admit(address: string, now = Date.now()): boolean {
    if (this.recent(address, now) >= this.rate.count) return false
    this.record(address, now)
    return true
  }

  /** The times of `address`'s connections within the window; forgets addresses whose window is empty, once many are remembered. */
  #window(address: string, now: number): number[] {
    const since = now - this.rate.seconds * 1000
    if (this.#recent.size > SWEEP_OVER) {
      for (const [key, times] of this.#recent) if ((times.at(-1) ?? 0) <= since) this.#recent.delete(key)
    }
    return (this.#recent.get(address) ?? []).filter((t) => t > since)
  }

  /** Addresses remembered now; for tests of the sweep. */
  get size(): number {
    return this.#recent.size
  }
}
