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
//
// --model prefork swaps one step: instead of a child per connection, a few
// workers accept for themselves (lib/prefork.ts, lib/worker.ts). Listening,
// the child table, reaping, logging and the drain are the same for both.
import { fork } from 'node:child_process'
import { createServer, type AddressInfo, type Socket } from 'node:net'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { formatHostPort, normalizeAddress } from './lib/address.js'
import { Backoff } from './lib/backoff.js'
import { ChildTable, type ChildEntry } from './lib/child-table.js'
import { isAllowed } from './lib/cidr.js'
import { ACCEPT_RESERVE, Descriptors, FORK_RESERVE } from './lib/descriptors.js'
import { createLog, endLine, errorMessage } from './lib/log.js'
import { parseOptions } from './lib/options.js'
import { Supervisor } from './lib/prefork.js'
import { RateLimiter } from './lib/rate-limit.js'
import { HANDOFF_TIMEOUT_S, isMessage, message, type ConnectionInfo, type ServeSpec, type WorkSpec } from './lib/protocol.js'
import { rawHandle, sendable, type RawHandle } from './lib/raw-handle.js'
import { openTrace } from './lib/trace.js'
import { WaitQueue, type Waiting } from './lib/wait-queue.js'

const CHILD = fileURLToPath(new URL('./child.js', import.meta.url))
/** After SIGTERM, how long a child has before SIGKILL. */
const KILL_AFTER_MS = 2000
const CPUS = availableParallelism()
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
  const workSpec: WorkSpec = {
    ...spec,
    allow: options.access.allow.map((c) => c.text),
    deny: options.access.deny.map((c) => c.text),
    verbose: options.verbose,
    maxConnsPerChild: options.maxConnsPerChild,
  }
  const prefork = options.model === 'prefork'
  const log = createLog(options.verbose)
  const trace = await openTrace('parent')
  const table = new ChildTable()
  const queue = new WaitQueue(options.queueLimit, ({ info }) => trace('queued %s left', peerOf(info)))
  const counts = { served: 0, failed: 0, denied: 0, dropped: 0 }
  const rate = options.rate && new RateLimiter(options.rate)
  const descriptors = new Descriptors()
  const spareBackoff = new Backoff()
  let spareTimer: NodeJS.Timeout | null = null
  /** Spares starting now, not yet ready. */
  const booting = new Set<ChildEntry>()
  const status = (): void => log.verbose(`status: ${table.size}/${prefork ? options.workers : options.maxChildren}`)
  let connections = 0
  let draining = false

  const drop = (socket: Socket, reason: string, info: ConnectionInfo): void => {
    counts.dropped++
    log.drop(reason, peerOf(info))
    socket.destroy()
  }

  // Who serves a connection: the one place where the two models differ.
  //   fork:    the parent accepts, paused, and forks a child for each connection;
  //   prefork: the workers accept for themselves; the parent keeps them alive.
  const server = prefork ? createServer() : createServer({ pauseOnConnect: true }, accept)
  const supervisor = new Supervisor(options.workers, {
    spawn: startWorker,
    relisten,
    liveWorkers: () => table.count('worker'),
    log,
    trace,
  })

  // fork(), with what every child needs: its own session, so that Ctrl-C in
  // a terminal (SIGINT to the whole foreground group) reaches only the
  // parent, which drains; no loader flags of ours; stdin closed; and the
  // --user/--group ids, switched to between fork and exec.
  function forkChild(entry: Omit<ChildEntry, 'child' | 'startedAt' | 'handoffTimer' | 'lifetimeTimer'>): ChildEntry {
    trace('fork')
    const child = fork(CHILD, [], {
      execArgv: [], execPath: EXEC_PATH, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options.credentials,
    })
    const forked: ChildEntry = { ...entry, child, startedAt: Date.now(), handoffTimer: null, lifetimeTimer: null }
    table.add(forked)
    child.on('error', (err) => childError(forked, err))
    child.on('exit', (code, signal) => reap(forked, code, signal))
    child.on('message', (m: unknown, handle: unknown) => received(forked, m, handle))
    if (child.pid !== undefined) {
      trace('pid %d spawned', child.pid)
      status()
    }
    return forked
  }

  // --max-lifetime, counted from when a child starts its work (a spare's waiting does not count).
  function armLifetime(entry: ChildEntry): void {
    if (options.maxLifetime > 0) entry.lifetimeTimer = setTimeout(() => outlived(entry), options.maxLifetime * 1000)
  }

  // A child that hangs is ended, SIGTERM first, then SIGKILL.
  function outlived({ child }: ChildEntry): void {
    log.warning(`pid ${child.pid} outlived --max-lifetime ${options.maxLifetime}s; ending it`)
    child.kill('SIGTERM')
    const kill = setTimeout(() => child.exitCode === null && child.signalCode === null && child.kill('SIGKILL'), KILL_AFTER_MS)
    child.once('exit', () => clearTimeout(kill))
  }

  function received(entry: ChildEntry, m: unknown, handle: unknown): void {
    if (isMessage(m, 'taken')) handedOff(entry)
    else if (isMessage(m, 'listener') && typeof handle === 'object' && handle !== null) supervisor.keep(handle as RawHandle)
    else if (isMessage(m, 'ready') && booting.delete(entry)) {
      // this spare has its service loaded: start the next
      replenish()
    } else if (isMessage(m, 'ready')) trace('worker %d is accepting', entry.child.pid)
    else if (isMessage(m, 'tally')) {
      counts.served += m.tally.served
      counts.failed += m.tally.failed
      counts.denied += m.tally.denied
    }
  }

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
    const short = descriptors.short(ACCEPT_RESERVE)
    if (short !== null) return drop(socket, `out of descriptors (${short})`, info)
    if (!isAllowed(options.access, from)) {
      counts.denied++
      log.verbose(`deny ${peerOf(info)}`)
      return void socket.destroy()
    }
    if (rate !== null && !rate.admit(from)) {
      return drop(socket, `rate ${rate.rate.count}/${rate.rate.seconds}s exceeded`, info)
    }
    if (options.maxPerIp > 0 && table.countFrom(from) + queue.countFrom(from) >= options.maxPerIp) {
      return drop(socket, `max-per-ip ${options.maxPerIp} reached`, info)
    }
    if (table.size < options.maxChildren || table.spare()) return start({ socket, info })
    if (options.overflow === 'reject') return drop(socket, `max-children ${options.maxChildren} reached`, info)
    if (!queue.push({ socket, info })) return drop(socket, `queue full (${options.queueLimit} waiting)`, info)
    trace('queued %s, %d waiting', peerOf(info), queue.size)
  }

  // fork, then hand the socket to the child.
  // (With --spares, a spare forked ahead takes it at once.)
  function start({ socket, info }: Waiting): void {
    const spare = table.spare()
    if (spare !== undefined) return handOff(spare, socket, info) // its successor is forked once it has the socket
    const short = descriptors.short(FORK_RESERVE)
    if (short !== null) return drop(socket, `too few descriptors to fork (${short})`, info)
    let entry: ChildEntry
    try {
      entry = forkChild({ state: 'busy', info, socket })
    } catch (err) {
      counts.failed++
      return drop(socket, `fork failed: ${errorMessage(err)}`, info)
    }
    if (entry.child.pid === undefined) return // spawn failed; 'error' follows
    handOff(entry, socket, info)
  }

  function handOff(entry: ChildEntry, socket: Socket, info: ConnectionInfo): void {
    const { child } = entry
    entry.state = 'busy'
    entry.info = info
    entry.socket = socket
    armLifetime(entry)
    log.verbose(`pid ${child.pid} from ${peerOf(info)}`)
    entry.handoffTimer = setTimeout(() => {
      log.warning(`pid ${child.pid} did not take its socket within ${HANDOFF_TIMEOUT_S}s; killing it`)
      child.kill('SIGKILL')
    }, HANDOFF_TIMEOUT_S * 1000 + 1000)
    // keepOpen: the parent keeps owning its copy until the child confirms
    // (Node would otherwise leak it if the child died before its ACK).
    child.send(message('serve', { info, spec }), sendable(rawHandle(socket)), { keepOpen: true }, (err) => {
      if (!err) return
      log.warning(`handoff to pid ${child.pid} failed: ${err.message}`)
      child.kill('SIGKILL')
    })
  }

  // --spares: keep that many children forked ahead, loading the service.
  // They count toward --max-children; one that dies waiting is replaced
  // later and later while they keep dying. At most one boots per CPU: a
  // burst of Node start-ups would take the CPU from the spares serving.
  function replenish(): void {
    while (!draining && booting.size < CPUS && spareTimer === null) {
      if (table.count('spare') >= options.spares || table.size >= options.maxChildren) return
      if (descriptors.short(ACCEPT_RESERVE) !== null) return
      let entry: ChildEntry
      try {
        entry = forkChild({ state: 'spare', info: null, socket: null })
      } catch (err) {
        return spareLost(undefined, `fork failed: ${errorMessage(err)}`, 1, 0)
      }
      if (entry.child.pid === undefined) return // spawn failed; 'error' follows
      booting.add(entry)
      entry.child.send(message('prepare', { spec }), undefined, undefined, () => {})
    }
  }

  function spareLost(pid: number | undefined, how: string, code: number | null, livedMs: number): void {
    if (draining) return
    const delay = spareBackoff.next(code !== 0, livedMs)
    log.warning(`spare ${pid ?? '?'} ${how}; a new one in ${delay / 1000}s`)
    spareTimer = setTimeout(() => {
      spareTimer = null
      replenish()
    }, delay)
  }

  // prefork: fork a worker and give it a copy of the listening socket.
  function startWorker(listener: RawHandle, lend: boolean): void {
    let entry: ChildEntry
    try {
      entry = forkChild({ state: 'worker', info: null, socket: null })
    } catch (err) {
      return supervisor.replace(undefined, 1, null, 0, `fork failed: ${errorMessage(err)}`)
    }
    if (entry.child.pid === undefined) return // spawn failed; 'error' follows
    armLifetime(entry)
    entry.child.send(message('work', { spec: workSpec, lend }), sendable(listener), undefined, (err) => {
      if (!err) return
      log.warning(`handoff to worker ${entry.child.pid} failed: ${err.message}`)
      entry.child.kill('SIGKILL')
    })
  }

  // prefork, when no process holds the listener any more: listen afresh.
  function relisten(): void {
    const again = createServer()
    again.once('error', (err) => supervisor.relistenFailed(`cannot listen again: ${err.message}`))
    again.listen({ host: options.host, port: address.port }, () => supervisor.start(again))
  }

  // The child holds its own copy of the descriptor: close ours, as C's parent
  // does with close(connfd). The connection stays up; the child owns it now.
  function handedOff(entry: ChildEntry): void {
    clearTimeout(entry.handoffTimer ?? undefined)
    entry.socket?.destroy()
    entry.socket = null
    trace('socket handed off to pid %d', entry.child.pid)
    replenish()
  }

  function childError(entry: ChildEntry, err: Error): void {
    if (entry.child.pid !== undefined) return log.warning(`pid ${entry.child.pid}: ${err.message}`)
    // The child never started, so no 'exit' will come: clean up here.
    table.remove(entry)
    counts.failed++
    if (entry.state === 'worker') return supervisor.replace(undefined, 1, null, 0, `fork failed: ${err.message}`)
    booting.delete(entry)
    if (entry.state === 'spare') return spareLost(undefined, `could not be forked: ${err.message}`, 1, 0)
    if (entry.socket && entry.info) drop(entry.socket, `fork failed: ${err.message}`, entry.info)
    next()
  }

  // reap: 'exit' is SIGCHLD and waitpid() in one event.
  function reap(entry: ChildEntry, code: number | null, signal: NodeJS.Signals | null): void {
    booting.delete(entry)
    clearTimeout(entry.handoffTimer ?? undefined)
    clearTimeout(entry.lifetimeTimer ?? undefined)
    table.remove(entry)
    // Died before taking the socket: closing our copy is what tells the client.
    entry.socket?.destroy()
    entry.socket = null
    // A busy child's status is its connection's; a worker reports its tally;
    // a spare served no one.
    if (entry.state === 'busy' && code === 0) counts.served++
    else if (entry.state !== 'spare' && code !== 0) counts.failed++
    trace('pid %d exited %s → reaped', entry.child.pid, signal ? `signal ${signal}` : `status ${code}`)
    log.verbose(endLine(entry.child.pid, code, signal))
    status()
    const lived = Date.now() - entry.startedAt
    if (entry.state === 'worker' && !draining) supervisor.replace(entry.child.pid, code, signal, lived)
    if (entry.state === 'spare') spareLost(entry.child.pid, signal ? `was killed by ${signal}` : `exited with status ${code}`, code, lived)
    next()
  }

  // A child slot is free: start the connection that has waited longest.
  function next(): void {
    if (draining) {
      if (table.size === 0) finish()
      return
    }
    for (let waiting; (table.size < options.maxChildren || table.spare()) && (waiting = queue.shift()); ) start(waiting)
    replenish()
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
    // New connects are refused from here: the parent closes its listener (its
    // callback may never come), and workers close theirs when told to stop.
    server.close()
    supervisor.stop()
    log.line(`${signal}: draining ${table.size} children, ${options.grace}s grace`)
    for (const { child, state } of table) if (state === 'worker') child.send(message('stop', {}), undefined, undefined, () => {})
    for (const { socket, info } of queue.drain()) drop(socket, 'shutting down', info)
    clearTimeout(spareTimer ?? undefined)
    for (const { child, state } of table) if (state === 'spare') child.kill('SIGTERM') // nothing to finish
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

  let address: AddressInfo = { address: options.host, family: '', port: options.port }
  const listenFailed = new Promise<Error>((resolve) => server.once('error', resolve))
  const listening = new Promise<null>((resolve) =>
    server.once('listening', () => {
      address = server.address() as AddressInfo
      // prefork: hand out the listener before the first accept can happen here.
      if (prefork) supervisor.start(server)
      resolve(null)
    }))
  server.listen({ host: options.host, port: options.port })
  const failure = await Promise.race([listening, listenFailed])
  if (failure !== null) {
    log.line(`fatal: ${failure.message}`)
    return 1
  }
  // From here on, a server error is a failed accept (ENFILE, say): warn, keep listening.
  server.removeAllListeners('error')
  server.on('error', (err) => log.warning(`accept failed: ${err.message}`))
  log.line(`listening on ${formatHostPort(address.address, address.port)}`)
  status()
  replenish()
  return done
}

const connectionInfo = (socket: Socket, id: number): ConnectionInfo => ({
  id,
  remoteAddress: normalizeAddress(socket.remoteAddress ?? ''),
  remotePort: socket.remotePort ?? 0,
  localAddress: normalizeAddress(socket.localAddress ?? ''),
  localPort: socket.localPort ?? 0,
})

const peerOf = (info: ConnectionInfo): string => formatHostPort(info.remoteAddress, info.remotePort)

process.exit(await main(process.argv.slice(2)))
