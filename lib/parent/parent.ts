// The parent process, put together: its parts (lib/parent/context.ts), its
// supervisor, the acceptor of its model, and the signals it answers.
// server.ts holds the fork model's acceptor, the accept loop; --model
// prefork swaps in prefork.ts's.
import type { Options } from '../cli/options.js'
import { errorMessage } from '../log/log.js'
import { openTrace } from '../log/trace.js'
import { listenerName } from '../net/address.js'
import type { Bound } from '../net/listen.js'
import { leaveDeadTerminal } from '../log/terminal.js'
import { setTitle } from '../log/title.js'
import { chooseStarter } from '../start/choose-starter.js'
import { parentOf } from './context.js'
import { PreforkAcceptor } from './prefork.js'
import { Supervisor, type Acceptor } from './supervisor.js'

/**
 * Runs the parent until it has drained, and resolves with its exit status.
 * `forkModel` makes server.ts's acceptor, the one of every model but prefork.
 */
export const runParent = async (options: Options, forkModel: (supervisor: Supervisor) => Acceptor): Promise<number> => {
  const parent = parentOf(options, await openTrace('parent'))
  const { starter, fallback, spawnsBecause } = await chooseStarter(options, parent)
  if (spawnsBecause !== null) parent.log({ event: 'start', start: 'spawn', reason: spawnsBecause, pid: parent.pid })
  const prefork = options.model === 'prefork'
  const supervisor = new Supervisor(parent, starter, { spares: options.spares, workers: prefork ? options.workers : 0 },
    prefork ? (s) => new PreforkAcceptor(s) : forkModel, fallback)
  answerSignals(supervisor) // (below: what each signal does)
  const code = await serve(supervisor)
  await parent.logWriter.flush(supervisor.flushBy) // (bounded: a stderr nobody reads does not keep the server)
  return code
}

/**
 * Starts serving: the zygote first, if there is one (it loads, and proves
 * that it can fork), then the acceptor listens. Resolves with the exit
 * status once the server has drained; 1 when it could not start.
 */
export const serve = async (supervisor: Supervisor): Promise<number> => {
  const { acceptor, parent } = supervisor
  const { log, pid, trace, options } = parent
  let bound: Bound
  try {
    await supervisor.open()
    bound = await acceptor.listen()
  } catch (err) {
    log({ event: 'fatal', message: errorMessage(err), pid })
    return 1
  }
  // A signal that came while the server started has drained it already: close what opened since, and never say `listening`.
  if (supervisor.targets.draining) {
    acceptor.stopAccepting()
    return supervisor.done
  }
  const { endpoint } = options
  trace('listening on %s (%s)', listenerName(bound), endpoint.kind === 'fd' ? `descriptor ${endpoint.fd} from ${endpoint.from}` : endpoint.kind)
  supervisor.reconcile() // (prefork: the first worker has the listener before anything can be accepted here)
  setTitle(`parent ${listenerName(bound)}`) // (before the line that says it listens: who reads the line may look)
  log({ event: 'listening', address: listenerName(bound), pid })
  supervisor.status()
  return supervisor.done
}

/**
 * The signals the parent answers, each with one documented meaning
 * (docs/operations.md, "Signals and shutdown"). Each only changes the
 * supervisor's targets, or asks for the status; the supervisor does the
 * rest. Any other signal that would kill the parent keeps its default.
 */
export const answerSignals = (supervisor: Pick<Supervisor, 'drain' | 'reload' | 'report' | 'parent'>): void => {
  const drain = (signal: NodeJS.Signals): void => supervisor.drain(signal)
  process.on('SIGTERM', drain)
  process.on('SIGINT', drain)
  // SIGQUIT drains too, gracefully, as nginx's and unicorn's QUIT do (its default would dump core).
  process.on('SIGQUIT', drain)
  // SIGHUP reloads, unless it says that the terminal was closed: then drain, as for SIGTERM.
  process.on('SIGHUP', (signal) => (leaveDeadTerminal() ? drain(signal) : supervisor.reload(signal)))
  process.on('SIGUSR1', () => supervisor.report.ask())
  // SIGUSR2 means nothing here (unicorn re-executes on it): ignored, rather than fatal, and said so.
  process.on('SIGUSR2', (signal) => supervisor.parent.warn(`${signal} ignored: SIGHUP reloads, SIGUSR1 prints the status, SIGTERM drains`))
}
