// The parent outranks its children: every connection's child (and a zygote,
// whose children inherit its value) runs CHILD_NICENESS steps nicer than the
// parent, so that in a storm of Node start-ups the parent still accepts,
// turns away what it cannot serve, and hears `taken`. Where the kernel's
// autogroup weighs each session as one, the step counts for nothing, and
// the boot bound alone holds a storm back: docs/internals.md, "Measured
// choices", says what was measured.
import { getPriority, setPriority } from 'node:os'

/** How much nicer than the parent a child runs: the kernel weighs the parent 3 times a child (1024 to 335). */
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
