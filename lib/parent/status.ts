// The live status table (SIGUSR1): every child with its state, connection and
// age, and the counters, as a `status` event for the log.
import type { ChildEntry, ChildTable } from './child-table.js'
import type { ChildRow, Counters, LogEvent } from '../log/log.js'
import type { ConnectionInfo } from '../protocol.js'

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
    .map(({ child, state, retiring, info, startedAt }): ChildRow => ({
      pid: child.pid,
      state: retiring === null ? state : 'retiring',
      conn: info?.id ?? null,
      peer: info === null ? null : peerOf(info),
      ageMs: now - startedAt,
    }))
    .sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0))
  return { event: 'status', trigger: 'SIGUSR1', live: table.size, max, counters, children }
}

/**
 * One SIGUSR1 request: prefork workers count their own connections, so each
 * is asked first (`ask`), and the table is printed (`print`) once all have
 * answered or exited, or after REPORT_WAIT_MS.
 */
export class StatusReport {
  #awaiting: Set<ChildEntry> | null = null
  #timer: NodeJS.Timeout | undefined

  constructor(
    private readonly table: ChildTable,
    private readonly askWorker: (entry: ChildEntry) => void,
    private readonly print: () => void,
  ) {}

  ask(): void {
    if (this.#awaiting !== null) return // one is on its way
    this.#awaiting = new Set([...this.table].filter((entry) => entry.state === 'worker'))
    for (const entry of this.#awaiting) this.askWorker(entry)
    this.#timer = setTimeout(() => this.#done(), REPORT_WAIT_MS)
    this.heard()
  }

  /** A worker answered, or exited. */
  heard(entry?: ChildEntry): void {
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
