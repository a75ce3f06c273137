import t from 'tap'
import { chart } from '../bench/chart.js'
import { fakeReport, UNMEASURED_REASON } from './fixtures/bench-report.js'

const QUICK = 'QUICK run (5 samples): not a result'
const texts = (svg: string): string[] => [...svg.matchAll(/<text [^>]*>([^<]*)<\/text>/g)].map((m) => m[1] ?? '')
const bars = (svg: string): string[] => [...svg.matchAll(/<rect [^>]*><title>([^<]*)<\/title><\/rect>/g)].map((m) => m[1] ?? '')

t.test("a quick run's chart says QUICK in its title, its heading and across the plots", async (t) => {
  const svg = chart(fakeReport({ quick: true }))
  t.match(svg, new RegExp(`<title>forkserver bench: [^<]* — ${QUICK.replace(/[()]/g, '\\$&')}</title>`))
  const all = texts(svg)
  t.ok(all.some((x) => x.startsWith('QUICK run: forkserver bench')), 'the visible title')
  t.ok(all.includes(QUICK), 'the label over the plots')
})

t.test('a full run chart says nothing of QUICK', async (t) => {
  const svg = chart(fakeReport({ quick: false }))
  t.notMatch(svg, /QUICK/)
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\n$/)
})

t.test('an unmeasured figure is drawn n/a, not as a bar of 0, and the notes say why', async (t) => {
  const svg = chart(fakeReport({ quick: true, unmeasured: true }))
  const drawn = bars(svg)
  t.ok(drawn.includes('fork, c=1: 14'), 'a measured bar')
  t.ok(drawn.includes('prefork, c=8: 11k'), 'another')
  t.notOk(drawn.some((b) => b.startsWith('fork, c=8')), 'no bar for fork at c=8')
  const all = texts(svg)
  t.equal(all.filter((x) => x === 'n/a').length, 2, 'n/a in the rate panel and in the latency panel')
  t.ok(all.some((x) => x.includes(`n/a, not measured: fork c=8 (${UNMEASURED_REASON})`)), 'the note')
  t.ok(all.some((x) => x.startsWith('not run: c-fork (no cc')), 'a skipped model is noted too')
  t.ok(all.includes('11k*'), 'a load-generator-bound figure is starred')
})

t.test('figures far apart are drawn on a log scale, close ones on a linear scale from 0', async (t) => {
  const wide = fakeReport({ quick: false })
  t.ok(texts(chart(wide)).includes('connections per second (log scale)'))
  const narrow = { ...wide, results: wide.results.filter((r) => r.model === 'fork' || r.model === 'bare-fork') }
  const all = texts(chart(narrow))
  t.ok(all.includes('connections per second'), 'fork and bare-fork alone: linear')
  t.ok(all.includes('0'), 'from 0')
  t.ok(all.includes('p99 latency, ms'))
})
