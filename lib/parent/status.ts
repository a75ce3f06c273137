// The live status table (SIGUSR1): every child with its state, connection and
// age, and the counters, as a `status` event for the log.
import type { ChildRow, Counters, LogEvent } from '../log/log.js'
import type { ConnectionInfo } from '../protocol.js'
import type { ChildTable, Entry, Worker } from './child-table.js'

/** How long the parent waits for prefork workers to report their counts. */
export const REPORT_WAIT_MS = 1000

export const statusEvent = (
  table: ChildTable,
  max: number,
  counters: Counters,
  peerOf: (info: ConnectionInfo) => string,
  now = Date.now(),
): LogEvent => {
  const children: ChildRow[] = [...table]
    .flatMap((entry): ChildRow[] => entry.role === 'zygote' && !entry.ready ? [] : [{
      pid: entry.child.pid,
      state: entry.role !== 'busy' && (table.outdated(entry) || entry.retired) ? 'retiring' : entry.role, // (a busy child finishes its connection whatever the reload)
      conn: entry.role === 'busy' ? entry.info.id : null,
      peer: entry.role === 'busy' ? peerOf(entry.info) : null,
      ageMs: now - entry.startedAt,
    }])
    .sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0))
  return { event: 'status', trigger: 'SIGUSR1', live: table.live, max, counters, children }
}

/**
 * One SIGUSR1 request: prefork workers count their own connections, so each
 * is asked first (`askWorker`), and the table is printed (`print`) once all
 * have answered or exited, or after REPORT_WAIT_MS.
 */
export class StatusReport {
  #awaiting: Set<Entry> | null = null
  #timer: NodeJS.Timeout | undefined

  constructor(
    private readonly table: ChildTable,
    private readonly askWorker: (entry: Worker) => void,
    private readonly print: () => void,
  ) {}

  ask(): void {
    if (this.#awaiting !== null) return // one is on its way
    const workers = this.table.of('worker')
    this.#awaiting = new Set(workers)
    for (const entry of workers) this.askWorker(entry)
    this.#timer = setTimeout(() => this.#done(), REPORT_WAIT_MS)
    this.answered()
  }

  /** A worker answered, or exited. */
  answered(entry?: Entry): void {
    if (this.#awaiting === null) return
    if (entry !== undefined) this.#awaiting.delete(entry)
    if (this.#awaiting.size === 0) this.#done()
  }

  #done(): void {
    clearTimeout(this.#timer)
    this.#awaiting = null
    this.print()
  }
}
