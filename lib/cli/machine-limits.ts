// How many children and queued sockets this machine can hold, read once at
// start from the kernel's limits (Linux /proc and /sys), so that a count
// option over them is refused before anything is forked.
//
// The figures hold for every supported line, measured on Node 20, 22, 24 and
// 26 (the most of them taken). A child is a whole Node process of 11 threads:
// a bare `node` running a module runs 7, and libuv's pool of 4 starts with
// the first file or DNS work (on Node 20 at once, for the module loader); the
// process limit and a cgroup's pids.max count threads. Its memory is counted
// by what it adds, its proportional share (PSS) of a spawned echo child among
// 30: 9.0 MiB on Node 20 (whose binary other Node processes here shared), 9.6
// on 22, 11.9 on 24 and 11.8 on 26 (about 14 among 10); a zygote's child, 3.4
// to 3.5 MiB on 22, 24 and 26. Its RSS (45 to 51 MiB) counts Node's shared
// pages once per child, and would refuse counts that fit.
import { readFileSync } from 'node:fs'
import { totalmem } from 'node:os'
import { ACCEPT_RESERVE, descriptorLimit } from '../net/descriptors.js'

/** Threads a child runs: what it counts against RLIMIT_NPROC and pids.max. */
export const THREADS_PER_CHILD = 11
/** Memory a child adds, in bytes: a spawned child's PSS among many, on the line that takes most (24), rounded up. */
export const MEMORY_PER_CHILD = 12 * 2 ** 20

/** The limits read, each null where there is none or it cannot be read. */
export interface Machine {
  /** The soft RLIMIT_NPROC: threads the user may run. */
  readonly processLimit: number | null
  /** The lowest pids.max of the cgroup and the cgroups above it. */
  readonly pidsMax: number | null
  /** kernel.pid_max: thread ids for the whole system. */
  readonly pidMax: number | null
  /** The lowest memory limit of the cgroup and those above it, in bytes. */
  readonly cgroupMemory: number | null
  /** The machine's RAM, in bytes. */
  readonly ram: number
  /** The soft RLIMIT_NOFILE. */
  readonly descriptorLimit: number | null
}

/** Reads a file's text; throws when it cannot. */
export type ReadText = (path: string) => string

const readText: ReadText = (path) => readFileSync(path, 'utf8')

/** A limit's text as a number; null for none ('max', 'unlimited', unreadable). */
const limitOf = (read: ReadText, path: string): number | null => {
  try {
    const n = Number(read(path).trim())
    return Number.isFinite(n) && n >= 0 && n < Number.MAX_SAFE_INTEGER ? n : null
  } catch {
    return null
  }
}

/** The soft RLIMIT_NPROC, from /proc/self/limits. */
const processLimit = (read: ReadText): number | null => {
  try {
    const soft = /^Max processes\s+(\S+)/m.exec(read('/proc/self/limits'))?.[1]
    return soft === undefined || soft === 'unlimited' ? null : Number(soft)
  } catch {
    return null
  }
}

/** The lowest of `file` in a cgroup directory and every one above it, up to the mount. */
const lowestUp = (read: ReadText, mount: string, path: string, file: string): number | null => {
  const parts = path.split('/').filter((p) => p !== '')
  const found = parts
    .map((_, i) => `${mount}/${parts.slice(0, parts.length - i).join('/')}/${file}`)
    .concat(`${mount}/${file}`)
    .map((at) => limitOf(read, at))
    .filter((n) => n !== null)
  return found.length === 0 ? null : Math.min(...found)
}

/**
 * A cgroup limit, from /proc/self/cgroup: the unified (v2) hierarchy's
 * `v2file`, or the v1 `controller` hierarchy's `v1file`.
 */
const cgroupLimit = (read: ReadText, controller: string, v2file: string, v1file: string): number | null => {
  let lines: string[]
  try {
    lines = read('/proc/self/cgroup').split('\n')
  } catch {
    return null
  }
  const rows = lines.map((line) => /^\d+:([^:]*):(.*)$/.exec(line)).filter((m) => m !== null)
  const v1 = rows.find((m) => m[1]!.split(',').includes(controller))
  if (v1 !== undefined) return lowestUp(read, `/sys/fs/cgroup/${controller}`, v1[2]!, v1file)
  const v2 = rows.find((m) => m[1] === '')
  return v2 === undefined ? null : lowestUp(read, '/sys/fs/cgroup', v2[2]!, v2file)
}

/** This machine's limits; `read` and `ram` are for tests. */
export const readMachine = (read: ReadText = readText, ram: number = totalmem()): Machine => ({
  processLimit: processLimit(read),
  pidsMax: cgroupLimit(read, 'pids', 'pids.max', 'pids.max'),
  pidMax: limitOf(read, '/proc/sys/kernel/pid_max'),
  cgroupMemory: cgroupLimit(read, 'memory', 'memory.max', 'memory.limit_in_bytes'),
  ram,
  descriptorLimit: descriptorLimit(() => read('/proc/self/limits')),
})

/** The most a count may be, and the limit that sets it, for the error line. */
export interface Ceiling {
  readonly most: number
  readonly why: string
}

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(1)} GiB`

/**
 * Children this machine can run at once, and why: the tightest of the
 * process limits, in threads, and of memory. One child's share is left for
 * the parent.
 */
export const childCeiling = (m: Machine): Ceiling => {
  const perThreads = (limit: number | null, name: string): Ceiling[] =>
    limit === null ? [] : [{ most: Math.floor(limit / THREADS_PER_CHILD) - 1, why: `${name} ${limit}, at ${THREADS_PER_CHILD} threads a child` }]
  const memory = m.cgroupMemory !== null && m.cgroupMemory < m.ram
    ? { bytes: m.cgroupMemory, name: "the cgroup's memory limit" }
    : { bytes: m.ram, name: 'memory' }
  const ceilings = [
    ...perThreads(m.processLimit, 'ulimit -u'),
    ...perThreads(m.pidsMax, "the cgroup's pids.max"),
    ...perThreads(m.pidMax, 'kernel.pid_max'),
    { most: Math.floor(memory.bytes / MEMORY_PER_CHILD) - 1, why: `${memory.name} ${gib(memory.bytes)}, at ${MEMORY_PER_CHILD / 2 ** 20} MiB a child` },
  ]
  const lowest = ceilings.reduce((a, b) => (b.most < a.most ? b : a))
  return { most: Math.max(1, lowest.most), why: lowest.why }
}

/** Connections that may wait in the queue: each holds a descriptor in the parent. Null for no limit. */
export const queueCeiling = (m: Machine): Ceiling | null =>
  m.descriptorLimit === null
    ? null
    : { most: Math.max(1, m.descriptorLimit - ACCEPT_RESERVE), why: `ulimit -n ${m.descriptorLimit}, less ${ACCEPT_RESERVE} kept in reserve` }
