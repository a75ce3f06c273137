// A real fork(2) of this warm Node process, through the native addon built
// from lib/native/ into dist/native/forkserver.node. The addon is optional:
// loadWarmFork() says why it cannot be had, and the caller falls back to
// child_process.fork. A zygote (a warm process that forks a child per
// connection) is built on forkChild() and reap().
//
// What does not survive the fork: every thread but the caller (V8's workers
// are parked around it, see lib/native/park.cc), and in the child the
// parent's IPC channel, listeners and exits (lib/forked-child.ts). Memory is
// shared copy-on-write; descriptors are shared.
import { existsSync, writeSync } from 'node:fs'
import { createRequire } from 'node:module'
import { constants } from 'node:os'
import { fileURLToPath } from 'node:url'
import { isMainThread } from 'node:worker_threads'
import { becomeChild } from './forked-child.js'

/**
 * The flag that a process which forks must be started with, checked by the
 * fork self-test. What answers the hangs of hazard 2 (docs/warm-fork.md) is
 * parking V8's worker pool around each fork: in the self-test (8 stressed
 * children a round), without parking 2 or 3 rounds in 10 hung in futex
 * waits, with or without this flag; with parking, 10 in 10 passed, with or
 * without it. It is kept all the same: V8 then marks, sweeps and compiles on
 * the main thread, so a child, which has no workers, depends on the few
 * tasks V8 still posts (such as the clearing job of a mark-compact) rather
 * than on many. --v8-pool-size is not needed: it only changes how many
 * workers are parked (4 by default).
 */
export const forkSafeFlags: readonly string[] = ['--single-threaded']

/**
 * The zygote's flags: the safe one, and two that keep the fork cheap, where
 * its cost is pages. fork(2) copies the page table of every page the zygote
 * has, and a child pays a copy-on-write fault for every page it writes.
 * --max-semi-space-size=1 (MB) caps V8's young generation, which grew to
 * 9 MB resident in the zygote while holding under 0.5 MB of objects.
 * --no-flush-bytecode keeps the code the zygote compiled: V8 would otherwise
 * drop what has not run for a while, and every child would compile it again
 * in its own pages.
 */
export const zygoteFlags: readonly string[] = [...forkSafeFlags, '--max-semi-space-size=1', '--no-flush-bytecode']

/** The addon's exports (lib/native/fork.c). */
export interface Addon {
  /** fork(2): the child's pid in the parent, 0 in the child. Throws an Error with the errno's code. */
  fork(): number
  /** _exit(2): no Node teardown, nothing flushed. */
  exit(status: number): never
  /** waitpid(pid, WNOHANG) until nothing more is there, pid -1 (the default) for any; endGroups: SIGKILL each one's group first. */
  reap(pid?: number, endGroups?: boolean): { pid: number; code: number | null; signal: number | null }[]
  setChildSubreaper(): void
  getrandom(size: number): Buffer
  /** The real pid (process.pid is cached at start-up). */
  getpid(): number
  /** Calls back, just before the loop would poll, when nothing but this keeps it alive (once per process). */
  whenIdle(callback: () => void): void
  /** True when nothing but whenIdle() keeps the loop alive. */
  idle(): boolean
  /**
   * In a forked child: `fd` as stdin and stdout, a session of its own, every
   * signal at its default and unblocked, every other descriptor above 2
   * closed, then execvp(file, argv) with `env` (`NAME=value` each). Never
   * returns: when the exec fails, `failure` on stderr (lib/exec.ts's
   * notStartedFormat) and _exit 127 (no such program) or 126.
   */
  execProgram(fd: number, file: string, argv: readonly string[], env: readonly string[], failure: string): never
  /** setpgid(0, 0): this process leads a process group of its own. */
  leadGroup(): void
  /**
   * The program, started by posix_spawnp as execProgram would start it (the
   * same descriptors, session, signals and environment) but with no copy of
   * this process: its pid, or 0 when it could not be started.
   */
  spawnProgram(fd: number, file: string, argv: readonly string[], env: readonly string[]): number
  /** send(fd, buffer, MSG_DONTWAIT): the bytes a socket takes now; throws EAGAIN when it takes none. */
  sendNow(fd: number, buffer: Buffer): number
  /**
   * What a recv with MSG_PEEK (which reads nothing) sees of the peer of the
   * connected socket `fd`: 0 there (bytes wait, or none yet), 1 it closed its
   * side with nothing unread, 2 it reset (or any error, such as a bad fd).
   */
  peerState(fd: number): 0 | 1 | 2
  /** recv(MSG_PEEK): up to `size` bytes that wait, left unread; empty at end-of-file, null when none wait yet. Throws on an error (ECONNRESET). */
  peek(fd: number, size: number): Buffer | null
  /** recv: reads and drops the first `size` bytes, which a peek has seen; the bytes read. */
  discard(fd: number, size: number): number
  /**
   * Calls back once, when `fd` has `atLeast` bytes or an end to read (`ended`:
   * the peer closed its side, or reset), without reading them; an id for unwatch().
   */
  whenReadable(fd: number, atLeast: number, callback: (ended: boolean) => void): number
  /** Stops a whenReadable() that has not called back (its socket is being closed). */
  unwatch(id: number): void
  /** accept4 on the listening `fd` until its backlog is empty: the new descriptors, non-blocking. */
  acceptPending(fd: number): number[]
  /** On a TCP listener about to close for good: drops every new SYN, so that nothing more joins its backlog. */
  refuseNew(fd: number): void
  /** The Node version the addon was compiled against. */
  readonly nodeVersion: string
}

/** A child collected by reap(): its exit status, or the signal that killed it. */
export interface Reaped {
  readonly pid: number
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

export type Loaded = { readonly addon: Addon; readonly reason: null } | { readonly addon: null; readonly reason: string }

/** dist/native/forkserver.node, found from lib/ in the source tree or dist/lib/ once built. */
const addonFile = (): string => {
  const fromSource = fileURLToPath(new URL('../dist/native/forkserver.node', import.meta.url))
  return existsSync(fromSource) ? fromSource : fileURLToPath(new URL('../native/forkserver.node', import.meta.url))
}

/** Loads the addon, or says why it cannot be had (not Linux, not built, built for another Node). */
export const loadWarmFork = (file: string = addonFile()): Loaded => {
  if (process.platform !== 'linux') return { addon: null, reason: `a real fork(2) needs Linux, not ${process.platform}` }
  if (!existsSync(file)) return { addon: null, reason: `not built (no ${file}): make build compiles it (installed: sh lib/native/build.sh)` }
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)(file) as Addon
  } catch (err) {
    return { addon: null, reason: `cannot load ${file}: ${err instanceof Error ? err.message : String(err)}` }
  }
  // It leans on Node's internals (the embedder API, V8's threads): only the Node it was built for will do.
  if (addon.nodeVersion !== process.version) return { addon: null, reason: `built for Node ${addon.nodeVersion}, running ${process.version}: make build again (installed: sh lib/native/build.sh)` }
  return { addon, reason: null }
}

/**
 * Forks this process. In the parent, returns the child's pid. In the child,
 * returns 0 once the child is set up to live on its own (becomeChild): its
 * own pid, no IPC channel, fresh random numbers, and every exit an _exit.
 * Throws when the fork fails (the Error's code is the errno name).
 */
export const forkChild = (addon: Addon): number => {
  if (!isMainThread) throw new Error('forkChild: only the main thread can fork')
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
