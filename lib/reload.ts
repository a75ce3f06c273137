// SIGHUP: inetd's reload, Apache's graceful restart. Every preloaded process
// (each spare, each prefork worker) is replaced by a fresh one, which loads
// the service or --handler code as it is on disk now. The listener stays open
// throughout, so no connect is refused.
//
// A spare has nothing to finish: it is ended at once. An old worker accepts
// on until a fresh one accepts in its place, then stops accepting and
// finishes its connections. So a reload to code that fails to load leaves
// the old workers serving, while the fresh ones are retried with backoff.
import type { ChildEntry } from './child-table.js'

/**
 * The old workers to stop now: any not yet accepting, and as many of those
 * accepting, oldest first, as fresh workers accept in their place.
 */
export const workersToStop = (children: Iterable<ChildEntry>, workers: number): ChildEntry[] => {
  const all = [...children].filter((entry) => entry.state === 'worker')
  const fresh = all.filter((entry) => entry.retiring === null && entry.ready).length
  const old = all.filter((entry) => entry.retiring === 'serving')
  const idle = old.filter((entry) => !entry.ready)
  const accepting = old.filter((entry) => entry.ready).sort((a, b) => a.startedAt - b.startedAt)
  // Keep one old worker accepting for each fresh one that is not yet.
  const keep = Math.max(0, workers - fresh)
  return [...idle, ...accepting.slice(0, Math.max(0, accepting.length - keep))]
}
