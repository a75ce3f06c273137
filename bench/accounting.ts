// What a connection costs, read from /proc: the counters of /proc/PID/stat
// (proc(5)) of the processes that serve it, taken before and after a burst of
// connections that starts and ends with the server idle, every child reaped;
// and the fork-time lines the forking process writes when FORKSERVER_FORK_TIMES
// is set (lib/native/fork.c, bench/peers/c-fork.c and python-forking.py).
//
// A child lives a few milliseconds, too short to read its own /proc. Once it
// is reaped, the kernel adds its CPU time and page faults to its reaper's
// cutime, cstime and cminflt: over a burst that ends with every child reaped,
// their growth is exactly the children's, whatever their number.
import { readFileSync } from 'node:fs'
import { mean, percentile, ascending, round } from './stats.js'

/** Of one process, from /proc/PID/stat; times in clock ticks (USER_HZ). */
export interface Counters {
  /** utime + stime (fields 14, 15): its own CPU time, all its threads. */
  readonly cpuTicks: number
  /** cutime + cstime (fields 16, 17): its children's, once it has reaped them. */
  readonly childCpuTicks: number
  /** minflt (field 10): its own minor page faults. */
  readonly minflt: number
  /** cminflt (field 11): its reaped children's. */
  readonly cminflt: number
}

export const parseCounters = (stat: string): Counters | null => {
  // The command name, in parentheses, may itself hold spaces or parentheses; fields[0] is field 3.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  const field = (n: number): number => Number(fields[n - 3])
  const counters = { cpuTicks: field(14) + field(15), childCpuTicks: field(16) + field(17), minflt: field(10), cminflt: field(11) }
  return Object.values(counters).every(Number.isSafeInteger) ? counters : null
}

export const readCounters = (pid: number): Counters | null => {
  try {
    return parseCounters(readFileSync(`/proc/${pid}/stat`, 'utf8'))
  } catch {
    return null
  }
}

/**
 * The processes of a server, by role: `parent` accepts; `zygote`, under
 * --start zygote, forks and reaps the children. A peer is one process, which
 * accepts, forks and reaps: its zygote is null.
 */
export interface Roles<T> {
  readonly parent: T
  readonly zygote: T | null
}

/** Each role's counters, or null for a process that could not be read. */
export const snapshot = (roles: Roles<number>): Roles<Counters | null> => ({
  parent: readCounters(roles.parent),
  zygote: roles.zygote === null ? null : readCounters(roles.zygote),
})

/** Per connection: CPU ms of each role and of the children, and minor page faults. */
export interface PerConnection {
  readonly parentCpuMs: number
  /** Absent for a peer, which has no zygote. */
  readonly zygoteCpuMs?: number
  readonly childCpuMs: number
  readonly totalCpuMs: number
  /** The children's minor page faults, per child. */
  readonly childMinorFaults: number
  /** The forking process's own (the zygote's, or the peer's): the copy-on-write faults it takes after each fork. */
  readonly forkerMinorFaults: number
}

/**
 * The growth of the counters from `before` to `after`, over `connections`
 * connections, each served by one child that the forker (the zygote, or the
 * peer's process) reaped. Null when a process could not be read at either end.
 */
export const perConnection = (before: Roles<Counters | null>, after: Roles<Counters | null>, connections: number, ticksPerSecond: number): PerConnection | null => {
  const { parent: p0, zygote: z0 } = before
  const { parent: p1, zygote: z1 } = after
  if (p0 === null || p1 === null || connections <= 0) return null
  const hasZygote = z0 !== null || z1 !== null
  if (hasZygote && (z0 === null || z1 === null)) return null
  const forker0 = z0 ?? p0
  const forker1 = z1 ?? p1
  const ms = (ticks: number): number => round((ticks * 1000) / ticksPerSecond / connections, 3)
  const parentTicks = p1.cpuTicks - p0.cpuTicks
  const zygoteTicks = z0 !== null && z1 !== null ? z1.cpuTicks - z0.cpuTicks : 0
  const childTicks = forker1.childCpuTicks - forker0.childCpuTicks
  return {
    parentCpuMs: ms(parentTicks),
    ...(hasZygote ? { zygoteCpuMs: ms(zygoteTicks) } : {}),
    childCpuMs: ms(childTicks),
    totalCpuMs: ms(parentTicks + zygoteTicks + childTicks),
    childMinorFaults: round((forker1.cminflt - forker0.cminflt) / connections, 1),
    forkerMinorFaults: round((forker1.minflt - forker0.minflt) / connections, 1),
  }
}

const FORK_TIME = /^fork-time((?: [a-z]+=\d+)+)$/

/** The steps of one fork-time line, in ns by name (`fork` is fork(2) itself); null for any other line. */
export const parseForkTime = (line: string): Readonly<Record<string, number>> | null => {
  const found = FORK_TIME.exec(line.trim())
  if (!found) return null
  return Object.fromEntries((found[1] ?? '').trim().split(' ').map((pair) => {
    const [name, ns] = pair.split('=')
    return [name ?? '', Number(ns)]
  }))
}

export interface ForkTimes {
  /** Forks timed. */
  readonly samples: number
  /** The whole call as the language makes it (every step), mean and p50, µs. */
  readonly callUs: number
  readonly callP50Us: number
  /** fork(2) alone, mean µs; absent where it is not told apart (os.fork). */
  readonly forkUs?: number
  /** Each step's mean, µs, where there is more than one (the addon: park, maps, fork, unpark). */
  readonly stepsUs?: Readonly<Record<string, number>>
}

/** Means and the call's p50 over the fork-time lines of a burst; null when there are none. */
export const forkTimes = (lines: readonly Readonly<Record<string, number>>[]): ForkTimes | null => {
  if (lines.length === 0) return null
  const us = (ns: number): number => round(ns / 1000, 1)
  const calls = lines.map((steps) => Object.values(steps).reduce((sum, ns) => sum + ns, 0))
  const names = [...new Set(lines.flatMap((steps) => Object.keys(steps)))]
  const stepMean = (name: string): number => us(mean(lines.map((steps) => steps[name] ?? 0)))
  return {
    samples: lines.length,
    callUs: us(mean(calls)),
    callP50Us: us(percentile(ascending(calls), 50)),
    ...(names.includes('fork') ? { forkUs: stepMean('fork') } : {}),
    ...(names.length > 1 ? { stepsUs: Object.fromEntries(names.map((name) => [name, stepMean(name)])) } : {}),
  }
}
