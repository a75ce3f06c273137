import t from 'tap'
import { chart, layoutLegend, ORDER, textWidth, WIDTH } from '../bench/chart.js'
import { MODELS, type Report, type Result } from '../bench/results.js'
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
  t.equal(all.filter((x) => x === 'n/a').length, 3, 'n/a in the rate panel, the latency panel and the memory panel')
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

/** Every model in ORDER at c=1, 8 and 32, the spares ones with their --spares, and a memory row each but bare-fork's. */
const everyModel = (): Report => {
  const base = fakeReport({ quick: false })
  const results: Result[] = ORDER.flatMap((model): Result[] =>
    [1, 8, 32].flatMap((concurrency): Result[] => {
      const common = { concurrency, p50Ms: 5, p90Ms: 6, p99Ms: 7, errors: 0, connections: 400, seconds: 4 }
      if (model === 'bare-fork') return [{ model, scenario: 'connrate', connsPerSec: 30, ...common, parentCpuMsPerFork: 1.5 }]
      const spares = model === 'fork+spares' ? { spares: 8 } : model === 'fork (zygote)+spares' ? { spares: 4 } : {}
      return [{ model, scenario: 'connrate', connsPerSec: 100, ...common, loadgenCpuPct: 10, loadgenBound: false, ...spares }]
    }),
  )
  const memory: Result[] = MODELS.map((model) => ({ model, scenario: 'memory', connections: 40, pssMB: 50, idlePssMB: 10, perConnKB: 1024, processes: 41, errors: 0 }))
  return { ...base, results: [...results, ...memory] }
}

/** The legend's entries as drawn: the swatch's x, the label, and its baseline. */
const legendOf = (svg: string): { x: number; y: number; label: string }[] =>
  [...svg.matchAll(/<rect x="([\d.]+)" y="[\d.-]+" width="14" height="14" fill="#[0-9a-f]{6}"\/><text x="[\d.]+" y="([\d.]+)" font-size="13">([^<]*)<\/text>/g)].map((m) => ({
    x: Number(m[1]),
    y: Number(m[2]),
    label: m[3] ?? '',
  }))

t.test('the legend names every model shown, in full, the spares with their count, each label inside the chart and clear of the next', async (t) => {
  const svg = chart(everyModel())
  const legend = legendOf(svg)
  t.same(legend.map((e) => e.label), ORDER.map((m) => (m === 'fork+spares' ? 'fork+spares (8)' : m === 'fork (zygote)+spares' ? 'fork (zygote)+spares (4)' : m)))
  const width = Number(/<svg [^>]*width="(\d+)"/.exec(svg)?.[1])
  t.equal(width, WIDTH)
  for (const [i, e] of legend.entries()) {
    const right = e.x + 20 + textWidth(e.label, 13)
    t.ok(right <= width, `${e.label}: ends at ${right}, inside ${width}`)
    const next = legend[i + 1]
    if (next !== undefined && next.y === e.y) t.ok(next.x > right, `${e.label} ends before ${next.label} begins`)
  }
  t.ok(new Set(legend.map((e) => e.y)).size > 1, 'on more than one line')
})

t.test('a legend entry that would pass the right edge goes to the next line, and one too long for any line stands alone', async (t) => {
  const long = 'x'.repeat(80)
  const laid = layoutLegend([['fork', 'fork'], ['prefork', long], ['c-fork', 'c-fork']], 100, 400, 50)
  t.same(laid.map((e) => [e.x, e.y]), [[100, 50], [100, 74], [100, 98]])
  const fits = layoutLegend([['fork', 'fork'], ['c-fork', 'c-fork']], 100, 1000, 50)
  t.same(fits.map((e) => e.y), [50, 50], 'room for both: one line')
  t.ok((fits[1]?.x ?? 0) >= 100 + 20 + textWidth('fork', 13), 'the second after the first')
})

t.test('a text width errs on the wide side of the fonts the chart asks for', async (t) => {
  // DejaVu Sans, the widest of them, draws "fork+spares (8)" 102 px wide at 13 px.
  t.ok(textWidth('fork+spares (8)', 13) >= 102)
  t.ok(textWidth('MMMM', 13) > textWidth('iiii', 13))
  t.equal(textWidth('', 13), 0)
})

t.test('the memory panel draws the PSS each held connection adds, per model, grouped by connections held', async (t) => {
  const svg = chart(fakeReport({ quick: false }))
  t.ok(texts(svg).includes('PSS per held connection, MiB (log scale)'), 'its title: prefork and the fork models are far apart')
  const drawn = bars(svg.slice(svg.indexOf('PSS per held connection')))
  t.ok(drawn.includes('fork (zygote), 40 held: 2.6'), 'the zygote at 40 held (2688 kB)')
  t.ok(drawn.includes('fork (zygote), 10 held: 3.5'), 'and at 10 (3584 kB)')
  t.ok(drawn.includes('prefork, 10 held: 0.02'), 'prefork (20 kB)')
  t.ok(texts(svg).includes('40 held'), 'a group per number held')
  t.notOk(drawn.some((b) => b.includes(', c=')), 'no connection-rate bar in it')
})
