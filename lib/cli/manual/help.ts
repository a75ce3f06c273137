// --help, rendered from the option table and the manual's prose to fit the
// terminal: no line is wider than it, and each option shows what it takes
// and its default.
import { DESCRIPTION, ENVIRONMENT, EXAMPLES, EXIT_STATUS, PROGRAM_ENVIRONMENT, SIGNALS, SYNOPSIS, type Entry } from './manual-text.js'
import { OPTION_TABLE, optionLabel, typeNote, type OptionDef } from '../option-table.js'
import { wrap, wrapCommand } from './wrap.js'

/** Narrower than this, the two columns have no room; wider, lines are hard to read. */
export const MIN_WIDTH = 40
export const MAX_WIDTH = 120

/** The terminal's width when stdout is one, else COLUMNS, else 80; kept within MIN_WIDTH and MAX_WIDTH. */
export const helpWidth = (stdout: { readonly isTTY?: boolean; readonly columns?: number }, env: NodeJS.ProcessEnv): number => {
  const columns = env.COLUMNS !== undefined && /^\d+$/.test(env.COLUMNS) ? Number(env.COLUMNS) : 80
  const terminal = stdout.isTTY === true && stdout.columns !== undefined && stdout.columns > 0 ? stdout.columns : null
  return Math.min(MAX_WIDTH, Math.max(MIN_WIDTH, terminal ?? columns))
}

const INDENT = 2
const GAP = 2

/** A row of a two-column list: the term, its text, and a note kept whole when it fits (an option's type and default). */
interface Row {
  readonly term: string
  readonly text: string
  readonly note?: string
}

/** The text, then the note on the same line if it fits whole, else on lines of its own. */
const body = (row: Row, width: number): string[] => {
  const lines = wrap(row.text, width)
  if (row.note === undefined) return lines
  const note = `[${row.note}]`
  const last = lines[lines.length - 1] ?? ''
  if (last.length + 1 + note.length <= width) return [...lines.slice(0, -1), `${last} ${note}`]
  return [...lines, ...wrap(note, width)]
}

/** How wide the terms' column is: as the widest term, within a third or so of the line. */
const termColumn = (rows: readonly Row[], width: number): number => Math.min(Math.max(...rows.map((r) => r.term.length)), Math.floor(width * 0.36))

/** Narrower than this, a row's text goes under its term instead of beside it, indented by STACKED. */
const MIN_TEXT = 30
const STACKED = 10

/** Rows as two columns; a term too wide for its column gets a line to itself. */
const twoColumns = (rows: readonly Row[], width: number, termWidth = termColumn(rows, width)): string[] => {
  const stacked = width - (INDENT + termWidth + GAP) < MIN_TEXT
  const column = stacked ? STACKED : INDENT + termWidth + GAP
  const pad = ' '.repeat(column)
  return rows.flatMap((row) => {
    const text = body(row, width - column)
    if (stacked || row.term.length > termWidth) return [`${' '.repeat(INDENT)}${row.term}`, ...text.map((l) => pad + l)]
    const [first = '', ...rest] = text
    return [`${' '.repeat(INDENT)}${row.term.padEnd(termWidth + GAP)}${first}`, ...rest.map((l) => pad + l)]
  })
}

/** An option's term: the long names line up whether or not a short one comes first. */
const optionRow = (o: OptionDef): Row => ({ term: `${o.alias === undefined ? '    ' : ''}${optionLabel(o)}`, text: o.describe, note: typeNote(o) })

const entryRows = (entries: readonly Entry[]): Row[] => entries.map((e) => ({ term: e.term, text: e.text }))

/** The options, under the heading of each group, in the table's order. */
const optionLines = (width: number): string[] => {
  const groups = [...new Set(OPTION_TABLE.map((o) => o.group))]
  // One column for all the groups, so the descriptions line up down the page.
  const termWidth = termColumn(OPTION_TABLE.map(optionRow), width)
  return groups.flatMap((group) => [
    '',
    ...wrap(`${group}:`, width),
    ...twoColumns(OPTION_TABLE.filter((o) => o.group === group).map(optionRow), width, termWidth),
  ])
}

const exampleLines = (width: number): string[] =>
  EXAMPLES.flatMap((e) => [...wrapCommand(e.command, width, INDENT), ...wrap(e.text, width - 3 * INDENT).map((l) => `${' '.repeat(3 * INDENT)}${l}`)])

/** Each form of the command after `Usage: `, folded under itself when the line is too narrow. */
const synopsisLines = (width: number): string[] => {
  const margin = 'Usage: '.length
  return SYNOPSIS.flatMap((form, i) =>
    wrap(form, width - margin - 2).map((l, j) => `${i === 0 && j === 0 ? 'Usage: ' : ' '.repeat(margin)}${j > 0 ? '  ' : ''}${l}`))
}

/** The whole of --help, `width` columns wide at most, ending in a newline. */
export const renderHelp = (width: number): string => {
  const lines = [
    ...synopsisLines(width),
    '',
    ...DESCRIPTION.slice(0, 2).flatMap((p, i) => [...(i > 0 ? [''] : []), ...wrap(p, width)]),
    ...optionLines(width),
    '',
    'Examples:',
    ...exampleLines(width),
    '',
    'Exit status:',
    ...twoColumns(entryRows(EXIT_STATUS), width),
    '',
    'Signals:',
    ...twoColumns(entryRows(SIGNALS), width),
    '',
    'Environment:',
    ...twoColumns(entryRows(ENVIRONMENT), width),
    '',
    ...wrap("An --exec program's environment is forkserver's, with these for its connection:", width),
    ...twoColumns(entryRows(PROGRAM_ENVIRONMENT), width),
  ]
  return `${lines.map((l) => l.trimEnd()).join('\n')}\n`
}
