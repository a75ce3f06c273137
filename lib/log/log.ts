// The log, on stderr, in one of two formats.
//
// text (the default): one fixed shape per line. People grep these, as they
// grep tcpserver's, so the shapes do not change:
//
//   listening on HOST:PORT, pid P always, once listening (unix:PATH for --path)
//   status: N/MAX                 -v, whenever the number of children changes
//   pid P from PEER               -v, when a child is given a connection
//   end P status S                -v, when a child exits
//   end P signal SIG              -v, when a child is killed
//   deny PEER                     -v, when --allow/--deny turns a peer away
//   SIGNAL: draining ...          always, at shutdown
//   reload: SIGHUP, replacing ... always, when SIGHUP replaces spares and workers
//   zygote P replaced: REASON; ... always, when a fresh zygote replaces one (a child's crash, --zygote-max-forks)
//   shutdown: served N, ...       always, last (`dropped D (queue full Q)` when Q > 0)
//   warning: the log was blocked ...   always, when stderr is read again after lines were dropped
//   warning: dropping connection, REASON: PEER    always
//   warning: MESSAGE              always
//   fatal: MESSAGE                always, then a non-zero exit
//
// json (--log-format json): one JSON object per line for every event,
// whatever -v says, each with the time and the event's name first.

import { logStream } from './terminal.js'

export type LogFormat = 'text' | 'json'

/** A child's state, as the fork event and the status table show it. */
export type ChildState = 'spare' | 'busy' | 'worker'

/** A row of the status table: `retiring` is an old spare, worker or zygote a reload is replacing. */
export type RowState = ChildState | 'zygote' | 'retiring'

/** What a zygote is doing, as its lifecycle lines say it. */
export type ZygoteState = 'starting' | 'ready' | 'retiring' | 'exited'

export interface Counters {
  readonly accepted: number
  readonly served: number
  readonly denied: number
  readonly dropped: number
  /** Of the dropped, those turned away because the queue was full. */
  readonly queueFull: number
  readonly failed: number
  readonly peak: number
}

export interface ChildRow {
  readonly pid: number | undefined
  readonly state: RowState
  /** The connection a busy child serves. */
  readonly conn: number | null
  readonly peer: string | null
  readonly ageMs: number
}

/** Every event, with the fields its JSON line carries. Times are milliseconds since accept. */
export type LogEvent =
  | { readonly event: 'listening'; readonly address: string; readonly pid: number }
  | { readonly event: 'accept'; readonly conn: number; readonly peer: string; readonly pid: number }
  | { readonly event: 'fork'; readonly pid: number | undefined; readonly state: ChildState; readonly conn: number | null }
  /** Text only (`pid P from PEER`, as the child is given the socket); JSON has accept and handoff. */
  | { readonly event: 'from'; readonly pid: number | undefined; readonly peer: string }
  | { readonly event: 'handoff'; readonly conn: number; readonly pid: number | undefined; readonly peer: string; readonly handoffMs: number }
  | {
      readonly event: 'end'
      readonly conn: number | null
      readonly pid: number | undefined
      readonly peer: string | null
      readonly handoffMs: number | null
      readonly endMs: number | null
      readonly code: number | null
      readonly signal: string | null
    }
  | { readonly event: 'deny'; readonly conn: number; readonly peer: string; readonly pid: number }
  | { readonly event: 'drop'; readonly conn: number | null; readonly peer: string; readonly reason: string; readonly pid: number }
  /** On every change of the number of children (`status: N/MAX`), or the SIGUSR1 table with the counters. */
  | { readonly event: 'status'; readonly trigger: 'change'; readonly live: number; readonly max: number }
  | {
      readonly event: 'status'
      readonly trigger: 'SIGUSR1'
      readonly live: number
      readonly max: number
      readonly counters: Counters
      readonly children: readonly ChildRow[]
    }
  | { readonly event: 'drain'; readonly signal: string; readonly live: number; readonly graceS: number }
  /** SIGHUP: how many spares and workers are being replaced, and which zygote (null: none). */
  | { readonly event: 'reload'; readonly signal: string; readonly spares: number; readonly workers: number; readonly zygote: number | null; readonly pid: number }
  /** --start auto serves by spawn, and why (no addon, an unfit zygote). */
  | { readonly event: 'start'; readonly start: 'spawn'; readonly reason: string; readonly pid: number }
  /**
   * A zygote's life: starting (no pid yet), ready (`selfTestMs`), retiring
   * (`by`: the zygote that serves in its place), exited (`code`, `signal`).
   */
  | {
      readonly event: 'zygote'
      readonly state: ZygoteState
      readonly pid: number | null
      readonly generation: number
      readonly selfTestMs?: number
      readonly by?: number | null
      readonly code?: number | null
      readonly signal?: string | null
    }
  /** A zygote replaced by a fresh one (a new exec, a new address layout), and why. */
  | { readonly event: 'replace'; readonly pid: number | undefined; readonly reason: string }
  /** `logDropped`: log lines lost because stderr was not read (lib/log/log-writer.ts). */
  | { readonly event: 'shutdown'; readonly counters: Counters; readonly code: number; readonly logDropped: number }
  /** `child`: written by a child about its connection (text: `warning: pid P: ...`). */
  | { readonly event: 'warning'; readonly message: string; readonly pid: number; readonly child?: true }
  | { readonly event: 'fatal'; readonly message: string; readonly pid: number }

export type Log = (event: LogEvent) => void

const LIMIT = 200

/** How a character that may not go into a text line is written instead. */
const ESCAPES: Readonly<Record<string, string>> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' }
const escape = (c: string): string => {
  const code = c.codePointAt(0)!
  return ESCAPES[c] ?? (code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u{${code.toString(16)}}`)
}

/**
 * Text from outside (a peer, a path, a child, an error) is cleaned before it
 * goes into a text line: anything but printable ASCII is escaped (a newline
 * as `\\n`), and long text is cut, so that it can neither forge log lines
 * nor flood the log.
 */
export const sanitize = (text: string, limit = LIMIT): string => {
  const clean = text.replace(/[^\x20-\x7e]/gu, escape)
  return clean.length > limit ? `${clean.slice(0, limit)}...` : clean
}

/** The event with each of its strings cleaned: the text format's one pass over every field. */
const cleaned = (e: LogEvent): LogEvent =>
  Object.fromEntries(Object.entries(e).map(([key, value]) => [key, typeof value === 'string' ? sanitize(value) : value])) as LogEvent

/** The message of anything thrown. */
export const errorMessage = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/** A signal name or status, as the `end` line prints it. */
export const endLine = (pid: number | undefined, code: number | null, signal: string | null): string =>
  signal ? `end ${pid ?? '?'} signal ${signal}` : `end ${pid ?? '?'} status ${code ?? '?'}`

const plural = (n: number, noun: string): string => `${n} ${noun}${n === 1 ? '' : 's'}`

const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)}s`

const counterText = (c: Counters): string =>
  `accepted ${c.accepted}, served ${c.served}, denied ${c.denied}, dropped ${c.dropped}, failed ${c.failed}, peak ${c.peak}`

/** A zygote's lifecycle line: `zygote 123 ready: generation 2, self-test 41 ms`. */
const zygoteLine = (e: Extract<LogEvent, { event: 'zygote' }>): string => {
  const who = `zygote ${e.pid ?? ''}`.trimEnd()
  switch (e.state) {
    case 'starting': return `zygote starting: generation ${e.generation}`
    case 'ready': return `${who} ready: generation ${e.generation}, self-test ${e.selfTestMs ?? '?'} ms`
    case 'retiring': return `${who} retiring: generation ${e.generation}, ${(e.by ?? null) === null ? 'forking no more' : `zygote ${e.by} serves in its place`}`
    case 'exited': return `${who} exited (${e.signal ?? `status ${e.code ?? '?'}`})`
  }
}

/** The SIGUSR1 table: a status line with the counters, then a row per child. */
const table = (live: number, max: number, counters: Counters, children: readonly ChildRow[]): string => {
  const rows = [['PID', 'STATE', 'AGE', 'CONN', 'PEER'], ...children.map((c) =>
    [String(c.pid ?? '?'), c.state, seconds(c.ageMs), c.conn === null ? '-' : String(c.conn), c.peer === null ? '-' : sanitize(c.peer)])]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  const lines = rows.map((row) => `  ${row.map((cell, i) => cell.padEnd(widths[i]!)).join('  ').trimEnd()}`)
  return [`status: ${live}/${max} children, ${counterText(counters)}`, ...lines].join('\n')
}

/** How an event reads in the text format, and whether only -v shows it; null: not in text. */
const text = (e: LogEvent): readonly [string, 'always' | 'verbose'] | null => {
  switch (e.event) {
    case 'listening': return [`listening on ${e.address}, pid ${e.pid}`, 'always']
    case 'status':
      return e.trigger === 'SIGUSR1' ? [table(e.live, e.max, e.counters, e.children), 'always'] : [`status: ${e.live}/${e.max}`, 'verbose']
    case 'from': return [`pid ${e.pid ?? '?'} from ${e.peer}`, 'verbose']
    case 'end': return [endLine(e.pid, e.code, e.signal), 'verbose']
    case 'deny': return [`deny ${e.peer}`, 'verbose']
    case 'drop': return [`warning: dropping connection, ${e.reason}: ${e.peer}`, 'always']
    case 'drain': return [`${e.signal}: draining ${e.live} children, ${e.graceS}s grace`, 'always']
    case 'reload': return [`reload: ${e.signal}, replacing ${e.zygote === null ? '' : `zygote ${e.zygote}, `}${plural(e.spares, 'spare')} and ${plural(e.workers, 'worker')}`, 'always']
    // (The first zygote's start is the server's own: -v shows it, as it shows the first status line.)
    case 'zygote': return [zygoteLine(e), e.generation === 1 && (e.state === 'starting' || e.state === 'ready') ? 'verbose' : 'always']
    case 'start': return [`start: spawn, not the zygote: ${e.reason}`, 'always']
    case 'replace': return [`zygote ${e.pid ?? '?'} replaced: ${e.reason}; a fresh zygote gets a new address layout`, 'always']
    case 'shutdown': {
      const c = e.counters
      const full = c.queueFull > 0 ? ` (queue full ${c.queueFull})` : ''
      const lost = e.logDropped > 0 ? `, log lines dropped ${e.logDropped}` : ''
      return [`shutdown: served ${c.served}, peak ${c.peak}, failed ${c.failed}, denied ${c.denied}, dropped ${c.dropped}${full}${lost}`, 'always']
    }
    case 'warning': return [`warning: ${e.child ? `pid ${e.pid}: ` : ''}${e.message}`, 'always']
    case 'fatal': return [`fatal: ${e.message}`, 'always']
    default: return null // accept, fork, handoff: JSON only
  }
}

/**
 * A log that writes each event in `format`: every event as JSON, or the text
 * lines, those marked verbose only with -v. Each is written with one call, so
 * that lines from the parent and its children do not interleave.
 */
export const createLog = (format: LogFormat, verbose: boolean, write: (s: string) => void = (s) => logStream().write(s)): Log =>
  format === 'json'
    ? (e) => e.event !== 'from' && write(`${JSON.stringify({ time: new Date().toISOString(), ...e })}\n`)
    : (e) => {
        const line = text(cleaned(e))
        if (line !== null && (line[1] === 'always' || verbose)) write(`${line[0]}\n`)
      }
