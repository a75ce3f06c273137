// How a child comes to be. The loop in server.ts asks a starter for a child
// and gets back a handle: its pid, a way to send it a message and a socket,
// and, through the events it was given, the child's messages and its exit.
// The loop never calls child_process itself, so a second way to make a child
// (a real fork(2) from a warm process, say) is a second starter, and the loop
// does not change.
//
// The one starter today is child_process.fork: fork+exec of a fresh Node
// running child.js (docs/accept-fork.md says what that costs).
import { fork, type SendHandle } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { Credentials } from '../cli/credentials.js'
import type { Options } from '../cli/options.js'
import type { Message, ServeSpec } from '../protocol.js'
import { signalProcess } from '../serve/process-group.js'
import type { Trace } from '../log/trace.js'

/** What a child does, as its starter reports it to the parent. */
export interface ChildEvents {
  /** It runs: its pid is known now. */
  readonly spawn: () => void
  /** It sent a message, with the descriptor that came with it, if any. */
  readonly message: (m: unknown, handle: unknown) => void
  /** It exited and was reaped: its status, or the signal that killed it. */
  readonly exit: (code: number | null, signal: NodeJS.Signals | null) => void
  /** It could not be started: no pid, and no exit, will follow. (Or a later fault, with the pid known.) */
  readonly error: (err: Error) => void
}

/** A child, as the parent holds it. */
export interface Child {
  /** Its process id, once it runs; undefined before that, and for good when it could not be started. */
  readonly pid: number | undefined
  /**
   * Sends a message, with a descriptor to pass on (SCM_RIGHTS); `done` hears
   * whether it went. The parent's own copy of the descriptor stays open.
   */
  send(m: Message, handle: SendHandle | undefined, done: (err: Error | null) => void): void
  /** Signals the child, or with `group` its whole process group; nothing once it has exited. */
  kill(signal: NodeJS.Signals, group: boolean): void
}

export interface Starter {
  /**
   * Starts a child. It never throws: a child that cannot be started reports
   * `error`. No event is reported before start() has returned.
   */
  start(events: ChildEvents): Child
  /** Gets ready to start children, before the server listens; rejects with why it cannot. */
  open?(): Promise<void>
  /** SIGHUP: what the starter holds loaded is loaded again. */
  reload?(): void
  /** Shutdown: nothing more to prepare. */
  stop?(): void
}

/** What a starter may need of the parent. */
export interface StarterParts {
  readonly spec: ServeSpec
  readonly warn: (text: string) => void
  readonly trace: Trace
}

export const CHILD = fileURLToPath(new URL('../../child.js', import.meta.url))
/** A test-only fault: fork children with this (possibly missing) program instead of node. */
export const EXEC_PATH = process.env.FORKSERVER_TEST_EXECPATH ?? process.execPath

// child_process.fork, with what every child needs: its own session, so that
// Ctrl-C in a terminal (SIGINT to the whole foreground group) reaches only
// the parent, which drains; no loader flags of ours; stdin closed; and the
// --user/--group ids, switched to between fork and exec.
export const spawnStarter = (credentials: Credentials | null): Starter => ({
  start(events) {
    let child
    try {
      child = fork(CHILD, [], { execArgv: [], execPath: EXEC_PATH, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...credentials })
    } catch (err) {
      // (Node throws for some failures and reports others as 'error': the parent hears one way.)
      process.nextTick(() => events.error(err instanceof Error ? err : new Error(String(err))))
      return { pid: undefined, send: (_m, _h, done) => done(new Error('no child')), kill: () => {} }
    }
    const forked = child
    let pid: number | undefined
    forked.on('spawn', () => {
      pid = forked.pid
      events.spawn()
    })
    forked.on('message', events.message)
    forked.on('exit', events.exit)
    forked.on('error', events.error)
    return {
      get pid() {
        return pid
      },
      // (Node never closes a sent raw handle; keepOpen says so for a net.Socket.)
      send: (m, handle, done) => void forked.send(m, handle, { keepOpen: true }, done),
      kill(signal, group) {
        if (forked.pid === undefined || forked.exitCode !== null || forked.signalCode !== null) return
        signalProcess(forked.pid, signal, group)
      },
    }
  },
})

/**
 * How this server makes its children: `--start spawn` (child_process.fork)
 * or `--start zygote` (lib/zygote-starter.ts), as a factory the parent calls
 * with what a starter needs of it. Tests may name a module in
 * FORKSERVER_TEST_STARTER whose default export wraps the real starter, to
 * show that the loop works with any starter (test/fixtures/starters/).
 */
export const chooseStarter = async (options: Pick<Options, 'start' | 'credentials'>): Promise<(parts: StarterParts) => Starter> => {
  let make = (_parts: StarterParts): Starter => spawnStarter(options.credentials)
  if (options.start === 'zygote') {
    const { ZygoteStarter } = await import('./zygote-starter.js')
    const { loadAddon } = await import('../native/addon.js')
    const { addon, reason } = loadAddon()
    if (addon === null) throw new Error(`--start zygote is unavailable: ${reason}`)
    make = (parts) => new ZygoteStarter(addon, options.credentials, parts)
  }
  const test = process.env.FORKSERVER_TEST_STARTER
  if (test === undefined) return make
  const module = (await import(pathToFileURL(test).href)) as { default: (starter: Starter) => Starter }
  return (parts) => module.default(make(parts))
}
