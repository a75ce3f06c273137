// make soak's server: forkserver with -v, in a process group of its own and
// marked in its environment, so that everything it starts can be found and
// stopped even when an error or a signal ends the soak; and what its -v lines
// say of the children it forked and reaped.
import { spawn, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { descendants, killNow, marked, running, waitUntil } from './proctree.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SERVER = join(ROOT, 'dist', 'server.js')
const READY_LIMIT_MS = 15_000
const IDLE_LIMIT_MS = 30_000
const TAIL_LINES = 30

export interface Watch {
  readonly pid: number
  port: number
  forked: number
  ended: number
  /** Exit statuses and signals of the children, `status 0` and so on. */
  readonly ends: Map<string, number>
  readonly warnings: string[]
  /** True once every child forked has ended and the last status line says the table is empty. */
  idle: boolean
  /** The last lines, to explain a failure. */
  readonly tail: string[]
  exited: boolean
  exitCode: number | null
  summary: string | null
}

export interface SoakServer {
  readonly watch: Watch
  /** Resolves once it listens; rejects if it exits first or takes too long. */
  readonly ready: Promise<void>
  /** SIGTERM to its group, SIGKILL if need be, then anything of it still marked. */
  stop(): Promise<void>
  /** The last resort, for the 'exit' handler: synchronous SIGKILLs. */
  killNow(): void
}

/** Reads one -v line into the watch. */
const hear = (watch: Watch, line: string, onReady: () => void): void => {
  watch.tail.push(line)
  if (watch.tail.length > TAIL_LINES) watch.tail.shift()
  let m: RegExpExecArray | null
  if ((m = /^listening on 127\.0\.0\.1:(\d+), pid \d+$/.exec(line))) {
    watch.port = Number(m[1])
    onReady()
  } else if (/^pid \d+ from /.test(line)) {
    watch.forked++
    watch.idle = false
  } else if ((m = /^end \d+ ((?:status|signal) \S+)$/.exec(line))) {
    watch.ended++
    watch.ends.set(m[1] ?? '?', (watch.ends.get(m[1] ?? '?') ?? 0) + 1)
    watch.idle = false
  } else if ((m = /^status: (\d+)\/\d+$/.exec(line))) {
    watch.idle = m[1] === '0' && watch.ended === watch.forked
  } else if (line.startsWith('warning: ')) {
    watch.warnings.push(line)
  } else if (line.startsWith('shutdown: ')) {
    watch.summary = line
  }
}

const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
  // Never 0 (our own group), 1 or -1 (everything we may signal).
  if (!Number.isSafeInteger(pid) || pid <= 1) return
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is gone
  }
}

/** The server's end, by 'exit' or by 'error' (it never started), recorded in the watch. */
const watchExit = (proc: ChildProcess, watch: Watch): Promise<void> =>
  new Promise((resolve) => {
    proc.once('exit', (code) => {
      watch.exitCode = code
      watch.exited = true
      resolve()
    })
    proc.once('error', () => {
      watch.exited = true
      resolve()
    })
  })

/** Resolves on the line that says it listens; rejects if it exits first or takes too long. */
const watchReady = (watch: Watch, gone: Promise<void>): { ready: Promise<void>; onReady: () => void } => {
  let onReady = (): void => undefined
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within ${READY_LIMIT_MS} ms:\n${watch.tail.join('\n')}`)), READY_LIMIT_MS)
    onReady = () => {
      clearTimeout(timer)
      resolve()
    }
    void gone.then(() => {
      clearTimeout(timer)
      reject(new Error(`the server exited before listening (status ${watch.exitCode}):\n${watch.tail.join('\n')}`))
    })
  })
  return { ready, onReady: () => onReady() }
}

/** SIGTERM to the group, SIGKILL 5 s later (children first, while the server may still reap them); then whatever carries the mark. */
const stopper = (watch: Watch, mark: string): (() => Promise<void>) => {
  let stopping: Promise<void> | null = null
  return () =>
    (stopping ??= (async () => {
      if (!watch.exited) {
        signalGroup(watch.pid, 'SIGTERM')
        if (!(await waitUntil(() => watch.exited, 5000))) {
          descendants(watch.pid).forEach(killNow)
          await waitUntil(() => descendants(watch.pid).every((p) => !running(p)), 1000)
          signalGroup(watch.pid, 'SIGKILL')
          await waitUntil(() => watch.exited, 3000)
        }
      }
      marked(mark).forEach(killNow)
      await waitUntil(() => marked(mark).length === 0, 3000)
    })())
}

/** Starts `node dist/server.js ...args`; `args` must include -v and --port 0. */
export const startServer = (args: readonly string[]): SoakServer => {
  const id = randomUUID()
  const mark = `FORKSERVER_SOAK_RUN=${id}`
  // Its children run in sessions of their own: the mark, which they inherit, finds them.
  const proc = spawn(process.execPath, [SERVER, ...args], { cwd: ROOT, detached: true, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, FORKSERVER_SOAK_RUN: id } })
  const watch: Watch = { pid: proc.pid ?? -1, port: 0, forked: 0, ended: 0, ends: new Map(), warnings: [], idle: false, tail: [], exited: false, exitCode: null, summary: null }
  const { ready, onReady } = watchReady(watch, watchExit(proc, watch))
  let partial = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) hear(watch, line, onReady)
  })
  const stop = stopper(watch, mark)
  const killEverything = (): void => {
    if (!watch.exited) {
      descendants(watch.pid).forEach(killNow)
      signalGroup(watch.pid, 'SIGKILL')
    }
    marked(mark).forEach(killNow)
  }
  return {
    watch,
    ready,
    stop: () => stop().finally(() => proc.stderr?.destroy()),
    killNow: killEverything,
  }
}

/** Until every child forked has ended and the table is empty, within IDLE_LIMIT_MS; throws if not. */
export const waitIdle = async (watch: Watch, what: string): Promise<void> => {
  if ((await waitUntil(() => watch.idle || watch.exited, IDLE_LIMIT_MS)) && !watch.exited) return
  throw new Error(
    `${what}: the server did not return to an empty table within ${IDLE_LIMIT_MS} ms ` + `(${watch.forked} forked, ${watch.ended} ended):\n${watch.tail.join('\n')}`,
  )
}
