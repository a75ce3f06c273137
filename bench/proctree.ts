// Processes as /proc shows them: a server's process tree, and every process
// that carries a bench run's mark in its environment. Both are needed to clean
// up: forkserver's children run in sessions of their own, so killing the
// server's process group misses them, and an orphan has lost its ppid link.
import { spawnSync } from 'node:child_process'
import { readdirSync, readFileSync } from 'node:fs'

interface Stat {
  readonly pid: number
  readonly ppid: number
  /** R, S, D, Z (defunct), ... */
  readonly state: string
  /** utime + stime: the process's own CPU time (all its threads, not its children), in clock ticks. */
  readonly cpuTicks: number
}

const pids = (): number[] =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .map(Number)

const stat = (pid: number): Stat | null => {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // The command name, in parentheses, may itself hold spaces or parentheses.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
    // Fields 14 and 15 of stat(5); fields[0] is field 3, the state.
    return { pid, state: fields[0] ?? '?', ppid: Number(fields[1]), cpuTicks: Number(fields[11]) + Number(fields[12]) }
  } catch {
    return null
  }
}

/** Every descendant of `root` (children, grandchildren, ...), not `root` itself, zombies included. */
export const descendants = (root: number): number[] => {
  const byParent = new Map<number, number[]>()
  for (const pid of pids()) {
    const s = stat(pid)
    if (s === null) continue
    const siblings = byParent.get(s.ppid) ?? []
    siblings.push(pid)
    byParent.set(s.ppid, siblings)
  }
  const found: number[] = []
  const todo = [...(byParent.get(root) ?? [])]
  // pid reuse cannot make a cycle within one snapshot, but bound it anyway.
  while (todo.length > 0 && found.length < 100_000) {
    const pid = todo.pop()!
    found.push(pid)
    todo.push(...(byParent.get(pid) ?? []))
  }
  return found
}

/** The live (not defunct) processes whose environment holds `entry` ("NAME=value"). */
export const marked = (entry: string): number[] =>
  pids().filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(entry)
    } catch {
      return false
    }
  })

/** True while `pid` exists and is not a zombie. */
export const running = (pid: number): boolean => {
  const s = stat(pid)
  return s !== null && s.state !== 'Z'
}

/** The descendants of `root` that are defunct: exited, and not yet reaped. */
export const zombiesUnder = (root: number): number[] => descendants(root).filter((pid) => stat(pid)?.state === 'Z')

/** SIGKILL, ignoring a process that is already gone. */
export const killNow = (pid: number): void => {
  // -1 (a spawn that failed) would mean every process we may signal; 0, our own group.
  if (!Number.isSafeInteger(pid) || pid <= 1) return
  try {
    process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `done` every 20 ms for at most `limitMs`; resolves with its last answer. */
export const waitUntil = async (done: () => boolean, limitMs: number): Promise<boolean> => {
  const deadline = Date.now() + limitMs
  while (!done()) {
    if (Date.now() >= deadline) return false
    await sleep(20)
  }
  return true
}

/** The direct children of `parent`, zombies included. */
export const children = (parent: number): number[] => pids().filter((pid) => stat(pid)?.ppid === parent)

const cmdline = (pid: number): string => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
  } catch {
    return ''
  }
}

/**
 * A forkserver's zygotes (--start zygote): its children that were started
 * with the zygote's flags, or that are titled as a zygote. Read while the
 * server is idle: the only other children it may have are its connections',
 * and a zygote's children are the zygote's, not the server's.
 */
export const zygotesOf = (server: number): number[] =>
  children(server).filter((pid) => running(pid) && /--single-threaded|forkserver: zygote/.test(cmdline(pid)))

/**
 * Clock ticks per second of /proc/PID/stat (USER_HZ): 100 on every Linux we
 * know of, but asked once of getconf all the same.
 */
let clockTicks: number | null = null
export const ticksPerSecond = (): number => {
  if (clockTicks === null) {
    const run = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8', timeout: 5000 })
    const hz = Number(run.stdout?.trim())
    clockTicks = run.status === 0 && Number.isSafeInteger(hz) && hz > 0 ? hz : 100
  }
  return clockTicks
}

/** The process's own CPU time so far (utime + stime, not its children's), in ms at 1/USER_HZ resolution; null if it is gone. */
export const cpuMs = (pid: number): number | null => {
  const s = stat(pid)
  return s === null ? null : (s.cpuTicks * 1000) / ticksPerSecond()
}

/**
 * Waits until `root` and its descendants use no CPU: no tick gained by any of
 * them, and no process appeared, over two polls `intervalMs` apart. For
 * processes that are still starting up (prefork's workers, forkserver's
 * spares) before they are measured. Resolves false if still busy after `limitMs`.
 */
export const waitQuiet = async (root: number, limitMs: number, intervalMs = 50): Promise<boolean> => {
  const snapshot = (): Map<number, number> =>
    new Map([root, ...descendants(root)].flatMap((pid) => {
      const s = stat(pid)
      return s === null || s.state === 'Z' ? [] : [[pid, s.cpuTicks] as const]
    }))
  const busy = (before: Map<number, number>, after: Map<number, number>): boolean =>
    [...after].some(([pid, ticks]) => before.get(pid) === undefined || ticks > (before.get(pid) ?? 0))
  const deadline = Date.now() + limitMs
  let last = snapshot()
  let calm = 0
  while (Date.now() < deadline) {
    await sleep(intervalMs)
    const now = snapshot()
    calm = busy(last, now) ? 0 : calm + 1
    if (calm >= 2) return true
    last = now
  }
  return false
}
