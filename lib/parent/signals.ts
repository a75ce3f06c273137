// The signals the parent answers, each with one documented meaning (README,
// "Signals and shutdown"). Any other that would kill it keeps its default.
import type { Parent } from './parent.js'
import { leaveDeadTerminal } from '../log/terminal.js'

export const answerSignals = (parent: Parent): void => {
  const drain = (signal: NodeJS.Signals): void => parent.shutdown.begin(signal)
  process.on('SIGTERM', drain)
  process.on('SIGINT', drain)
  // SIGQUIT drains too, gracefully, as nginx's and unicorn's QUIT do (its default would dump core).
  process.on('SIGQUIT', drain)
  // SIGHUP reloads, unless it says that the terminal was closed: then drain, as for SIGTERM.
  process.on('SIGHUP', (signal) => (leaveDeadTerminal() ? drain(signal) : parent.reload(signal)))
  process.on('SIGUSR1', () => parent.report.ask())
  // SIGUSR2 means nothing here (unicorn re-executes on it): ignored, rather than fatal, and said so.
  process.on('SIGUSR2', (signal) => parent.warn(`${signal} ignored: SIGHUP reloads, SIGUSR1 prints the status, SIGTERM drains`))
}
