// A connection's process group. Each child that serves connections leads a
// process group of its own (started detached, lib/start/spawn.ts; or, forked by a
// zygote, it makes one, lib/zygote/zygote.ts), and what it starts is in that group:
// the --exec program and its background jobs, a handler's own processes. When
// the child's connection is over, so is the group: whatever is left in it is
// ended, as systemd ends what is left of an Accept=yes instance. Only a
// process that leaves the group (setsid, or spawn with detached: true) lives on.
//
// Signalling a group by its id (kill(-pgid)) is safe only while the group has
// a member: its id is its leader's pid, and that pid is not reused while the
// group exists; once the group is empty, a new process may get the pid and
// lead a new group of that id. So a group is signalled only while a member is
// known to be there: here by the child itself, which is a member, before it
// exits; under the zygote by the zygote as it reaps a child, while the child
// is a zombie (lib/native/fork.c, reap); and by the parent only while the
// child is not yet reaped (signalProcess, below).
import { readdirSync, readFileSync } from 'node:fs'

/** How long what is left in a group has, after SIGTERM, before SIGKILL. */
export const GROUP_KILL_AFTER_MS = 1000

/** The group of process `pid`, and whether it is a zombie; null when it is gone. */
const groupOf = (pid: string): { pgid: number; zombie: boolean } | null => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
    return { pgid: Number(pgrp), zombie: state === 'Z' }
  } catch {
    return null
  }
}

/** The live processes of group `pgid` other than this one. */
export const othersInGroup = (pgid: number): number[] =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name) && Number(name) !== process.pid)
    .filter((name) => {
      const group = groupOf(name)
      return group !== null && group.pgid === pgid && !group.zombie
    })
    .map(Number)

/** Sleeps, blocking: the process is on its way out, with nothing else to do. */
const pause = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms)

/** (It never fails: this process is in the group.) */
const signalGroup = (pgid: number, signal: NodeJS.Signals): void => void process.kill(-pgid, signal)

/**
 * The last thing a child does before it exits: ends what is left in the
 * group it leads (none led: nothing to do). SIGTERM, with SIGCONT for one
 * that is stopped; then, for what is still there after GROUP_KILL_AFTER_MS,
 * SIGKILL to the whole group, and this process dies of it too: a child
 * cannot send its own group SIGKILL and live.
 */
export const endGroup = (): void => {
  const pgid = process.pid
  if (othersInGroup(pgid).length === 0) return
  // This process is in the group too, and is exiting anyway: it ignores the SIGTERM it sends.
  process.on('SIGTERM', () => {})
  signalGroup(pgid, 'SIGTERM')
  signalGroup(pgid, 'SIGCONT')
  const deadline = Date.now() + GROUP_KILL_AFTER_MS
  while (othersInGroup(pgid).length > 0) {
    if (Date.now() >= deadline) return signalGroup(pgid, 'SIGKILL')
    pause(20)
  }
}

/** SIGTERM's listeners from before any handler was loaded: tooling's (a coverage hook, say), not the handler's. */
const TOOLING = new Set(process.listeners('SIGTERM'))

/**
 * SIGTERM to a child that serves a connection (the drain's grace is over,
 * --max-lifetime) ends it, and its group with it: the child passes the
 * signal to the group it leads, and dies of it itself. A handler that
 * listens for SIGTERM itself decides when to end instead; its child then
 * exits through endGroup().
 */
export const termEndsGroup = (): void => {
  const onTerm = (): void => {
    if (process.listeners('SIGTERM').some((listener) => listener !== onTerm && !TOOLING.has(listener))) return // the handler's own
    process.off('SIGTERM', onTerm) // back to what it was: die of it
    signalProcess(process.pid, 'SIGTERM', true) // (alone, if it leads no group)
  }
  process.on('SIGTERM', onTerm)
}

/**
 * Signals a child, or with `group` the process group it leads. One that leads
 * none yet (a zygote's child makes its group just after the fork) is
 * signalled alone; one that is gone already, not at all. Only call it for a child not yet
 * reaped: until then its pid, and the group of that id, are still its own.
 */
export const signalProcess = (pid: number, signal: NodeJS.Signals, group: boolean): void => {
  for (const target of group ? [-pid, pid] : [pid]) {
    try {
      process.kill(target, signal)
      return
    } catch {
      // no such group, or gone already
    }
  }
}
