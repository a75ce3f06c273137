import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { markdown, num, writeResults } from '../bench/report.js'
import type { Result } from '../bench/results.js'
import { targets } from '../bench/targets.js'
import { fakeReport, UNMEASURED_REASON } from './fixtures/bench-report.js'

const QUICK = 'QUICK run (5 samples): not a result'
const headings = (md: string): string[] => md.split('\n').filter((line) => line.startsWith('#'))
/** The cells of the first row that begins with `start` in the table under the heading that begins with `section`. */
const row = (md: string, section: string, start: string): string[] => {
  const lines = md.split('\n')
  const from = lines.findIndex((line) => line.startsWith(`### ${section}`))
  const found = lines.slice(from + 1).find((line) => line.startsWith('### ') || line.startsWith(`| ${start}`))
  return (found?.startsWith('|') ? found : '')
    .split(/(?<!\\)\|/)
    .slice(1, -1)
    .map((cell) => cell.trim())
}

t.test('a figure that could not be measured reads n/a, a measured 0 reads 0', async (t) => {
  t.equal(num(null), 'n/a')
  t.equal(num(NaN), 'n/a')
  t.equal(num(0), '0')
  t.equal(num(0.12345), '0.123')
  t.equal(num(12345.6), '12346')
})

t.test("a quick run's every heading says QUICK, the targets' too", async (t) => {
  const md = markdown(fakeReport({ quick: true }))
  const all = headings(md)
  t.ok(all.length > 8, 'a heading per table')
  t.same(all.filter((h) => !h.endsWith(` — ${QUICK}`)), [], 'each ends with the label')
  t.ok(all.includes(`### Targets — ${QUICK}`), 'the targets table')
  t.match(md, `**${QUICK}.**`, 'and a line under the title')
})

t.test('a full run says nothing of QUICK', async (t) => {
  const md = markdown(fakeReport({ quick: false }))
  t.notMatch(md, /QUICK/)
  t.ok(headings(md).includes('### Targets'))
  t.match(md, /over 90% it is probably the limit/, 'the load generator bound comes from the settings')
})

t.test('unmeasured figures are n/a with their reason in the tables, never 0', async (t) => {
  const md = markdown(fakeReport({ quick: true, unmeasured: true }))
  const c8 = row(md, 'Connection rate', 'fork | 8 |')
  t.same(c8.slice(0, 6), ['fork', '8', 'n/a', 'n/a', 'n/a', 'n/a'], 'conn/s and latencies')
  t.equal(c8[8], 'n/a', 'parent CPU per connection')
  t.equal(c8[9], `n/a: ${UNMEASURED_REASON}`, 'the note says why')
  const throughput = row(md, 'Throughput', 'fork |')
  t.same(throughput.slice(2, 3), ['n/a'], 'MB/s echoed')
  t.match(throughput.at(-1), /^n\/a: no byte was echoed/)
  const memory = row(md, 'Memory', 'fork | 10 |')
  t.same(memory.slice(2, 5), ['120', '24', 'n/a'], 'per connection, with no connection held')
  t.match(memory.at(-1), /^n\/a: no connection was held/)
})

t.test('targets that rest on an unmeasured figure are not measured, never missed', async (t) => {
  const md = markdown(fakeReport({ quick: true, unmeasured: true }))
  for (const target of ['fork parentCpuMsPerConn (c=8)', 'fork connsPerSec (c=8)']) {
    const cells = row(md, 'Targets', target).slice(1)
    t.equal(cells[0], 'n/a', `${target}: measured`)
    t.equal(cells[1], 'n/a', `${target}: limit`)
    t.match(cells[2], /^not measured \(.*fork c=8: no connection completed/, `${target}: why`)
  }
  t.notMatch(md, /missed/)
})

t.test('a pipe in a reason does not break its table row', async (t) => {
  const md = markdown(fakeReport({ quick: false }))
  t.match(md, '| c-fork | skipped | no cc \\| on this machine |')
})

t.test('the results go to the folder given, JSON with null for what was not measured', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-report-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const report = fakeReport({ quick: true, unmeasured: true })
  const paths = writeResults(join(dir, 'quick'), report)
  t.same(paths, ['latest.json', '2026-11-28T10-20-30.json', 'latest.svg'].map((f) => join(dir, 'quick', f)))
  t.same(readdirSync(join(dir, 'quick')).sort(), ['2026-11-28T10-20-30.json', 'latest.json', 'latest.svg'])
  const json = readFileSync(join(dir, 'quick', 'latest.json'), 'utf8')
  t.equal(readFileSync(join(dir, 'quick', '2026-11-28T10-20-30.json'), 'utf8'), json, 'the dated copy is the same')
  t.match(json, /"mbPerSec": null,\n\s*"reason": "no byte was echoed/, 'null, then why')
  t.same(JSON.parse(json), JSON.parse(JSON.stringify(report)), 'the whole report')
})

t.test("the zygote's rows and the peers they are measured against are in the tables, and what each runs is said", async (t) => {
  const md = markdown(fakeReport({ quick: false }))
  t.same(row(md, 'Connection rate', 'fork (zygote) | 8 |').slice(0, 3), ['fork (zygote)', '8', '400'])
  t.equal(row(md, 'Connection rate', 'fork (zygote) | 8 |')[8], '0.4', "the parent's CPU per connection")
  t.same(row(md, 'Connection rate', 'exec (zygote) | 8 |').slice(0, 3), ['exec (zygote)', '8', '900'])
  t.same(row(md, 'Connection rate', 'tcpserver+cat | 8 |').slice(0, 3), ['tcpserver+cat', '8', '1500'])
  t.equal(row(md, 'Connection rate', 'tcpserver+cat | 8 |')[8], '', 'no parent CPU for a peer')
  t.match(md, 'the (zygote) rows with `--start zygote`', 'the note under the table says how they run')
  t.match(md, "tcpserver+cat is ucspi-tcp's tcpserver running cat")
})

t.test("the memory table gives the mean PSS of the held connections' new processes, and how many, where there are some", async (t) => {
  const md = markdown(fakeReport({ quick: false }))
  const zygote = row(md, 'Memory', 'fork (zygote) | 40 |')
  t.same(zygote.slice(4, 7), ['2688', '2600 (40)', '42'], 'per connection, per new process (of 40), processes')
  t.equal(row(md, 'Memory', 'prefork | 10 |')[5], '', 'prefork brings no process per connection: blank, not 0')
})

t.test("the targets table gives the zygote's ratios: to spawn's rate, judged, and to python-forking's, printed only", async (t) => {
  const report = fakeReport({ quick: false })
  const fork8: Result = {
    model: 'fork', scenario: 'connrate', concurrency: 8, connsPerSec: 25, p50Ms: 300, p90Ms: 350, p99Ms: 400,
    errors: 0, connections: 100, seconds: 4, loadgenCpuPct: 2, loadgenBound: false, parentCpuMsPerConn: 3,
  }
  const results = [...report.results, fork8]
  const md = markdown({ ...report, results, targets: targets(results) })
  t.same(row(md, 'Targets', 'fork (zygote) connsPerSec (c=8) ÷ fork').slice(1), ['16 ×', '≥ 8 ×', 'met'])
  t.same(row(md, 'Targets', 'fork (zygote) connsPerSec (c=8) ÷ python-forking').slice(1), ['0.3 ×', '', 'printed only'])
  t.same(row(md, 'Targets', 'fork (zygote) p50Ms (c=1)').slice(1), ['6.1 ms', '≤ 8 ms', 'met'])
  t.same(row(md, 'Targets', 'exec (zygote) connsPerSec (c=8)').slice(1), ['900 conn/s', '≥ 750 conn/s', 'met'])
  t.same(row(md, 'Targets', 'fork (zygote) mean PSS per held child (40 idle conns)').slice(1), ['2.54 MiB', '≤ 3 MiB', 'met'])
  // python-forking skipped: the printed ratio is not measured, and says why.
  const noPython: Result[] = [...results.filter((r) => r.model !== 'python-forking'), { model: 'python-forking', scenario: 'skipped', reason: 'python3 not found' }]
  const skipped = markdown({ ...report, results: noPython, targets: targets(noPython) })
  t.same(row(skipped, 'Targets', 'fork (zygote) connsPerSec (c=8) ÷ python-forking').slice(1), ['n/a', '', 'not measured (python-forking skipped: python3 not found)'])
})

t.test("the cost table: each process's CPU, the children's faults and the fork() call per connection, with c-fork's rate from the same run", async (t) => {
  const report = fakeReport({ quick: false })
  const md = markdown(report)
  const zygote = row(md, 'Cost of a connection', 'fork (zygote) |')
  t.same(zygote.slice(0, 10), ['fork (zygote)', '200', '0.45', '1.2', '3.1', '4.75', '650', '120', '1500 (1100)', '800'])
  t.equal(zygote[10], 'fork() steps, µs: park 300, maps 390, fork 800, unpark 10', "the addon's steps")
  const peer = row(md, 'Cost of a connection', 'python-forking |')
  t.equal(peer[3], '—', 'a peer has no zygote')
  t.equal(peer[9], 'not split', "python's os.fork() is timed whole")
  t.match(md, /2000 connections at c=8\. Per connection, over a burst from an idle server to an idle server/, 'how it was measured')
  // c-fork is skipped in the report: the table says that nothing tells how fast this host forks.
  t.match(md, "c-fork was not measured in this run (no cc \\| on this machine): nothing here says how fast this host forks.")
  const c8: Result = {
    model: 'c-fork', scenario: 'connrate', concurrency: 8, connsPerSec: 7364, p50Ms: 0.7, p90Ms: 1, p99Ms: 1.7,
    errors: 0, connections: 29_000, seconds: 4, loadgenCpuPct: 60, loadgenBound: false,
  }
  const results = [...report.results.filter((r) => r.model !== 'c-fork'), c8]
  const withC = markdown({ ...report, results, targets: targets(results) })
  const lines = withC.split('\n')
  const said = "c-fork, this host's C accept-fork loop, did 7364 conn/s at c=8 in this run."
  for (const section of ['Connection rate', 'Cost of a connection', 'Targets']) {
    const from = lines.findIndex((line) => line.startsWith(`### ${section}`))
    const to = lines.findIndex((line, i) => i > from && line.startsWith('### '))
    t.ok(lines.slice(from, to).includes(said) || lines.slice(from, to).some((line) => line.endsWith(said)), `${section}: c-fork's rate beside it`)
  }
})

t.test("the targets table: the zygote against node-fork, judged; with --spares 4 against python-forking's p50; c-fork's rate, printed", async (t) => {
  const report = fakeReport({ quick: false })
  const md = markdown(report)
  t.same(row(md, 'Targets', 'fork (zygote) connsPerSec (c=8) ÷ node-fork').slice(1), ['0.95 ×', '≥ 0.9 ×', 'met'])
  t.match(row(md, 'Targets', 'fork (zygote)+spares (4) p50Ms (c=1)')[3], /^not measured \(.*fork \(zygote\)\+spares/)
  t.same(row(md, 'Targets', 'c-fork connsPerSec (c=8), printed only').slice(1), ['n/a', '', 'not measured (c-fork skipped: no cc \\| on this machine)'])
})
