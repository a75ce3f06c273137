// The parent outranks its children. In a storm of connects, each one a Node
// child booting, the parent got 4 to 10% of the CPU: too little to accept,
// to turn away what it cannot serve, or to read the children's `taken`. So
// every connection's child (and a zygote, whose children inherit its value)
// runs CHILD_NICENESS steps nicer than the parent. The parent's own value is
// left as it was started; a child can only be made nicer, never less nice,
// without privilege, so the step is taken from the parent's value.
import { getPriority, setPriority } from 'node:os'

/** How much nicer than the parent a child runs: at 10, the kernel gives the parent about 10 times a child's share. */
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
