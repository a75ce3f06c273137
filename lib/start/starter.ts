// How a child comes to be. The parent asks a starter for a child and gets
// back a handle: its pid once it runs, and a way to hand it its connection;
// the events it was given report its start and its exit. The parent never
// calls child_process itself, so a second way to make a child is a second
// starter, and the parent does not change:
//   spawn-starter.ts   child_process.fork: a fresh Node per connection;
//   zygote-starter.ts  a real fork(2), by the zygote, a warm process.
// choose-starter.ts picks one, by --start.
import type { Socket } from 'node:net'
import type { ConnectionInfo, ServeSpec } from '../protocol.js'
import type { Trace } from '../log/trace.js'

/** What a process does, as its starter reports it to the parent. */
export interface ChildEvents {
  /** It runs: its pid is known now. */
  readonly running: () => void
  /** It exited and was reaped: its status, or the signal that killed it. */
  readonly exit: (code: number | null, signal: NodeJS.Signals | null) => void
  /** It could not be started: no pid, and no exit, will follow. (Or a later fault, with the pid known.) */
  readonly error: (err: Error) => void
}

/** A process the parent started. */
export interface Process {
  /** Its process id, once it runs; undefined before that, and for good when it could not be started. */
  readonly pid: number | undefined
  /** Signals it, or with `group` its whole process group; nothing once it has exited. */
  kill(signal: NodeJS.Signals, group: boolean): void
}

/** A child that serves one connection. */
export interface Child extends Process {
  /**
   * Hands the child its connection. Resolves true once the child holds its
   * own copy of the socket (the parent may close its copy then), false when
   * the child is gone without it; rejects when the socket could not be sent.
   */
  serve(socket: Socket, info: ConnectionInfo): Promise<boolean>
  /** --spares: the child loads its service before its connection comes; resolves once it has. */
  readonly prepare?: () => Promise<void>
}

/** The warm process a zygote starter forks its children from. */
export interface Zygote extends Process {
  /** It forks no more, and exits once its children have. */
  stop(): void
}

/** What a zygote does, besides starting and exiting. */
export interface ZygoteEvents extends ChildEvents {
  /** It has loaded the service and proved that it can fork (its self-test took `selfTestMs`): children may come from it. */
  readonly ready: (selfTestMs: number) => void
  /** It cannot fork here, and says why; it exits. */
  readonly unfit: (reason: string) => void
  /**
   * Its address layout, shared by every child it forks, should serve no
   * more: why (a child's crash, its count of forks), and whether it is to
   * fork no more at once (a crash) or until a fresh one is ready.
   */
  readonly replace: (why: string, atOnce: boolean) => void
}

export interface Starter {
  /**
   * Starts a child. It never throws: a child that cannot be started reports
   * `error`. No event is reported before start() has returned.
   */
  start(events: ChildEvents): Child
  /** Starts a zygote, where this starter forks from one; the parent keeps one ready (lib/parent/supervisor.ts). */
  readonly startZygote?: (events: ZygoteEvents, generation: number) => Zygote
}

/** What a starter may need of the parent. */
export interface StarterParts {
  readonly spec: ServeSpec
  readonly warn: (text: string) => void
  readonly trace: Trace
}
