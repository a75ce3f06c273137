import t from 'tap'
import { chart, ORDER } from '../bench/chart.js'
import { MODELS } from '../bench/results.js'
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

t.test("the zygote's rows are drawn beside their floor (node-fork), python-forking, tcpserver+cat and c-fork, each in its own colour", async (t) => {
  const svg = chart(fakeReport({ quick: false }))
  // Bars are drawn left to right: document order is their order in a group. The rate panel comes first.
  const c8 = bars(svg.slice(0, svg.indexOf('p99 latency, ms'))).filter((b) => b.includes(', c=8: '))
  t.same(c8.slice(-5), ['fork (zygote), c=8: 400', 'exec (zygote), c=8: 900', 'node-fork, c=8: 420', 'python-forking, c=8: 1346', 'tcpserver+cat, c=8: 1500'])
  t.ok(c8.indexOf('prefork, c=8: 11k') < c8.indexOf('fork (zygote), c=8: 400'), 'after the models that serve many connections per process')
  const legend = texts(svg)
  for (const label of ['fork (zygote)', 'exec (zygote)', 'node-fork', 'tcpserver+cat']) t.ok(legend.includes(label), `${label} in the legend`)
  const fills = (model: string): string[] => [...svg.matchAll(/<rect [^>]*fill="(#[0-9a-f]{6})"><title>([^<]*)<\/title>/g)].filter((m) => m[2]?.startsWith(`${model}, `)).map((m) => m[1] ?? '')
  const colours = ['fork (zygote)', 'exec (zygote)', 'node-fork', 'python-forking', 'tcpserver+cat', 'prefork'].map((m) => fills(m)[0])
  t.equal(new Set(colours).size, colours.length, 'a colour of its own each')
})

t.test('every model, and bare-fork, has one place in the chart', async (t) => {
  t.same([...ORDER].sort(), [...MODELS, 'bare-fork'].sort())
  t.equal(new Set(ORDER).size, ORDER.length)
})
