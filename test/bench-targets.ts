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
  // node-fork runs at 600 conn/s at c=8 and 3.9 ms at c=1 in the report.
  t.match(byId([...results, fork8At(25)], 'floor-rate'), { unit: '×', comparison: null, measured: 24, limit: null, met: null })
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
