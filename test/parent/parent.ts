import t from 'tap'
import { answerSignals } from '../../lib/parent/parent.js'
import type { Supervisor } from '../../lib/parent/supervisor.js'

const SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGQUIT', 'SIGHUP', 'SIGUSR1', 'SIGUSR2']

t.test('each signal the parent answers does one thing: drain, reload, status, or a warning', async (t) => {
  const calls: string[] = []
  const supervisor = {
    drain: (signal: NodeJS.Signals) => calls.push(`drain ${signal}`),
    reload: (signal: NodeJS.Signals) => calls.push(`reload ${signal}`),
    report: { ask: () => calls.push('status') },
    parent: { warn: (text: string) => calls.push(`warning: ${text}`) },
  } as unknown as Supervisor
  const before = new Map(SIGNALS.map((signal) => [signal, new Set(process.listeners(signal))]))
  answerSignals(supervisor)
  t.teardown(() => {
    for (const signal of SIGNALS) for (const listener of process.listeners(signal)) if (!before.get(signal)?.has(listener)) process.off(signal, listener)
  })
  for (const signal of SIGNALS) process.emit(signal, signal)
  t.same(calls, [
    'drain SIGTERM',
    'drain SIGINT',
    'drain SIGQUIT',
    'reload SIGHUP', // (this terminal, if any, is still there)
    'status',
    'warning: SIGUSR2 ignored: SIGHUP reloads, SIGUSR1 prints the status, SIGTERM drains',
  ])
})
