// The run's outputs: markdown tables for stdout, and the JSON and SVG files.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chart } from './chart.js'
import type {
  BareForkResult,
  ConnRateResult,
  FailedResult,
  Figure,
  ForkCostResult,
  MemoryResult,
  Report,
  Result,
  SkippedResult,
  SpreadResult,
  StartupResult,
  Target,
  ThroughputResult,
} from './results.js'
import { quickLabel } from './settings.js'

const of = <S extends Result['scenario']>(results: readonly Result[], scenario: S): Extract<Result, { scenario: S }>[] =>
  results.filter((r): r is Extract<Result, { scenario: S }> => r.scenario === scenario)

/** Three significant figures at most, no exponent: 0.123, 12.3, 12345; n/a when it could not be measured. */
export const num = (x: Figure): string => {
  if (x === null || !Number.isFinite(x)) return 'n/a'
  if (Math.abs(x) >= 100) return String(Math.round(x))
  return String(Number(x.toPrecision(3)))
}
const pct = (share: number): string => `${Math.round(share * 100)}%`

const table = (head: readonly string[], rows: readonly (readonly string[])[]): string =>
  [head, head.map(() => '---'), ...rows].map((cells) => `| ${cells.join(' | ')} |`).join('\n')

/** In a table cell, a pipe would end the cell. */
const cell = (text: string): string => text.replace(/\s+/g, ' ').replace(/\|/g, '\\|')

const note = (r: { loadgenBound: boolean; loadgenCpuPct: number; errorCodes?: Readonly<Record<string, number>>; reason?: string }): string =>
  [
    r.reason ? `n/a: ${cell(r.reason)}` : '',
    r.loadgenBound ? `load generator at ${Math.round(r.loadgenCpuPct)}% of a core: the server may be faster` : '',
    r.errorCodes
      ? Object.entries(r.errorCodes)
          .map(([code, n]) => `${n}× ${code}`)
          .join(', ')
      : '',
  ]
    .filter(Boolean)
    .join('; ')

const connrateTable = (rows: readonly ConnRateResult[]): string =>
  table(
    ['model', 'concurrency', 'conn/s', 'p50 ms', 'p90 ms', 'p99 ms', 'errors', 'loadgen CPU', 'parent CPU ms/conn', 'note'],
    rows.map((r) => [
      r.spares === undefined ? r.model : `${r.model} (${r.spares})`,
      String(r.concurrency),
      num(r.connsPerSec),
      num(r.p50Ms),
      num(r.p90Ms),
      num(r.p99Ms),
      String(r.errors),
      `${Math.round(r.loadgenCpuPct)}%`,
      r.parentCpuMsPerConn === undefined ? '' : num(r.parentCpuMsPerConn),
      note(r),
    ]),
  )

const errorNote = (r: { errorCodes?: Readonly<Record<string, number>> }): string =>
  r.errorCodes
    ? Object.entries(r.errorCodes)
        .map(([code, n]) => `${n}× ${code}`)
        .join(', ')
    : ''

const bareForkTable = (rows: readonly BareForkResult[]): string =>
  table(
    ['concurrency', 'forks/s', 'fork to exit, p50 ms', 'p90 ms', 'p99 ms', 'errors', 'parent CPU ms/fork', 'note'],
    rows.map((r) => [String(r.concurrency), num(r.connsPerSec), num(r.p50Ms), num(r.p90Ms), num(r.p99Ms), String(r.errors), num(r.parentCpuMsPerFork), errorNote(r)]),
  )

const START_MEANS: Record<StartupResult['model'], string> = {
  'node-e0': 'spawn to exit',
  'empty-child': "fork to its first IPC message",
  'forkserver-child': 'fork (with a connection) to `taken`',
}

const startupTable = (rows: readonly StartupResult[]): string =>
  table(
    ['subject', 'start, p50 ms', 'p90 ms', 'measured from … to', 'RSS MiB', 'PSS MiB', 'private MiB', 'samples'],
    rows.map((r) => [r.model, num(r.startMs), num(r.startP90Ms), START_MEANS[r.model], num(r.rssMiB), num(r.pssMiB), num(r.privateMiB), String(r.samples)]),
  )

/** The last two cells of a target's row: its limit, and whether it was met. A comparison of null is printed, never judged. */
const verdict = (r: Target): [string, string] => {
  if (r.measured === null) return [r.comparison === null ? '' : 'n/a', `not measured (${cell(r.reason ?? '')})`]
  if (r.comparison === null) return ['', 'printed only']
  const limit = r.limit === null ? 'n/a' : `${r.comparison === '<=' ? '≤' : '≥'} ${num(r.limit)} ${r.unit}`
  return [limit, r.met === null ? `not measured (${cell(r.reason ?? '')})` : r.met ? 'met' : '**missed**']
}

const targetsTable = (rows: readonly Target[]): string =>
  table(
    ['target', 'measured', 'target', 'met?'],
    rows.map((r) => [r.text, r.measured === null ? 'n/a' : `${num(r.measured)} ${r.unit}`, ...verdict(r)]),
  )

const throughputTable = (rows: readonly ThroughputResult[]): string =>
  table(
    ['model', 'connections', 'MB/s echoed', 'errors', 'loadgen CPU', 'note'],
    rows.map((r) => [r.model, String(r.connections), num(r.mbPerSec), String(r.errors), `${Math.round(r.loadgenCpuPct)}%`, note(r)]),
  )

const memoryTable = (rows: readonly MemoryResult[]): string =>
  table(
    ['model', 'idle conns', 'PSS MB', 'PSS MB, no conn', 'per conn kB, over no conn', 'per new process kB', 'processes', 'errors', 'note'],
    rows.map((r) => [
      r.model,
      String(r.connections),
      num(r.pssMB),
      num(r.idlePssMB),
      num(r.perConnKB),
      r.perChildKB === undefined ? '' : `${num(r.perChildKB)} (${r.newProcesses ?? 0})`,
      String(r.processes),
      String(r.errors),
      r.reason ? `n/a: ${cell(r.reason)}` : '',
    ]),
  )

const spreadTable = (rows: readonly SpreadResult[]): string =>
  table(
    ['model', 'workers', 'connections', 'min share', 'max share', 'per worker'],
    rows.map((r) => [r.model, String(r.workers), String(r.connections), pct(r.minShare), pct(r.maxShare), r.perWorker.join(' / ')]),
  )

const forkCostTable = (rows: readonly ForkCostResult[]): string =>
  table(
    ['samples', 'fork to exit, p50 ms', 'mean ms', 'fork() blocks the caller, p50 ms', 'mean ms'],
    rows.map((r) => [String(r.samples), num(r.p50Ms), num(r.meanMs), num(r.blockP50Ms), num(r.blockMeanMs)]),
  )

const reasonsTable = (rows: readonly (SkippedResult | FailedResult)[]): string =>
  table(
    ['model', 'what', 'reason'],
    rows.map((r) => [r.model, r.scenario === 'failed' ? `failed during ${r.during}` : 'skipped', cell(r.reason)]),
  )

export const markdown = (report: Report): string => {
  const { machine, results, targets, settings } = report
  // A quick run's windows last a fraction of a second: every title says so, the targets' too.
  const quick = quickLabel(settings)
  const sections: string[] = [
    `## forkserver bench, ${machine.date}${quick ? ` — ${quick}` : ''}`,
    ...(quick ? [`**${quick}.** It shows that each scenario runs; its figures are not measurements. \`make bench\` for results.`] : []),
    `${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, ${machine.python ?? 'no python3'}, ${machine.cc ?? 'no cc'}. ` +
      `Echo on 127.0.0.1; the load generator is a process of its own. Its CPU is shown as a % of one core; ` +
      `over ${settings.loadgenBoundPct}% it is probably the limit.`,
  ]
  const add = (title: string, body: string, count: number): void => {
    if (count > 0) sections.push(`### ${title}${quick ? ` — ${quick}` : ''}`, body)
  }
  const all = of(results, 'connrate')
  const c = all.filter((r): r is ConnRateResult => r.model !== 'bare-fork')
  add(
    'Connection rate: connect, 64 bytes, echo, close (latency: connect to full echo)',
    `${connrateTable(c)}\n\nfork+spares (8) runs with \`--spares 8\`; exec with \`--exec -- cat\`; the (zygote) rows with \`--start zygote\`, ` +
      `a real fork(2) of a warm process; tcpserver+cat is ucspi-tcp's tcpserver running cat. Parent CPU: the server's parent process alone (utime + stime, 10 ms ticks) over the window, per connection.`,
    c.length,
  )
  const b = all.filter((r): r is BareForkResult => r.model === 'bare-fork')
  add(
    'bare-fork: a process that only forks empty children, as forkserver forks them, C at a time',
    `${bareForkTable(b)}\n\nIn a process of its own; the rate the fork model would reach if forking were all it did.`,
    b.length,
  )
  const u = of(results, 'startup')
  add('Start-up: one process at a time, p50 (memory read once it is up; a forkserver child while it serves)', startupTable(u), u.length)
  const t = of(results, 'throughput')
  add('Throughput: long connections streaming', throughputTable(t), t.length)
  const m = of(results, 'memory')
  add(
    'Memory: PSS over the server process tree, idle connections held',
    `${memoryTable(m)}\n\nPer new process: the mean PSS of the processes that were not there with no connection (a child per held connection), and how many.`,
    m.length,
  )
  const s = of(results, 'spread')
  add('Spread of connections over prefork workers', spreadTable(s), s.length)
  const f = of(results, 'forkcost')
  add('Cost of one child_process.fork of an empty child', forkCostTable(f), f.length)
  add('Targets', targetsTable(targets), targets.length)
  const other = [...of(results, 'skipped'), ...of(results, 'failed')]
  add('Skipped and failed', reasonsTable(other), other.length)
  return sections.join('\n\n') + '\n'
}

/** Writes latest.json, a dated copy beside it, and latest.svg into `dir` (settings.ts picks it); returns the paths written. */
export const writeResults = (dir: string, report: Report): string[] => {
  mkdirSync(dir, { recursive: true })
  const json = JSON.stringify(report, null, 2) + '\n'
  // 2026-11-26T15:10:00.123Z -> 2026-11-26T15-10-00, safe in any file system.
  const stamp = report.machine.date.slice(0, 19).replace(/:/g, '-')
  const paths = [join(dir, 'latest.json'), join(dir, `${stamp}.json`), join(dir, 'latest.svg')]
  const [latest, dated, svg] = paths as [string, string, string]
  writeFileSync(latest, json)
  writeFileSync(dated, json)
  writeFileSync(svg, chart(report))
  return paths
}
