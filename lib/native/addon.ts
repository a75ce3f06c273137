// The native addon (lib/native/*.c, built into dist/native/forkserver.node
// by build.sh): its exports, as TypeScript sees them, and how it is loaded.
// It is optional: loadAddon() says why it cannot be had, with the command
// that builds it, and the callers go without (no --start zygote, no
// --proxy-protocol, /proc instead of a peek).
// Loaded by the parent, the zygote, a prefork worker, and a forked child.
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

/** The addon's exports (lib/native/*.c). */
export interface Addon {
  /** fork(2): the child's pid in the parent, 0 in the child. Throws an Error with the errno's code. */
  fork(): number
  /** _exit(2): no Node teardown, nothing flushed. */
  exit(status: number): never
  /** waitpid(pid, WNOHANG) until nothing more is there, pid -1 (the default) for any; endGroups: SIGKILL each one's group first. */
  reap(pid?: number, endGroups?: boolean): { pid: number; code: number | null; signal: number | null }[]
  /** The pid of a child that has exited, left a zombie for reap(pid) to collect; 0 when none has (waitid WNOWAIT: it sees child_process's children too). */
  exited(): number
  setChildSubreaper(): void
  /** Fills `view` in place with bytes from getrandom(2). */
  fillRandom(view: NodeJS.TypedArray): void
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
   * returns: when the exec fails, `failure` on stderr (lib/serve/exec.ts's
   * notStartedFormat) and _exit 127 (no such program) or 126.
   */
  execProgram(fd: number, file: string, argv: readonly string[], env: readonly string[], failure: string): never
  /** setpgid(0, 0): this process leads a process group of its own. */
  leadGroup(): void
  /**
   * Calls back (on the loop) each time this process's parent dies: the one
   * it has now, and each subreaper that adopts it after (PR_SET_PDEATHSIG,
   * with a real-time signal), and at times when it has not (as its threads
   * end one by one): ask process.ppid. At once if `parent`, the pid expected
   * as its parent, is not its parent any more. A second call replaces the callback.
   */
  onParentDeath(parent: number, callback: () => void): void
  /** Gives unused memory back to the kernel: V8's collections for low memory, then malloc_trim (about 20 ms). */
  shrink(): void
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
  /** Blocks (true) or unblocks SIGTERM, SIGINT and SIGHUP in this thread: the zygote, around a spare's fork. */
  holdStops(hold: boolean): void
  /** In a spare: SIGTERM, SIGINT and SIGHUP back to their default action, then unblocked (one held meanwhile ends it now). */
  defaultStops(): void
  /** socketpair(AF_UNIX, SOCK_SEQPACKET), both ends close-on-exec: [the zygote's end, the spare's]. */
  pair(): [number, number]
  /** One message on a pair: `buffer`, with a copy of the descriptor `conn`. */
  sendFd(fd: number, conn: number, buffer: Buffer): void
  /** Blocks for one message on a pair: the descriptor and the bytes sent with it; null once the other end is closed. */
  recvFd(fd: number): { fd: number; data: Buffer } | null
  /** The Node version the addon was compiled against. */
  readonly nodeVersion: string
}

export type Loaded = { readonly addon: Addon; readonly reason: null } | { readonly addon: null; readonly reason: string }

/** dist/native/forkserver.node, found from lib/native/ in the source tree or dist/lib/native/ once built. */
const addonFile = (): string => {
  const fromSource = fileURLToPath(new URL('../../dist/native/forkserver.node', import.meta.url))
  return existsSync(fromSource) ? fromSource : fileURLToPath(new URL('../../native/forkserver.node', import.meta.url))
}

/** A word for sh: as it is when nothing in it is special, else in single quotes. */
const shellWord = (word: string): string => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`)

/**
 * The command that builds the addon again, for the Node first on the PATH,
 * from any folder: lib/native/build.sh, beside this file in the source tree,
 * or three folders up from dist/lib/native/ once built or installed.
 */
export const rebuildCommand = (): string => {
  const beside = fileURLToPath(new URL('./build.sh', import.meta.url))
  return `sh ${shellWord(existsSync(beside) ? beside : fileURLToPath(new URL('../../../lib/native/build.sh', import.meta.url)))}`
}

/**
 * Why there is no addon file, from what build.sh wrote down beside it
 * (build.state: the Node's version and ABI, and the outcome; build.log).
 */
const notBuilt = (file: string): string => {
  const dir = dirname(file)
  let state: string[] = []
  try {
    state = readFileSync(join(dir, 'build.state'), 'utf8').trim().split(' ')
  } catch {
    // never built here
  }
  const [version, , outcome] = state
  const log = join(dir, 'build.log')
  const why = outcome === 'no-compiler' ? `no C compiler when it was built for Node ${version} (see ${log}); install cc and c++, then run`
    : outcome === 'no-headers' ? `no headers for Node ${version} (see ${log}); to build it, run`
    : outcome === 'failed' ? `the compile for Node ${version} failed (see ${log}); to build it again, run`
    : `no ${file}; to build it, run`
  return `not built: ${why} ${rebuildCommand()}`
}

/** Loads the addon, or says why it cannot be had (not Linux, not built and why, built for another Node), and how to build it. */
export const loadAddon = (file: string = addonFile()): Loaded => {
  if (process.platform !== 'linux') return { addon: null, reason: `a real fork(2) needs Linux, not ${process.platform}` }
  if (!existsSync(file)) return { addon: null, reason: notBuilt(file) }
  let addon: Addon
  try {
    addon = createRequire(import.meta.url)(file) as Addon
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).replace(/\s*\n\s*/g, ' ')
    return { addon: null, reason: `cannot load ${file}: ${why}; to build it again, run ${rebuildCommand()}` }
  }
  // It leans on Node's internals (the embedder API, V8's threads): only the Node it was built for will do.
  if (addon.nodeVersion !== process.version) {
    return { addon: null, reason: `built for Node ${addon.nodeVersion}, running ${process.version}; to build it for this Node, run ${rebuildCommand()}` }
  }
  return { addon, reason: null }
}
