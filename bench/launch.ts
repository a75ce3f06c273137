// Starting and stopping a server under test. forkserver and the peers written
// for the bench print `listening on 127.0.0.1:PORT` on stderr once they
// listen; tcpserver, with -1, prints the bare port on stdout instead (the
// spec's portOnStdout). One launcher serves them all.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { assertOpen, own } from './cleanup.js'
import { descendants, killNow, marked, running, waitUntil } from './proctree.js'

export interface ServerSpec {
  readonly command: string
  readonly args: readonly string[]
  /** Long-lived processes under the server (prefork's workers); connection children come and go. */
  readonly resident: number
  /** It says it listens with the port alone on the first line of stdout (tcpserver -1), not a line on stderr. */
  readonly portOnStdout?: boolean
}

export interface Server {
  readonly pid: number
  readonly port: number
  /** The last lines of stderr, to explain a failure. */
  tail(): string
  stop(): Promise<void>
}

export interface LaunchOptions {
  readonly readyMs?: number
  /** Sees every stderr line (of the server and of everything it forked that kept stderr). */
  readonly onLine?: (line: string) => void
  /** Variables added to the server's environment (FORKSERVER_FORK_TIMES for the cost table). */
  readonly env?: Readonly<Record<string, string>>
}

const READY = /^listening on 127\.0\.0\.1:(\d+)(?:, pid \d+)?$/
const PORT_LINE = /^(\d+)$/
const TAIL_LINES = 20

/**
 * Reads the server's output: every stderr line goes to options.onLine and
 * into the tail kept to explain a failure (returned, and kept up to date),
 * and `ready` gets the port from the line that says it listens: on stderr,
 * or on stdout for portOnStdout (tcpserver -1, which writes nothing more there).
 */
const watchOutput = (proc: ChildProcess, spec: ServerSpec, options: LaunchOptions, ready: (port: number) => void): string[] => {
  const lines: string[] = []
  let partial = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      lines.push(line)
      if (lines.length > TAIL_LINES) lines.shift()
      options.onLine?.(line)
      const found = spec.portOnStdout ? null : READY.exec(line)
      if (found) ready(Number(found[1]))
    }
  })
  let stdout = ''
  proc.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk
    const found = stdout.includes('\n') ? PORT_LINE.exec(stdout.split('\n')[0] ?? '') : null
    if (found) ready(Number(found[1]))
  })
  return lines
}

/** The process's end, by 'exit' or by 'error' (it never started). */
const watchExit = (proc: ChildProcess): { readonly gone: Promise<void>; readonly exited: () => boolean } => {
  let exited = false
  const gone = new Promise<void>((resolve) => {
    const done = (): void => {
      exited = true
      resolve()
    }
    proc.once('exit', done)
    proc.once('error', done)
  })
  return { gone, exited: () => exited }
}

/**
 * SIGKILL for a server and all it started. Children first, while the server
 * may still reap them: a process whose parent is gone is left to init, which
 * here reaps nothing. Once the server is gone its pid may be reused, so only
 * the mark is trusted then.
 */
const killTree = (pid: number, exited: () => boolean, mark: string): void => {
  if (pid > 0 && !exited()) descendants(pid).forEach(killNow)
  for (const p of marked(mark)) killNow(p)
  if (pid > 1 && !exited()) {
    try {
      process.kill(-pid, 'SIGKILL')
    } catch {
      // the group is gone
    }
  }
}

export const launch = async (spec: ServerSpec, options: LaunchOptions = {}): Promise<Server> => {
  assertOpen()
  // Marks the server and, through the environment they inherit, everything it
  // forks: found again even once orphaned or in a session of its own.
  const id = randomUUID()
  const mark = `FORKSERVER_BENCH_SERVER=${id}`
  const proc = spawn(spec.command, spec.args, {
    // A process group of its own, which stop() can signal as a whole.
    detached: true,
    stdio: ['ignore', spec.portOnStdout ? 'pipe' : 'ignore', 'pipe'],
    env: { ...process.env, ...options.env, FORKSERVER_BENCH_SERVER: id },
  })
  const pid = proc.pid ?? -1
  const end = watchExit(proc)
  let onReady: ((port: number) => void) | null = null
  const lines = watchOutput(proc, spec, options, (port) => onReady?.(port))
  const tail = (): string => lines.join('\n')

  const killEverything = (): void => killTree(pid, end.exited, mark)

  let stopping: Promise<void> | null = null
  const stop = (): Promise<void> =>
    (stopping ??= (async () => {
      if (pid > 0 && !end.exited()) {
        // Let connection children finish and be reaped by the server itself.
        await waitUntil(() => descendants(pid).length <= spec.resident, 3000)
        proc.kill('SIGTERM')
        await waitUntil(end.exited, 5000)
      }
      killEverything()
      await waitUntil(() => end.exited() && marked(mark).every((p) => !running(p)), 3000)
      proc.stderr?.destroy()
      proc.stdout?.destroy()
      disown()
    })())
  const disown = own({ stop, killNow: killEverything })

  const limit = options.readyMs ?? 15_000
  return new Promise<Server>((resolve, reject) => {
    let failed = false
    const fail = (why: string): void => {
      if (failed) return
      failed = true
      clearTimeout(timer)
      void stop().then(() => reject(new Error(`${why}${lines.length ? `:\n${tail()}` : ''}`)))
    }
    const timer = setTimeout(() => fail(`not listening within ${limit} ms`), limit)
    onReady = (port) => {
      clearTimeout(timer)
      onReady = null
      resolve({ pid, port, tail, stop })
    }
    proc.once('error', (err) => fail(`${spec.command}: ${err.message}`))
    void end.gone.then(() => {
      // Let the last stderr lines arrive before saying why it ended.
      if (onReady) setTimeout(() => fail(`exited before listening (status ${proc.exitCode ?? proc.signalCode})`), 100)
    })
  })
}
