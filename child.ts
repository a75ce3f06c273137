// child.ts: a child of server.ts. It becomes one of two things, depending on
// the first message from its parent:
//   serve + a client's socket:     serve that one connection, then exit (fork model);
//   prepare, later serve:          the same, as a spare forked ahead (--spares);
//   work + the listening socket:   accept and serve connections itself (prefork, lib/worker.ts).
//
// server.ts started this process with child_process.fork. Unlike C's fork(),
// nothing of the parent's memory came along: this is a fresh Node with its own
// heap, and the options were parsed once, by the parent. What the two
// processes share is the IPC channel and, once it arrives, the socket, passed
// as a file descriptor. Every path below ends in process.exit.
import { Socket, type SocketConstructorOpts } from 'node:net'
import { loadHandler, runConnection, warn } from './lib/connection.js'
import { errorMessage } from './lib/log.js'
import { ExitStatus, HANDOFF_TIMEOUT_S, ORPHAN_DEADLINE_S, isMessage, message, type MessageOf } from './lib/protocol.js'
import type { Handler } from './lib/services/index.js'
import { openTrace } from './lib/trace.js'

const trace = await openTrace('child')

const exit = (status: ExitStatus, why: string): void => {
  trace('pid %d exit %d: %s', process.pid, status, why)
  process.exit(status)
}

/** What to do if the parent goes away; set by whichever role this child takes. */
let parentGone = (): void => exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
/** What to do when a prefork parent says stop; until the worker runs, remember it. */
let stopAsked = false
let stop = (): void => {
  stopAsked = true
}

async function serveOne({ info, spec }: MessageOf<'serve'>, handle: unknown): Promise<void> {
  // The descriptor can be lost in transit (Node then sends the message alone).
  if (typeof handle !== 'object' || handle === null) return exit(ExitStatus.PEER_GONE, 'peer gone before handoff')
  // We hold our own copy of the descriptor: the parent may close its copy.
  process.send?.(message('taken', {}), undefined, undefined, (err) => {
    if (err) trace('could not confirm the handoff: %s', err.message)
  })
  let socket: Socket | null = null
  // Orphaned: finish the connection, but within a bound.
  parentGone = () => {
    const seconds = spec.idleTimeout > 0 ? spec.idleTimeout : ORPHAN_DEADLINE_S
    trace('parent gone: %ds left to finish', seconds)
    setTimeout(() => {
      socket?.destroy()
      exit(ExitStatus.ORPHANED, 'parent gone and the connection outlived the deadline')
    }, seconds * 1000)
  }
  let handler: Handler
  try {
    handler = await loadHandler(spec)
  } catch (err) {
    warn(`${spec.handler ?? spec.service} failed to load: ${errorMessage(err)}`)
    return exit(ExitStatus.FAILED, 'no handler')
  }
  // Wrap the raw handle only now that the service is loaded, so that every
  // event, from the first read on, finds its listener. (A net.Socket sent
  // whole would be wrapped and read by Node at once, and a client that had
  // already half-closed would arrive destroyed, its answer lost.) Built-in
  // services handle the half-close themselves; a --handler gets the socket
  // as net.createServer() would give it.
  socket = new Socket({ handle, allowHalfOpen: spec.handler === null } as SocketConstructorOpts)
  exit(await runConnection(socket, info, spec, handler, trace), 'connection closed')
}

const waiting = setTimeout(() => exit(ExitStatus.NO_SOCKET, `no socket within ${HANDOFF_TIMEOUT_S}s`), HANDOFF_TIMEOUT_S * 1000)
let role: 'waiting' | 'spare' | 'serving' | 'worker' = 'waiting'

process.on('message', (m: unknown, handle: unknown) => {
  if (isMessage(m, 'stop')) return stop()
  if (role === 'waiting' && isMessage(m, 'prepare')) {
    // A spare, forked ahead: load the service now, then wait for a socket for
    // as long as the parent likes (it ends spares it no longer wants).
    clearTimeout(waiting)
    role = 'spare'
    // A failure to load is reported when the socket comes; ready either way.
    return void loadHandler(m.spec).catch(() => {}).finally(() => process.send?.(message('ready', {}), undefined, undefined, () => {}))
  }
  if ((role === 'waiting' || role === 'spare') && isMessage(m, 'serve')) {
    clearTimeout(waiting)
    role = 'serving'
    return void serveOne(m, handle)
  }
  if (role === 'waiting' && isMessage(m, 'work')) {
    clearTimeout(waiting)
    role = 'worker'
    return void import('./lib/worker.js').then(({ work }) => {
      const worker = work(m, handle, { trace, exit })
      parentGone = worker.parentGone
      stop = worker.stop
      if (stopAsked) stop() // it came while the worker module was loading
    })
  }
  exit(ExitStatus.FAILED, `the parent sent ${role === 'waiting' ? 'neither serve nor work' : 'an unexpected message'}`)
})

// The parent is gone (even SIGKILL closes the channel).
process.on('disconnect', () => parentGone())

// The channel may have closed while this module was still loading.
if (!process.connected) exit(ExitStatus.NO_SOCKET, 'parent gone before handoff')
