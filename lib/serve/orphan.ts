// An orphan's deadline. A process that serves connections and finds its
// parent gone (even SIGKILL closes the IPC channel) finishes what it serves,
// but within a bound: --idle-timeout, or ORPHAN_DEADLINE_S when that is off.
// Then what is left is ended. The same for a spawned child, for a zygote's
// children (the zygote's, or each child's own once the zygote is gone too),
// and for a prefork worker.
import type { ServeSpec } from '../protocol.js'

/** Seconds an orphaned child may keep its connection when --idle-timeout is off. */
export const ORPHAN_DEADLINE_S = 60

/** Seconds an orphaned child may go on serving: --idle-timeout, or the deadline when that is off. */
export const orphanSeconds = (spec: Pick<ServeSpec, 'idleTimeout'>): number => (spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S)

/**
 * Calls `end` at the orphan deadline, counted from now, and returns its
 * seconds (for the trace). `unref`: the timer alone does not keep the
 * process alive (a child whose connection ends first exits at once).
 */
export const atOrphanDeadline = (spec: Pick<ServeSpec, 'idleTimeout'>, end: () => void, { unref = false } = {}): number => {
  const seconds = orphanSeconds(spec)
  const timer = setTimeout(end, seconds * 1000)
  if (unref) timer.unref()
  return seconds
}
