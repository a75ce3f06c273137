// The live status table (SIGUSR1): every child with its state, connection and
// age, and the counters, as a `status` event for the log.
import type { ChildTable } from './child-table.js'
import type { ChildRow, Counters, LogEvent } from './log.js'
import type { ConnectionInfo } from './protocol.js'

/** How long the parent waits for prefork workers to report their counts. */
export const REPORT_WAIT_MS = 1000

export const statusReport = (
  table: ChildTable,
  max: number,
  counters: Counters,
  peerOf: (info: ConnectionInfo) => string,
  now = Date.now(),
): LogEvent => {
  const children: ChildRow[] = [...table]
    .map(({ child, state, info, startedAt }) => ({
      pid: child.pid,
      state,
      conn: info?.id ?? null,
      peer: info === null ? null : peerOf(info),
      ageMs: now - startedAt,
    }))
    .sort((a, b) => (a.pid ?? 0) - (b.pid ?? 0))
  return { event: 'status', trigger: 'SIGUSR1', live: table.size, max, counters, children }
}
