#!/usr/bin/env node
// server.ts: the parent. It listens, accepts, forks one child per connection,
// hands the child the socket, and reaps the child when it exits.
//
//   the classic C server                   forkserver
//   socket(); bind(); listen();            createServer({ pauseOnConnect: true }).listen()
//   connfd = accept(listenfd);             server.on('connection', accept)
//   if (fork() == 0) serve(connfd);        fork('child.js'), then child.send(message, handle)
//   close(connfd);                         socket.destroy(), once the child has its copy
//   SIGCHLD, waitpid();                    child.on('exit', reap)
//
// Nothing of this file's memory survives into a child: child_process.fork
// starts a new Node. The child shares only the IPC channel and, passed over
// it as a descriptor (SCM_RIGHTS), the client's socket.
import { fork, type ChildProcess, type SendHandle } from 'node:child_process'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { fileURLToPath } from 'node:url'
import { formatHostPort, normalizeAddress } from './lib/address.js'
import { ChildTable, type ChildEntry } from './lib/child-table.js'
import { isAllowed } from './lib/cidr.js'
import { createLog, endLine, errorMessage } from './lib/log.js'
import { parseOptions } from './lib/options.js'
import { HANDOFF_TIMEOUT_S, isTakenMessage, serveMessage, type ConnectionInfo, type ServeSpec } from './lib/protocol.js'
import { openTrace } from './lib/trace.js'
import { WaitQueue, type Waiting } from './lib/wait-queue.js'

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url))
/** After SIGTERM, how long a child has before SIGKILL. */
const KILL_AFTER_MS = 2000
/** A test-only fault: fork children with this (possibly missing) program instead of node. */
const EXEC_PATH = process.env.FORKSERVER_TEST_EXECPATH ?? process.execPath

async function main(argv: readonly string[]): Promise<number> {
  const parsed = await parseOptions(argv)
  if (parsed.kind === 'exit') {
    ;(parsed.code === 0 ? process.stdout : process.stderr).write(parsed.output)
    return parsed.code
  }
  const options = parsed.options
  const spec: ServeSpec = { service: options.service, handler: options.handler, idleTimeout: options.idleTimeout }
  const log = createLog(options.verbose)
  const trace = await openTrace('parent')
  const table = new ChildTable()
  const queue = new WaitQueue(options.queueLimit, ({ info }) => trace('queued %s left', peerOf(info)))
  const counts = { served: 0, failed: 0, denied: 0, dropped: 0 }
  const status = (): void => log.verbose(`status: ${table.size}/${options.maxChildren}`)
  let connections = 0
  let draining = false

  const drop = (socket: Socket, reason: string, info: ConnectionInfo): void => {
    counts.dropped++
    log.drop(reason, peerOf(info))
    socket.destroy()
  }

  // listen, paused: the parent never reads a byte; every byte is the child's.
  const server = createServer({ pauseOnConnect: true }, accept)

  // accept: check the limits, then fork a child now or wait for a free one.
  function accept(socket: Socket): void {
    socket.on('error', (err) => trace('socket error before handoff: %s', err.message))
    if (socket.remoteAddress === undefined) {
      trace('accept: the peer is already gone')
      return void socket.destroy()
    }
    const info = connectionInfo(socket, ++connections)
    const from = info.remoteAddress
    trace('accept %s', peerOf(info))
    if (draining) return drop(socket, 'shutting down', info)
    if (!isAllowed(options.access, from)) {
      counts.denied++
      log.verbose(`deny ${peerOf(info)}`)
      return void socket.destroy()
    }
    if (options.maxPerIp > 0 && table.countFrom(from) + queue.countFrom(from) >= options.maxPerIp) {
      return drop(socket, `max-per-ip ${options.maxPerIp} reached`, info)
    }
    if (table.size < options.maxChildren) return start({ socket, info })
    if (options.overflow === 'reject') return drop(socket, `max-children ${options.maxChildren} reached`, info)
    if (!queue.push({ socket, info })) return drop(socket, `queue full (${options.queueLimit} waiting)`, info)
    trace('queued %s, %d waiting', peerOf(info), queue.size)
  }

  // fork, then hand the socket to the child.
  function start({ socket, info }: Waiting): void {
    let child: ChildProcess
    try {
      trace('fork')
      // detached: a child of its own session, so Ctrl-C in a terminal (SIGINT to
      // the whole foreground group) reaches only the parent, which drains.
      child = fork(CHILD, [], { execArgv: [], execPath: EXEC_PATH, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
    } catch (err) {
      counts.failed++
      return drop(socket, `fork failed: ${errorMessage(err)}`, info)
    }
    const entry: ChildEntry = { info, child, socket, handoffTimer: null }
    table.add(entry)
    child.on('error', (err) => childError(entry, err))
    child.on('exit', (code, signal) => reap(entry, code, signal))
    child.on('message', (message) => isTakenMessage(message) && handedOff(entry))
    if (child.pid === undefined) return // spawn failed; 'error' follows
    trace('pid %d spawned', child.pid)
    log.verbose(`pid ${child.pid} from ${peerOf(info)}`)
    status()
    entry.handoffTimer = setTimeout(() => {
      log.warning(`pid ${child.pid} did not take its socket within ${HANDOFF_TIMEOUT_S}s; killing it`)
      child.kill('SIGKILL')
    }, HANDOFF_TIMEOUT_S * 1000 + 1000)
    // keepOpen: the parent keeps owning its copy until the child confirms
    // (Node would otherwise leak it if the child died before its ACK).
    child.send(serveMessage(info, spec), rawHandle(socket), { keepOpen: true }, (err) => {
      if (!err) return
      log.warning(`handoff to pid ${child.pid} failed: ${err.message}`)
      child.kill('SIGKILL')
    })
  }

  // The child holds its own copy of the descriptor: close ours, as C's parent
  // does with close(connfd). The connection stays up; the child owns it now.
  function handedOff(entry: ChildEntry): void {
    clearTimeout(entry.handoffTimer ?? undefined)
    entry.socket?.destroy()
    entry.socket = null
    trace('socket handed off to pid %d', entry.child.pid)
  }

  function childError(entry: ChildEntry, err: Error): void {
    if (entry.child.pid !== undefined) return log.warning(`pid ${entry.child.pid}: ${err.message}`)
    // The child never started, so no 'exit' will come: clean up here.
    table.remove(entry.info.id)
    counts.failed++
    if (entry.socket) drop(entry.socket, `fork failed: ${err.message}`, entry.info)
    next()
  }

  // reap: 'exit' is SIGCHLD and waitpid() in one event.
  function reap(entry: ChildEntry, code: number | null, signal: NodeJS.Signals | null): void {
    clearTimeout(entry.handoffTimer ?? undefined)
    table.remove(entry.info.id)
    // Died before taking the socket: closing our copy is what tells the client.
    entry.socket?.destroy()
    entry.socket = null
    if (code === 0) counts.served++
    else counts.failed++
    trace('pid %d exited %s → reaped', entry.child.pid, signal ? `signal ${signal}` : `status ${code}`)
    log.verbose(endLine(entry.child.pid, code, signal))
    status()
    next()
  }

  // A child slot is free: start the connection that has waited longest.
  function next(): void {
    if (draining) {
      if (table.size === 0) finish()
      return
    }
    for (let waiting; table.size < options.maxChildren && (waiting = queue.shift()); ) start(waiting)
  }

  // Shutdown: stop accepting, close the queue, give live children --grace
  // seconds, then SIGTERM, then SIGKILL. A second SIGINT ends it at once.
  let exitWith!: (code: number) => void
  const done = new Promise<number>((resolve) => (exitWith = resolve))
  const timers: NodeJS.Timeout[] = []
  let forced = false
  const killAll = (signal: NodeJS.Signals): void => {
    for (const { child } of table) child.kill(signal)
  }

  function shutdown(signal: NodeJS.Signals): void {
    if (draining) {
      if (signal !== 'SIGINT') return
      log.line(`second SIGINT: killing ${table.size} children`)
      killAll('SIGKILL')
      return finish(130)
    }
    draining = true
    log.line(`${signal}: draining ${table.size} children, ${options.grace}s grace`)
    server.close() // new connects are refused from here; its callback may never come
    for (const { socket, info } of queue.drain()) drop(socket, 'shutting down', info)
    if (table.size === 0) return finish()
    timers.push(setTimeout(() => {
      forced = true
      log.warning(`grace over: SIGTERM to ${table.size} children`)
      killAll('SIGTERM')
      timers.push(setTimeout(() => killAll('SIGKILL'), KILL_AFTER_MS))
    }, options.grace * 1000))
  }

  // The table is empty (or we gave up on it): say what happened, and exit.
  function finish(code = forced ? 1 : 0): void {
    timers.forEach(clearTimeout)
    log.line(`shutdown: served ${counts.served}, peak ${table.peak}, failed ${counts.failed}, denied ${counts.denied}, dropped ${counts.dropped}`)
    exitWith(code)
  }

  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)

  const listenFailed = new Promise<Error>((resolve) => server.once('error', resolve))
  const listening = new Promise<null>((resolve) => server.once('listening', () => resolve(null)))
  server.listen({ host: options.host, port: options.port })
  const failure = await Promise.race([listening, listenFailed])
  if (failure !== null) {
    log.line(`fatal: ${failure.message}`)
    return 1
  }
  // From here on, a server error is a failed accept (EMFILE, say): warn, keep listening.
  server.removeAllListeners('error')
  server.on('error', (err) => log.warning(`accept failed: ${err.message}`))
  const address = server.address() as AddressInfo
  log.line(`listening on ${formatHostPort(address.address, address.port)}`)
  status()
  return done
}

const connectionInfo = (socket: Socket, id: number): ConnectionInfo => ({
  id,
  remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
  remotePort: socket.remotePort ?? 0,
  localAddress: normalizeAddress(socket.localAddress ?? ''),
  localPort: socket.localPort ?? 0,
})

/**
 * The socket's libuv TCP handle, which is what crosses to the child (see
 * child.ts for why not the net.Socket itself). `send` takes such handles,
 * though Node's types only list the wrappers.
 */
const rawHandle = (socket: Socket): SendHandle =>
  (socket as unknown as { _handle: SendHandle })._handle

const peerOf = (info: ConnectionInfo): string => formatHostPort(info.remoteAddress, info.remotePort)

process.exit(await main(process.argv.slice(2)))
