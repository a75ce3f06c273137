// The goals set by the spares issue, checked against one run's results. A
// missed target is reported, not an error: the run still succeeds.
import type { BareForkResult, ConnRateResult, ModelName, Result, StartupResult, StartupSubject, Subject, Target } from './results.js'
import { round } from './stats.js'

const connrateOf = (results: readonly Result[], model: ModelName, concurrency: number): ConnRateResult | undefined =>
  results.find((r): r is ConnRateResult => r.scenario === 'connrate' && r.model === model && r.concurrency === concurrency)

const bareForkOf = (results: readonly Result[], concurrency: number): BareForkResult | undefined =>
  results.find((r): r is BareForkResult => r.scenario === 'connrate' && r.model === 'bare-fork' && r.concurrency === concurrency)

const startupOf = (results: readonly Result[], subject: StartupSubject): StartupResult | undefined =>
  results.find((r): r is StartupResult => r.scenario === 'startup' && r.model === subject)

/** Why a figure of `subjects` is missing: their skip or failure, if the run recorded one. */
const whyMissing = (results: readonly Result[], subjects: readonly Subject[]): string => {
  const reasons = results.flatMap((r) =>
    (r.scenario === 'skipped' || r.scenario === 'failed') && subjects.includes(r.model)
      ? [`${r.model} ${r.scenario === 'failed' ? `failed during ${r.during}` : 'skipped'}: ${r.reason.split('\n')[0]}`]
      : [],
  )
  return reasons.length > 0 ? reasons.join('; ') : `not measured: ${subjects.join(', ')}`
}

interface Goal {
  readonly id: string
  readonly text: string
  readonly unit: string
  readonly comparison: '<=' | '>='
  /** The subjects whose rows the figures come from, to explain a missing one. */
  readonly from: readonly Subject[]
  readonly measured: number | undefined
  readonly limit: number | undefined
}

const evaluate = (results: readonly Result[], goal: Goal): Target => {
  const { id, text, unit, comparison, measured, limit } = goal
  if (measured === undefined || limit === undefined || !Number.isFinite(measured) || !Number.isFinite(limit)) {
    return { id, text, unit, comparison, measured: null, limit: null, met: null, reason: whyMissing(results, goal.from) }
  }
  const bound = round(limit, 3)
  return { id, text, unit, comparison, measured, limit: bound, met: comparison === '<=' ? measured <= bound : measured >= bound }
}

const plus = (x: number | undefined, y: number): number | undefined => (x === undefined ? undefined : x + y)
const times = (x: number | undefined, y: number): number | undefined => (x === undefined ? undefined : x * y)

export const targets = (results: readonly Result[]): Target[] => {
  const fork8 = connrateOf(results, 'fork', 8)
  const bare8 = bareForkOf(results, 8)
  const spares1 = connrateOf(results, 'fork+spares', 1)
  const spares8 = connrateOf(results, 'fork+spares', 8)
  const goals: Goal[] = [
    {
      id: 'child-start',
      text: 'forkserver-child startMs ≤ 1.1 × empty-child startMs',
      unit: 'ms',
      comparison: '<=',
      from: ['forkserver-child', 'empty-child'],
      measured: startupOf(results, 'forkserver-child')?.startMs,
      limit: times(startupOf(results, 'empty-child')?.startMs, 1.1),
    },
    {
      id: 'parent-cpu',
      text: 'fork parentCpuMsPerConn (c=8) ≤ bare-fork parentCpuMsPerFork (c=8) + 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork', 'bare-fork'],
      measured: fork8?.parentCpuMsPerConn,
      limit: plus(bare8?.parentCpuMsPerFork, 2),
    },
    {
      id: 'fork-rate',
      text: 'fork connsPerSec (c=8) ≥ 0.9 × bare-fork connsPerSec (c=8)',
      unit: 'conn/s',
      comparison: '>=',
      from: ['fork', 'bare-fork'],
      measured: fork8?.connsPerSec,
      limit: times(bare8?.connsPerSec, 0.9),
    },
    {
      id: 'spares-p50-c1',
      text: 'fork+spares p50Ms (c=1) ≤ 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork+spares'],
      measured: spares1?.p50Ms,
      limit: spares1 && 2,
    },
    {
      id: 'spares-p50-c8',
      text: 'fork+spares p50Ms (c=8) ≤ 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork+spares'],
      measured: spares8?.p50Ms,
      limit: spares8 && 2,
    },
    {
      id: 'spares-rate',
      text: 'fork+spares connsPerSec (c=8) ≥ fork connsPerSec (c=8)',
      unit: 'conn/s',
      comparison: '>=',
      from: ['fork+spares', 'fork'],
      measured: spares8?.connsPerSec,
      limit: fork8?.connsPerSec,
    },
  ]
  return goals.map((goal) => evaluate(results, goal))
}
