// Writing the log without ever blocking the parent.
//
// Node writes to a pipe synchronously. Once whoever reads stderr stops
// reading and the pipe fills, each log line would stop the parent's loop, and
// with it accepting, reaping and the signals. So when stderr is a pipe, the
// log goes through a second, non-blocking description of it (its own file
// flags: descriptor 2, which children inherit, stays blocking). A line the
// pipe has no room for waits in a bounded buffer and is tried again on a
// timer; once the buffer is full, lines are dropped and counted, and the log
// says so when it flows again. A line of at most PIPE_BUF (4096) bytes goes
// into the pipe whole or not at all, so it never mixes with a child's; a
// longer one may be split. A socket (systemd's journal; a Node parent's
// stdio 'pipe') has no second description to open, but send(2) can be told
// not to wait: the native addon does that, where it is built. A file or a
// terminal, or a socket without the addon, is written directly, as before.
import { constants, fstatSync, openSync, writeSync } from 'node:fs'
import { loadAddon } from '../native/addon.js'

/** Bytes of log that may wait for a full pipe (a pipe's own size); more is dropped and counted. */
export const LOG_BUFFER_BYTES = 64 * 1024
/** How often a full pipe is tried again. */
export const RETRY_MS = 50

/** A non-blocking description of `fd` when it is a pipe; else null (write `fd` itself). */
export const nonBlockingPipe = (fd: number): number | null => {
  try {
    if (!fstatSync(fd).isFIFO()) return null
    return openSync(`/proc/self/fd/${fd}`, constants.O_WRONLY | constants.O_NONBLOCK)
  } catch {
    return null // no /proc, or no reader left: write `fd` as it is
  }
}

/** How a line goes out: the bytes taken, or an error (EAGAIN: no room now). */
type Sink = (line: Buffer) => number

/** Where lines for `fd` go: a pipe's own non-blocking description, a socket's send(2) without waiting, or `fd` itself. */
export const sinkFor = (fd: number, addon = loadAddon): Sink => {
  const pipe = nonBlockingPipe(fd)
  if (pipe !== null) return (line) => writeSync(pipe, line)
  const socket = ((): boolean => {
    try {
      return fstatSync(fd).isSocket()
    } catch {
      return false
    }
  })()
  const sendNow = socket ? addon().addon?.sendNow : undefined
  if (sendNow !== undefined) return (line) => sendNow(fd, line)
  return (line) => writeSync(fd, line)
}

export class LogWriter {
  readonly #sink: Sink
  readonly #waiting: Buffer[] = []
  #waitingBytes = 0
  /** Lines dropped since the log last flowed, and in all. */
  #dropped = 0
  #lost = 0
  #timer: NodeJS.Timeout | null = null

  /** `resumed` is told how many lines were dropped, once the log flows again after dropping some. */
  constructor(
    fd = 2,
    private readonly resumed: (dropped: number) => void = () => {},
    private readonly limit = LOG_BUFFER_BYTES,
  ) {
    this.#sink = sinkFor(fd)
  }

  /** Lines dropped in all, because the log could not be written. */
  get lost(): number {
    return this.#lost
  }

  /** Bytes waiting to be written. */
  get waiting(): number {
    return this.#waitingBytes
  }

  /** Writes `text` now if it can, else keeps it for later, else drops it. Never blocks on a pipe. */
  readonly write = (text: string): void => {
    const line = Buffer.from(text)
    const rest = this.#waiting.length === 0 ? this.#send(line) : line
    if (rest === null) return
    if (rest.length < line.length || this.#waitingBytes + rest.length <= this.limit) this.#keep(rest) // (a split line is always finished)
    else {
      this.#dropped++
      this.#lost++
    }
    this.#retry()
  }

  /**
   * Writes what waits, trying until `deadline` (ms since the epoch), then
   * resolves, written or not: an exit must not wait for a reader.
   */
  async flush(deadline: number): Promise<void> {
    while (!this.#drain() && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_MS, deadline - Date.now())))
  }

  /** What of `line` is left to write; null when it is all written (or lost to an error that will not pass). */
  #send(line: Buffer): Buffer | null {
    try {
      const written = this.#sink(line)
      return written === line.length ? null : line.subarray(written)
    } catch (err) {
      // EAGAIN: the pipe is full. Else the reader or the terminal is gone: the line is lost, as it always was.
      return (err as NodeJS.ErrnoException).code === 'EAGAIN' ? line : null
    }
  }

  #keep(line: Buffer): void {
    this.#waiting.push(line)
    this.#waitingBytes += line.length
  }

  /** Writes what waits, in order; true once nothing does. */
  #drain(): boolean {
    for (let line; (line = this.#waiting[0]) !== undefined; ) {
      const rest = this.#send(line)
      if (rest !== null) {
        this.#waiting[0] = rest
        this.#waitingBytes -= line.length - rest.length
        return false
      }
      this.#waiting.shift()
      this.#waitingBytes -= line.length
    }
    if (this.#dropped > 0) {
      const dropped = this.#dropped
      this.#dropped = 0
      this.resumed(dropped)
    }
    return this.#waiting.length === 0
  }

  #retry(): void {
    if (this.#timer !== null) return
    // Unref'd: a full pipe must not keep a finished process alive (flush() bounds the last wait).
    this.#timer = setTimeout(() => {
      this.#timer = null
      if (!this.#drain()) this.#retry()
    }, RETRY_MS).unref()
  }
}
