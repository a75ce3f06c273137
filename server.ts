#!/usr/bin/env node
// server.ts: the parent. It listens, accepts, forks one child per connection,
// hands the child the socket, and reaps the child when it exits.
//
//   the classic C server                   forkserver
//   socket(); bind(); listen();            listen(): createServer({ pauseOnConnect: true })
//   connfd = accept(listenfd);             accept(socket) (and its PROXY header), then admit() (lib/admission.ts)
//   if (fork() == 0) serve(connfd);        start(): a child (lib/starter.ts), then handOff() the socket
//   close(connfd);                         handedOff(): socket.destroy(), once the child has its copy
//   SIGCHLD, waitpid();                    reap(), on the child's exit; then next() from the queue
//
// Nothing of this file's memory survives into a child: child_process.fork
// starts a new Node. The child shares only the IPC channel and, passed over
// it as a descriptor (SCM_RIGHTS), the client's socket.
//
// --model prefork swaps one step: instead of a child per connection, a few
// workers accept for themselves (lib/prefork.ts, lib/worker.ts). Listening,
// the child table, reaping, logging and the drain are the same for both.
import type { Socket } from 'node:net'
import { connectionInfo, judgedByAddress, listenerName, peerOf } from './lib/net/address.js'
import { admit, mayStart, passed } from './lib/admission/admission.js'
import { newEntry, signalChild, type ChildEntry } from './lib/parent/child-table.js'
import { FORK_RESERVE } from './lib/net/descriptors.js'
import { errorMessage } from './lib/log/log.js'
import { parseOptions } from './lib/cli/options.js'
import { Parent } from './lib/parent/parent.js'
import { HANDOFF_TIMEOUT_S, message } from './lib/protocol.js'
import { rawHandle, sendable } from './lib/net/raw-handle.js'
import { answerSignals } from './lib/parent/signals.js'
import { chooseStarter } from './lib/start/starter.js'
import { openTrace } from './lib/log/trace.js'
import { verdictTimer } from './lib/parent/verdict.js'
import type { Waiting } from './lib/parent/wait-queue.js'

class ForkServer extends Parent {
  // listen: bound and listening, paused, so that what a client sends waits for its child.
  async listen(): Promise<number> {
    const { options, log, pid } = this
    let bound
    try {
      await this.starter.open?.() // (a zygote loads, and proves that it can fork)
      bound = await this.listening.open(this.server, options)
    } catch (err) {
      log({ event: 'fatal', message: errorMessage(err), pid })
      return 1
    }
    if (this.startedTooLate()) return this.shutdown.done
    const { endpoint } = options
    this.trace('listening on %s (%s)', listenerName(bound), endpoint.kind === 'fd' ? `descriptor ${endpoint.fd} from ${endpoint.from}` : endpoint.kind)
    // prefork: hand out the listener before the first accept can happen here.
    if (this.prefork) this.supervisor.start(this.server)
    // From here on, a server error is a failed accept (ENFILE, say): warn, keep listening.
    this.server.on('error', (err) => this.warn(`accept failed: ${err.message}`))
    log({ event: 'listening', address: listenerName(bound), pid })
    this.status()
    this.spares.replenish()
    return this.shutdown.done
  }

  // accept: a connection. Behind a balancer, its PROXY header first says whose it is.
  accept(socket: Socket): void {
    socket.on('error', (err) => this.trace('socket error before handoff: %s', err.message))
    const path = this.listening.unixPath
    if (path === null && socket.remoteAddress === undefined) {
      this.trace('accept: the peer is already gone')
      return void socket.destroy()
    }
    const waiting: Waiting = { socket, info: connectionInfo(socket, ++this.table.totals.accepted, path), acceptedAt: Date.now() }
    if (this.proxy === null) return this.admit(waiting)
    // (lib/proxy-read.ts: it reads the header and nothing more; null: it closed the connection)
    void this.proxy.read(socket, waiting.info).then((info) => (info === null ? this.next() : this.admit({ ...waiting, info })))
  }

  // admit: start a child for it now, queue it, or turn it away (lib/admission.ts).
  admit(waiting: Waiting): void {
    const { socket, info } = waiting
    const from = info.remoteAddress
    this.trace('accept %s', peerOf(info))
    this.log({ event: 'accept', conn: info.id, peer: peerOf(info), pid: this.pid })
    const verdict = admit({ address: from, unix: !judgedByAddress(info) }, this.options, this.liveCounts(from))
    if (passed(verdict, 'rate')) this.rate?.record(from)
    if (verdict.kind === 'admit') return this.start(waiting)
    if (verdict.kind === 'queue') return this.wait(waiting)
    if (verdict.kind === 'drop') return this.drop(socket, verdict.reason, info, { queueFull: verdict.step === 'queue' })
    this.deny(socket, info)
  }

  // start: the child that will serve it. A spare started ahead takes it at once; else fork one.
  start(waiting: Waiting): void {
    const spare = this.table.spare()
    if (spare !== undefined) return this.handOff(spare, waiting) // its successor is started once it has the socket
    const short = this.descriptors.short(FORK_RESERVE)
    if (short !== null) return this.drop(waiting.socket, `too few descriptors to fork (${short})`, waiting.info)
    this.handOff(this.fork('busy'), waiting)
  }

  // fork(): a new child, from the starter. Its exit comes to reap(), as SIGCHLD does.
  fork(state: ChildEntry['state']): ChildEntry {
    this.trace('fork')
    const entry: ChildEntry = newEntry(state, this.starter.start({
      spawn: () => this.spawned(entry, state),
      message: (m, handle) => this.heard(entry, m, handle),
      exit: (code, signal) => this.reap(entry, code, signal),
      error: (err) => this.failed(entry, err),
    }))
    this.table.add(entry)
    return entry
  }

  // handOff: send the socket to the child, which then holds its own copy of the descriptor.
  handOff(entry: ChildEntry, { socket, info, acceptedAt }: Waiting): void {
    const { child } = entry
    entry.state = 'busy'
    entry.info = info
    entry.socket = socket
    entry.acceptedAt = acceptedAt
    if (child.pid !== undefined) this.log({ event: 'from', pid: child.pid, peer: peerOf(info) }) // (a fresh child's says so once it runs)
    entry.handoffTimer = verdictTimer(HANDOFF_TIMEOUT_S * 1000 + 1000, () => entry.socket === socket, () => {
      this.warn(`pid ${child.pid} did not take its socket within ${HANDOFF_TIMEOUT_S}s; killing it`)
      signalChild(entry, 'SIGKILL')
    })
    // The parent keeps its copy until the child confirms: handedOff() or reap() closes it.
    child.send(message('serve', { info, spec: this.spec }), sendable(rawHandle(socket)), (err) => {
      if (err === null || child.pid === undefined) return // (one never started reports that itself)
      this.warn(`handoff to pid ${child.pid} failed: ${err.message}`)
      signalChild(entry, 'SIGKILL')
    })
  }

  // handedOff: the child holds its own copy of the descriptor. Close ours, as C's
  // parent does with close(connfd). The connection stays up; the child owns it now.
  handedOff(entry: ChildEntry): void {
    clearTimeout(entry.handoffTimer ?? undefined)
    entry.socket?.destroy()
    entry.socket = null
    this.trace('socket handed off to pid %d', entry.child.pid)
    this.armLifetime(entry) // (its start-up is not its connection's time)
    if (entry.info !== null && entry.acceptedAt !== null) {
      entry.handoffMs = Date.now() - entry.acceptedAt
      this.log({ event: 'handoff', conn: entry.info.id, pid: entry.child.pid, peer: peerOf(entry.info), handoffMs: entry.handoffMs })
    }
    this.next() // (it has booted: another may)
  }

  // fork() failed (C: if (pid < 0) perror("fork")): no child, so no exit to reap either.
  failed(entry: ChildEntry, err: Error): void {
    if (entry.child.pid !== undefined) return this.warn(`pid ${entry.child.pid}: ${err.message}`)
    this.table.remove(entry)
    this.table.totals.failed++
    if (entry.state === 'worker') return this.supervisor.replace(undefined, 1, null, 0, `fork failed: ${err.message}`)
    if (entry.state === 'spare') return this.spares.lost(undefined, `could not be forked: ${err.message}`, 1, 0)
    if (entry.socket !== null && entry.info !== null) this.drop(entry.socket, `fork failed: ${err.message}`, entry.info)
    this.next()
  }

  // reap: the child has exited and been waited for (SIGCHLD and waitpid() in one event).
  reap(entry: ChildEntry, code: number | null, signal: NodeJS.Signals | null): void {
    for (const timer of [entry.handoffTimer, entry.lifetimeTimer, entry.graceTimer, entry.killTimer]) clearTimeout(timer ?? undefined)
    this.table.ended(entry, code)
    // Died before taking the socket: closing our copy is what tells the client.
    entry.socket?.destroy()
    entry.socket = null
    const { child, info, acceptedAt, state } = entry
    this.trace('pid %d exited %s → reaped', child.pid, signal ? `signal ${signal}` : `status ${code}`)
    const endMs = acceptedAt === null ? null : Date.now() - acceptedAt
    this.log({ event: 'end', conn: info?.id ?? null, pid: child.pid, peer: info && peerOf(info), handoffMs: entry.handoffMs, endMs, code, signal })
    this.status()
    this.report.heard(entry)
    const lived = Date.now() - entry.startedAt
    // (One a reload retired has its successor already.)
    const replaced = entry.retiring !== null
    if (state === 'worker' && !this.shutdown.draining && !replaced) this.supervisor.replace(child.pid, code, signal, lived)
    if (state === 'spare' && !replaced) this.spares.lost(child.pid, signal ? `was killed by ${signal}` : `exited with status ${code}`, code, lived)
    this.next()
  }

  // next: a child slot (or a boot slot) is free. Start the connection that has waited longest.
  next(): void {
    for (let waiting; mayStart(this.options, this.children()) && (waiting = this.queue.shift()); ) this.start(waiting)
    if (this.shutdown.draining) return this.shutdown.childGone()
    this.spares.replenish()
  }
}

async function main(argv: readonly string[]): Promise<number> {
  const parsed = await parseOptions(argv)
  if (parsed.kind === 'exit') {
    ;(parsed.code === 0 ? process.stdout : process.stderr).write(parsed.output)
    return parsed.code
  }
  // systemd's variables were for this process: no child or program should act on them.
  for (const name of ['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES']) delete process.env[name]
  const parent = new ForkServer(parsed.options, await chooseStarter(parsed.options), await openTrace('parent'))
  answerSignals(parent) // (lib/signals.ts: what each signal does)
  const code = await parent.listen()
  await parent.flushLog() // (bounded: a stderr nobody reads does not keep the server)
  return code
}

process.exit(await main(process.argv.slice(2)))
