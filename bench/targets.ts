// The goals set by the spares issue, checked against one run's results. A
// missed target is reported, not an error: the run still succeeds. A target
// whose figure is missing or null is not measured, never missed.
import type { BareForkResult, ConnRateResult, Figure, ModelName, Result, StartupResult, StartupSubject, Subject, Target } from './results.js'
import { round } from './stats.js'

const connrateOf = (results: readonly Result[], model: ModelName, concurrency: number): ConnRateResult | undefined =>
  results.find((r): r is ConnRateResult => r.scenario === 'connrate' && r.model === model && r.concurrency === concurrency)

const bareForkOf = (results: readonly Result[], concurrency: number): BareForkResult | undefined =>
  results.find((r): r is BareForkResult => r.scenario === 'connrate' && r.model === 'bare-fork' && r.concurrency === concurrency)

const startupOf = (results: readonly Result[], subject: StartupSubject): StartupResult | undefined =>
  results.find((r): r is StartupResult => r.scenario === 'startup' && r.model === subject)

type Row = ConnRateResult | BareForkResult | StartupResult

const where = (row: Row): string => (row.scenario === 'startup' ? `${row.model} startup` : `${row.model} c=${row.concurrency}`)

interface Goal {
  readonly id: string
  readonly text: string
  readonly unit: string
  readonly comparison: '<=' | '>='
  /** The subjects whose rows the figures come from, and those rows, to explain a missing one. */
  readonly from: readonly Subject[]
  readonly rows: readonly (Row | undefined)[]
  readonly measured: Figure | undefined
  readonly limit: Figure | undefined
}

/**
 * Why a figure is missing: the reason on a row it comes from (a figure the
 * run could not measure), or a skip or failure of its subjects.
 */
const whyMissing = (results: readonly Result[], goal: Goal): string => {
  const unmeasured = goal.rows.flatMap((row) => (row !== undefined && 'reason' in row && row.reason ? [`${where(row)}: ${row.reason}`] : []))
  const notRun = results.flatMap((r) =>
    (r.scenario === 'skipped' || r.scenario === 'failed') && goal.from.includes(r.model)
      ? [`${r.model} ${r.scenario === 'failed' ? `failed during ${r.during}` : 'skipped'}: ${r.reason.split('\n')[0]}`]
      : [],
  )
  const reasons = [...unmeasured, ...notRun]
  return reasons.length > 0 ? reasons.join('; ') : `not measured: ${goal.from.join(', ')}`
}

const evaluate = (results: readonly Result[], goal: Goal): Target => {
  const { id, text, unit, comparison, measured, limit } = goal
  if (typeof measured !== 'number' || typeof limit !== 'number' || !Number.isFinite(measured) || !Number.isFinite(limit)) {
    return { id, text, unit, comparison, measured: null, limit: null, met: null, reason: whyMissing(results, goal) }
  }
  const bound = round(limit, 3)
  return { id, text, unit, comparison, measured, limit: bound, met: comparison === '<=' ? measured <= bound : measured >= bound }
}

const plus = (x: Figure | undefined, y: number): Figure | undefined => (typeof x === 'number' ? x + y : x)
const times = (x: Figure | undefined, y: number): Figure | undefined => (typeof x === 'number' ? x * y : x)

export const targets = (results: readonly Result[]): Target[] => {
  const fork8 = connrateOf(results, 'fork', 8)
  const bare8 = bareForkOf(results, 8)
  const spares1 = connrateOf(results, 'fork+spares', 1)
  const spares8 = connrateOf(results, 'fork+spares', 8)
  const childStart = startupOf(results, 'forkserver-child')
  const emptyStart = startupOf(results, 'empty-child')
  const goals: Goal[] = [
    {
      id: 'child-start',
      text: 'forkserver-child startMs ≤ 1.1 × empty-child startMs',
      unit: 'ms',
      comparison: '<=',
      from: ['forkserver-child', 'empty-child'],
      rows: [childStart, emptyStart],
      measured: childStart?.startMs,
      limit: times(emptyStart?.startMs, 1.1),
    },
    {
      id: 'parent-cpu',
      text: 'fork parentCpuMsPerConn (c=8) ≤ bare-fork parentCpuMsPerFork (c=8) + 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork', 'bare-fork'],
      rows: [fork8, bare8],
      measured: fork8?.parentCpuMsPerConn,
      limit: plus(bare8?.parentCpuMsPerFork, 2),
    },
    {
      id: 'fork-rate',
      text: 'fork connsPerSec (c=8) ≥ 0.9 × bare-fork connsPerSec (c=8)',
      unit: 'conn/s',
      comparison: '>=',
      from: ['fork', 'bare-fork'],
      rows: [fork8, bare8],
      measured: fork8?.connsPerSec,
      limit: times(bare8?.connsPerSec, 0.9),
    },
    {
      id: 'spares-p50-c1',
      text: 'fork+spares p50Ms (c=1) ≤ 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork+spares'],
      rows: [spares1],
      measured: spares1?.p50Ms,
      limit: spares1 && 2,
    },
    {
      id: 'spares-p50-c8',
      text: 'fork+spares p50Ms (c=8) ≤ 2 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork+spares'],
      rows: [spares8],
      measured: spares8?.p50Ms,
      limit: spares8 && 2,
    },
    {
      id: 'spares-rate',
      text: 'fork+spares connsPerSec (c=8) ≥ fork connsPerSec (c=8)',
      unit: 'conn/s',
      comparison: '>=',
      from: ['fork+spares', 'fork'],
      rows: [spares8, fork8],
      measured: spares8?.connsPerSec,
      limit: fork8?.connsPerSec,
    },
  ]
  return goals.map((goal) => evaluate(results, goal))
}
