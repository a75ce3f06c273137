// child.ts: a child of server.ts. It becomes one of these, depending on
// the first message from its parent:
//   serve + a client's socket:     serve that one connection, then exit (fork model);
//                                  with --exec, run the program on it and exit as it did;
//   prepare, later serve:          the same, as a spare forked ahead (--spares);
//   work + the listening socket:   accept and serve connections itself (prefork, lib/serve/worker.ts);
//   zygote, later fork + socket:   fork(2) a child per socket (--start zygote, lib/zygote/zygote.ts).
//
// server.ts started this process with child_process.fork. Unlike C's fork(),
// nothing of the parent's memory came along: this is a fresh Node with its own
// heap, and the options were parsed once, by the parent. What the two
// processes share is the IPC channel and, once it arrives, the socket, passed
// as a file descriptor. Every path below ends in process.exit.
import { Socket, type SocketConstructorOpts } from 'node:net'
import { atOrphanDeadline, handlerFailed, loadHandler, runConnection, warn, wrapConnection } from './lib/serve/connection.js'
import type { ProgramExit } from './lib/serve/exec.js'
import { endGroup, termEndsGroup } from './lib/serve/process-group.js'
import { ExitStatus, HANDOFF_TIMEOUT_S, isMessage, message, type ConnectionInfo, type MessageOf, type ServeSpec } from './lib/protocol.js'
import type { Handler } from './lib/serve/services/index.js'
import { leaveDeadTerminal } from './lib/log/terminal.js'
import { setTitle } from './lib/log/title.js'
import { peerOf } from './lib/net/address.js'
import { openTrace } from './lib/log/trace.js'

const trace = await openTrace('child')

// The connection is over, and so is whatever this child started: what is
// left in its process group is ended first (lib/serve/process-group.ts).
const exit = (status: ExitStatus, why: string): void => {
  trace('pid %d exit %d: %s', process.pid, status, why)
  leaveDeadTerminal()
  endGroup()
  process.exit(status)
}

/** What to do if the parent goes away; set by whichever role this child takes. */
let parentGone = (): void => exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
/** What to do when a prefork parent says stop; until the worker runs, remember it. */
let stopAsked = false
let stop = (): void => {
  stopAsked = true
}
/** What to do when a prefork parent asks for the counts (SIGUSR1); nothing to say until the worker runs. */
let report = (): void => {}
/** What a zygote does with a socket: fork a child for it; nothing until the zygote is ready. */
let forkOne = (_m: MessageOf<'fork'>, _handle: unknown): void => unexpected()
/** What a zygote does with a request for a spare, and with a spare's socket (--spares); nothing until it is ready. */
let forkSpare = (_m: MessageOf<'spare'>): void => unexpected()
let handOn = (_m: MessageOf<'hand'>, _handle: unknown): void => unexpected()

async function serveOne({ info, spec }: MessageOf<'serve'>, handle: unknown): Promise<void> {
  // The descriptor can be lost in transit (Node then sends the message alone).
  if (typeof handle !== 'object' || handle === null) return exit(ExitStatus.PEER_GONE, 'peer gone before handoff')
  setTitle(peerOf(info))
  // We hold our own copy of the descriptor: the parent may close its copy.
  process.send?.(message('taken', {}), undefined, undefined, (err) => {
    if (err) trace('could not confirm the handoff: %s', err.message)
  })
  if (spec.exec !== null) return serveProgram(info, spec, handle)
  let socket: Socket | null = null
  // Orphaned: finish the connection, but within a bound.
  parentGone = () => {
    const seconds = atOrphanDeadline(spec, () => {
      socket?.destroy()
      exit(ExitStatus.ORPHANED, 'parent gone and the connection outlived the deadline')
    })
    trace('parent gone: %ds left to finish', seconds)
  }
  let handler: Handler
  try {
    handler = await loadHandler(spec)
  } catch (err) {
    warn(spec, handlerFailed(spec, err, 'failed to load'))
    return exit(ExitStatus.FAILED, 'no handler')
  }
  // Wrap the raw handle only now that the service is loaded, so that every
  // event, from the first read on, finds its listener. (A net.Socket sent
  // whole would be wrapped and read by Node at once, and a client that had
  // already half-closed would arrive destroyed, its answer lost.)
  socket = wrapConnection(handle, spec)
  termEndsGroup()
  exit(await runConnection(socket, info, spec, handler, trace, true), 'connection closed')
}

// --exec: the program serves the connection, and this child ends as it does.
async function serveProgram(info: ConnectionInfo, spec: ServeSpec, handle: object): Promise<void> {
  const orphaned = new AbortController()
  parentGone = () => trace('parent gone: the program has %ds left', atOrphanDeadline(spec, () => orphaned.abort()))
  // Wrapped paused, never to read: what the client sends is the program's.
  const socket = new Socket({ handle, pauseOnCreate: true } as SocketConstructorOpts)
  const { FORWARDED_SIGNALS, killedStatus, runProgram } = await import('./lib/serve/exec.js')
  const ended = await runProgram(socket, info, spec, trace, { forward: FORWARDED_SIGNALS, stop: orphaned.signal })
  if (orphaned.signal.aborted) return exit(ExitStatus.ORPHANED, 'parent gone and the program outlived the deadline')
  exitAs(ended, killedStatus)
}

/** Signals Node does not die of when raised: it ignores SIGPIPE and starts its inspector on SIGUSR1. */
const NOT_RAISED = new Set<NodeJS.Signals>(['SIGPIPE', 'SIGUSR1'])

/** Ends this child as its program ended, so that the parent's `end` line shows the program's status or signal. */
const exitAs = ({ code, signal }: ProgramExit, killedStatus: (signal: NodeJS.Signals) => number): void => {
  leaveDeadTerminal()
  endGroup() // the program's background jobs, say
  if (signal === null) {
    trace('pid %d exit %d: the program exited', process.pid, code)
    return process.exit(code ?? ExitStatus.FAILED)
  }
  trace('pid %d: the program was killed by %s', process.pid, signal)
  if (!NOT_RAISED.has(signal)) {
    process.removeAllListeners(signal) // back to the default action: die of it
    process.kill(process.pid, signal)
  }
  // Still here: the shell's status for a program killed by a signal.
  process.exit(killedStatus(signal))
}

/** A spare loads its service ahead; a failure to load is reported when the socket comes, so it is ready either way. */
function prepare({ spec }: MessageOf<'prepare'>): void {
  setTitle('spare')
  // With --exec there is nothing to load: the program starts per connection.
  const loading = spec.exec === null ? loadHandler(spec) : Promise.resolve()
  void loading.catch(() => {}).finally(() => process.send?.(message('ready', {}), undefined, undefined, () => {}))
}

/** The worker, loaded only now, takes over what the parent's stop, report and going do. */
async function becomeWorker(m: MessageOf<'work'>, handle: unknown): Promise<void> {
  setTitle('worker')
  const { work } = await import('./lib/serve/worker.js')
  const worker = work(m, handle, { trace, exit })
  parentGone = worker.parentGone
  stop = worker.stop
  report = worker.report
  if (stopAsked) stop() // it came while the worker module was loading
}

/** The zygote (--start zygote), loaded only now: from here on it forks a child per socket (lib/zygote/zygote.ts). */
async function becomeZygote(m: MessageOf<'zygote'>): Promise<void> {
  const { becomeZygote } = await import('./lib/zygote/zygote.js')
  const zygote = await becomeZygote(m, trace)
  if (zygote === null) return exit(ExitStatus.FAILED, 'unfit to fork')
  forkOne = zygote.fork
  forkSpare = zygote.spare
  handOn = zygote.hand
  stop = zygote.stop
  if (stopAsked) stop()
  // Its children finish their connections within the orphan deadline, as a spawned child does, then it exits.
  parentGone = zygote.orphan
}

/** What this child has become; the first message decides. */
type Role = 'waiting' | 'spare' | 'serving' | 'worker' | 'zygote'
const ANY_ROLE: readonly Role[] = ['waiting', 'spare', 'serving', 'worker', 'zygote']

/** The messages a child takes from its parent. */
const INBOUND = ['prepare', 'serve', 'work', 'zygote', 'fork', 'spare', 'hand', 'stop', 'report'] as const
type Inbound = (typeof INBOUND)[number]

/** How a child takes one type of message. */
interface Reception<T extends Inbound> {
  /** The roles in which this child may receive it. */
  readonly roles: readonly Role[]
  /** The role it makes of this child; none: the child stays what it is. */
  readonly becomes?: Role
  readonly act: (m: MessageOf<T>, handle: unknown) => void
}

/** The table of roles: for each message, who may receive it and what it does. */
const ROLES: { readonly [T in Inbound]: Reception<T> } = {
  // A spare, forked ahead: load the service now, then wait for a socket for
  // as long as the parent likes (it ends spares it no longer wants).
  prepare: { roles: ['waiting'], becomes: 'spare', act: prepare },
  // A client's socket, to a fresh child or a spare: serve that one connection, then exit.
  serve: { roles: ['waiting', 'spare'], becomes: 'serving', act: (m, handle) => void serveOne(m, handle) },
  // The listening socket: accept and serve connections as a prefork worker.
  work: { roles: ['waiting'], becomes: 'worker', act: (m, handle) => void becomeWorker(m, handle) },
  // --start zygote: load the service, prove that a fork is safe here, then fork a child per socket.
  zygote: { roles: ['waiting'], becomes: 'zygote', act: (m) => void becomeZygote(m) },
  // A socket, to the zygote: fork a child to serve it.
  fork: { roles: ['zygote'], act: (m, handle) => forkOne(m, handle) },
  // --spares, to the zygote: fork a child ahead; later, a socket for it.
  spare: { roles: ['zygote'], act: (m) => forkSpare(m) },
  hand: { roles: ['zygote'], act: (m, handle) => handOn(m, handle) },
  // A prefork parent says stop; it may come at any time, even before the worker runs.
  stop: { roles: ANY_ROLE, act: () => stop() },
  // A prefork parent asks for the counts (SIGUSR1); it may come at any time.
  report: { roles: ANY_ROLE, act: () => report() },
}

const waiting = setTimeout(() => exit(ExitStatus.NO_SOCKET, `no socket within ${HANDOFF_TIMEOUT_S}s`), HANDOFF_TIMEOUT_S * 1000)
let role: Role = 'waiting'

/** A message the table does not have, or not for this child's role. */
const unexpected = (): void => exit(ExitStatus.FAILED, `the parent sent ${role === 'waiting' ? 'neither serve nor work' : 'an unexpected message'}`)

/** Does what the table says with a message, if this child's role may receive it. */
function receive<T extends Inbound>(type: T, m: MessageOf<T>, handle: unknown): void {
  const { roles, becomes, act }: Reception<T> = ROLES[type]
  if (!roles.includes(role)) return unexpected()
  if (becomes !== undefined) {
    clearTimeout(waiting) // the socket, or the promise of one, has come
    role = becomes
  }
  act(m, handle)
}

process.on('message', (m: unknown, handle: unknown) => {
  for (const type of INBOUND) if (isMessage(m, type)) return receive(type, m, handle)
  unexpected()
})

// The parent is gone (even SIGKILL closes the channel).
process.on('disconnect', () => parentGone())

// The channel may have closed while this module was still loading.
if (!process.connected) exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
