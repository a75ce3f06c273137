// How many descriptors the parent has left.
//
// When accept() fails for want of a descriptor, libuv closes the pending
// connection itself (its EMFILE trick) and Node tells nobody, so the client
// is turned away unlogged and uncounted. A fork that fails with EMFILE leaks
// the parent's end of its IPC channel (Node 20). So the parent keeps a
// reserve: it turns connections away itself, with a log line, before the
// limit is reached, and never forks without room to spare.
import { readdirSync, readFileSync } from 'node:fs'

/** Free descriptors below which a new connection is turned away. */
export const ACCEPT_RESERVE = 16
/** Free descriptors below which the parent does not fork (a fork briefly takes four). */
export const FORK_RESERVE = 8

/** The soft RLIMIT_NOFILE, from /proc (Linux); null where it cannot be read or is unlimited. */
export const descriptorLimit = (limits = (): string => readFileSync('/proc/self/limits', 'utf8')): number | null => {
  try {
    const soft = /^Max open files\s+(\S+)/m.exec(limits())?.[1]
    return soft === undefined || soft === 'unlimited' ? null : Number(soft)
  } catch {
    return null
  }
}

export class Descriptors {
  constructor(readonly limit: number | null = descriptorLimit()) {}

  /** Descriptors open now (the listing's own is not counted), or null where /proc cannot tell. */
  open(): number | null {
    try {
      return readdirSync('/proc/self/fd').length - 1
    } catch {
      return null
    }
  }

  /** Why there is no room for `reserve` more descriptors, or null when there is. */
  short(reserve: number): string | null {
    const open = this.limit === null ? null : this.open()
    if (this.limit === null || open === null || this.limit - open >= reserve) return null
    return `${open} of ${this.limit} descriptors open`
  }
}
