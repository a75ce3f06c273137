// A real fork(2) of this warm Node process, through the native addon
// (lib/native/addon.ts). A zygote (a warm process that forks a child per
// connection) is built on forkChild() and reap().
//
// What does not survive the fork: every thread but the caller (V8's workers
// are parked around it, see lib/native/park.cc), and in the child the
// parent's IPC channel, listeners and exits (lib/zygote/forked-child.ts). Memory is
// shared copy-on-write; descriptors are shared.
import { writeSync } from 'node:fs'
import { constants } from 'node:os'
import { isMainThread } from 'node:worker_threads'
import type { Addon } from '../native/addon.js'
import { becomeChild } from './forked-child.js'
import { prepareRandomState } from './random-state.js'

/**
 * The flag that a process which forks must be started with, checked by the
 * fork self-test. Parking V8's worker pool around each fork is what answers
 * the hangs (docs/warm-fork.md has the rounds measured with and without
 * it); this flag is kept all the same: V8 then marks, sweeps and compiles on
 * the main thread, so a child, which has no workers, depends on the few
 * tasks V8 still posts rather than on many.
 */
export const forkSafeFlags: readonly string[] = ['--single-threaded']

/**
 * The zygote's flags: the safe one, and two that keep the fork cheap, where
 * its cost is pages (docs/warm-fork.md, "Fewer pages"): a small young
 * generation, and the compiled code kept, so that no child compiles it
 * again in pages of its own.
 */
export const zygoteFlags: readonly string[] = [...forkSafeFlags, '--max-semi-space-size=1', '--no-flush-bytecode']

/** A child collected by reap(): its exit status, or the signal that killed it. */
export interface Reaped {
  readonly pid: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/**
 * Forks this process. In the parent, returns the child's pid. In the child,
 * returns 0 once the child is set up to live on its own (becomeChild): its
 * own pid, no IPC channel, fresh random numbers, and every exit an _exit.
 * Throws when the fork fails (the Error's code is the errno name).
 */
export const forkChild = (addon: Addon): number => {
  if (!isMainThread) throw new Error('forkChild: only the main thread can fork')
  prepareRandomState(addon)
  const pid = addon.fork()
  if (pid !== 0) return pid
  try {
    becomeChild(addon)
  } catch (err) {
    // A throw here would reach code that believes it is the parent.
    writeSync(2, `forkserver: a forked child could not be set up: ${err instanceof Error ? err.message : String(err)}\n`)
    addon.exit(70)
  }
  return 0
}

const signalNames = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name as NodeJS.Signals]))

/**
 * Collects exited children without waiting. Pass a pid in a process that also
 * uses child_process: reaping any child (-1) would take those children too,
 * and Node would never report their exit. With `endGroups`, what is left in
 * each child's process group is killed as the child is collected.
 */
export const reap = (addon: Addon, pid = -1, endGroups = false): Reaped[] =>
  addon.reap(pid, endGroups).map(({ pid, code, signal }) => ({ pid, code, signal: signal === null ? null : (signalNames.get(signal) ?? null) }))

/**
 * Collects every exited child, choosing for each whether what is left in its
 * process group is killed as it goes (`endsGroup`). Only in a process where
 * nothing else waits for children: it would take child_process's too.
 */
export const reapEach = (addon: Addon, endsGroup: (pid: number) => boolean): Reaped[] => {
  const all: Reaped[] = []
  for (let pid; (pid = addon.exited()) > 0; ) {
    const reaped = reap(addon, pid, endsGroup(pid))
    if (reaped.length === 0) break // (collected meanwhile by no one else: cannot happen, but never loop on it)
    all.push(...reaped)
  }
  return all
}
