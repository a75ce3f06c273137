// The parent outranks its children. In a storm of connects, each one a Node
// child booting, the parent got 4 to 10% of the CPU: too little to accept,
// to turn away what it cannot serve, or to read the children's `taken`. So
// every connection's child (and a zygote, whose children inherit its value)
// runs CHILD_NICENESS steps nicer than the parent. The parent's own value is
// left as it was started; a child can only be made nicer, never less nice,
// without privilege, so the step is taken from the parent's value.
//
// Where the kernel groups processes by session (autogroup, sched(7): on by
// default in many distributions, for processes outside a cgroup with the cpu
// controller), a nice value counts only within its session's group, and each
// child leads a session of its own: there the step does nothing, and the boot
// bound alone holds the storm back. The group's own value (/proc/PID/autogroup)
// is left alone on purpose: it would make the children nicer than everything
// else on the host too, and on a busy 2-core VM it starved them (a zygote's
// fork self-test timed out; clients waited 20 s for a child to boot). Where
// the server's processes share a cgroup with the cpu controller (a systemd
// service with CPUWeight=, say), there is no autogroup, and the step counts.
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

/**
 * Makes `pid` nicer than the parent. It may have exited already (ESRCH), or
 * belong to another user (EPERM, with --user but no root): either way there
 * is nothing to do, and the child runs as it was started.
 */
export const lowerPriority = (pid: number | undefined): void => {
  if (pid === undefined) return
  try {
    setPriority(pid, childNiceness())
  } catch {
    // gone, or not ours to change
  }
}
