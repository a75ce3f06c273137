// What the parent adopts, reaped. Under --start zygote the parent is a child
// subreaper (PR_SET_CHILD_SUBREAPER, lib/start/zygote-starter.ts): a process
// whose parent dies comes to it, not to PID 1. The children of a zygote that
// died come so; so does what a handler started and its child left behind
// (detached, or killed with the group as the child was reaped), once no
// zygote is there to take it; and an old zygote that exits after a reload
// hands on what it had adopted. Each stays a zombie until it is reaped.
//
// So on every SIGCHLD the parent looks over its children and reaps each one
// it did not start with child_process: libuv waits for those by pid, and one
// reaped here would never report its 'exit' (lib/start/spawn.ts keeps their
// pids). Nothing else reaps in the parent.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import type { Addon } from '../native/addon.js'
import { reap, type Reaped } from '../zygote/warm-fork.js'
import { startedHere } from './spawn.js'

/** /proc's list of children can miss one that comes or goes as it is read: a look this often finds it. */
const BACKSTOP_MS = 2000

export interface Adoption {
  /** Whether to SIGKILL what is left in its process group as it is collected: a zygote's child, whose connection is over. */
  readonly endsGroup: (pid: number) => boolean
  /** One was collected: its exit status, or the signal that killed it. */
  readonly reaped: (reaped: Reaped) => void
}

/** From now on, reaps every child of this process that child_process did not start; returns the sweep, for a look at once. */
export const reapAdopted = (addon: Addon, adoption: Adoption): (() => void) => {
  const sweep = (): void => {
    for (const pid of childPids()) {
      if (startedHere(pid)) continue
      for (const reaped of reap(addon, pid, adoption.endsGroup(pid))) adoption.reaped(reaped)
    }
  }
  process.on('SIGCHLD', sweep) // (libuv hears it too, for its own children)
  setInterval(sweep, BACKSTOP_MS).unref()
  return sweep
}

/** A /proc file's text; empty when its process or thread is gone. */
const readOr = (path: string): string => {
  try {
    return readFileSync(path, 'utf8')
  } catch {
    return ''
  }
}

/** The parent's pid in a /proc/PID/stat text ("pid (comm) state ppid ...": comm may hold spaces and parentheses). */
const ppidIn = (stat: string): number => Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])

/**
 * The pids of the children of process `pid`, zombies included: each of its
 * threads' /proc/PID/task/TID/children, or, on a kernel without those
 * (CONFIG_PROC_CHILDREN), or with `scan`, a look at every process's parent.
 */
export const childPids = (pid: number = process.pid, scan = !existsSync(`/proc/${pid}/task/${pid}/children`)): number[] => {
  if (scan) return readdirSync('/proc').filter((name) => /^\d+$/.test(name) && ppidIn(readOr(`/proc/${name}/stat`)) === pid).map(Number)
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => readOr(`/proc/${pid}/task/${tid}/children`).split(' ')).filter((word) => /^\d+$/.test(word)).map(Number)
}
