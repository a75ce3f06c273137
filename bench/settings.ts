// The command line, where a run writes, and how long each measurement runs in
// a full or a quick run. Only `--save` writes the committed figures in
// bench/results: any other run writes to a folder that git ignores.
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface Settings {
  readonly quick: boolean
  /** --save: this run replaces the committed bench/results/latest.json and latest.svg. */
  readonly save: boolean
  readonly outDir: string
  readonly concurrencies: readonly number[]
  /** bare-fork: a quick run keeps only the concurrency the targets use (at 32 it needs over a second to its first exit). */
  readonly bareForkConcurrencies: readonly number[]
  readonly payloadBytes: number
  readonly connrate: { readonly warmupMs: number; readonly durationMs: number; readonly maxDurationMs: number; readonly minConnections: number }
  readonly throughput: { readonly connections: number; readonly chunkBytes: number; readonly warmupMs: number; readonly durationMs: number }
  readonly memoryLevels: readonly number[]
  /** The cost table's burst (bench/cost.ts): after `warmup` connections, `connections` more, `concurrency` at a time. */
  readonly cost: { readonly concurrency: number; readonly warmup: number; readonly connections: number }
  readonly spread: { readonly concurrency: number; readonly durationMs: number }
  readonly forkSamples: number
  /** Start-up samples per subject (startup.ts), after `startupWarmups` rounds not counted. */
  readonly startupSamples: number
  readonly startupWarmups: number
  /** Per connection, connect to close; generous, since 32 forks at once on 2 cores take a while. */
  readonly timeoutMs: number
}

/** What a report records of its settings: not where it was written. */
export type Recorded = Omit<Settings, 'save' | 'outDir'> & { readonly loadgenBoundPct: number }

// This module runs as dist/bench/settings.js, and as bench/settings.ts when the tests load it.
const ROOT = fileURLToPath(new URL(import.meta.url.endsWith('.ts') ? '..' : '../..', import.meta.url))
/** The committed figures: written only with --save. */
export const RESULTS = join(ROOT, 'bench', 'results')
/** Untracked (.gitignore): a quick run's output, and a full run's that was not saved. */
export const QUICK_DIR = join(RESULTS, 'quick')
export const LAST_DIR = join(RESULTS, 'last')

const USAGE = 'usage: node dist/bench/bench.js [--quick | --save] [--out DIR]'

/** A one-line message for the command line (no stack: bad input is expected). */
const usage = (problem: string): Error => new Error(`${problem} (${USAGE})`)

export const parseSettings = (argv: readonly string[]): Settings => {
  let quick = false
  let save = false
  let out: string | null = null
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]
    if (arg === '--quick') quick = true
    else if (arg === '--save') save = true
    else if (arg === '--out') {
      const dir = argv[++i]
      if (dir === undefined || dir === '') throw usage('--out needs a folder')
      out = resolve(dir)
    } else throw usage(`unknown argument ${JSON.stringify(arg)}`)
  }
  // Refused before anything runs: the committed figures must come from a full run.
  if (save && quick) throw usage('--save keeps a full run only: a quick run is never saved')
  if (save && out !== null) throw usage('--save writes bench/results; --out names another folder: give one of the two')
  return {
    quick,
    save,
    outDir: out ?? (save ? RESULTS : quick ? QUICK_DIR : LAST_DIR),
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
    cost: { concurrency: 8, warmup: quick ? 16 : 200, connections: quick ? 100 : 2000 },
    spread: { concurrency: 8, durationMs: quick ? 300 : 2000 },
    forkSamples: quick ? 5 : 20,
    startupSamples: quick ? 5 : 20,
    startupWarmups: quick ? 0 : 1,
    timeoutMs: 10_000,
  }
}

/** How a quick run's tables and chart are titled, so that none passes for a result; null for a full run. */
export const quickLabel = (settings: Pick<Settings, 'quick' | 'startupSamples'>): string | null =>
  settings.quick ? `QUICK run (${settings.startupSamples} samples): not a result` : null
