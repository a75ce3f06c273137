// The shape of bench/results/*.json: { machine, settings, results }.

export const MODELS = ['fork', 'prefork', 'node-single', 'python-forking', 'c-fork'] as const
export type ModelName = (typeof MODELS)[number]

/** A figure measured with the load generator, which watches its own CPU use. */
interface Driven {
  readonly errors: number
  /** Load generator CPU over the window, % of one core. */
  readonly loadgenCpuPct: number
  /** True when the load generator, not the server, was probably the limit. */
  readonly loadgenBound: boolean
  /** Present when there were errors: counts by code (ECONNRESET, timeout, ...). */
  readonly errorCodes?: Readonly<Record<string, number>>
}

export interface ConnRateResult extends Driven {
  readonly model: ModelName
  readonly scenario: 'connrate'
  readonly concurrency: number
  readonly connsPerSec: number
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** Connections completed in the window, and the window's length. */
  readonly connections: number
  readonly seconds: number
}

export interface ThroughputResult extends Driven {
  readonly model: ModelName
  readonly scenario: 'throughput'
  readonly connections: number
  /** Echoed bytes per second, MB = 10^6 bytes. */
  readonly mbPerSec: number
  readonly seconds: number
}

export interface MemoryResult {
  readonly model: ModelName
  readonly scenario: 'memory'
  /** Idle connections held open. */
  readonly connections: number
  /** PSS summed over the server's process tree, holding `connections`. */
  readonly pssMB: number
  /** The same with no connection. */
  readonly idlePssMB: number
  /** (pssMB - idlePssMB) / connections, in kB: what one more connection costs. */
  readonly perConnKB: number
  readonly processes: number
  readonly errors: number
}

export interface SpreadResult {
  readonly model: ModelName
  readonly scenario: 'spread'
  readonly workers: number
  readonly connections: number
  /** The smallest and largest worker's fraction of the connections. */
  readonly minShare: number
  readonly maxShare: number
  /** Connections per worker, largest first. */
  readonly perWorker: readonly number[]
}

export interface ForkCostResult {
  readonly model: 'fork'
  readonly scenario: 'forkcost'
  readonly samples: number
  /** child_process.fork of an empty child, to its exit. */
  readonly p50Ms: number
  readonly meanMs: number
  /** How long the fork() call itself blocks the calling event loop. */
  readonly blockP50Ms: number
  readonly blockMeanMs: number
}

export interface SkippedResult {
  readonly model: ModelName
  readonly scenario: 'skipped'
  readonly reason: string
}

/** A scenario that could not be measured for a model; the run then exits non-zero. */
export interface FailedResult {
  readonly model: ModelName
  readonly scenario: 'failed'
  readonly during: string
  readonly reason: string
}

export type Result =
  | ConnRateResult
  | ThroughputResult
  | MemoryResult
  | SpreadResult
  | ForkCostResult
  | SkippedResult
  | FailedResult

export interface Machine {
  readonly cpuCount: number
  readonly cpuModel: string
  readonly os: string
  readonly memoryMB: number
  readonly node: string
  /** null where the tool is missing. */
  readonly python: string | null
  readonly cc: string | null
  /** ISO 8601, when the run started. */
  readonly date: string
}

export interface Report {
  readonly machine: Machine
  readonly settings: Readonly<Record<string, unknown>>
  readonly results: readonly Result[]
}
