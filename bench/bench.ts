// make bench: every model through every scenario in one run, on loopback.
// Markdown tables on stdout, progress on stderr, and latest.json, a dated copy
// and latest.svg in a folder git ignores: bench/results/quick for a quick run,
// bench/results/last for a full one (or --out DIR). Only --save, after a full
// run, replaces the committed bench/results/latest.json and latest.svg.
//   node dist/bench/bench.js [--quick | --save] [--out DIR]
import { randomUUID } from 'node:crypto'
import { availableParallelism } from 'node:os'
import { isClosing, killAllNow, stopAll } from './cleanup.js'
import { cost, COST_MODELS } from './cost.js'
import { forkCost } from './forkcost.js'
import { describeMachine } from './machine.js'
import { availableModels, type Model } from './models.js'
import { killNow, marked, running } from './proctree.js'
import { markdown, writeResults } from './report.js'
import type { Report, Result, Subject } from './results.js'
import { bareFork, connrate, LOADGEN_BOUND_PCT, memory, spread, throughput, type Emit, type Progress } from './scenarios.js'
import { parseSettings, quickLabel, type Settings } from './settings.js'
import { startup } from './startup.js'
import { targets } from './targets.js'

type Scenario = (model: Model, s: Settings, progress: Progress, emit: Emit) => Promise<void>

// Everything this run starts inherits the mark, so the last sweep finds it
// even if it escaped its server's own cleanup.
const RUN = randomUUID()
process.env.FORKSERVER_BENCH_RUN = RUN
const strays = (): number[] => marked(`FORKSERVER_BENCH_RUN=${RUN}`).filter(running)

const reasonOf = (err: unknown): string => (err instanceof Error ? err.message : String(err))

const main = async (): Promise<number> => {
  let settings: Settings
  try {
    settings = parseSettings(process.argv.slice(2))
  } catch (err) {
    // Bad input is expected: one line, no stack, and nothing has run.
    process.stderr.write(`bench: ${reasonOf(err)}\n`)
    return 2
  }
  const started = new Date()
  const cpus = availableParallelism()
  process.stderr.write(`bench: ${settings.quick ? 'quick' : 'full'} run; checking which models this machine has ...\n`)
  const availability = await availableModels(cpus)
  const models = availability.flatMap((a) => (a.ok ? [a.model] : []))
  const results: Result[] = []
  for (const a of availability) {
    if (a.ok) continue
    results.push({ model: a.name, scenario: 'skipped', reason: a.reason })
    process.stderr.write(`bench: skipping ${a.name}: ${a.reason}\n`)
  }
  const prefork = models.filter((m) => m.name === 'prefork')
  const costed = models.filter((m) => COST_MODELS.includes(m.name))

  // fork cost, start-up, bare-fork at each concurrency, then each model's scenarios.
  const steps =
    2 + settings.bareForkConcurrencies.length + models.length * (settings.concurrencies.length + 1 + settings.memoryLevels.length) + costed.length + prefork.length
  let step = 0
  const t0 = Date.now()
  const progress: Progress = (label) =>
    process.stderr.write(`[${++step}/${steps}] ${label} ... (${((Date.now() - t0) / 1000).toFixed(1)} s)\n`)
  const emit: Emit = (r) => results.push(r)
  const failed = (model: Subject, during: string, err: unknown): void => {
    process.stderr.write(`bench: ${model} ${during} failed: ${reasonOf(err)}\n`)
    emit({ model, scenario: 'failed', during, reason: reasonOf(err) })
  }

  progress('fork cost')
  try {
    emit(await forkCost(settings.forkSamples))
  } catch (err) {
    failed('fork', 'forkcost', err)
  }
  progress(`start-up, ${settings.startupSamples} samples each of node -e 0, an empty child and a forkserver child`)
  try {
    if (!isClosing()) (await startup(settings.startupSamples, settings.startupWarmups)).forEach(emit)
  } catch (err) {
    failed('forkserver-child', 'startup', err)
  }
  // Next to the fork model's connection rate, which it bounds.
  try {
    if (!isClosing()) await bareFork(settings, progress, emit)
  } catch (err) {
    failed('bare-fork', 'connrate', err)
  }
  // Scenario by scenario, so that the models of one table are measured close together.
  const plan: readonly (readonly [string, Scenario, readonly Model[]])[] = [
    ['connrate', connrate, models],
    ['cost', cost, costed],
    ['throughput', throughput, models],
    ['memory', memory, models],
    ['spread', spread, prefork],
  ]
  for (const [name, scenario, those] of plan) {
    for (const model of those) {
      if (isClosing()) break
      try {
        await scenario(model, settings, progress, emit)
      } catch (err) {
        failed(model.name, name, err)
      }
    }
  }

  // Interrupted: a partial run must not replace latest.json.
  if (isClosing()) return 1
  const { outDir, save, ...recorded } = settings
  const report: Report = {
    machine: describeMachine(started),
    settings: { ...recorded, loadgenBoundPct: LOADGEN_BOUND_PCT },
    results,
    targets: targets(results),
  }
  process.stdout.write(markdown(report))
  const paths = writeResults(outDir, report)
  process.stderr.write(`bench: wrote ${paths.join(', ')} after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`)
  const quick = quickLabel(settings)
  if (quick) process.stderr.write(`bench: ${quick}; the committed bench/results/latest.* are untouched\n`)
  else if (!save) process.stderr.write('bench: not saved; `make bench SAVE=1` runs again and replaces bench/results/latest.json and latest.svg\n')
  const left = strays()
  if (left.length > 0) {
    process.stderr.write(`bench: killing ${left.length} process(es) left behind: ${left.join(' ')}\n`)
    left.forEach(killNow)
    return 1
  }
  return results.some((r) => r.scenario === 'failed') ? 1 : 0
}

// Ctrl-C or SIGTERM: stop every server (they run in groups and sessions of
// their own, so the signal reached none of them). A second one: kill at once.
let stopping = false
const onSignal = (signal: NodeJS.Signals): void => {
  const status = signal === 'SIGINT' ? 130 : 143
  if (stopping) {
    killAllNow()
    process.exit(status)
  }
  stopping = true
  process.stderr.write(`bench: ${signal}, stopping every server ...\n`)
  void stopAll().finally(() => process.exit(status))
}
process.on('SIGINT', onSignal)
process.on('SIGTERM', onSignal)
process.on('exit', () => {
  killAllNow()
  strays().forEach(killNow)
})

main().then(
  (status) => {
    process.exitCode = status
  },
  async (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`)
    await stopAll()
    process.exitCode = 1
  },
)
