// The run's outputs: markdown tables for stdout, and the JSON and SVG files.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { chart } from './chart.js'
import type {
  BareForkResult,
  ConnRateResult,
  CostResult,
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

/** A fork() call's steps, µs: `park 150, maps 210, fork 600, unpark 8`. */
const steps = (r: CostResult): string =>
  r.forkStepsUs === undefined ? '' : `fork() steps, µs: ${Object.entries(r.forkStepsUs).map(([name, us]) => `${name} ${num(us)}`).join(', ')}`

const costTable = (rows: readonly CostResult[]): string =>
  table(
    ['model', 'conn/s', 'parent CPU ms', 'zygote CPU ms', 'child CPU ms', 'total CPU ms', 'minor faults per child', "forker's minor faults", 'fork() µs, mean (p50)', 'fork(2) µs', 'note'],
    rows.map((r) => [
      r.model,
      num(r.connsPerSec),
      num(r.parentCpuMs),
      r.zygoteCpuMs === undefined ? '—' : num(r.zygoteCpuMs),
      num(r.childCpuMs),
      num(r.totalCpuMs),
      num(r.childMinorFaults),
      num(r.forkerMinorFaults),
      r.forkCallUs === null ? 'n/a' : `${num(r.forkCallUs)} (${num(r.forkCallP50Us)})`,
      r.fork2Us === undefined ? 'not split' : num(r.fork2Us),
      [r.reason ? `n/a: ${cell(r.reason)}` : '', steps(r), errorNote(r)].filter(Boolean).join('; '),
    ]),
  )

/** c-fork's rate at c=8 in this run's connection-rate table: what this host's forks are read against. */
const hostForkRate = (results: readonly Result[]): string => {
  const c8 = results.find((r): r is ConnRateResult => r.scenario === 'connrate' && r.model === 'c-fork' && r.concurrency === 8)
  const notRun = results.find((r): r is SkippedResult | FailedResult => r.model === 'c-fork' && (r.scenario === 'skipped' || r.scenario === 'failed'))
  if (c8 !== undefined) return `c-fork, this host's C accept-fork loop, did ${num(c8.connsPerSec)} conn/s at c=8 in this run.`
  return `c-fork was not measured in this run${notRun ? ` (${cell(notRun.reason.split('\n')[0] ?? '')})` : ''}: nothing here says how fast this host forks.`
}

const COST_METHOD =
  'Per connection, over a burst from an idle server to an idle server (every child reaped), after a warm-up. ' +
  'CPU: utime + stime of each process in /proc/PID/stat; the children\'s from the cutime + cstime of the process that forked and reaped them ' +
  '(the zygote, or the peer\'s one process), to which the kernel adds a child\'s times when it reaps it; resolution one clock tick over the whole burst. ' +
  'Parent: the process that accepts (a peer\'s one process does it all). Minor faults: that reaper\'s cminflt, per child, and its own minflt ' +
  '(the copy-on-write faults it takes after each fork). fork(): timed in the forking process around the call, one line per fork ' +
  '(FORKSERVER_FORK_TIMES); the addon\'s call parks V8\'s worker threads, marks the heap MADV_DOFORK, calls fork(2) and unparks them; ' +
  'python\'s os.fork() is not split. The burst\'s conn/s includes writing those lines.'

const costSection = (rows: readonly CostResult[], results: readonly Result[]): string => {
  const first = rows[0]
  const burst = first === undefined ? '' : `${first.connections + first.errors} connections at c=${first.concurrency}. `
  return `${hostForkRate(results)}\n\n${costTable(rows)}\n\n${burst}${COST_METHOD}`
}

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
    `${connrateTable(c)}\n\nfork, fork+spares and exec run with \`--start spawn\`; fork+spares (8) with \`--spares 8\`; exec with \`--exec -- cat\`; the (zygote) rows with \`--start zygote\`, ` +
      `a real fork(2) of a warm process, and fork (zygote)+spares (4) with \`--spares 4\` too; tcpserver+cat is ucspi-tcp's tcpserver running cat. ` +
      `Parent CPU: the server's parent process alone (utime + stime, 10 ms ticks) over the window, per connection. ${hostForkRate(results)}`,
    c.length,
  )
  const k = of(results, 'cost')
  add("Cost of a connection: CPU per process, page faults and the fork() call, per connection", costSection(k, results), k.length)
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
  add('Targets', `${targetsTable(targets)}\n\n${hostForkRate(results)}`, targets.length)
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
