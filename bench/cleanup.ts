// Everything the bench has started and not yet stopped, so that an error, a
// signal or an early exit still stops all of it.

export interface Owned {
  /** Stops it in order, within a bounded time. */
  stop(): Promise<void>
  /** The last resort, for the 'exit' handler: synchronous SIGKILLs. */
  killNow(): void
}

const owned = new Set<Owned>()
let closing = false

/** Registers `thing`; the returned function deregisters it once it is stopped. */
export const own = (thing: Owned): (() => void) => {
  owned.add(thing)
  return () => owned.delete(thing)
}

/**
 * Call before starting a process. Once stopAll has begun, a process started
 * then might be killed at exit without being reaped, and stay behind as a
 * zombie of init (which, on this machine, reaps nothing).
 */
export const assertOpen = (): void => {
  if (closing) throw new Error('the bench is stopping')
}

export const isClosing = (): boolean => closing

/** Newest first: a load generator goes before its server, so the server can reap its connections' children. */
export const stopAll = async (): Promise<void> => {
  closing = true
  for (const thing of [...owned].reverse()) await thing.stop().catch(() => undefined)
}

export const killAllNow = (): void => {
  for (const thing of owned) thing.killNow()
}
