// The picture at the top of the README: forkserver's processes, and the path
// of one connection's socket from accept to exit, for each way a connection
// is served. One band per way, drawn as a sequence: a column per process, a
// row per step. `make pictures` writes it to docs/pictures/processes.svg;
// test/documents.ts fails when that file is not what this draws.
import { arrow, box, circle, line, svg, text, widthOf } from './svg.js'

type Role = 'client' | 'parent' | 'child' | 'zygote' | 'worker'
/** What an arrow carries: the client's socket, the listening socket, or a message on the IPC channel. */
type Ink = 'socket' | 'listener' | 'message'

interface Lane {
  readonly column: number
  readonly name: string
  readonly detail: string
  readonly role: Role
  /** Forked ahead of any connection (--spares): drawn dashed. */
  readonly ahead?: boolean
}

type Step =
  | { readonly from: number; readonly to: number; readonly ink: Ink; readonly label: string; readonly both?: boolean }
  | { readonly at: number; readonly ink: Ink; readonly label: string }

interface Band {
  readonly title: string
  readonly lanes: readonly Lane[]
  readonly steps: readonly Step[]
  /** Words under a lane that takes no step. */
  readonly aside?: { readonly column: number; readonly lines: readonly string[] }
}

const ROLES: Record<Role, { fill: string; stroke: string }> = {
  client: { fill: '#f3f4f6', stroke: '#4b5563' },
  parent: { fill: '#dbeafe', stroke: '#1d4ed8' },
  child: { fill: '#dcfce7', stroke: '#15803d' },
  zygote: { fill: '#fef3c7', stroke: '#b45309' },
  worker: { fill: '#ede9fe', stroke: '#6d28d9' },
}
const INKS: Record<Ink, { color: string; width: number }> = {
  socket: { color: '#ea580c', width: 2.5 },
  listener: { color: '#1d4ed8', width: 2.5 },
  message: { color: '#6b7280', width: 1.5 },
}

const client: Lane = { column: 0, name: 'client', detail: '`nc -N 127.0.0.1 7000`', role: 'client' }
const parent: Lane = { column: 1, name: 'parent', detail: '`node dist/server.js`', role: 'parent' }

export const BANDS: readonly Band[] = [
  {
    title: '`--start spawn` (the default): a fresh Node per connection',
    lanes: [
      client,
      parent,
      { column: 2, name: 'child', detail: 'a new Node: `dist/child.js`', role: 'child' },
      { column: 3, name: 'spares', detail: '`--spares N`', role: 'child', ahead: true },
    ],
    steps: [
      { from: 0, to: 1, ink: 'socket', label: 'connect; accept (paused)' },
      { from: 1, to: 2, ink: 'message', label: '`child_process.fork`: a new Node boots' },
      { from: 1, to: 2, ink: 'socket', label: '`serve` + the socket (SCM_RIGHTS)' },
      { from: 2, to: 1, ink: 'message', label: '`taken`' },
      { at: 1, ink: 'socket', label: 'closes its copy' },
      { from: 2, to: 0, ink: 'socket', label: 'serves the one connection', both: true },
      { at: 2, ink: 'socket', label: '`process.exit(status)`' },
      { from: 2, to: 1, ink: 'message', label: 'exit: the parent reaps, logs `end`' },
    ],
    aside: {
      column: 3,
      lines: ['children forked ahead,', 'each waiting with the', 'service loaded: for them', 'step 2 came before the', 'accept, and the parent', 'then forks a new spare'],
    },
  },
  {
    title: '`--start zygote`: a real `fork(2)` of a warm Node',
    lanes: [
      client,
      parent,
      { column: 2, name: 'zygote', detail: 'a warm Node, started once', role: 'zygote' },
      { column: 3, name: 'child', detail: 'a copy-on-write copy', role: 'child' },
    ],
    steps: [
      { from: 0, to: 1, ink: 'socket', label: 'connect; accept (paused)' },
      { from: 1, to: 2, ink: 'socket', label: '`fork` + the socket (SCM_RIGHTS)' },
      { from: 2, to: 3, ink: 'socket', label: '`fork(2)`: the copy holds the socket' },
      { from: 2, to: 1, ink: 'message', label: '`forked` (its pid)' },
      { at: 1, ink: 'socket', label: 'closes its copy' },
      { from: 3, to: 0, ink: 'socket', label: 'serves the one connection', both: true },
      { at: 3, ink: 'socket', label: '`_exit(status)`' },
      { at: 2, ink: 'message', label: 'reaps it (`waitpid`)' },
      { from: 2, to: 1, ink: 'message', label: '`exited`: the parent logs `end`' },
    ],
  },
  {
    title: '`--model prefork`: N workers accept for themselves',
    lanes: [
      { ...client, name: 'clients' },
      parent,
      { column: 2, name: 'worker 1', detail: '`dist/child.js`, long-lived', role: 'worker' },
      { column: 3, name: 'worker N', detail: '`dist/child.js`, long-lived', role: 'worker' },
    ],
    steps: [
      { from: 1, to: 2, ink: 'listener', label: '`work` + the listening socket' },
      { from: 1, to: 3, ink: 'listener', label: 'the same to each worker' },
      { at: 1, ink: 'listener', label: 'accepts nothing itself' },
      { from: 0, to: 2, ink: 'socket', label: 'connect; worker 1 accepts', both: true },
      { from: 0, to: 3, ink: 'socket', label: 'connect; worker N accepts', both: true },
      { at: 2, ink: 'socket', label: 'serves many at once' },
      { at: 1, ink: 'message', label: 'replaces, reloads (SIGHUP), drains' },
    ],
  },
]

const WIDTH = 1000
const MARGIN = 24
const COLUMN = (WIDTH - 2 * MARGIN) / 4
const LANE_WIDTH = 200
const LANE_HEIGHT = 44
const ROW = 32
const x = (column: number): number => MARGIN + COLUMN * (column + 0.5)

/** A label on a white ground, so that the lifelines it crosses do not strike through it; a step number before it. */
const label = (cx: number, y: number, step: number, words: string, ink: Ink): string[] => {
  const width = widthOf(words, 13) + 28
  const left = cx - width / 2
  return [
    box(left, y - 12, width, 19, { fill: '#fff', stroke: '#fff', radius: 3 }),
    circle(left + 9, y - 2.5, 8, INKS[ink].color),
    text(left + 9, y + 1.5, String(step), { size: 11, anchor: 'middle', weight: 'bold', fill: '#fff' }),
    text(left + 22, y + 2, words, { size: 13 }),
  ]
}

const drawStep = (step: Step, number: number, y: number): string[] => {
  const ink = INKS[step.ink]
  if ('at' in step) {
    const width = widthOf(step.label, 13) + 36
    return [
      box(x(step.at) - width / 2, y - 13, width, 24, { fill: '#fff', stroke: ink.color, radius: 4 }),
      ...label(x(step.at), y + 1, number, step.label, step.ink).slice(1),
    ]
  }
  const [x1, x2] = [x(step.from), x(step.to)]
  return [arrow(x1, x2, y + 6, ink.color, ink.width, step.both), ...label((x1 + x2) / 2, y - 6, number, step.label, step.ink)]
}

/** One band from its top; returns its elements and its height. */
const drawBand = (band: Band, top: number): { body: string[]; height: number } => {
  const stepsTop = top + 36 + LANE_HEIGHT + 28
  const bottom = stepsTop + ROW * (band.steps.length - 1) + 24
  const body = [text(MARGIN, top + 20, band.title, { size: 15, weight: 'bold' })]
  for (const lane of band.lanes) {
    const role = ROLES[lane.role]
    const boxTop = top + 34
    if (band.aside?.column !== lane.column) body.push(line(x(lane.column), boxTop + LANE_HEIGHT, x(lane.column), bottom, '#9ca3af', true))
    body.push(
      box(x(lane.column) - LANE_WIDTH / 2, boxTop, LANE_WIDTH, LANE_HEIGHT, { ...role, dashed: lane.ahead === true }),
      text(x(lane.column), boxTop + 19, lane.name, { size: 14, anchor: 'middle', weight: 'bold' }),
      text(x(lane.column), boxTop + 37, lane.detail, { size: 12, anchor: 'middle', fill: '#374151' }),
    )
  }
  band.steps.forEach((step, i) => body.push(...drawStep(step, i + 1, stepsTop + ROW * i)))
  if (band.aside !== undefined) {
    const { column, lines } = band.aside
    lines.forEach((words, i) => body.push(text(x(column), stepsTop + 18 * i, words, { size: 13, anchor: 'middle', fill: '#374151' })))
  }
  return { body, height: bottom - top }
}

const legend = (y: number): string[] => {
  const keys: [Ink, string][] = [['socket', "a client's socket"], ['listener', 'the listening socket'], ['message', 'a message on the IPC channel']]
  return keys.flatMap(([ink, words], i) => {
    const left = MARGIN + 250 * i
    return [arrow(left, left + 40, y, INKS[ink].color, INKS[ink].width), text(left + 50, y + 4, words, { size: 13 })]
  })
}

/** The picture, as the SVG file's text. */
export const processes = (): string => {
  const body = [
    text(MARGIN, 32, 'forkserver: its processes, and one connection from accept to exit', { size: 18, weight: 'bold' }),
    ...legend(56),
  ]
  let top = 76
  for (const band of BANDS) {
    body.push(line(MARGIN, top, WIDTH - MARGIN, top, '#d1d5db'))
    const drawn = drawBand(band, top + 8)
    body.push(...drawn.body)
    top += drawn.height + 16
  }
  return svg(WIDTH, top, body)
}
