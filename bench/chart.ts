// latest.svg: connections/s and p99 latency per model, grouped by
// concurrency. Hand-written SVG. The fork model and the rest differ by orders
// of magnitude, so an axis whose values span more than RATIO_FOR_LOG is log.
// bare-fork (forks of an empty child, no connection) is in the rate panel as
// forks/s; its latency, fork to exit, is not an echo's and stays out of the other.
// A figure that could not be measured is drawn as n/a, not as a bar of 0.
import { type BareFork, type BareForkResult, type ConnRateResult, type Figure, type ModelName, type Report } from './results.js'
import { quickLabel } from './settings.js'

type Row = ConnRateResult | BareForkResult
type Shown = ModelName | BareFork

// Wide enough for eleven bars a group, each with its figure above it.
const WIDTH = 1500
const HEIGHT = 520
const PLOT_TOP = 100
const PLOT_BOTTOM = 380
const PANEL_WIDTH = 650
const PANELS_X = [80, 830] as const
const RATIO_FOR_LOG = 20
/**
 * Left to right in each group: the models that start a Node per connection
 * with bare-fork, which bounds them; the two that serve many connections per
 * process; then those that fork(2) a warm process, the zygote's beside
 * node-fork, which bounds them, and the peers they are measured against:
 * python-forking, tcpserver+cat and c-fork.
 */
export const ORDER: readonly Shown[] = [
  'fork',
  'fork+spares',
  'exec',
  'bare-fork',
  'prefork',
  'node-single',
  'fork (zygote)',
  'fork (zygote)+spares',
  'exec (zygote)',
  'node-fork',
  'python-forking',
  'tcpserver+cat',
  'c-fork',
]

const COLORS: Record<Shown, string> = {
  fork: '#d62728',
  'fork+spares': '#ff7f0e',
  exec: '#8c564b',
  'bare-fork': '#e377c2',
  prefork: '#1f77b4',
  'node-single': '#2ca02c',
  'fork (zygote)': '#bcbd22',
  'fork (zygote)+spares': '#637939',
  'exec (zygote)': '#17becf',
  'node-fork': '#dbdb8d',
  'python-forking': '#9467bd',
  'tcpserver+cat': '#393b79',
  'c-fork': '#7f7f7f',
}

const esc = (text: string): string =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

const text = (x: number, y: number, body: string, attrs = ''): string =>
  `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" ${attrs}>${esc(body)}</text>`

/** 0.35, 41, 980, 12k: a label must fit over a bar about 23 px wide. */
const compact = (x: number): string => {
  if (x >= 10_000) return `${Number((x / 1000).toPrecision(2))}k`
  if (x >= 100) return String(Math.round(x))
  return String(Number(x.toPrecision(2)))
}

interface Scale {
  readonly y: (value: number) => number
  readonly ticks: readonly number[]
  readonly log: boolean
}

const scaleFor = (values: readonly Figure[]): Scale => {
  const positive = values.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)
  const min = positive.length ? Math.min(...positive) : 1
  const max = positive.length ? Math.max(...positive) : 1
  const span = PLOT_BOTTOM - PLOT_TOP
  if (max / min > RATIO_FOR_LOG) {
    const lo = Math.floor(Math.log10(min))
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)))
    const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i))
    const y = (v: number): number => PLOT_BOTTOM - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * span
    return { y, ticks, log: true }
  }
  // Linear from zero, up to a round number.
  const step = 10 ** Math.floor(Math.log10(max)) / 2
  const top = Math.max(step, Math.ceil((max * 1.05) / step) * step)
  const ticks = Array.from({ length: Math.round(top / step) + 1 }, (_, i) => i * step).filter((_, i, all) => all.length <= 8 || i % 2 === 0)
  return { y: (v) => PLOT_BOTTOM - (Math.max(0, v) / top) * span, ticks, log: false }
}

const panel = (
  x0: number,
  title: string,
  rows: readonly Row[],
  models: readonly Shown[],
  concurrencies: readonly number[],
  value: (r: Row) => Figure,
): string => {
  const scale = scaleFor(rows.map(value))
  const out: string[] = [text(x0, PLOT_TOP - 22, `${title}${scale.log ? ' (log scale)' : ''}`, 'font-size="14" font-weight="bold"')]
  for (const tick of scale.ticks) {
    const y = scale.y(tick)
    out.push(`<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${y.toFixed(1)}" y2="${y.toFixed(1)}" stroke="#ddd"/>`)
    out.push(text(x0 - 6, y + 4, compact(tick), 'font-size="11" text-anchor="end" fill="#555"'))
  }
  out.push(`<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${PLOT_BOTTOM}" y2="${PLOT_BOTTOM}" stroke="#333"/>`)
  const groupWidth = PANEL_WIDTH / Math.max(1, concurrencies.length)
  const barWidth = Math.min(40, (groupWidth - 16) / Math.max(1, models.length))
  concurrencies.forEach((c, g) => {
    const groupX = x0 + g * groupWidth + (groupWidth - barWidth * models.length) / 2
    models.forEach((model, i) => {
      const r = rows.find((row) => row.model === model && row.concurrency === c)
      if (!r) return
      const v = value(r)
      const x = groupX + i * barWidth
      if (v === null || !Number.isFinite(v)) {
        out.push(text(x + barWidth / 2, PLOT_BOTTOM - 4, 'n/a', `font-size="9" text-anchor="middle" fill="${COLORS[model]}"`))
        return
      }
      const y = scale.y(v)
      out.push(
        `<rect x="${(x + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${Math.max(0, PLOT_BOTTOM - y).toFixed(1)}" fill="${COLORS[model]}"><title>${esc(`${model}, c=${c}: ${compact(v)}`)}</title></rect>`,
      )
      const bound = 'loadgenBound' in r && r.loadgenBound
      out.push(text(x + barWidth / 2, y - 4, `${compact(v)}${bound ? '*' : ''}`, 'font-size="9" text-anchor="middle" fill="#222"'))
    })
    out.push(text(x0 + g * groupWidth + groupWidth / 2, PLOT_BOTTOM + 18, `c=${c}`, 'font-size="12" text-anchor="middle"'))
  })
  out.push(text(x0 + PANEL_WIDTH / 2, PLOT_BOTTOM + 36, 'concurrent clients', 'font-size="11" text-anchor="middle" fill="#555"'))
  return out.join('\n')
}

export const chart = (report: Report): string => {
  const rows = report.results.filter((r): r is Row => r.scenario === 'connrate')
  const echoRows = rows.filter((r): r is ConnRateResult => r.model !== 'bare-fork')
  const models = ORDER.filter((m) => rows.some((r) => r.model === m))
  const echoModels = models.filter((m) => m !== 'bare-fork')
  const concurrencies = [...new Set(rows.map((r) => r.concurrency))].sort((a, b) => a - b)
  const { machine } = report
  const notRun = report.results.flatMap((r) => (r.scenario === 'skipped' || r.scenario === 'failed' ? [`${r.model} (${r.reason.split('\n')[0]})`] : []))
  const unmeasured = echoRows.flatMap((r) => (r.reason ? [`${r.model} c=${r.concurrency} (${r.reason})`] : []))
  const quick = quickLabel(report.settings)
  const legendY = PLOT_BOTTOM + 70
  const spacing = Math.min(170, (WIDTH - PANELS_X[0] - 20) / Math.max(1, models.length))
  const legend = models.map((m, i) => {
    const x = PANELS_X[0] + i * spacing
    const spares = echoRows.find((r) => r.model === m && r.spares !== undefined)?.spares
    const label = spares === undefined ? m : `${m} (${spares})`
    return `<rect x="${x.toFixed(1)}" y="${legendY - 11}" width="14" height="14" fill="${COLORS[m]}"/>` + text(x + 20, legendY, label, 'font-size="13"')
  })
  const notes = [
    echoRows.some((r) => r.loadgenBound) ? '* the load generator used over 90% of a core: the server may be faster than shown' : '',
    models.includes('bare-fork')
      ? 'bare-fork: no server; a process forking empty children C at a time, shown as forks/s (its latency, fork to exit, is not in the p99 panel)'
      : '',
    unmeasured.length ? `n/a, not measured: ${unmeasured.join('; ')}` : '',
    notRun.length ? `not run: ${notRun.join('; ')}` : '',
  ].filter(Boolean)
  // Taller when the notes need it.
  const height = Math.max(HEIGHT, legendY + 28 + notes.length * 16)
  const title = 'forkserver bench: short connections (connect, 64-byte echo, close) on 127.0.0.1'
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${esc(quick ? `${title} — ${quick}` : title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    text(PANELS_X[0], 30, quick ? `QUICK run: ${title}` : title, `font-size="17" font-weight="bold"${quick ? ` fill="${COLORS.fork}"` : ''}`),
    text(
      PANELS_X[0],
      52,
      `latency: connect to the last echoed byte. ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, ${machine.date}`,
      'font-size="12" fill="#555"',
    ),
    panel(PANELS_X[0], 'connections per second', rows, models, concurrencies, (r) => r.connsPerSec),
    panel(PANELS_X[1], 'p99 latency, ms', echoRows, echoModels, concurrencies, (r) => r.p99Ms),
    ...legend,
    ...notes.map((n, i) => text(PANELS_X[0], legendY + 28 + i * 16, n.length > 180 ? `${n.slice(0, 177)}...` : n, 'font-size="11" fill="#555"')),
    // Across both panels, so that not even a cropped quick chart passes for a result.
    ...(quick ? [text(WIDTH / 2, (PLOT_TOP + PLOT_BOTTOM) / 2, quick, `font-size="40" font-weight="bold" text-anchor="middle" fill="${COLORS.fork}" opacity="0.3" transform="rotate(-12 ${WIDTH / 2} ${(PLOT_TOP + PLOT_BOTTOM) / 2})"`)] : []),
    '</svg>',
    '',
  ].join('\n')
}
