// The messages between the orchestrator and a load generator process: one job
// at a time, one reply per job.

/** Short connections: connect, send the payload, read it back, close. */
export interface ConnRateJob {
  readonly kind: 'connrate'
  readonly port: number
  readonly concurrency: number
  readonly payloadBytes: number
  readonly warmupMs: number
  readonly durationMs: number
  /** The window is stretched, up to this long, until it holds `minConnections`. */
  readonly maxDurationMs: number
  readonly minConnections: number
  /** Per connection, from connect to close. */
  readonly timeoutMs: number
  /** A process (the server's parent) whose own CPU time over the window goes into the reply. */
  readonly watchPid?: number
}

/**
 * Exactly `total` short connections, `concurrency` at a time, as ConnRateJob
 * makes them, with no window: the reply comes once every one has ended. The
 * cost table reads the server's counters on either side of it.
 */
export interface CountJob {
  readonly kind: 'count'
  readonly port: number
  readonly total: number
  readonly concurrency: number
  readonly payloadBytes: number
  readonly timeoutMs: number
}

/**
 * No server: keep `concurrency` child_process.fork calls of an empty child in
 * flight, as forkserver forks, and count their exits. The window is as in
 * ConnRateJob; children still running when it ends are killed.
 */
export interface BareForkJob {
  readonly kind: 'barefork'
  /** The empty module to fork (dist/bench/empty-child.js). */
  readonly module: string
  readonly concurrency: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly maxDurationMs: number
  readonly minConnections: number
  /** Per child, from fork to exit. */
  readonly timeoutMs: number
}

/** Long connections that stream data and read the echo. */
export interface ThroughputJob {
  readonly kind: 'throughput'
  readonly port: number
  readonly connections: number
  readonly chunkBytes: number
  readonly warmupMs: number
  readonly durationMs: number
  readonly timeoutMs: number
}

/** Open idle connections, each proven served by one echo, until `total` are held. */
export interface HoldJob {
  readonly kind: 'hold'
  readonly port: number
  readonly total: number
  readonly timeoutMs: number
}

export type Job = ConnRateJob | CountJob | ThroughputJob | HoldJob | BareForkJob

interface Measured {
  readonly seconds: number
  /** The load generator's own CPU time over the window, as a % of one core. */
  readonly cpuPct: number
  readonly errors: number
  /** Errors by code (ECONNRESET, timeout, ...), so a failing model says why. */
  readonly errorCodes: Readonly<Record<string, number>>
}

export interface ConnRateReply extends Measured {
  readonly kind: 'connrate'
  readonly connections: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** The watched process's own CPU time over the window, ms (10 ms resolution); null if not asked or it went away. */
  readonly watchedCpuMs: number | null
}

export interface CountReply extends Measured {
  readonly kind: 'count'
  /** Connections that completed with the full echo. */
  readonly connections: number
  readonly p50Ms: number
}

export interface BareForkReply extends Measured {
  readonly kind: 'barefork'
  /** Children that exited (with status 0) in the window. */
  readonly forks: number
  /** This process's CPU time over the window, ms. */
  readonly cpuMs: number
  /** Fork to exit. */
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
}

export interface ThroughputReply extends Measured {
  readonly kind: 'throughput'
  readonly bytes: number
}

export interface HoldReply {
  readonly kind: 'hold'
  readonly held: number
  readonly errors: number
}

export interface FailedReply {
  readonly kind: 'failed'
  readonly message: string
}

export type Reply = ConnRateReply | CountReply | ThroughputReply | HoldReply | BareForkReply | FailedReply

export type ReplyTo<J extends Job> = Extract<Reply, { kind: J['kind'] }>

const JOBS: readonly string[] = ['connrate', 'count', 'throughput', 'hold', 'barefork']
const REPLIES: readonly string[] = [...JOBS, 'failed']

const kindIn = (kinds: readonly string[], value: unknown): boolean =>
  typeof value === 'object' && value !== null && 'kind' in value && kinds.includes(String(value.kind))

// Both sides are this project's code; the checks only guard against a stray message.
export const isJob = (value: unknown): value is Job => kindIn(JOBS, value)
export const isReply = (value: unknown): value is Reply => kindIn(REPLIES, value)
