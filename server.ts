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
import { createServer, type Socket } from 'node:net'
import { availableParallelism } from 'node:os'
import { fileURLToPath } from 'node:url'
import { connectionInfo, listenerName, peerOf } from './lib/address.js'
import { Backoff } from './lib/backoff.js'
import { ChildTable, type ChildEntry } from './lib/child-table.js'
import { isAllowed } from './lib/cidr.js'
import { ACCEPT_RESERVE, Descriptors, FORK_RESERVE } from './lib/descriptors.js'
import { closeKeepingFile, listen, removeSocketFile, socketFileId, type Bound } from './lib/listen.js'
import { createLog, errorMessage, type Counters } from './lib/log.js'
import { parseOptions } from './lib/options.js'
import { Supervisor } from './lib/prefork.js'
import { RateLimiter } from './lib/rate-limit.js'
import { workersToStop } from './lib/reload.js'
import { HANDOFF_TIMEOUT_S, isMessage, message, type ConnectionInfo, type ServeSpec, type Tally, type WorkSpec } from './lib/protocol.js'
import { StatusReport, statusEvent } from './lib/status.js'
import { rawHandle, sendable, type RawHandle } from './lib/raw-handle.js'
import { leaveDeadTerminal } from './lib/terminal.js'
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
  // systemd's variables were for this process: no child or program should act on them.
  for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete process.env[name]
  const spec: ServeSpec = {
    service: options.service, handler: options.handler, exec: options.exec, idleTimeout: options.idleTimeout, logFormat: options.logFormat,
  }
  /** What a prefork worker needs; completed once the server listens. */
  let workSpec: WorkSpec = {
    ...spec,
    unixPath: null,
    allow: options.access.allow.map((c) => c.text),
    deny: options.access.deny.map((c) => c.text),
    verbose: options.verbose,
    maxConnsPerChild: options.maxConnsPerChild,
  }
  const prefork = options.model === 'prefork'
  const log = createLog(options.logFormat, options.verbose)
  const { pid } = process
  const warn = (text: string): void => log({ event: 'warning', message: text, pid })
  const trace = await openTrace('parent')
  const table = new ChildTable()
  const queue = new WaitQueue(options.queueLimit, ({ info }) => trace('queued %s left', peerOf(info)))
  /** What the parent counted itself; prefork workers count their own (their tallies). */
  const counts = { accepted: 0, served: 0, failed: 0, denied: 0, dropped: 0 }
  const rate = options.rate && new RateLimiter(options.rate)
  const descriptors = new Descriptors()
  const spareBackoff = new Backoff()
  let spareTimer: NodeJS.Timeout | null = null
  /** Spares starting now, not yet ready. */
  const booting = new Set<ChildEntry>()
  const max = prefork ? options.workers : options.maxChildren
  const status = (): void => log({ event: 'status', trigger: 'change', live: table.size, max })
  /** The socket file, for --path (or an inherited Unix socket); null for TCP. */
  let path: string | null = null
  let draining = false

  const drop = (socket: Socket, reason: string, info: ConnectionInfo): void => {
    counts.dropped++
    log({ event: 'drop', conn: info.id, peer: peerOf(info), reason, pid })
    socket.destroy()
  }

  // Who serves a connection: the one place where the two models differ.
  //   fork:    the parent accepts, paused, and forks a child for each connection;
  //   prefork: the workers accept for themselves; the parent keeps them alive.
  const server = prefork ? createServer() : createServer({ pauseOnConnect: true }, accept)
  const supervisor = new Supervisor(options.workers, {
    spawn: startWorker,
    closeListener: (listener) => closeKeepingFile(listener, options.endpoint.kind === 'path' ? options.endpoint.path : null),
    relisten,
    liveWorkers: () => table.count('worker'),
    warn,
    trace,
  })

  // fork(), with what every child needs: its own session, so that Ctrl-C in
  // a terminal (SIGINT to the whole foreground group) reaches only the
  // parent, which drains; no loader flags of ours; stdin closed; and the
  // --user/--group ids, switched to between fork and exec.
  function forkChild(state: ChildEntry['state'], info: ConnectionInfo | null = null): ChildEntry {
    trace('fork')
    const child = fork(CHILD, [], {
      execArgv: [], execPath: EXEC_PATH, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...options.credentials,
    })
    const forked: ChildEntry = {
      state, retiring: null, ready: false, info, socket: null, acceptedAt: null, handoffMs: null, tally: null,
      child, startedAt: Date.now(), handoffTimer: null, lifetimeTimer: null, graceTimer: null,
    }
    table.add(forked)
    child.on('error', (err) => childError(forked, err))
    child.on('exit', (code, signal) => reap(forked, code, signal))
    child.on('message', (m: unknown, handle: unknown) => received(forked, m, handle))
    if (child.pid !== undefined) {
      trace('pid %d spawned', child.pid)
      log({ event: 'fork', pid: child.pid, state, conn: info?.id ?? null })
      status()
    }
    return forked
  }

  // --max-lifetime, counted from when a child starts its work (a spare's waiting does not count).
  function armLifetime(entry: ChildEntry): void {
    if (options.maxLifetime > 0) entry.lifetimeTimer = setTimeout(() => end(entry, `outlived --max-lifetime ${options.maxLifetime}s`), options.maxLifetime * 1000)
  }

  // A child that hangs is ended, SIGTERM first, then SIGKILL.
  function end(entry: ChildEntry, why: string): void {
    const { child } = entry
    warn(`pid ${child.pid} ${why}; ending it`)
    signalChild(entry, 'SIGTERM')
    const kill = setTimeout(() => signalChild(entry, 'SIGKILL'), KILL_AFTER_MS)
    child.once('exit', () => clearTimeout(kill))
  }

  function received(entry: ChildEntry, m: unknown, handle: unknown): void {
    if (isMessage(m, 'taken')) handedOff(entry)
    else if (isMessage(m, 'listener') && typeof handle === 'object' && handle !== null) supervisor.keep(handle as RawHandle)
    else if (isMessage(m, 'ready') && booting.delete(entry)) {
      // this spare has its service loaded: start the next
      replenish()
    } else if (isMessage(m, 'ready')) {
      trace('worker %d is accepting', entry.child.pid)
      entry.ready = true
      retireWorkers()
    } else if (isMessage(m, 'tally')) {
      entry.tally = m.tally
      report.heard(entry)
    }
  }

  // accept: check the limits, then fork a child now or wait for a free one.
  function accept(socket: Socket): void {
    socket.on('error', (err) => trace('socket error before handoff: %s', err.message))
    if (path === null && socket.remoteAddress === undefined) {
      trace('accept: the peer is already gone')
      return void socket.destroy()
    }
    const acceptedAt = Date.now()
    const info = connectionInfo(socket, ++counts.accepted, path)
    const from = info.remoteAddress
    trace('accept %s', peerOf(info))
    log({ event: 'accept', conn: info.id, peer: peerOf(info), pid })
    if (draining) return drop(socket, 'shutting down', info)
    const short = descriptors.short(ACCEPT_RESERVE)
    if (short !== null) return drop(socket, `out of descriptors (${short})`, info)
    if (path === null && !isAllowed(options.access, from)) {
      counts.denied++
      log({ event: 'deny', conn: info.id, peer: peerOf(info), pid })
      return void socket.destroy()
    }
    if (rate !== null && !rate.admit(from)) {
      return drop(socket, `rate ${rate.rate.count}/${rate.rate.seconds}s exceeded`, info)
    }
    if (options.maxPerIp > 0 && table.countFrom(from) + queue.countFrom(from) >= options.maxPerIp) {
      return drop(socket, `max-per-ip ${options.maxPerIp} reached`, info)
    }
    if (table.size < options.maxChildren || table.spare()) return start({ socket, info, acceptedAt })
    if (options.overflow === 'reject') return drop(socket, `max-children ${options.maxChildren} reached`, info)
    if (!queue.push({ socket, info, acceptedAt })) return drop(socket, `queue full (${options.queueLimit} waiting)`, info)
    trace('queued %s, %d waiting', peerOf(info), queue.size)
  }

  // fork, then hand the socket to the child.
  // (With --spares, a spare forked ahead takes it at once.)
  function start(waiting: Waiting): void {
    const spare = table.spare()
    if (spare !== undefined) return handOff(spare, waiting) // its successor is forked once it has the socket
    const short = descriptors.short(FORK_RESERVE)
    if (short !== null) return drop(waiting.socket, `too few descriptors to fork (${short})`, waiting.info)
    let entry: ChildEntry
    try {
      entry = forkChild('busy', waiting.info)
    } catch (err) {
      counts.failed++
      return drop(waiting.socket, `fork failed: ${errorMessage(err)}`, waiting.info)
    }
    entry.socket = waiting.socket // for childError, if the spawn failed
    if (entry.child.pid === undefined) return // spawn failed; 'error' follows
    handOff(entry, waiting)
  }

  function handOff(entry: ChildEntry, { socket, info, acceptedAt }: Waiting): void {
    const { child } = entry
    entry.state = 'busy'
    entry.info = info
    entry.socket = socket
    entry.acceptedAt = acceptedAt
    armLifetime(entry)
    log({ event: 'from', pid: child.pid, peer: peerOf(info) })
    entry.handoffTimer = setTimeout(() => {
      warn(`pid ${child.pid} did not take its socket within ${HANDOFF_TIMEOUT_S}s; killing it`)
      signalChild(entry, 'SIGKILL')
    }, HANDOFF_TIMEOUT_S * 1000 + 1000)
    // The parent keeps its copy until the child confirms (Node never closes a
    // sent raw handle; keepOpen says so): handedOff() or reap() closes it.
    child.send(message('serve', { info, spec }), sendable(rawHandle(socket)), { keepOpen: true }, (err) => {
      if (!err) return
      warn(`handoff to pid ${child.pid} failed: ${err.message}`)
      signalChild(entry, 'SIGKILL')
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
        entry = forkChild('spare')
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
    warn(`spare ${pid ?? '?'} ${how}; a new one in ${delay / 1000}s`)
    spareTimer = setTimeout(() => {
      spareTimer = null
      replenish()
    }, delay)
  }

  // SIGHUP: replace every spare and worker with a fresh one (lib/reload.ts).
  function reload(signal: NodeJS.Signals): void {
    if (draining) return
    const current = (state: ChildEntry['state']) => [...table].filter((entry) => entry.state === state && entry.retiring === null)
    const [spares, workers] = [current('spare'), current('worker')]
    if (prefork && !supervisor.reload()) return warn('reload: no copy of the listener to give fresh workers yet; send SIGHUP again')
    log({ event: 'reload', signal, spares: spares.length, workers: workers.length, pid })
    for (const entry of spares) {
      entry.retiring = 'stopping'
      booting.delete(entry)
      signalChild(entry, 'SIGTERM') // waiting, with nothing to finish
    }
    for (const entry of workers) entry.retiring = 'serving'
    retireWorkers()
    replenish()
  }

  // Old workers stop accepting as fresh ones take their place, and finish within --grace.
  function retireWorkers(): void {
    for (const entry of workersToStop(table, options.workers)) {
      entry.retiring = 'stopping'
      trace('worker %d retires: a fresh one accepts in its place', entry.child.pid)
      entry.child.send(message('stop', {}), undefined, undefined, () => {})
      entry.graceTimer = setTimeout(() => end(entry, `still busy --grace ${options.grace}s after the reload`), options.grace * 1000)
    }
  }

  // prefork: fork a worker and give it a copy of the listening socket.
  function startWorker(listener: RawHandle, lend: boolean): void {
    let entry: ChildEntry
    try {
      entry = forkChild('worker')
    } catch (err) {
      return supervisor.replace(undefined, 1, null, 0, `fork failed: ${errorMessage(err)}`)
    }
    if (entry.child.pid === undefined) return // spawn failed; 'error' follows
    armLifetime(entry)
    entry.child.send(message('work', { spec: workSpec, lend }), sendable(listener), undefined, (err) => {
      if (!err) return
      warn(`handoff to worker ${entry.child.pid} failed: ${err.message}`)
      signalChild(entry, 'SIGKILL')
    })
  }

  // prefork, when no process holds the listener any more: listen afresh.
  function relisten(): void {
    const again = createServer()
    const endpoint = options.endpoint.kind === 'tcp' ? { ...options.endpoint, port: boundPort } : options.endpoint
    listen(again, endpoint).then(
      () => {
        if (options.endpoint.kind === 'path') fileId = socketFileId(options.endpoint.path)
        supervisor.start(again)
      },
      (err: unknown) => supervisor.relistenFailed(`cannot listen again: ${errorMessage(err)}`),
    )
  }

  // The child holds its own copy of the descriptor: close ours, as C's parent
  // does with close(connfd). The connection stays up; the child owns it now.
  function handedOff(entry: ChildEntry): void {
    clearTimeout(entry.handoffTimer ?? undefined)
    entry.socket?.destroy()
    entry.socket = null
    trace('socket handed off to pid %d', entry.child.pid)
    if (entry.info !== null && entry.acceptedAt !== null) {
      entry.handoffMs = Date.now() - entry.acceptedAt
      log({ event: 'handoff', conn: entry.info.id, pid: entry.child.pid, peer: peerOf(entry.info), handoffMs: entry.handoffMs })
    }
    replenish()
  }

  function childError(entry: ChildEntry, err: Error): void {
    if (entry.child.pid !== undefined) return warn(`pid ${entry.child.pid}: ${err.message}`)
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
    clearTimeout(entry.graceTimer ?? undefined)
    table.remove(entry)
    // Died before taking the socket: closing our copy is what tells the client.
    entry.socket?.destroy()
    entry.socket = null
    // A busy child's status is its connection's; a worker reports its tally;
    // a spare served no one.
    if (entry.state === 'busy' && code === 0) counts.served++
    else if (entry.state !== 'spare' && code !== 0) counts.failed++
    if (entry.tally !== null) addTally(counts, entry.tally)
    trace('pid %d exited %s → reaped', entry.child.pid, signal ? `signal ${signal}` : `status ${code}`)
    log({
      event: 'end',
      conn: entry.info?.id ?? null,
      pid: entry.child.pid,
      peer: entry.info === null ? null : peerOf(entry.info),
      handoffMs: entry.handoffMs,
      endMs: entry.acceptedAt === null ? null : Date.now() - entry.acceptedAt,
      code,
      signal,
    })
    status()
    report.heard(entry)
    const lived = Date.now() - entry.startedAt
    // (One a reload retired has its successor already.)
    const replaced = entry.retiring !== null
    if (entry.state === 'worker' && !draining && !replaced) supervisor.replace(entry.child.pid, code, signal, lived)
    if (entry.state === 'spare' && !replaced) spareLost(entry.child.pid, signal ? `was killed by ${signal}` : `exited with status ${code}`, code, lived)
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

  /** The counts so far: the parent's (with retired workers'), and those the live workers last reported. */
  function counters(): Counters {
    const all = { ...counts }
    for (const { tally } of table) if (tally !== null) addTally(all, tally)
    return { ...all, peak: table.peak }
  }

  // SIGUSR1: the status table, once the prefork workers have reported.
  const report = new StatusReport(table, (entry) => entry.child.send(message('report', {}), undefined, undefined, () => {}), () =>
    log(statusEvent(table, max, counters(), peerOf)))

  // Shutdown: stop accepting, close the queue, give live children --grace
  // seconds, then SIGTERM, then SIGKILL. A second SIGINT ends it at once.
  let exitWith!: (code: number) => void
  const done = new Promise<number>((resolve) => (exitWith = resolve))
  const timers: NodeJS.Timeout[] = []
  let forced = false
  const killAll = (signal: NodeJS.Signals): void => {
    for (const entry of table) signalChild(entry, signal)
  }

  function shutdown(signal: NodeJS.Signals): void {
    if (draining) {
      if (signal !== 'SIGINT') return
      warn(`second SIGINT: killing ${table.size} children`)
      killAll('SIGKILL')
      return finish(130)
    }
    draining = true
    // New connects are refused from here: the parent closes its listener (its
    // callback may never come), and workers close theirs when told to stop.
    if (server.listening) server.close()
    supervisor.stop()
    log({ event: 'drain', signal, live: table.size, graceS: options.grace })
    for (const { child, state } of table) if (state === 'worker') child.send(message('stop', {}), undefined, undefined, () => {})
    for (const { socket, info } of queue.drain()) drop(socket, 'shutting down', info)
    clearTimeout(spareTimer ?? undefined)
    for (const { child, state } of table) if (state === 'spare') child.kill('SIGTERM') // nothing to finish
    if (table.size === 0) return finish()
    timers.push(setTimeout(() => {
      forced = true
      warn(`grace over: SIGTERM to ${table.size} children`)
      killAll('SIGTERM')
      timers.push(setTimeout(() => killAll('SIGKILL'), KILL_AFTER_MS))
    }, options.grace * 1000))
  }

  // The table is empty (or we gave up on it): say what happened, and exit.
  function finish(code = forced ? 1 : 0): void {
    timers.forEach(clearTimeout)
    if (options.endpoint.kind === 'path') removeSocketFile(options.endpoint.path, fileId)
    log({ event: 'shutdown', counters: counters(), code })
    exitWith(code)
  }

  process.on('SIGTERM', shutdown)
  process.on('SIGINT', shutdown)
  // SIGHUP reloads, unless it says that the terminal was closed: then drain, as for SIGTERM.
  process.on('SIGHUP', (signal) => (leaveDeadTerminal() ? shutdown(signal) : reload(signal)))
  process.on('SIGUSR1', () => report.ask())

  let boundPort = 0
  /** The socket file this server made (--path), to remove at exit. */
  let fileId: number | null = null
  let bound: Bound
  try {
    bound = await listen(server, options.endpoint)
  } catch (err) {
    log({ event: 'fatal', message: errorMessage(err), pid })
    return 1
  }
  if (bound.kind === 'unix') path = bound.path
  else boundPort = bound.port
  if (options.endpoint.kind === 'path') fileId = socketFileId(options.endpoint.path)
  workSpec = { ...workSpec, unixPath: path }
  // (--path refuses these as usage errors; an inherited descriptor is known only now.)
  if (path !== null && (options.access.allow.length + options.access.deny.length > 0 || options.rate !== null || options.maxPerIp > 0)) {
    log({ event: 'fatal', message: 'the inherited socket is a Unix socket: --allow, --deny, --rate and --max-per-ip need TCP peers', pid })
    return 1
  }
  trace('listening on %s (%s)', listenerName(bound), options.endpoint.kind === 'fd' ? `descriptor ${options.endpoint.fd} from ${options.endpoint.from}` : options.endpoint.kind)
  // prefork: hand out the listener before the first accept can happen here.
  if (prefork) supervisor.start(server)
  // From here on, a server error is a failed accept (ENFILE, say): warn, keep listening.
  server.on('error', (err) => warn(`accept failed: ${err.message}`))
  log({ event: 'listening', address: listenerName(bound), pid })
  status()
  replenish()
  return done
}

/** Adds a prefork worker's counts to `counts`. */
const addTally = (counts: { accepted: number; served: number; failed: number; denied: number }, tally: Tally): void => {
  counts.accepted += tally.accepted
  counts.served += tally.served
  counts.failed += tally.failed
  counts.denied += tally.denied
}

/**
 * Each child leads a process group of its own (it was forked detached), with
 * whatever it started: the --exec program, or a handler's own processes.
 * SIGKILL, which a child cannot pass on, goes to the whole group, and so does
 * everything sent to a prefork worker; a busy child passes SIGTERM on to its
 * program itself.
 */
const signalChild = ({ child, state }: ChildEntry, signal: NodeJS.Signals): void => {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(signal === 'SIGKILL' || state === 'worker' ? -child.pid : child.pid, signal)
  } catch {
    // gone already
  }
}

process.exit(await main(process.argv.slice(2)))
