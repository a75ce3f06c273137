// The orchestrator's side of a load generator process (loadgen.ts).
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { assertOpen, own } from './cleanup.js'
import { isReply, type Job, type ReplyTo } from './loadgen-protocol.js'
import { killNow, waitUntil } from './proctree.js'

const LOADGEN = fileURLToPath(new URL('./loadgen.js', import.meta.url))

export interface Loadgen {
  /** Runs one job; rejects if the load generator fails, dies, or takes longer than `limitMs`. */
  run<J extends Job>(job: J, limitMs: number): Promise<ReplyTo<J>>
  /** Ends the process, and with it every connection it holds. */
  stop(): Promise<void>
}

export const startLoadgen = (): Loadgen => {
  assertOpen()
  // execArgv: [] keeps a parent's loaders (tap, tsx) out of the load generator.
  const proc = fork(LOADGEN, [], { execArgv: [], detached: true, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
  const pid = proc.pid ?? -1
  let exited = false
  proc.once('exit', () => {
    exited = true
  })
  proc.on('error', () => undefined)
  const killEverything = (): void => {
    // Once reaped, its pid may belong to someone else.
    if (pid > 0 && !exited) killNow(pid)
  }
  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      // A disconnect is its cue to exit; SIGKILL if it does not.
      if (proc.connected) proc.disconnect()
      if (!(await waitUntil(() => exited, 2000))) {
        killEverything()
        await waitUntil(() => exited, 2000)
      }
      disown()
    })())
  const disown = own({ stop, killNow: killEverything })

  const run = <J extends Job>(job: J, limitMs: number): Promise<ReplyTo<J>> =>
    new Promise((resolve, reject) => {
      const done = (err: Error | null, reply?: ReplyTo<J>): void => {
        clearTimeout(timer)
        proc.off('message', onMessage)
        proc.off('exit', onExit)
        if (err || reply === undefined) reject(err ?? new Error('no reply'))
        else resolve(reply)
      }
      const timer = setTimeout(() => {
        killEverything()
        done(new Error(`load generator: no reply to ${job.kind} within ${limitMs} ms`))
      }, limitMs)
      const onMessage = (message: unknown): void => {
        if (!isReply(message)) return
        if (message.kind === 'failed') return done(new Error(`load generator: ${message.message}`))
        if (message.kind !== job.kind) return done(new Error(`load generator: a ${message.kind} reply to a ${job.kind} job`))
        done(null, message as ReplyTo<J>)
      }
      const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
        done(new Error(`load generator exited (${code ?? signal}) during ${job.kind}`))
      proc.on('message', onMessage)
      proc.once('exit', onExit)
      proc.send(job, undefined, undefined, (err) => {
        if (err) done(err)
      })
    })

  return { run, stop }
}
