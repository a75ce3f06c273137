import t from 'tap'
import { helpWidth, MAX_WIDTH, MIN_WIDTH, renderHelp } from '../../../lib/cli/manual/help.js'
import { OPTION_TABLE, optionLabel, typeNote } from '../../../lib/cli/option-table.js'

/** The help's text with its line breaks and indents made single spaces (none after a |, where a long word may be cut). */
const flat = (help: string): string => help.replace(/\s+/g, ' ').replace(/\| /g, '|')

t.test('the width is the terminal\'s when stdout is one, else COLUMNS, else 80, within bounds', async (t) => {
  t.equal(helpWidth({ isTTY: true, columns: 100 }, { COLUMNS: '60' }), 100, 'the terminal wins over COLUMNS')
  t.equal(helpWidth({ isTTY: false }, { COLUMNS: '60' }), 60)
  t.equal(helpWidth({}, {}), 80)
  t.equal(helpWidth({}, { COLUMNS: 'wide' }), 80, 'a COLUMNS that is not a number is ignored')
  t.equal(helpWidth({ isTTY: true, columns: 0 }, {}), 80, 'a terminal that reports no width')
  t.equal(helpWidth({}, { COLUMNS: '10' }), MIN_WIDTH)
  t.equal(helpWidth({ isTTY: true, columns: 400 }, {}), MAX_WIDTH)
})

t.test('no line of the help is wider than the width asked for', async (t) => {
  for (let width = MIN_WIDTH; width <= MAX_WIDTH; width++) {
    const long = renderHelp(width).split('\n').filter((line) => line.length > width)
    if (long.length > 0) t.fail(`at ${width} columns: ${JSON.stringify(long)}`)
  }
  t.pass(`every width from ${MIN_WIDTH} to ${MAX_WIDTH}`)
})

t.test('every option is listed with what it takes, its type and its default', async (t) => {
  for (const width of [MIN_WIDTH, 80, MAX_WIDTH]) {
    const help = flat(renderHelp(width))
    for (const o of OPTION_TABLE) t.ok(help.includes(optionLabel(o)) && help.includes(`[${typeNote(o)}]`), `${optionLabel(o)} at ${width} columns`)
  }
})

t.test('the help starts with the synopsis and ends with examples, exit status, signals and environment', async (t) => {
  const help = renderHelp(80)
  t.match(help, /^Usage: forkserver \[options\]\n {7}forkserver \[options\] HOST PORT \[PROGRAM \[ARGS\.\.\.\]\]\n {7}forkserver \[options\] --exec -- PROGRAM/)
  const headings = ['Examples:', 'Exit status:', 'Signals:', 'Environment:'].map((h) => help.indexOf(`\n${h}\n`))
  t.ok(headings.every((at) => at > help.indexOf('--version')), 'after the options')
  t.same([...headings].sort((a, b) => a - b), headings, 'in that order')
  for (const word of ['SIGHUP', 'SIGUSR1', 'DEBUG', 'LISTEN_FDS', 'TCPREMOTEIP', '130']) t.ok(help.includes(word), word)
  t.ok(help.endsWith('\n') && !help.endsWith('\n\n'))
})
