// latest.svg: connections/s and p99 latency per model, grouped by
// concurrency, and below them the PSS each held connection adds, grouped by
// how many were held, with the legend beside it. Hand-written SVG. The fork
// model and the rest differ by orders of magnitude, so an axis whose values
// span more than RATIO_FOR_LOG is log. bare-fork (forks of an empty child, no
// connection) is in the rate panel as forks/s; its latency, fork to exit, is
// not an echo's and stays out of the other. A figure that could not be
// measured is drawn as n/a, not as a bar of 0.
import { type BareFork, type BareForkResult, type ConnRateResult, type Figure, type MemoryResult, type ModelName, type Report } from './results.js'
import { quickLabel } from './settings.js'

type Row = ConnRateResult | BareForkResult
type Shown = ModelName | BareFork

// Wide enough for twelve bars a group, each with its figure above it.
export const WIDTH = 1500
const PLOT_TOP = 100
const PLOT_HEIGHT = 280
const PANEL_WIDTH = 650
const PANELS_X = [80, 830] as const
const RATIO_FOR_LOG = 20
const LEGEND_FONT = 13
const LEGEND_SWATCH = 20
const LEGEND_GAP = 28
const LEGEND_LINE = 24
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

/**
 * How wide `body` is drawn at `fontSize`, on the wide side: an SVG cannot
 * measure its text, so the legend is laid out with this. The widths are
 * DejaVu Sans's, rounded up (what sans-serif is on most Linux machines, and
 * wider than Helvetica or Arial).
 */
export const textWidth = (body: string, fontSize: number): number => {
  const em = [...body].reduce((sum, ch) => {
    if (/[ il.,:;'|!]/.test(ch)) return sum + 0.32
    if (/[()[\]fjrt-]/.test(ch)) return sum + 0.42
    if (/[mwMW@%]/.test(ch)) return sum + 0.98
    if (/[A-Z+=<>~]/.test(ch)) return sum + 0.84
    return sum + 0.64
  }, 0)
  return Math.ceil(em * fontSize)
}

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

const scaleFor = (values: readonly Figure[], top: number): Scale => {
  const positive = values.filter((v): v is number => v !== null && Number.isFinite(v) && v > 0)
  const min = positive.length ? Math.min(...positive) : 1
  const max = positive.length ? Math.max(...positive) : 1
  const bottom = top + PLOT_HEIGHT
  if (max / min > RATIO_FOR_LOG) {
    const lo = Math.floor(Math.log10(min))
    const hi = Math.max(lo + 1, Math.ceil(Math.log10(max)))
    const ticks = Array.from({ length: hi - lo + 1 }, (_, i) => 10 ** (lo + i))
    const y = (v: number): number => bottom - ((Math.log10(Math.max(v, 10 ** lo)) - lo) / (hi - lo)) * PLOT_HEIGHT
    return { y, ticks, log: true }
  }
  // Linear from zero, up to a round number.
  const step = 10 ** Math.floor(Math.log10(max)) / 2
  const high = Math.max(step, Math.ceil((max * 1.05) / step) * step)
  const ticks = Array.from({ length: Math.round(high / step) + 1 }, (_, i) => i * step).filter((_, i, all) => all.length <= 8 || i % 2 === 0)
  return { y: (v) => bottom - (Math.max(0, v) / high) * PLOT_HEIGHT, ticks, log: false }
}

/** One bar: its figure, and whether the load generator was probably the limit. */
interface Bar {
  readonly value: Figure
  readonly starred: boolean
}

/** A panel of bars: a group per concurrency (or per number of connections held), a bar per model. */
interface Panel {
  readonly title: string
  readonly groups: readonly number[]
  /** Under each group, and in each bar's tooltip: `c=8`, `40 held`. */
  readonly groupLabel: (group: number) => string
  readonly axisLabel: string
  readonly models: readonly Shown[]
  readonly bar: (model: Shown, group: number) => Bar | undefined
}

const axes = (x0: number, scale: Scale): string[] =>
  scale.ticks.flatMap((tick) => {
    const y = scale.y(tick).toFixed(1)
    return [
      `<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${y}" y2="${y}" stroke="#ddd"/>`,
      text(x0 - 6, Number(y) + 4, compact(tick), 'font-size="11" text-anchor="end" fill="#555"'),
    ]
  })

const drawBar = (x: number, width: number, bottom: number, scale: Scale, model: Shown, tip: string, bar: Bar): string[] => {
  const v = bar.value
  if (v === null || !Number.isFinite(v)) return [text(x + width / 2, bottom - 4, 'n/a', `font-size="9" text-anchor="middle" fill="${COLORS[model]}"`)]
  const y = scale.y(v)
  return [
    `<rect x="${(x + 1).toFixed(1)}" y="${y.toFixed(1)}" width="${(width - 2).toFixed(1)}" height="${Math.max(0, bottom - y).toFixed(1)}" fill="${COLORS[model]}"><title>${esc(`${model}, ${tip}: ${compact(v)}`)}</title></rect>`,
    text(x + width / 2, y - 4, `${compact(v)}${bar.starred ? '*' : ''}`, 'font-size="9" text-anchor="middle" fill="#222"'),
  ]
}

const panel = (x0: number, top: number, p: Panel): string => {
  const bottom = top + PLOT_HEIGHT
  const scale = scaleFor(p.groups.flatMap((g) => p.models.map((m) => p.bar(m, g)?.value ?? null)), top)
  const out: string[] = [text(x0, top - 22, `${p.title}${scale.log ? ' (log scale)' : ''}`, 'font-size="14" font-weight="bold"'), ...axes(x0, scale)]
  out.push(`<line x1="${x0}" x2="${x0 + PANEL_WIDTH}" y1="${bottom}" y2="${bottom}" stroke="#333"/>`)
  const groupWidth = PANEL_WIDTH / Math.max(1, p.groups.length)
  const barWidth = Math.min(40, (groupWidth - 16) / Math.max(1, p.models.length))
  p.groups.forEach((g, i) => {
    const groupX = x0 + i * groupWidth + (groupWidth - barWidth * p.models.length) / 2
    p.models.forEach((model, j) => {
      const bar = p.bar(model, g)
      if (bar !== undefined) out.push(...drawBar(groupX + j * barWidth, barWidth, bottom, scale, model, p.groupLabel(g), bar))
    })
    out.push(text(x0 + i * groupWidth + groupWidth / 2, bottom + 18, p.groupLabel(g), 'font-size="12" text-anchor="middle"'))
  })
  out.push(text(x0 + PANEL_WIDTH / 2, bottom + 36, p.axisLabel, 'font-size="11" text-anchor="middle" fill="#555"'))
  return out.join('\n')
}

export interface LegendEntry {
  readonly model: Shown
  readonly label: string
  /** The swatch's left edge and the text's baseline. */
  readonly x: number
  readonly y: number
}

/** Entries left to right, each as wide as its label, on a new line when the next would pass `right`. */
export const layoutLegend = (labels: readonly (readonly [Shown, string])[], left: number, right: number, top: number): LegendEntry[] => {
  let x = left
  let y = top
  return labels.map(([model, label]) => {
    const width = LEGEND_SWATCH + textWidth(label, LEGEND_FONT)
    if (x > left && x + width > right) {
      x = left
      y += LEGEND_LINE
    }
    const entry = { model, label, x, y }
    x += width + LEGEND_GAP
    return entry
  })
}

const legendSvg = (entries: readonly LegendEntry[]): string[] =>
  entries.map((e) => `<rect x="${e.x.toFixed(1)}" y="${e.y - 11}" width="14" height="14" fill="${COLORS[e.model]}"/>` + text(e.x + LEGEND_SWATCH, e.y, e.label, `font-size="${LEGEND_FONT}"`))

const connratePanels = (report: Report, models: readonly Shown[]): [Panel, Panel] => {
  const rows = report.results.filter((r): r is Row => r.scenario === 'connrate')
  const groups = [...new Set(rows.map((r) => r.concurrency))].sort((a, b) => a - b)
  const find = (model: Shown, c: number): Row | undefined => rows.find((r) => r.model === model && r.concurrency === c)
  const shared = { groups, groupLabel: (c: number) => `c=${c}`, axisLabel: 'concurrent clients' }
  const rate: Panel = {
    ...shared,
    title: 'connections per second',
    models,
    bar: (m, c) => {
      const r = find(m, c)
      return r && { value: r.connsPerSec, starred: 'loadgenBound' in r && r.loadgenBound }
    },
  }
  const p99: Panel = {
    ...shared,
    title: 'p99 latency, ms',
    models: models.filter((m) => m !== 'bare-fork'),
    bar: (m, c) => {
      const r = find(m, c)
      return r && r.model !== 'bare-fork' ? { value: r.p99Ms, starred: 'loadgenBound' in r && r.loadgenBound } : undefined
    },
  }
  return [rate, p99]
}

/** PSS per held connection, MiB: the growth of the server's tree over none held, per connection held. */
const memoryPanel = (report: Report): Panel => {
  const rows = report.results.filter((r): r is MemoryResult => r.scenario === 'memory')
  const groups = [...new Set(rows.map((r) => r.connections))].sort((a, b) => a - b)
  return {
    title: 'PSS per held connection, MiB',
    groups,
    groupLabel: (n) => `${n} held`,
    axisLabel: 'idle connections held',
    models: ORDER.filter((m) => rows.some((r) => r.model === m)),
    bar: (m, n) => {
      const r = rows.find((row) => row.model === m && row.connections === n)
      return r && { value: r.perConnKB === null ? null : r.perConnKB / 1024, starred: false }
    },
  }
}

const notesOf = (report: Report, shown: readonly Shown[]): string[] => {
  const echoRows = report.results.filter((r): r is ConnRateResult => r.scenario === 'connrate' && r.model !== 'bare-fork')
  const notRun = report.results.flatMap((r) => (r.scenario === 'skipped' || r.scenario === 'failed' ? [`${r.model} (${r.reason.split('\n')[0]})`] : []))
  const unmeasured = echoRows.flatMap((r) => (r.reason ? [`${r.model} c=${r.concurrency} (${r.reason})`] : []))
  return [
    echoRows.some((r) => r.loadgenBound) ? '* the load generator used over 90% of a core: the server may be faster than shown' : '',
    shown.includes('bare-fork')
      ? 'bare-fork: no server; a process forking empty children C at a time, shown as forks/s (its latency, fork to exit, is not in the p99 panel)'
      : '',
    unmeasured.length ? `n/a, not measured: ${unmeasured.join('; ')}` : '',
    notRun.length ? `not run: ${notRun.join('; ')}` : '',
  ].filter(Boolean)
}

/** Each model shown, with its --spares where it ran with some: `fork+spares (8)`. */
const legendLabels = (report: Report, shown: readonly Shown[]): [Shown, string][] =>
  shown.map((m) => {
    const spares = report.results.find((r) => r.model === m && 'spares' in r && r.spares !== undefined)
    return [m, spares !== undefined && 'spares' in spares ? `${m} (${spares.spares})` : m]
  })

const watermark = (label: string, y: number): string =>
  text(WIDTH / 2, y, label, `font-size="40" font-weight="bold" text-anchor="middle" fill="${COLORS.fork}" opacity="0.3" transform="rotate(-12 ${WIDTH / 2} ${y})"`)

export const chart = (report: Report): string => {
  const connrate = report.results.filter((r) => r.scenario === 'connrate')
  const models = ORDER.filter((m) => connrate.some((r) => r.model === m))
  const memory = memoryPanel(report)
  const shown = ORDER.filter((m) => models.includes(m) || memory.models.includes(m))
  const [rate, p99] = connratePanels(report, models)
  const quick = quickLabel(report.settings)
  // Row 2: the memory panel, and the legend, which serves all three, beside it.
  const top2 = PLOT_TOP + PLOT_HEIGHT + 36 + 70
  const legend = layoutLegend(legendLabels(report, shown), PANELS_X[1], WIDTH - 20, top2)
  const bottom2 = Math.max(top2 + PLOT_HEIGHT + 36, (legend.at(-1)?.y ?? top2) + 10)
  const notes = notesOf(report, shown)
  const height = bottom2 + 34 + notes.length * 16
  const title = 'forkserver bench: short connections (connect, 64-byte echo, close) on 127.0.0.1'
  const { machine } = report
  const middle = PLOT_TOP + PLOT_HEIGHT / 2
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<title>${esc(quick ? `${title} — ${quick}` : title)}</title>`,
    `<rect width="${WIDTH}" height="${height}" fill="#fff"/>`,
    text(PANELS_X[0], 30, quick ? `QUICK run: ${title}` : title, `font-size="17" font-weight="bold"${quick ? ` fill="${COLORS.fork}"` : ''}`),
    text(PANELS_X[0], 52, `latency: connect to the last echoed byte. ${machine.cpuCount} × ${machine.cpuModel}, Node ${machine.node}, ${machine.date}`, 'font-size="12" fill="#555"'),
    panel(PANELS_X[0], PLOT_TOP, rate),
    panel(PANELS_X[1], PLOT_TOP, p99),
    ...(memory.groups.length > 0 ? [panel(PANELS_X[0], top2, memory)] : []),
    ...legendSvg(legend),
    ...notes.map((n, i) => text(PANELS_X[0], bottom2 + 34 + i * 16, n.length > 180 ? `${n.slice(0, 177)}...` : n, 'font-size="11" fill="#555"')),
    // Across both rows, so that not even a cropped quick chart passes for a result.
    ...(quick ? [middle, top2 + PLOT_HEIGHT / 2].map((y) => watermark(quick, y)) : []),
    '</svg>',
    '',
  ].join('\n')
}
