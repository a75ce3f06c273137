// The command line, and how long each measurement runs in a full or a quick run.
import { resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Settings {
  readonly quick: boolean
  readonly outDir: string
  readonly concurrencies: readonly number[]
  /** bare-fork: a quick run keeps only the concurrency the targets use (at 32 it needs over a second to its first exit). */
  readonly bareForkConcurrencies: readonly number[]
  readonly payloadBytes: number
  readonly connrate: { readonly warmupMs: number; readonly durationMs: number; readonly maxDurationMs: number; readonly minConnections: number }
  readonly throughput: { readonly connections: number; readonly chunkBytes: number; readonly warmupMs: number; readonly durationMs: number }
  readonly memoryLevels: readonly number[]
  readonly spread: { readonly concurrency: number; readonly durationMs: number }
  readonly forkSamples: number
  /** Start-up samples per subject (startup.ts), after `startupWarmups` rounds not counted. */
  readonly startupSamples: number
  readonly startupWarmups: number
  /** Per connection, connect to close; generous, since 32 forks at once on 2 cores take a while. */
  readonly timeoutMs: number
}

const RESULTS = fileURLToPath(new URL('../../bench/results/', import.meta.url))

const USAGE = 'usage: node dist/bench/bench.js [--quick] [--out DIR]'

export const parseSettings = (argv: readonly string[]): Settings => {
  let quick = false
  let outDir = RESULTS
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick') quick = true
    else if (arg === '--out' && argv[i + 1] !== undefined) outDir = resolve(argv[++i] ?? '')
    else throw new Error(`unknown argument ${JSON.stringify(arg)}\n${USAGE}`)
  }
  return {
    quick,
    outDir,
    concurrencies: [1, 8, 32],
    bareForkConcurrencies: quick ? [8] : [1, 8, 32],
    payloadBytes: 64,
    // The fork model needs about a second at concurrency 32 before its first
    // connection completes, so a quick window stretches until it holds a few.
    connrate: quick
      ? { warmupMs: 50, durationMs: 200, maxDurationMs: 5000, minConnections: 5 }
      : { warmupMs: 500, durationMs: 4000, maxDurationMs: 10_000, minConnections: 30 },
    throughput: { connections: 8, chunkBytes: 64 * 1024, warmupMs: quick ? 50 : 500, durationMs: quick ? 200 : 3000 },
    memoryLevels: [10, 40],
    spread: { concurrency: 8, durationMs: quick ? 300 : 2000 },
    forkSamples: quick ? 5 : 20,
    startupSamples: quick ? 5 : 20,
    startupWarmups: quick ? 0 : 1,
    timeoutMs: 10_000,
  }
}
