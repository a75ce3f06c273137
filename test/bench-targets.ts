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
