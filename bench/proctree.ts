// Processes as /proc shows them: a server's process tree, and every process
// that carries a bench run's mark in its environment. Both are needed to clean
// up: forkserver's children run in sessions of their own, so killing the
// server's process group misses them, and an orphan has lost its ppid link.
import { readdirSync, readFileSync } from 'node:fs'

interface Stat {
  readonly pid: number
  readonly ppid: number
  /** R, S, D, Z (defunct), ... */
  readonly state: string
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
    return { pid, state: fields[0] ?? '?', ppid: Number(fields[1]) }
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
