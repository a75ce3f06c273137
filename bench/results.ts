// The shape of bench/results/*.json: { machine, settings, results, targets }.
import type { Recorded } from './settings.js'

/**
 * The servers under test. `fork+spares` is the fork model with `--spares 8`;
 * `exec` runs `cat` per connection (`--exec -- cat`); the `(zygote)` rows are
 * the same under `--start zygote`, a real fork(2) of a warm process (they need
 * the native addon), and `fork (zygote)+spares` is the zygote with
 * `--spares 4`. The others run `--start spawn`. `node-fork` is their floor: a bare Node that forks per
 * connection with the same addon and nothing else of forkserver's.
 * `tcpserver+cat` is ucspi-tcp's tcpserver running cat.
 */
export const MODELS = [
  'fork',
  'fork+spares',
  'fork (zygote)',
  'fork (zygote)+spares',
  'node-fork',
  'exec',
  'exec (zygote)',
  'prefork',
  'node-single',
  'python-forking',
  'tcpserver+cat',
  'c-fork',
] as const
export type ModelName = (typeof MODELS)[number]

/** Not a server: a process that forks empty children in a loop, the fork model's ceiling. */
export type BareFork = 'bare-fork'

/** The processes whose start-up is timed (StartupResult). */
export const STARTUP_SUBJECTS = ['node-e0', 'empty-child', 'forkserver-child'] as const
export type StartupSubject = (typeof STARTUP_SUBJECTS)[number]

/** Whatever a skip or a failure can be about. */
export type Subject = ModelName | BareFork | StartupSubject

/**
 * A figure that could not be measured (no connection completed, no byte
 * echoed in the window) is null, never 0; the row's `reason` says why.
 */
export type Figure = number | null

interface Unmeasured {
  /** Present when a figure of the row is null: why it could not be measured. */
  readonly reason?: string
}

/** A figure measured with the load generator, which watches its own CPU use. */
interface Driven extends Unmeasured {
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
  readonly connsPerSec: Figure
  readonly p50Ms: Figure
  readonly p90Ms: Figure
  readonly p99Ms: Figure
  /** Connections completed in the window, and the window's length. */
  readonly connections: number
  readonly seconds: number
  /**
   * forkserver's fork models only (fork, fork+spares, the exec and zygote
   * rows): the server's parent process's own CPU time
   * (utime + stime from /proc/PID/stat, 10 ms ticks; its children not
   * included) over the window, divided by `connections`.
   */
  readonly parentCpuMsPerConn?: Figure
  /** fork+spares: the --spares it ran with. */
  readonly spares?: number
}

/**
 * model 'bare-fork': a process of its own (the load generator's) keeps
 * `concurrency` child_process.fork calls of an empty child in flight, as
 * forkserver forks (IPC channel, execArgv [], own session), and counts exits.
 * What the fork model could reach if forking were all it did.
 */
export interface BareForkResult {
  readonly model: BareFork
  readonly scenario: 'connrate'
  readonly concurrency: number
  /** Children that exited in the window, per second: forks/s, comparable with conn/s. */
  readonly connsPerSec: number
  /** From the fork() call to the child's exit: not an echo's latency. */
  readonly p50Ms: number
  readonly p90Ms: number
  readonly p99Ms: number
  /** Forks that failed, or children that exited with a status other than 0. */
  readonly errors: number
  readonly errorCodes?: Readonly<Record<string, number>>
  /** Children that exited in the window, and the window's length. */
  readonly connections: number
  readonly seconds: number
  /** The forking process's own CPU time (process.cpuUsage) over the window, per child. */
  readonly parentCpuMsPerFork: number
}

export interface ThroughputResult extends Driven {
  readonly model: ModelName
  readonly scenario: 'throughput'
  readonly connections: number
  /** Echoed bytes per second, MB = 10^6 bytes. */
  readonly mbPerSec: Figure
  readonly seconds: number
  /** fork+spares: the --spares it ran with. */
  readonly spares?: number
}

export interface MemoryResult extends Unmeasured {
  readonly model: ModelName
  readonly scenario: 'memory'
  /** Idle connections held open. */
  readonly connections: number
  /** PSS summed over the server's process tree, holding `connections`. */
  readonly pssMB: Figure
  /** The same with no connection. */
  readonly idlePssMB: Figure
  /** (pssMB - idlePssMB) / connections held, in kB: what one more connection costs. */
  readonly perConnKB: Figure
  /**
   * The mean PSS, in kB, of the processes that were not there with no
   * connection (a child per held connection, for the models that fork one);
   * absent where none appeared (prefork, node-single).
   */
  readonly perChildKB?: Figure
  /** How many processes perChildKB averages over. */
  readonly newProcesses?: number
  /** Processes counted: the parent, a child per connection, and for fork+spares its spares too. */
  readonly processes: number
  readonly errors: number
  /** fork+spares: the --spares it ran with. */
  readonly spares?: number
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

/**
 * The start-up of one process, sampled one at a time (p50 over `samples`):
 *   node-e0:          spawn(node, ['-e', '0']) to its exit; memory: a `node -e`
 *                     that stays alive, read once it has written a line;
 *   empty-child:      child_process.fork of a module that sends one IPC message
 *                     at once, to that message; memory read after it;
 *   forkserver-child: dist/child.js forked as server.ts forks it, with a real
 *                     accepted connection, to its `taken` message; memory read
 *                     while it serves the connection (after one echo).
 */
export interface StartupResult {
  readonly model: StartupSubject
  readonly scenario: 'startup'
  readonly samples: number
  /** p50 and p90 of the start time, ms. */
  readonly startMs: number
  readonly startP90Ms: number
  /** p50 of VmRSS (/proc/PID/status), and of Pss and Private_Clean + Private_Dirty (/proc/PID/smaps_rollup); MiB = 2^20 bytes. */
  readonly rssMiB: number
  readonly pssMiB: number
  readonly privateMiB: number
}

/**
 * What one connection costs (bench/cost.ts, bench/accounting.ts): a burst of
 * `connections` short connections, `concurrency` at a time in a closed loop,
 * from an idle server to an idle server (every child reaped), after a warm-up.
 * The growth of /proc/PID/stat's counters over the burst, per connection:
 *   parentCpuMs:  utime + stime of the process that accepts: forkserver's
 *                 parent, or a peer's one process;
 *   zygoteCpuMs:  the same of the zygote (--start zygote only);
 *   childCpuMs:   cutime + cstime of the process that forked and reaped the
 *                 children (the zygote, or the peer's process): all of the
 *                 children's CPU time, since every one was reaped;
 *   childMinorFaults, forkerMinorFaults: cminflt of that process (per
 *                 child), and its own minflt (copy-on-write after each fork).
 * The fork() call's own time comes from the fork-time lines the forking
 * process writes with FORKSERVER_FORK_TIMES set, one per fork.
 */
export interface CostResult extends Unmeasured {
  readonly model: ModelName
  readonly scenario: 'cost'
  readonly concurrency: number
  /** Connections in the burst that completed, and those that failed. */
  readonly connections: number
  readonly errors: number
  readonly errorCodes?: Readonly<Record<string, number>>
  readonly seconds: number
  /** The burst's rate, with the fork-time lines being written. */
  readonly connsPerSec: Figure
  readonly parentCpuMs: Figure
  /** fork (zygote) only. */
  readonly zygoteCpuMs?: Figure
  readonly childCpuMs: Figure
  readonly totalCpuMs: Figure
  readonly childMinorFaults: Figure
  readonly forkerMinorFaults: Figure
  /** Forks timed; the call's mean and p50 and fork(2)'s own mean, µs; each step's mean, µs, where the call has steps. */
  readonly forkSamples: number
  readonly forkCallUs: Figure
  readonly forkCallP50Us: Figure
  /** Absent where the call is not split (python's os.fork). */
  readonly fork2Us?: Figure
  readonly forkStepsUs?: Readonly<Record<string, number>>
  /** USER_HZ: the CPU times' resolution is one tick over the whole burst. */
  readonly clockTicksPerSecond: number
}

export interface SkippedResult {
  readonly model: Subject
  readonly scenario: 'skipped'
  readonly reason: string
}

/** A scenario that could not be measured for a model; the run then exits non-zero. */
export interface FailedResult {
  readonly model: Subject
  readonly scenario: 'failed'
  readonly during: string
  readonly reason: string
}

export type Result =
  | ConnRateResult
  | BareForkResult
  | StartupResult
  | ThroughputResult
  | MemoryResult
  | SpreadResult
  | ForkCostResult
  | CostResult
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

/**
 * One of the goals from the spares and zygote issues, checked against this
 * run: `met` is `measured <= limit` or `measured >= limit`, as `comparison`
 * says. When a figure it needs was not measured (a model skipped or failed),
 * `measured`, `limit` and `met` are null and `reason` says why. A
 * `comparison` of null is a figure printed beside the targets and never
 * judged: its `limit` and `met` are always null.
 */
export interface Target {
  /** Stable key, e.g. 'child-start'. */
  readonly id: string
  /** What is compared, in words: 'forkserver-child startMs ≤ 1.1 × empty-child startMs'. */
  readonly text: string
  readonly unit: string
  readonly comparison: '<=' | '>=' | null
  readonly measured: number | null
  readonly limit: number | null
  readonly met: boolean | null
  readonly reason?: string
}

export interface Report {
  readonly machine: Machine
  readonly settings: Recorded
  readonly results: readonly Result[]
  /** The targets, evaluated from `results` (bench/targets.ts). */
  readonly targets: readonly Target[]
}
