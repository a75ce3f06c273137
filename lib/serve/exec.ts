// --exec: a program serves the connection, as under tcpserver or inetd. It
// gets the socket as its stdin and stdout, and who is talking to whom in its
// environment (UCSPI's variables). This process only starts it and waits:
// it never reads the socket, and it closes its own copy once the program has one.
import assert from 'node:assert'
import { spawn, type ChildProcess } from 'node:child_process'
import { randomInt, randomUUID } from 'node:crypto'
import type { Socket } from 'node:net'
import { constants } from 'node:os'
import { warn } from './connection.js'
import { createLog, errorMessage } from '../log/log.js'
import type { ConnectionInfo, ServeSpec } from '../protocol.js'
import type { Trace } from '../log/trace.js'

/** How the program ended: its exit code, or the signal that killed it. */
export interface ProgramExit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** What a fork-model child passes on: the parent's drain and --max-lifetime send it SIGTERM. */
export const FORWARDED_SIGNALS: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT', 'SIGHUP']

/** The shell's statuses for a program that could not be started. */
export const NOT_FOUND = 127
export const NOT_EXECUTABLE = 126

/** The shell's status for a program killed by `signal`: 128 plus its number. */
export const killedStatus = (signal: NodeJS.Signals): number => 128 + constants.signals[signal]

/**
 * Variables that describe a connection: UCSPI's for TCP (and tcpserver6's
 * TCP6*) and for Unix sockets. Whatever of these came from our own
 * environment described some other connection, so all are replaced.
 */
const CONNECTION_VARIABLE = /^(?:PROTO|TCP6?(?:LOCAL|REMOTE)[A-Z]*|UNIX(?:LOCAL|REMOTE)[A-Z]*)$/
/** Socket activation's: they name our descriptors and our pid, not the program's. */
const ACTIVATION_VARIABLES = new Set(['LISTEN_FDS', 'LISTEN_PID', 'LISTEN_FDNAMES'])

/** The program's environment: `base`, as tcpserver keeps it, with this connection's variables. */
export const programEnv = (info: ConnectionInfo, base: NodeJS.ProcessEnv): NodeJS.ProcessEnv => {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(base)) {
    if (!CONNECTION_VARIABLE.test(key) && !ACTIVATION_VARIABLES.has(key)) env[key] = value
  }
  return info.protocol === 'TCP'
    ? {
        ...env,
        PROTO: 'TCP',
        TCPREMOTEIP: info.remoteAddress,
        TCPREMOTEPORT: String(info.remotePort),
        TCPLOCALIP: info.localAddress,
        TCPLOCALPORT: String(info.localPort),
      }
    : { ...env, PROTO: 'UNIX', UNIXLOCALPATH: info.localAddress }
}

/** The warning's text for a program that could not be started: how, and the system's reason. */
const notStartedText = (file: string, how: string, reason: string): string => `exec ${file}: ${how} (${reason})`

/** A start that failed, as the shell reports it: 127 when there is no such program, else 126. */
const notStarted = (spec: Pick<ServeSpec, 'logFormat'>, file: string, err: unknown): ProgramExit => {
  const code = (err as NodeJS.ErrnoException).code
  const how = code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'not executable' : 'cannot start'
  warn(spec, notStartedText(file, how, errorMessage(err)))
  return { code: code === 'ENOENT' ? NOT_FOUND : NOT_EXECUTABLE, signal: null }
}

/**
 * The same warning for a zygote's child, which execs the program itself
 * (lib/native/fork.c, execProgram): the line `warn` writes, in the log's
 * format, worked out before the fork and made a printf format whose %1$d is
 * the child's pid, %2$s how the exec failed and %3$s the system's reason. (A
 * JSON line's time is the fork's.) The three stand in as values that nothing
 * else in the line can be.
 */
export const notStartedFormat = (spec: Pick<ServeSpec, 'logFormat'>, file: string): string => {
  const [how, reason, pid] = [randomUUID(), randomUUID(), randomInt(1e9, 2 ** 31 - 1)]
  let line = ''
  createLog(spec.logFormat, true, (s) => (line = s))({ event: 'warning', message: notStartedText(file, how, reason), pid, child: true })
  return line.replaceAll('%', '%%').replace(String(pid), '%1$d').replace(how, '%2$s').replace(reason, '%3$s')
}

export interface RunOptions {
  /** Signals this process passes on to the program while it runs. */
  readonly forward?: readonly NodeJS.Signals[]
  /** When aborted, the program is killed (an orphan's deadline). */
  readonly stop?: AbortSignal
}

/**
 * Runs spec.exec on the connection and resolves once the program has
 * exited. `socket` must not be reading (pauseOnCreate, pauseOnConnect): what
 * the client sends is the program's to read. Never rejects: a program that
 * cannot be started gets a warning line, and the connection is closed.
 */
export const runProgram = (socket: Socket, info: ConnectionInfo, spec: ServeSpec, trace: Trace, options: RunOptions = {}): Promise<ProgramExit> =>
  new Promise((resolve) => {
    const [file, ...args] = spec.exec ?? []
    assert(file !== undefined, 'runProgram without spec.exec')
    let program: ChildProcess
    try {
      // No shell: the words after `--` are the program and its arguments as given.
      // As a stdio stream, the socket is duplicated into the program, and
      // Node stops reading it here (it was not reading anyway).
      program = spawn(file, args, { stdio: [socket, socket, 'inherit'], env: programEnv(info, process.env) })
    } catch (err) {
      // Arguments spawn refuses outright (a NUL byte in a word, say).
      socket.destroy()
      return resolve(notStarted(spec, file, err))
    }
    // The program holds its own copies now, as C's child does after fork:
    // close ours, so that the connection ends when the program does.
    socket.destroy()
    const { forward = [], stop } = options
    const passOn = (signal: NodeJS.Signals): void => void program.kill(signal)
    const kill = (): void => void program.kill('SIGKILL')
    const done = (result: ProgramExit): void => {
      for (const signal of forward) process.off(signal, passOn)
      stop?.removeEventListener('abort', kill)
      resolve(result)
    }
    program.on('error', (err) => {
      // Without a pid it never started, and no 'exit' follows; else a kill failed.
      if (program.pid === undefined) done(notStarted(spec, file, err))
      else trace('exec %s pid %d: %s', file, program.pid, err.message)
    })
    program.once('exit', (code, signal) => {
      trace('exec %s pid %d: %s', file, program.pid, signal ? `signal ${signal}` : `status ${code}`)
      done({ code, signal })
    })
    if (program.pid === undefined) return
    trace('exec %s pid %d for connection %d', file, program.pid, info.id)
    for (const signal of forward) process.on(signal, passOn)
    if (stop?.aborted) kill()
    else stop?.addEventListener('abort', kill, { once: true })
  })
