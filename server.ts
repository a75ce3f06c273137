#!/usr/bin/env node
// server.ts: the parent. It listens, accepts, forks one child per connection,
// hands the child the socket, closes its own copy, and reaps the child when
// it exits.
//
//   the classic C server                   forkserver
//   socket(); bind(); listen();            listen(): createServer({ pauseOnConnect: true })
//   connfd = accept(listenfd);             the intake (lib/admission/intake.ts): accept, and a PROXY header
//   (limits)                               judge(): admit() (lib/admission/admission.ts)
//   if (fork() == 0) serve(connfd);        fork(): a child from the starter (lib/start/)
//                                          handOff(): the socket, sent to it
//   close(connfd);                         handOff(): socket.destroy(), once the child holds its copy
//   SIGCHLD, waitpid();                    the supervisor (lib/parent/supervisor.ts) reaps, then reconciles
//
// Nothing of this file's memory survives into a child: child_process.fork
// starts a new Node (and the zygote's fork(2) copies the zygote, not this
// process). The child shares only the IPC channel and, passed over it as a
// descriptor (SCM_RIGHTS), the client's socket.
//
// --model prefork swaps this acceptor for another: workers accept for
// themselves (lib/parent/prefork.ts). The supervisor, the child table,
// reaping, logging and the drain are the same for both.
import { createServer, type Server } from 'node:net'
import { admit, passed, type Peer, type Verdict } from './lib/admission/admission.js'
import { Intake, type Accepted } from './lib/admission/intake.js'
import { RateLimiter } from './lib/admission/rate-limit.js'
import { parseOptions } from './lib/cli/options.js'
import { errorMessage } from './lib/log/log.js'
import { peerOf } from './lib/net/address.js'
import { ACCEPT_RESERVE, FORK_RESERVE } from './lib/net/descriptors.js'
import { refuseNew, takeBacklog } from './lib/net/listen.js'
import { rawHandle } from './lib/net/raw-handle.js'
import { signalChild, type Busy } from './lib/parent/child-table.js'
import { runParent } from './lib/parent/parent.js'
import type { Acceptor, Supervisor } from './lib/parent/supervisor.js'
import { verdictTimer } from './lib/parent/verdict.js'
import { HANDOFF_TIMEOUT_S } from './lib/protocol.js'

class ForkServer implements Acceptor {
  readonly max: number
  readonly server: Server
  readonly intake: Intake
  readonly rate: RateLimiter | null

  constructor(readonly supervisor: Supervisor) {
    const { options, log, warn, trace, listening } = supervisor.parent
    this.max = options.maxChildren
    this.rate = options.rate && new RateLimiter(options.rate)
    this.intake = new Intake({
      unixPath: () => listening.unixPath, proxy: options.proxy, counts: supervisor.table.totals, log, warn, trace,
      judge: (peer) => this.judge(peer),
      pass: (conn, verdict) => {
        if (verdict.kind === 'admit') this.fork(conn)
        else this.wait(conn)
        supervisor.reconcile()
      },
      closed: () => supervisor.reconcile(),
    })
    this.server = createServer({ pauseOnConnect: true }, (socket) => this.intake.accept(socket))
  }

  // listen: bound and listening, paused, so that what a client sends waits for its child.
  async listen(): ReturnType<Acceptor['listen']> {
    const bound = await this.supervisor.parent.listening.open(this.server, this.supervisor.parent.options)
    // From here on, a server error is a failed accept (ENFILE, say): warn, keep listening.
    this.server.on('error', (err) => this.supervisor.parent.warn(`accept failed: ${err.message}`))
    return bound
  }

  // judge: start a child for it now, queue it, or turn it away (lib/admission/admission.ts).
  judge(peer: Peer): Verdict {
    const { supervisor } = this
    const verdict = admit(peer, supervisor.parent.options, {
      draining: supervisor.targets.draining,
      descriptorsShort: supervisor.parent.descriptors.short(ACCEPT_RESERVE),
      recent: this.rate?.recent(peer.address) ?? 0,
      fromPeer: supervisor.table.countFrom(peer.address) + supervisor.queue.countFrom(peer.address),
      ...supervisor.children(),
      queued: supervisor.queue.size,
    })
    if (passed(verdict, 'rate')) this.rate?.record(peer.address)
    return verdict
  }

  // fork: the child that will serve it (C: fork()). A spare started ahead takes it at once; else a fresh one.
  fork(conn: Accepted): void {
    const { supervisor } = this
    const short = supervisor.table.spare() === undefined ? supervisor.parent.descriptors.short(FORK_RESERVE) : null
    if (short !== null) return this.drop(conn.socket, `too few descriptors to fork (${short})`, conn.info)
    void this.handOff(supervisor.busy(conn), conn)
  }

  // Over --max-children (or waiting to boot): the connection waits in the queue.
  wait(conn: Accepted): void {
    this.supervisor.queue.push(conn)
    this.supervisor.parent.trace('queued %s, %d waiting', peerOf(conn.info), this.supervisor.queue.size)
  }

  // handOff: send the socket to the child, which then holds its own copy of the
  // descriptor. Then close ours, as C's parent does with close(connfd): the
  // connection stays up, the child owns it now. (If the child died before
  // taking it, closing our copy is what tells the client.)
  async handOff(entry: Busy, { socket, info, acceptedAt }: Accepted): Promise<void> {
    const { child } = entry
    const { parent } = this.supervisor
    if (child.pid !== undefined) parent.log({ event: 'from', pid: child.pid, peer: peerOf(info) }) // (a fresh child's says so once it runs)
    entry.handoffTimer = verdictTimer(HANDOFF_TIMEOUT_S * 1000 + 1000, () => entry.socket === socket, () => {
      parent.warn(`pid ${child.pid} did not take its socket within ${HANDOFF_TIMEOUT_S}s; killing it`)
      signalChild(entry, 'SIGKILL')
    })
    const held = await child.serve(socket, info).catch((err: unknown) => {
      parent.warn(`handoff to pid ${child.pid} failed: ${errorMessage(err)}`)
      signalChild(entry, 'SIGKILL')
      return false
    })
    clearTimeout(entry.handoffTimer ?? undefined)
    socket.destroy()
    entry.socket = null
    if (!held) return
    parent.trace('socket handed off to pid %d', child.pid)
    this.supervisor.armLifetime(entry) // (its start-up is not its connection's time)
    entry.handoffMs = Date.now() - acceptedAt
    parent.log({ event: 'handoff', conn: info.id, pid: child.pid, peer: peerOf(info), handoffMs: entry.handoffMs })
    this.supervisor.reconcile() // (it has booted: another may)
  }

  drop(...args: Parameters<Intake['drop']>): void {
    this.intake.drop(...args)
  }

  get headers(): Acceptor['headers'] {
    return this.intake
  }

  // The drain: new connects are refused from here. What waits in the backlog
  // has connected: it is served, not reset by the close.
  stopAccepting(): void {
    const { options, addon, listening } = this.supervisor.parent
    if (!this.server.listening) return
    // (An inherited listener, --fd or systemd's, lives on after us: it must not be left refusing.)
    if (options.endpoint.kind !== 'fd') refuseNew(rawHandle(this.server), addon)
    for (const socket of takeBacklog(rawHandle(this.server), addon, true)) this.intake.accept(socket)
    listening.stop(this.server)
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
  return runParent(parsed.options, (supervisor) => new ForkServer(supervisor))
}

process.exit(await main(process.argv.slice(2)))
