import t from 'tap'
import type { ConnRateResult, Result } from '../bench/results.js'
import { targets } from '../bench/targets.js'
import { fakeReport } from './fixtures/bench-report.js'

const byId = (results: readonly Result[], id: string) => targets(results).find((x) => x.id === id)

t.test('a target with both figures measured is met or missed by its comparison', async (t) => {
  const { results } = fakeReport({ quick: false })
  t.match(byId(results, 'child-start'), { measured: 62.5, limit: 66.22, met: true })
  const slower = results.map((r) => (r.model === 'forkserver-child' && r.scenario === 'startup' ? { ...r, startMs: 70 } : r))
  t.match(byId(slower, 'child-start'), { measured: 70, met: false })
})

t.test("a target whose figure is null is not measured, with the row's reason, never missed", async (t) => {
  const { results } = fakeReport({ quick: true, unmeasured: true })
  for (const id of ['parent-cpu', 'fork-rate', 'spares-rate']) {
    const target = byId(results, id)
    t.match(target, { measured: null, limit: null, met: null }, id)
  }
  t.match(byId(results, 'fork-rate')?.reason, /^fork c=8: no connection completed in the 5 s window$/)
})

t.test('a target whose model was skipped or never ran says so', async (t) => {
  const { results } = fakeReport({ quick: false })
  // fork+spares is not in the report at all; c-fork is skipped, but no target needs it.
  t.match(byId(results, 'spares-p50-c1'), { met: null, reason: 'not measured: fork+spares' })
  const skipped: Result[] = [...results, { model: 'fork+spares', scenario: 'skipped', reason: 'no --spares\nin this build' }]
  t.match(byId(skipped, 'spares-p50-c1'), { met: null, reason: 'fork+spares skipped: no --spares' })
})

t.test('a measured 0 is a figure, not a missing one', async (t) => {
  const { results } = fakeReport({ quick: false })
  const fork8: ConnRateResult = {
    model: 'fork', scenario: 'connrate', concurrency: 8, connsPerSec: 25, p50Ms: 300, p90Ms: 350, p99Ms: 400,
    errors: 0, connections: 100, seconds: 4, loadgenCpuPct: 2, loadgenBound: false, parentCpuMsPerConn: 0,
  }
  t.match(byId([...results, fork8], 'parent-cpu'), { measured: 0, limit: 3.5, met: true })
})

const fork8At = (connsPerSec: number): ConnRateResult => ({
  model: 'fork', scenario: 'connrate', concurrency: 8, connsPerSec, p50Ms: 300, p90Ms: 350, p99Ms: 400,
  errors: 0, connections: 100, seconds: 4, loadgenCpuPct: 2, loadgenBound: false, parentCpuMsPerConn: 3,
})

t.test("the zygote's rate is a ratio to spawn's at c=8, measured in the same run, met at 8× or more", async (t) => {
  const { results } = fakeReport({ quick: false })
  // fork (zygote) runs at 400 conn/s at c=8 in the report.
  t.match(byId([...results, fork8At(25)], 'zygote-rate'), { unit: '×', comparison: '>=', measured: 16, limit: 8, met: true })
  t.match(byId([...results, fork8At(60)], 'zygote-rate'), { measured: 6.67, limit: 8, met: false })
  t.match(byId([...results, fork8At(50)], 'zygote-rate'), { measured: 8, met: true }, 'exactly 8× is met')
  t.match(byId(results, 'zygote-rate'), { measured: null, limit: null, met: null, reason: 'not measured: fork (zygote), fork' }, 'no fork row at c=8: not measured')
  const { results: unmeasured } = fakeReport({ quick: true, unmeasured: true })
  t.match(byId(unmeasured, 'zygote-rate')?.reason, /^fork c=8: no connection completed/, "spawn's null rate: not measured, with its reason")
})

t.test("the zygote's ratio to python-forking is printed, never met or missed", async (t) => {
  const { results } = fakeReport({ quick: false })
  const target = byId(results, 'zygote-vs-python')
  t.match(target, { unit: '×', comparison: null, measured: 0.3, limit: null, met: null })
  t.equal(target?.reason, undefined, 'measured: no reason')
  const faster = results.map((r) => (r.model === 'python-forking' && r.scenario === 'connrate' ? { ...r, connsPerSec: 100 } : r))
  t.match(byId(faster, 'zygote-vs-python'), { measured: 4, limit: null, met: null }, 'whatever the ratio')
  const skipped: Result[] = [...results.filter((r) => r.model !== 'python-forking'), { model: 'python-forking', scenario: 'skipped', reason: 'python3 not found' }]
  t.match(byId(skipped, 'zygote-vs-python'), { measured: null, met: null, reason: 'python-forking skipped: python3 not found' })
})

t.test("node-fork's ratio to spawn and its p50 at c=1, the floor under the zygote's, are printed, never met or missed", async (t) => {
  const { results } = fakeReport({ quick: false })
  // node-fork runs at 420 conn/s at c=8 and 3.9 ms at c=1 in the report.
  t.match(byId([...results, fork8At(25)], 'floor-rate'), { unit: '×', comparison: null, measured: 16.8, limit: null, met: null })
  t.match(byId(results, 'floor-p50-c1'), { unit: 'ms', comparison: null, measured: 3.9, limit: null, met: null })
  const reason = 'the native addon is not built (no dist/native/forkserver.node)'
  const skipped: Result[] = [...results.filter((r) => r.model !== 'node-fork'), { model: 'node-fork', scenario: 'skipped', reason }]
  for (const id of ['floor-rate', 'floor-p50-c1']) t.match(byId([...skipped, fork8At(25)], id), { measured: null, met: null, reason: `node-fork skipped: ${reason}` }, id)
})

t.test("the zygote's p50 at c=1, exec (zygote) against tcpserver+cat, and a held child's PSS", async (t) => {
  const { results } = fakeReport({ quick: false })
  t.match(byId(results, 'zygote-p50-c1'), { measured: 6.1, limit: 8, met: true })
  t.match(byId(results, 'exec-zygote-rate'), { unit: 'conn/s', measured: 900, limit: 750, met: true })
  const slowExec = results.map((r) => (r.model === 'exec (zygote)' && r.scenario === 'connrate' ? { ...r, connsPerSec: 700 } : r))
  t.match(byId(slowExec, 'exec-zygote-rate'), { measured: 700, met: false })
  // From the row with the most connections held (40, where 10 held would miss), in MiB.
  const pss = byId(results, 'zygote-child-pss')
  t.match(pss, { unit: 'MiB', comparison: '<=', measured: 2.54, limit: 3, met: true })
  t.match(pss?.text, /\(40 idle conns\)/)
  const noChildren = results.map((r) => (r.model === 'fork (zygote)' && r.scenario === 'memory' ? { ...r, perChildKB: null, reason: 'no connection was held (40 failed)' } : r))
  t.match(byId(noChildren, 'zygote-child-pss'), { measured: null, met: null, reason: /^fork \(zygote\) memory 40 conns: no connection was held/ })
})

t.test('without the native addon every zygote target says the zygote was skipped, and why', async (t) => {
  const { results } = fakeReport({ quick: false })
  const reason = 'the native addon is not built (no dist/native/forkserver.node)'
  const skipped: Result[] = [
    ...results.filter((r) => r.model !== 'fork (zygote)' && r.model !== 'exec (zygote)'),
    { model: 'fork (zygote)', scenario: 'skipped', reason },
    { model: 'exec (zygote)', scenario: 'skipped', reason },
  ]
  for (const id of ['zygote-rate', 'zygote-p50-c1', 'exec-zygote-rate', 'zygote-child-pss', 'zygote-vs-python']) {
    const target = byId([...skipped, fork8At(25)], id)
    t.match(target, { measured: null, limit: null, met: null }, id)
    t.match(target?.reason, /(fork|exec) \(zygote\) skipped: the native addon is not built/, `${id}: why`)
  }
})

const zygoteSpares1 = (p50Ms: number): ConnRateResult => ({
  model: 'fork (zygote)+spares', scenario: 'connrate', concurrency: 1, connsPerSec: 300, p50Ms, p90Ms: p50Ms * 2, p99Ms: p50Ms * 3,
  errors: 0, connections: 1200, seconds: 4, loadgenCpuPct: 20, loadgenBound: false, parentCpuMsPerConn: 0.4, spares: 4,
})
const python1 = (p50Ms: number): ConnRateResult => ({
  model: 'python-forking', scenario: 'connrate', concurrency: 1, connsPerSec: 700, p50Ms, p90Ms: p50Ms * 2, p99Ms: p50Ms * 3,
  errors: 0, connections: 2800, seconds: 4, loadgenCpuPct: 30, loadgenBound: false,
})

t.test("the zygote's rate is judged against node-fork's, the floor measured in the same run: 0.9× or more", async (t) => {
  const { results } = fakeReport({ quick: false })
  // fork (zygote) 400, node-fork 420 conn/s at c=8 in the report.
  t.match(byId(results, 'zygote-vs-floor'), { unit: '×', comparison: '>=', measured: 0.95, limit: 0.9, met: true })
  const faster = results.map((r) => (r.model === 'node-fork' && r.scenario === 'connrate' ? { ...r, connsPerSec: 500 } : r))
  t.match(byId(faster, 'zygote-vs-floor'), { measured: 0.8, met: false })
  const reason = 'the native addon is not built (no dist/native/forkserver.node)'
  const skipped: Result[] = [...results.filter((r) => r.model !== 'node-fork'), { model: 'node-fork', scenario: 'skipped', reason }]
  t.match(byId(skipped, 'zygote-vs-floor'), { measured: null, met: null, reason: `node-fork skipped: ${reason}` })
})

t.test("with --spares 4 the zygote's p50 at c=1 is judged against python-forking's in the same run, and a refusal says so", async (t) => {
  const { results } = fakeReport({ quick: false })
  t.match(byId([...results, zygoteSpares1(0.9), python1(1.1)], 'zygote-spares-p50-c1'), { unit: 'ms', measured: 0.9, limit: 1.1, met: true })
  t.match(byId([...results, zygoteSpares1(1.5), python1(1.1)], 'zygote-spares-p50-c1'), { measured: 1.5, limit: 1.1, met: false })
  t.match(byId([...results, zygoteSpares1(0.9), python1(1.1)], 'zygote-spares-p50-c1')?.text, /^fork \(zygote\)\+spares \(4\) p50Ms \(c=1\) ≤ python-forking p50Ms \(c=1\)$/)
  const refusal = 'the server refuses --spares with --start zygote (forkserver: --spares cannot be given with --start zygote)'
  const refused: Result[] = [...results, python1(1.1), { model: 'fork (zygote)+spares', scenario: 'skipped', reason: refusal }]
  t.match(byId(refused, 'zygote-spares-p50-c1'), { measured: null, limit: null, met: null, reason: `fork (zygote)+spares skipped: ${refusal}` })
})

t.test("c-fork's rate at c=8 is printed with the targets, never judged: this host's fork loop", async (t) => {
  const { results } = fakeReport({ quick: false })
  const c8: ConnRateResult = { ...python1(1), model: 'c-fork', concurrency: 8, connsPerSec: 7364 }
  const withC = [...results.filter((r) => r.model !== 'c-fork'), c8]
  t.match(byId(withC, 'host-c-fork'), { unit: 'conn/s', comparison: null, measured: 7364, limit: null, met: null })
  t.match(byId(results, 'host-c-fork'), { measured: null, met: null, reason: 'c-fork skipped: no cc | on this machine' })
})
