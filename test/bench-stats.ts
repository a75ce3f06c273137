import t from 'tap'
import { ascending, figure, mean, per, percentile, round } from '../bench/stats.js'

t.test('percentiles are nearest-rank over sorted samples, NaN with none', async (t) => {
  const sorted = ascending([5, 1, 4, 2, 3])
  t.same(sorted, [1, 2, 3, 4, 5])
  t.equal(percentile(sorted, 50), 3)
  t.equal(percentile(sorted, 99), 5)
  t.equal(percentile(sorted, 0), 1)
  t.ok(Number.isNaN(percentile([], 50)))
  t.equal(mean([1, 2, 6]), 3)
  t.ok(Number.isNaN(mean([])))
})

t.test('a figure is rounded, and null (never 0) when there was nothing to measure', async (t) => {
  t.equal(round(1.23456, 2), 1.23)
  t.equal(figure(1.23456, 3), 1.235)
  t.equal(figure(NaN, 3), null)
  t.equal(figure(Infinity, 3), null)
  t.equal(figure(0, 3), 0, 'a measured 0 stays 0')
  t.equal(per(30, 4, 1), 7.5)
  t.equal(per(30, 0, 1), null, 'nothing completed: no figure per completion')
  t.equal(per(0, 4, 1), 0)
})
