// The parent outranks its children. In a storm of connects, each one a Node
// child booting, the parent got 4 to 10% of the CPU: too little to accept,
// to turn away what it cannot serve, or to read the children's `taken`. So
// every connection's child (and a zygote, whose children inherit its value)
// runs CHILD_NICENESS steps nicer than the parent. The parent's own value is
// left as it was started; a child can only be made nicer, never less nice,
// without privilege, so the step is taken from the parent's value.
//
// Where the kernel groups processes by session (autogroup, sched(7), on by
// default in many distributions), a process's nice value counts only within
// its session's group, and each group gets a fair share against the others.
// Every child is started in a session of its own, so its group's value is set
// too, never that of a group the parent is in.
import { readFileSync, writeFileSync } from 'node:fs'
import { getPriority, setPriority } from 'node:os'

/**
 * How much nicer than the parent a child runs. At 5 the kernel weighs the
 * parent 3 times a child (1024 to 335); with at most BOOT_LIMIT booting, that
 * is enough, and more costs the children against the rest of the host.
 */
export const CHILD_NICENESS = 5

/** The highest (nicest) value Linux allows. */
const NICEST = 19

/** The value a child gets: the parent's, CHILD_NICENESS nicer, as far as it goes. */
export const childNiceness = (parent = getPriority()): number => Math.min(NICEST, parent + CHILD_NICENESS)

/** A process's autogroup (`/autogroup-123`), or null without one (no autogroup, or gone). */
export const autogroupOf = (pid: number | 'self'): string | null => {
  try {
    return /^\/autogroup-\d+/.exec(readFileSync(`/proc/${pid}/autogroup`, 'utf8'))?.[0] ?? null
  } catch {
    return null
  }
}

/**
 * Makes `pid` nicer than the parent, and its autogroup when it is not the
 * parent's. It may have exited already (ESRCH), or belong to another user
 * (EPERM, with --user but no root): either way there is nothing to do, and
 * the child runs as it was started.
 */
export const lowerPriority = (pid: number | undefined): void => {
  if (pid === undefined) return
  const value = childNiceness()
  try {
    setPriority(pid, value)
    const group = autogroupOf(pid)
    if (group !== null && group !== autogroupOf('self')) writeFileSync(`/proc/${pid}/autogroup`, String(value))
  } catch {
    // gone, or not ours to change
  }
}
