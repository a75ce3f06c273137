// What every part of the parent shares, made once at its start: the options,
// parsed once into a readonly object; what a child needs to serve; the log;
// the listener; the descriptors left; the native addon.
import type { Options } from '../cli/options.js'
import { createLog, type Log } from '../log/log.js'
import { LogWriter } from '../log/log-writer.js'
import type { Trace } from '../log/trace.js'
import { loadAddon, type Addon } from '../native/addon.js'
import { Descriptors } from '../net/descriptors.js'
import { Listening } from '../net/listen.js'
import type { ServeSpec } from '../protocol.js'

/** What every part of the parent shares. */
export interface Parent {
  readonly pid: number
  readonly options: Options
  /** What a child needs to serve a connection, parsed once here. */
  readonly spec: ServeSpec
  readonly log: Log
  /** Where the log goes: stderr, never blocking the loop (lib/log/log-writer.ts). */
  readonly logWriter: LogWriter
  readonly warn: (text: string) => void
  readonly trace: Trace
  readonly listening: Listening
  readonly descriptors: Descriptors
  /** The native addon (lib/native/), where it is built; null elsewhere. */
  readonly addon: Addon | null
}

export const parentOf = (options: Options, trace: Trace): Parent => {
  const { service, handler, exec, idleTimeout, logFormat } = options
  const pid = process.pid
  const warn = (text: string): void => log({ event: 'warning', message: text, pid })
  const logWriter = new LogWriter(2, (dropped) => warn(`stderr was not read: ${dropped} log lines dropped`))
  const log = createLog(logFormat, options.verbose, logWriter.write)
  const spec = { service, handler, exec, idleTimeout, logFormat }
  return { pid, options, spec, log, logWriter, warn, trace, listening: new Listening(options.endpoint), descriptors: new Descriptors(), addon: loadAddon().addon }
}
