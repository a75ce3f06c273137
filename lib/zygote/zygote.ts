// The zygote (--start zygote, and auto's where it can): a warm process that
// forks one child per connection with a real fork(2) (lib/zygote/warm-fork.ts),
// as the article's C server does. The parent started it with child_process.fork and the flags
// that make forking safe. It loads the service once, proves that a fork is
// safe here (lib/zygote/fork-self-test.ts), and then, for each socket the parent
// sends, forks: the child serves that one connection and _exits, and the
// zygote closes its copy of the socket, reaps the child and reports its exit.
// With --exec the zygote starts the program as its child (posix_spawn, with
// no copy of itself): no Node is left between the program and its connection.
// With --spares it forks children ahead, each waiting for its socket, which
// the zygote passes on when the parent sends it: no fork on that path.
import { closeSync } from 'node:fs'
import { errorMessage } from '../log/log.js'
import type { Trace } from '../log/trace.js'
import { setTitle } from '../log/title.js'
import { loadAddon, type Addon } from '../native/addon.js'
import { peerOf } from '../net/address.js'
import { handleFd, type RawHandle } from '../net/raw-handle.js'
import { message, type ConnectionInfo, type Message, type MessageOf, type ServeSpec } from '../protocol.js'
import { atOrphanDeadline, handlerFailed, loadHandler, runConnection, wrapConnection } from '../serve/connection.js'
import { notStartedFormat, programEnv } from '../serve/exec.js'
import { signalProcess } from '../serve/process-group.js'
import type { Handler } from '../serve/services/index.js'
import { forkSelfTest } from './fork-self-test.js'
import { forkChild, reapEach } from './warm-fork.js'
import { warmUp } from './warm-up.js'

export interface ZygoteControls {
  /** The parent sent a socket: fork a child to serve it. */
  readonly fork: (m: MessageOf<'fork'>, handle: unknown) => void
  /** --spares: fork a child ahead, to wait for its socket. */
  readonly spare: (m: MessageOf<'spare'>) => void
  /** A socket for a spare forked ahead: pass it on. */
  readonly hand: (m: MessageOf<'hand'>, handle: unknown) => void
  /** A reload replaced this zygote: fork no more, and exit once every child is reaped. */
  readonly stop: () => void
  /** The parent is gone: fork no more; the children have until the orphan deadline, then are killed. */
  readonly orphan: () => void
}

const send = (m: Message): void => void process.send?.(m, undefined, undefined, () => {})
/** Sends, and resolves once the message has gone (or could not go). */
const sent = (m: Message): Promise<void> => new Promise((resolve) => (process.send === undefined ? resolve() : process.send(m, undefined, undefined, () => resolve())))

/** Loads the service and tests a fork; says `ready`, or `unfit` with why and returns null. */
export const becomeZygote = async ({ spec, generation }: MessageOf<'zygote'>, trace: Trace): Promise<ZygoteControls | null> => {
  const unfit = async (reason: string): Promise<null> => {
    await sent(message('unfit', { reason }))
    return null
  }
  const { addon, reason } = loadAddon()
  if (addon === null) return unfit(reason)
  // What its children leave behind comes to it when they exit, not to the
  // parent, which would never reap it: the zygote reaps every child it has.
  addon.setChildSubreaper()
  // --exec has no handler: the child becomes the program.
  let handler: Handler | null = null
  try {
    if (spec.exec === null) handler = await loadHandler(spec)
  } catch (err) {
    return unfit(handlerFailed(spec, err, 'failed to load'))
  }
  if (handler !== null && spec.handler === null) await warmUp(handler, spec, trace)
  const test = await forkSelfTest(addon, { children: 4 })
  if (!test.ok) return unfit(`the fork self-test failed: ${test.reason}`)
  trace('zygote %d ready: self-test %d ms', process.pid, test.ms)
  setTitle(`zygote (generation ${generation})`)
  const zygote = new Zygote(addon, handler, trace)
  process.on('SIGCHLD', () => zygote.reapAll())
  send(message('ready', { selfTestMs: Math.round(test.ms) }))
  return {
    fork: (m, handle) => zygote.fork(m, handle), spare: (m) => zygote.spare(m), hand: (m, handle) => zygote.hand(m, handle),
    stop: () => zygote.stop(), orphan: () => zygote.orphan(spec),
  }
}

/** After a parent's death is signalled while it still shows as the parent: how soon the child looks again. */
const PARENT_RECHECK_MS = 200

class Zygote {
  /** The children forked and not yet reaped. */
  readonly #live = new Set<number>()
  /** Spares forked ahead and not yet given a socket, by the parent's id: this zygote's end of each one's pair. */
  readonly #spares = new Map<number, { readonly pid: number; readonly end: number }>()
  #stopping = false
  /** Who a child's parent may be: this zygote, or the server, the subreaper that adopts the children of a zygote that died. */
  readonly #parents = new Set([process.pid, process.ppid])

  constructor(
    private readonly addon: Addon,
    private readonly handler: Handler | null,
    private readonly trace: Trace,
  ) {}

  fork({ id, info, spec }: MessageOf<'fork'>, handle: unknown): void {
    if (typeof handle !== 'object' || handle === null) return send(message('forked', { id, pid: null, error: 'the socket was lost in transit' }))
    const connfd = handle as RawHandle
    const { handler } = this
    let pid: number
    try {
      // --exec has no handler: the program is started instead.
      pid = handler === null ? this.startProgram(execArgs(info, spec, connfd), spec) : forkChild(this.addon)
    } catch (err) {
      connfd.close()
      return send(message('forked', { id, pid: null, error: errorMessage(err) }))
    }
    // The child (startProgram's never gets here: it execs). It never comes back.
    if (pid === 0 && handler !== null) {
      this.closeSpareEnds()
      return this.serve(handler, info, spec, connfd)
    }
    // close(connfd): the child has its own copy now.
    connfd.close()
    this.#live.add(pid)
    send(message('forked', { id, pid, error: null }))
  }

  // --exec: the program needs nothing of this process, so it is started
  // without copying it (posix_spawn, a vfork and an exec). When it cannot be
  // started, a forked child tries the same exec, says why in the server's log
  // format and exits 127 or 126, as under spawn.
  private startProgram(program: Parameters<Addon['spawnProgram']>, spec: MessageOf<'fork'>['spec']): number {
    const spawned = this.addon.spawnProgram(...program)
    if (spawned > 0) return spawned
    const failure = notStartedFormat(spec, program[1]) // only here: the line is needed only when the start fails
    const pid = this.addon.fork()
    if (pid === 0) this.addon.execProgram(...program, failure) // the child: never returns
    return pid
  }

  // --spares: a child forked now, before its connection comes. It waits,
  // already forked, on a pair of its own (a socketpair), for the one socket
  // hand() passes on; the connection's path then has no fork in it.
  spare({ id, spec }: MessageOf<'spare'>): void {
    let pid: number
    let pair: [number, number] | null = null
    this.addon.holdStops(true) // (until the spare can die of them: lib/native/fork.c)
    try {
      pair = this.addon.pair()
      pid = forkChild(this.addon)
    } catch (err) {
      this.addon.holdStops(false)
      for (const fd of pair ?? []) closeSync(fd)
      return send(message('forked', { id, pid: null, error: errorMessage(err) }))
    }
    if (pid === 0) return this.waitForSocket(pair, spec) // the spare: it never comes back
    this.addon.holdStops(false)
    closeSync(pair[1])
    this.#spares.set(id, { pid, end: pair[0] })
    this.#live.add(pid)
    send(message('forked', { id, pid, error: null }))
  }

  // A spare's socket: sent down its pair with the connection's details, and
  // this zygote's copies closed. No fork: the spare was forked ahead.
  hand({ id, info }: MessageOf<'hand'>, handle: unknown): void {
    const spare = this.#spares.get(id)
    this.#spares.delete(id)
    const fd = handleFd(handle as object | null)
    let error: string | null = spare === undefined ? 'no such spare' : fd === null ? 'the socket was lost in transit' : null
    try {
      if (spare !== undefined && fd !== null) this.addon.sendFd(spare.end, fd, Buffer.from(JSON.stringify(info)))
    } catch (err) {
      error = errorMessage(err)
    }
    if (spare !== undefined) closeSync(spare.end) // (what was sent stays readable)
    if (fd !== null) (handle as RawHandle).close()
    send(message('handed', { id, error }))
  }

  // In a spare: its own group, as a serving child has; then wait for the
  // socket. Blocking is right here: a spare has nothing else to do, and
  // SIGTERM (a reload retires it) ends it as it waits. Its pair closed with
  // nothing sent (the zygote stopped, or died) is the end of it.
  private waitForSocket([zygoteEnd, end]: [number, number], spec: ServeSpec): void {
    this.closeSpareEnds()
    closeSync(zygoteEnd)
    this.addon.leadGroup()
    this.addon.defaultStops()
    setTitle('spare')
    const given = this.addon.recvFd(end)
    closeSync(end)
    if (given === null) return process.exit(0)
    const info = JSON.parse(given.data.toString()) as ConnectionInfo
    if (this.handler !== null) return this.serve(this.handler, info, spec, given.fd)
    const program = execArgs(info, spec, given.fd)
    this.addon.execProgram(...program, notStartedFormat(spec, program[1]))
  }

  // In a child: the other spares' pairs are theirs; a copy here would keep them waiting after the zygote is gone.
  private closeSpareEnds(): void {
    for (const { end } of this.#spares.values()) closeSync(end)
    this.#spares.clear()
  }

  /**
   * SIGCHLD: collect every child that has exited, and tell the parent. What a
   * child left in its process group (a program's background job, a process
   * its handler started) is killed first: the connection is over. What the
   * zygote adopted (a process a child left behind) is only collected: a
   * detached one leads a group of its own, which is not a connection's.
   * (No child_process runs here, so nothing else waits for a child.)
   */
  reapAll(): void {
    for (const { pid, code, signal } of reapEach(this.addon, (pid) => this.#live.has(pid))) {
      if (!this.#live.delete(pid)) continue // one a child left behind: no connection of the parent's
      send(message('exited', { pid, code, signal }))
    }
    if (this.#stopping && this.#live.size === 0) process.exit(0)
  }

  stop(): void {
    this.#stopping = true
    this.closeSpareEnds() // the spares' pairs end: they exit
    this.reapAll()
  }

  // Orphaned, as a spawned child is (child.ts): its connections may go on
  // until the deadline; what is left then is killed, with its process group,
  // and the zygote exits once it has reaped them.
  orphan(spec: ServeSpec): void {
    const seconds = atOrphanDeadline(spec, () => {
      for (const pid of this.#live) signalProcess(pid, 'SIGKILL', true)
    })
    this.trace('zygote %d: parent gone, %d children have %ds left', process.pid, this.#live.size, seconds)
    this.stop()
  }

  // In the child. If the zygote dies, the server adopts its children and
  // they serve on. If the server then dies too, nobody is left to give this
  // child the orphan deadline (the zygote's orphan() above), so it watches
  // for that itself: the kernel signals it at each death of its parent (the
  // zygote's, then the server's), and once its parent is neither, it has the
  // deadline, and is then killed with its process group, as the zygote
  // would have done. Nothing runs until a parent dies: no timer per child.
  private watchParents(spec: ServeSpec): void {
    const [zygote = 0] = this.#parents // if it is gone already, the callback comes at once
    let orphaned = false
    let again: NodeJS.Timeout | null = null
    const check = (): void => {
      if (orphaned) return
      // (The signal comes as the parent's first thread goes: while its last
      // is still going, the child is not handed on yet. Look again.)
      if (this.#parents.has(process.ppid)) return void (again ??= setTimeout(() => ((again = null), check()), PARENT_RECHECK_MS).unref())
      orphaned = true
      const seconds = atOrphanDeadline(spec, () => signalProcess(process.pid, 'SIGKILL', true), { unref: true })
      this.trace('pid %d: zygote and server gone, %ds left', process.pid, seconds)
    }
    this.addon.onParentDeath(zygote, check)
  }

  // In the child: serve the one connection, then exit with its status (an _exit, see lib/zygote/forked-child.ts).
  private serve(handler: Handler, info: ConnectionInfo, spec: ServeSpec, connfd: RawHandle | number): void {
    this.trace('pid %d forked for %s', process.pid, info.remoteAddress)
    setTitle(peerOf(info))
    // A group of its own, as a spawned child has: SIGKILL to the group reaches what the handler starts.
    this.addon.leadGroup()
    this.watchParents(spec)
    void runConnection(wrapConnection(connfd, spec), info, spec, handler, this.trace, true).then((status) => process.exit(status))
  }
}

/** The program's arguments, worked out in the zygote: what starts it only execs. */
const execArgs = (info: ConnectionInfo, spec: ServeSpec, connfd: RawHandle | number): Parameters<Addon['spawnProgram']> => {
  const fd = typeof connfd === 'number' ? connfd : handleFd(connfd)
  const exec = spec.exec ?? []
  const [file] = exec
  if (fd === null || file === undefined) throw new Error('the socket has no descriptor to give the program')
  const env = Object.entries(programEnv(info, process.env)).flatMap(([name, value]) => (value === undefined ? [] : [`${name}=${value}`]))
  return [fd, file, exec, env]
}
