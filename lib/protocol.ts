// The IPC protocol between the parent (server.ts) and a child (child.ts).
// Every message that crosses the channel is one of these; no message literal
// is written anywhere else.

/** Where a connection comes from and where it arrived, as the parent saw it. */
export interface ConnectionInfo {
  /** Connection number in this server's life, starting at 1. */
  readonly id: number
  readonly remoteAddress: string
  readonly remotePort: number
  readonly localAddress: string
  readonly localPort: number
}

/** What the child must do with the socket: everything it needs, parsed once by the parent. */
export interface ServeSpec {
  /** A built-in service name, or null when `handler` is set. */
  readonly service: string | null
  /** Absolute path of a user handler module, or null. */
  readonly handler: string | null
  /** Seconds of silence before the child closes the connection; 0 = never. */
  readonly idleTimeout: number
}

/** parent → child, sent together with the socket handle. */
export interface ServeMessage {
  readonly type: 'serve'
  readonly info: ConnectionInfo
  readonly spec: ServeSpec
}

/** child → parent: "I hold a live socket"; only now may the parent close its copy. */
export interface TakenMessage {
  readonly type: 'taken'
}

/** Every message on the channel: parent → child `serve`, child → parent `taken`. */
export type Message = ServeMessage | TakenMessage

export const serveMessage = (info: ConnectionInfo, spec: ServeSpec): ServeMessage => ({
  type: 'serve',
  info,
  spec,
})

export const takenMessage = (): TakenMessage => ({ type: 'taken' })

const isObject = (m: unknown): m is Record<string, unknown> =>
  typeof m === 'object' && m !== null

export const isServeMessage = (m: unknown): m is ServeMessage =>
  isObject(m) && m.type === 'serve' && isObject(m.info) && isObject(m.spec)

export const isTakenMessage = (m: unknown): m is TakenMessage =>
  isObject(m) && m.type === 'taken'

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

/** Seconds an orphaned child may keep its connection when --idle-timeout is off. */
export const ORPHAN_DEADLINE_S = 60
