// The IPC protocol between the parent (server.ts) and a child (child.ts).
// Every message that crosses the channel is one of these; no message literal
// is written anywhere else.

/** Where a connection comes from and where it arrived, as the parent saw it. */
export interface ConnectionInfo {
  /** Connection number in this server's life, starting at 1. */
  readonly id: number
  /**
   * TCP, or UNIX for a Unix-domain socket: then the addresses are empty
   * but for localAddress, the socket's path, and the ports are 0.
   */
  readonly protocol: 'TCP' | 'UNIX'
  readonly remoteAddress: string
  readonly remotePort: number
  readonly localAddress: string
  readonly localPort: number
  /** --proxy-protocol: the balancer the connection came through (`HOST:PORT`); the rest is the client's, from its header. */
  readonly via?: string
}

/** What the child must do with the socket: everything it needs, parsed once by the parent. */
export interface ServeSpec {
  /** A built-in service name, or null when `handler` is set. */
  readonly service: string | null
  /** Absolute path of a user handler module, or null. */
  readonly handler: string | null
  /** --exec: a program and its arguments, or null. */
  readonly exec: readonly string[] | null
  /** How the child writes its own log lines. */
  readonly logFormat: 'text' | 'json'
  /** Seconds of silence before the child closes the connection; 0 = never. */
  readonly idleTimeout: number
}

/** What a prefork worker needs besides: its own copy of the rules and limits. */
export interface WorkSpec extends ServeSpec {
  readonly allow: readonly string[]
  readonly deny: readonly string[]
  readonly verbose: boolean
  /** Connections a worker serves before it is replaced; 0 = never. */
  readonly maxConnsPerChild: number
  /** The listener's path when it is a Unix-domain socket (its peers have no address); null for TCP. */
  readonly unixPath: string | null
  /** --proxy-protocol: the trusted balancers (CIDR texts) and the header's time limit; null when off. */
  readonly proxy: { readonly from: readonly string[]; readonly timeoutS: number } | null
}

/** A prefork worker's counts so far, sent when the parent asks and as it exits. */
export interface Tally {
  readonly accepted: number
  readonly served: number
  readonly failed: number
  readonly denied: number
  /** Closed unserved before any service saw them: a PROXY header that was missing, bad or untrusted. */
  readonly dropped: number
}

/** True when `tally` is a worker's counts: a count is a whole number, not below 0. */
export const isTally = (tally: unknown): tally is Tally =>
  typeof tally === 'object' && tally !== null &&
  (['accepted', 'served', 'failed', 'denied', 'dropped'] as const).every((key) => Number.isSafeInteger((tally as Record<string, unknown>)[key]) && ((tally as Record<string, number>)[key] ?? -1) >= 0)

/**
 * Every message on the channel, one type each:
 *
 *   fork model                        prefork model
 *   parent → spare  prepare (--spares)
 *   parent → child  serve + socket    parent → worker  work + listening socket
 *   child → parent  taken             worker → parent  listener + listening socket (lend)
 *                                     worker → parent  ready
 *                                     parent → worker  report (SIGUSR1), stop
 *                                     worker → parent  tally (to report, and at exit)
 *
 *   fork model, --start zygote (lib/zygote/zygote.ts, lib/start/zygote-starter.ts)
 *   parent → zygote  zygote (load and warm up)    zygote → parent  ready, or unfit + why
 *   parent → zygote  fork + socket                zygote → parent  forked (the pid, or why not)
 *   parent → zygote  spare (--spares)             zygote → parent  forked (a child that waits)
 *   parent → zygote  hand + socket (to a spare)   zygote → parent  handed (or why not)
 *   parent → zygote  stop (after a reload)        zygote → parent  exited (a child's status)
 */
export type Message =
  | { readonly type: 'prepare'; readonly spec: ServeSpec }
  | { readonly type: 'serve'; readonly info: ConnectionInfo; readonly spec: ServeSpec }
  | { readonly type: 'taken' }
  | { readonly type: 'work'; readonly spec: WorkSpec; readonly lend: boolean }
  | { readonly type: 'listener' }
  | { readonly type: 'ready'; readonly selfTestMs?: number }
  | { readonly type: 'tally'; readonly tally: Tally }
  | { readonly type: 'report' }
  | { readonly type: 'stop' }
  | { readonly type: 'zygote'; readonly spec: ServeSpec; readonly generation: number }
  | { readonly type: 'unfit'; readonly reason: string }
  | { readonly type: 'fork'; readonly id: number; readonly info: ConnectionInfo; readonly spec: ServeSpec }
  | { readonly type: 'forked'; readonly id: number; readonly pid: number | null; readonly error: string | null }
  | { readonly type: 'spare'; readonly id: number; readonly spec: ServeSpec }
  | { readonly type: 'hand'; readonly id: number; readonly info: ConnectionInfo }
  | { readonly type: 'handed'; readonly id: number; readonly error: string | null }
  | { readonly type: 'exited'; readonly pid: number; readonly code: number | null; readonly signal: NodeJS.Signals | null }

export type MessageOf<T extends Message['type']> = Extract<Message, { readonly type: T }>

/** Builds a message; the one place message literals are written. */
export const message = <T extends Message['type']>(type: T, body: Omit<MessageOf<T>, 'type'>): MessageOf<T> =>
  ({ type, ...body }) as MessageOf<T>

/** True when `m`, as it came off the channel, is a message of that type. */
export const isMessage = <T extends Message['type']>(m: unknown, type: T): m is MessageOf<T> =>
  typeof m === 'object' && m !== null && (m as { type?: unknown }).type === type

/**
 * A child's exit status says how its one connection ended. The parent logs
 * it in the `end P status S` line; anything but OK counts as failed.
 */
export const ExitStatus = {
  /** The connection was served and closed normally. */
  OK: 0,
  /** The service or handler failed, or the socket errored (e.g. a reset). */
  FAILED: 1,
  /** The connection was silent for --idle-timeout seconds and was closed. */
  IDLE: 2,
  /** The peer was gone before the child got the socket. */
  PEER_GONE: 3,
  /** No socket arrived (timeout, or the parent went away first). */
  NO_SOCKET: 4,
  /** The parent died, and the connection outlived the orphan deadline. */
  ORPHANED: 5,
} as const

export type ExitStatus = (typeof ExitStatus)[keyof typeof ExitStatus]

/** Seconds a fresh child waits for its socket before it gives up. */
export const HANDOFF_TIMEOUT_S = 10
