// SIGHUP: inetd's reload, Apache's graceful restart. Every preloaded process
// (each spare, each prefork worker) is replaced by a fresh one, which loads
// the service or --handler code as it is on disk now. The listener stays open
// throughout, so no connect is refused.
//
// A spare has nothing to finish: it is ended at once. An old worker accepts
// on until a fresh one accepts in its place, then stops accepting and
// finishes its connections. So a reload to code that fails to load leaves
// the old workers serving, while the fresh ones are retried with backoff.
import { endChild, signalChild, type ChildEntry, type ChildTable } from './child-table.js'
import type { Log } from '../log/log.js'
import { message } from '../protocol.js'
import type { Trace } from '../log/trace.js'

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

export interface ReloadParts {
  /** --workers: how many fresh workers replace the old (0 in the fork model). */
  readonly workers: number
  readonly graceS: number
  /** prefork: starts a fresh set of workers; false, and none started, without a copy of the listener to give them. */
  readonly startWorkers: (() => boolean) | null
  /** Loads afresh what the starter holds loaded (a zygote). */
  readonly reloadStarter: () => void
  /** Starts fresh spares in place of the old. */
  readonly replenish: () => void
  readonly log: Log
  readonly warn: (text: string) => void
  readonly trace: Trace
}

export class Reload {
  constructor(
    private readonly table: ChildTable,
    private readonly parts: ReloadParts,
  ) {}

  /** SIGHUP: replaces every spare and worker with a fresh one. */
  reload(signal: NodeJS.Signals): void {
    const current = (state: ChildEntry['state']) => [...this.table].filter((entry) => entry.state === state && entry.retiring === null)
    const [spares, workers] = [current('spare'), current('worker')]
    const { startWorkers, log, warn } = this.parts
    if (startWorkers !== null && !startWorkers()) return warn('reload: no copy of the listener to give fresh workers yet; send SIGHUP again')
    log({ event: 'reload', signal, spares: spares.length, workers: workers.length, pid: process.pid })
    for (const entry of spares) {
      entry.retiring = 'stopping'
      signalChild(entry, 'SIGTERM') // waiting, with nothing to finish
    }
    for (const entry of workers) entry.retiring = 'serving'
    this.parts.reloadStarter()
    this.#retire()
    this.parts.replenish()
  }

  /** A worker accepts now: an old one may stop in its place. */
  workerReady(entry: ChildEntry): void {
    this.parts.trace('worker %d is accepting', entry.child.pid)
    entry.ready = true
    this.#retire()
  }

  // Old workers stop accepting as fresh ones take their place, and finish within --grace.
  #retire(): void {
    const { graceS, warn, trace } = this.parts
    for (const entry of workersToStop(this.table, this.parts.workers)) {
      entry.retiring = 'stopping'
      trace('worker %d retires: a fresh one accepts in its place', entry.child.pid)
      entry.child.send(message('stop', {}), undefined, () => {})
      entry.graceTimer = setTimeout(() => endChild(entry, `still busy --grace ${graceS}s after the reload`, warn), graceS * 1000)
    }
  }
}
