// child_process.fork of dist/child.js: how every process of the parent's
// begins, whatever it becomes (a child for one connection, a spare, a
// prefork worker, the zygote). It gives each what every child needs: its own
// session, so that Ctrl-C in a terminal (SIGINT to the whole foreground
// group) reaches only the parent, which drains; no loader flags of ours;
// stdin closed; and the --user/--group ids, switched to between fork and exec.
//
// A handler runs in its child and can call process.send, so the parent
// believes a message only from the role that may say it (`hear` decides);
// anything else is ignored, any descriptor sent with it closed, and one
// warning per child says so.
import { fork, type ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Credentials } from '../cli/credentials.js'
import type { Message } from '../protocol.js'
import { signalProcess } from '../serve/process-group.js'
import type { ChildEvents, Process } from './starter.js'

export const CHILD = fileURLToPath(new URL('../../child.js', import.meta.url))
/** A test-only fault: start children with this (possibly missing) program instead of node. */
const EXEC_PATH = process.env.FORKSERVER_TEST_EXECPATH ?? process.execPath

/** A process started here, as the parent holds it. */
export interface Spawned extends Process {
  /**
   * Sends a message, with a descriptor to pass on (SCM_RIGHTS); resolves with
   * the error, or null once it went. The parent's own copy stays open.
   */
  send(m: Message, handle?: object): Promise<Error | null>
}

export interface SpawnOptions {
  readonly credentials: Credentials | null
  /** Node's flags for it (a zygote's), and its environment; the parent's by default. */
  readonly execArgv?: readonly string[]
  readonly env?: NodeJS.ProcessEnv
  /** Whether its end is reported at 'exit' or, once every message it sent has been read, at 'close'. */
  readonly endAt?: 'exit' | 'close'
  /** What it says: true when that is believed from it now. */
  readonly hear: (m: unknown, handle: unknown) => boolean
  /** Its role, as a warning names it. */
  readonly role: () => string
  readonly warn: (text: string) => void
}

/** Starts a process; it never throws: one that cannot be started reports `error`, after this returns. */
export const spawnProcess = (events: ChildEvents, options: SpawnOptions): Spawned => {
  const { credentials, execArgv = [], env = process.env, endAt = 'exit' } = options
  let forked: ChildProcess
  try {
    forked = fork(CHILD, [], { execArgv: [...execArgv], execPath: EXEC_PATH, env, detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'], ...credentials })
  } catch (err) {
    // (Node throws for some failures and reports others as 'error': the parent hears one way.)
    process.nextTick(() => events.error(err instanceof Error ? err : new Error(String(err))))
    return { pid: undefined, send: async () => new Error('no child'), kill: () => {} }
  }
  register(forked)
  let pid: number | undefined
  let doubted = false
  forked.on('spawn', () => {
    pid = forked.pid
    events.running()
  })
  forked.on('message', (m: unknown, handle: unknown) => {
    if (options.hear(m, handle)) return
    release(handle) // (a descriptor sent with it would leak)
    if (doubted) return
    doubted = true
    const type = typeof m === 'object' && m !== null ? String((m as { type?: unknown }).type) : typeof m
    options.warn(`pid ${pid} (${options.role()}) sent a '${type}' message it may not send; ignoring it and any more it sends`)
  })
  forked.on(endAt, (code: number | null, signal: NodeJS.Signals | null) => events.exit(code, signal))
  forked.on('error', events.error)
  return {
    get pid() {
      return pid
    },
    // (Node never closes a sent raw handle; keepOpen says so for a net.Socket.)
    send: (m, handle) => new Promise((resolve) => void forked.send(m, handle as Parameters<ChildProcess['send']>[1], { keepOpen: true }, resolve)),
    kill(signal, group) {
      if (forked.pid === undefined || forked.exitCode !== null || forked.signalCode !== null) return
      signalProcess(forked.pid, signal, group)
    },
  }
}

/** Closes whatever handle came with a message that is not believed: a socket, a server, a raw handle. */
const release = (handle: unknown): void => {
  if (typeof handle !== 'object' || handle === null) return
  const { destroy, close } = handle as { destroy?: unknown; close?: unknown }
  if (typeof destroy === 'function') destroy.call(handle)
  else if (typeof close === 'function') close.call(handle)
}

/**
 * The pids of the processes started here that libuv has not yet reaped. It
 * waits for each of them by pid, so nothing else may: the parent's reaper of
 * what it adopts (lib/start/adopted.ts) leaves these alone.
 */
const started = new Set<number>()

/** True for a process child_process started here and has not yet reported gone ('exit'). */
export const startedHere = (pid: number): boolean => started.has(pid)

/** Keeps the pid of a process just started (it is known at once) until libuv has reaped it. */
const register = (forked: ChildProcess): void => {
  const { pid } = forked
  if (pid === undefined) return // (not started: 'error' says why)
  started.add(pid)
  forked.once('exit', () => started.delete(pid))
}
