// The goals set by the spares and zygote issues, checked against one run's
// results. A missed target is reported, not an error: the run still succeeds.
// A target whose figure is missing or null is not measured, never missed. A
// few figures are printed beside them only, never judged (comparison null).
import type { BareForkResult, ConnRateResult, Figure, MemoryResult, ModelName, Result, StartupResult, StartupSubject, Subject, Target } from './results.js'
import { ZYGOTE_SPARES } from './models.js'
import { round } from './stats.js'

const connrateOf = (results: readonly Result[], model: ModelName, concurrency: number): ConnRateResult | undefined =>
  results.find((r): r is ConnRateResult => r.scenario === 'connrate' && r.model === model && r.concurrency === concurrency)

const bareForkOf = (results: readonly Result[], concurrency: number): BareForkResult | undefined =>
  results.find((r): r is BareForkResult => r.scenario === 'connrate' && r.model === 'bare-fork' && r.concurrency === concurrency)

const startupOf = (results: readonly Result[], subject: StartupSubject): StartupResult | undefined =>
  results.find((r): r is StartupResult => r.scenario === 'startup' && r.model === subject)

/** The model's memory row with the most connections held. */
const mostHeldOf = (results: readonly Result[], model: ModelName): MemoryResult | undefined =>
  results
    .filter((r): r is MemoryResult => r.scenario === 'memory' && r.model === model)
    .reduce<MemoryResult | undefined>((most, r) => (most === undefined || r.connections > most.connections ? r : most), undefined)

type Row = ConnRateResult | BareForkResult | StartupResult | MemoryResult

const where = (row: Row): string => {
  if (row.scenario === 'startup') return `${row.model} startup`
  if (row.scenario === 'memory') return `${row.model} memory ${row.connections} conns`
  return `${row.model} c=${row.concurrency}`
}

interface Goal {
  readonly id: string
  readonly text: string
  readonly unit: string
  /** null: printed only, never met or missed. */
  readonly comparison: '<=' | '>=' | null
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
  const judged = comparison !== null
  if (typeof measured !== 'number' || !Number.isFinite(measured) || (judged && (typeof limit !== 'number' || !Number.isFinite(limit)))) {
    return { id, text, unit, comparison, measured: null, limit: null, met: null, reason: whyMissing(results, goal) }
  }
  if (!judged || typeof limit !== 'number') return { id, text, unit, comparison, measured, limit: null, met: null }
  const bound = round(limit, 3)
  return { id, text, unit, comparison, measured, limit: bound, met: comparison === '<=' ? measured <= bound : measured >= bound }
}

const plus = (x: Figure | undefined, y: number): Figure | undefined => (typeof x === 'number' ? x + y : x)
const times = (x: Figure | undefined, y: number): Figure | undefined => (typeof x === 'number' ? x * y : x)
/** x / y to two decimals; not a figure when either is missing or y is not above 0. */
const ratio = (x: Figure | undefined, y: Figure | undefined): Figure | undefined =>
  typeof x !== 'number' || typeof y !== 'number' ? (x === undefined || y === undefined ? undefined : null) : y > 0 ? round(x / y, 2) : null

/** The fork model's start-up, parent CPU and rate, and --spares: the spares issue's goals. */
const sparesGoals = (results: readonly Result[]): Goal[] => {
  const fork8 = connrateOf(results, 'fork', 8)
  const bare8 = bareForkOf(results, 8)
  const spares1 = connrateOf(results, 'fork+spares', 1)
  const spares8 = connrateOf(results, 'fork+spares', 8)
  const childStart = startupOf(results, 'forkserver-child')
  const emptyStart = startupOf(results, 'empty-child')
  return [
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
}

/**
 * The zygote issue's (22): against node-fork, the floor, and python-forking,
 * measured in the same run; with --spares 4 its p50 at c=1 against
 * python-forking's. Printed beside them, never judged: c-fork's rate, this
 * host's fork loop, which every figure is read against.
 */
const zygoteFloorGoals = (results: readonly Result[]): Goal[] => {
  const zygote8 = connrateOf(results, 'fork (zygote)', 8)
  const floor8 = connrateOf(results, 'node-fork', 8)
  const spares1 = connrateOf(results, 'fork (zygote)+spares', 1)
  const python1 = connrateOf(results, 'python-forking', 1)
  const c8 = connrateOf(results, 'c-fork', 8)
  return [
    {
      id: 'zygote-vs-floor',
      text: 'fork (zygote) connsPerSec (c=8) ÷ node-fork connsPerSec (c=8) ≥ 0.9',
      unit: '×',
      comparison: '>=',
      from: ['fork (zygote)', 'node-fork'],
      rows: [zygote8, floor8],
      measured: ratio(zygote8?.connsPerSec, floor8?.connsPerSec),
      limit: 0.9,
    },
    {
      id: 'zygote-spares-p50-c1',
      text: `fork (zygote)+spares (${ZYGOTE_SPARES}) p50Ms (c=1) ≤ python-forking p50Ms (c=1)`,
      unit: 'ms',
      comparison: '<=',
      from: ['fork (zygote)+spares', 'python-forking'],
      rows: [spares1, python1],
      measured: spares1?.p50Ms,
      limit: python1?.p50Ms,
    },
    {
      id: 'host-c-fork',
      text: "c-fork connsPerSec (c=8), printed only: this host's fork loop, which every figure here is read against",
      unit: 'conn/s',
      comparison: null,
      from: ['c-fork'],
      rows: [c8],
      measured: c8?.connsPerSec,
      limit: null,
    },
  ]
}

/** Held connections' children of --start zygote: what the zygote issue allows each, on average. */
export const ZYGOTE_CHILD_PSS_MIB = 3

/**
 * --start zygote, against --start spawn and the peers measured in the same
 * run (the zygote issue): its rate as a ratio to spawn's, its latency alone,
 * exec (zygote) against tcpserver running the same cat, and the PSS of a held
 * child. Printed only: its ratio to python-forking, and node-fork's rate and
 * p50, the floor under the first two (a Node that forks and does nothing else
 * cannot be beaten by one that does more).
 */
const zygoteGoals = (results: readonly Result[]): Goal[] => {
  const zygote1 = connrateOf(results, 'fork (zygote)', 1)
  const zygote8 = connrateOf(results, 'fork (zygote)', 8)
  const fork8 = connrateOf(results, 'fork', 8)
  const python8 = connrateOf(results, 'python-forking', 8)
  const exec8 = connrateOf(results, 'exec (zygote)', 8)
  const tcpserver8 = connrateOf(results, 'tcpserver+cat', 8)
  const floor1 = connrateOf(results, 'node-fork', 1)
  const floor8 = connrateOf(results, 'node-fork', 8)
  const held = mostHeldOf(results, 'fork (zygote)')
  const childKB = held?.perChildKB ?? (held && null)
  return [
    {
      id: 'zygote-rate',
      text: 'fork (zygote) connsPerSec (c=8) ÷ fork connsPerSec (c=8) ≥ 8',
      unit: '×',
      comparison: '>=',
      from: ['fork (zygote)', 'fork'],
      rows: [zygote8, fork8],
      measured: ratio(zygote8?.connsPerSec, fork8?.connsPerSec),
      limit: 8,
    },
    {
      id: 'zygote-p50-c1',
      text: 'fork (zygote) p50Ms (c=1) ≤ 8 ms',
      unit: 'ms',
      comparison: '<=',
      from: ['fork (zygote)'],
      rows: [zygote1],
      measured: zygote1?.p50Ms,
      limit: 8,
    },
    {
      id: 'exec-zygote-rate',
      text: 'exec (zygote) connsPerSec (c=8) ≥ 0.5 × tcpserver+cat connsPerSec (c=8)',
      unit: 'conn/s',
      comparison: '>=',
      from: ['exec (zygote)', 'tcpserver+cat'],
      rows: [exec8, tcpserver8],
      measured: exec8?.connsPerSec,
      limit: times(tcpserver8?.connsPerSec, 0.5),
    },
    {
      id: 'zygote-child-pss',
      text: `fork (zygote) mean PSS per held child (${held?.connections ?? 'most'} idle conns) ≤ ${ZYGOTE_CHILD_PSS_MIB} MiB`,
      unit: 'MiB',
      comparison: '<=',
      from: ['fork (zygote)'],
      rows: [held],
      measured: typeof childKB === 'number' ? round(childKB / 1024, 2) : childKB,
      limit: ZYGOTE_CHILD_PSS_MIB,
    },
    {
      id: 'floor-rate',
      text: "node-fork connsPerSec (c=8) ÷ fork connsPerSec (c=8), printed only: the best the zygote's ratio to fork can be here",
      unit: '×',
      comparison: null,
      from: ['node-fork', 'fork'],
      rows: [floor8, fork8],
      measured: ratio(floor8?.connsPerSec, fork8?.connsPerSec),
      limit: null,
    },
    {
      id: 'floor-p50-c1',
      text: "node-fork p50Ms (c=1), printed only: the best the zygote's p50 can be here",
      unit: 'ms',
      comparison: null,
      from: ['node-fork'],
      rows: [floor1],
      measured: floor1?.p50Ms,
      limit: null,
    },
    {
      id: 'zygote-vs-python',
      text: 'fork (zygote) connsPerSec (c=8) ÷ python-forking connsPerSec (c=8), printed only: the long-run goal is 1',
      unit: '×',
      comparison: null,
      from: ['fork (zygote)', 'python-forking'],
      rows: [zygote8, python8],
      measured: ratio(zygote8?.connsPerSec, python8?.connsPerSec),
      limit: null,
    },
  ]
}

export const targets = (results: readonly Result[]): Target[] =>
  [...sparesGoals(results), ...zygoteGoals(results), ...zygoteFloorGoals(results)].map((goal) => evaluate(results, goal))
