// docs/forkserver.1, written in man(7) macros from the option table and the
// manual's prose, so it says what --help says. `make man` writes it; a test
// fails when the committed page is not what this renders.
import {
  CHILD_STATUS, DESCRIPTION, ENVIRONMENT, EXAMPLES, EXIT_STATUS, ORPHANS, PROGRAM_ENVIRONMENT, SEE_ALSO, SIGNALS, SUMMARY, SYNOPSIS,
  type Entry,
} from './manual-text.js'
import { OPTION_TABLE, typeNote, type OptionDef } from '../option-table.js'

/** Text safe in roff: a backslash is \e, a dash is \- (a minus, as options need), and a line may not begin with a control character. */
export const roffEscape = (text: string): string =>
  text.replace(/\\/g, '\\e').replace(/-/g, '\\-').replace(/^([.'])/gm, '\\&$1')

/** Prose: escaped, with every option (--grace, -v) in bold. */
const prose = (text: string): string =>
  text
    .split(/((?<![\w-])--?[a-z](?:[a-z-]*[a-z])?(?![\w-]))/)
    .map((part, i) => (i % 2 === 1 ? `\\fB${roffEscape(part)}\\fR` : roffEscape(part)))
    .join('')

/** A synopsis line: the command in bold, words in capitals (HOST, PROGRAM) in italics. */
const synopsis = (form: string): string =>
  roffEscape(form)
    .replace(/^forkserver/, '\\fBforkserver\\fR')
    .replace(/\b(options|[A-Z]{2,})\b/g, '\\fI$1\\fR')
    .replace(/(\\-\\-[a-z-]+)/g, '\\fB$1\\fR')

const tagged = (term: string, text: string): string[] => ['.TP', term, prose(text)]

const optionTerm = (o: OptionDef): string => {
  const names = `${o.alias === undefined ? '' : `\\fB\\-${o.alias}\\fR, `}\\fB${roffEscape(`--${o.name}`)}\\fR`
  return o.meta === undefined ? names : `${names} \\fI${roffEscape(o.meta)}\\fR`
}

const optionLines = (): string[] =>
  [...new Set(OPTION_TABLE.map((o) => o.group))].flatMap((group) => [
    `.SS ${roffEscape(group)}`,
    ...OPTION_TABLE.filter((o) => o.group === group).flatMap((o) => tagged(optionTerm(o), `${o.describe} [${typeNote(o)}]`)),
  ])

const entryLines = (entries: readonly Entry[]): string[] => entries.flatMap((e) => tagged(`.B ${roffEscape(e.term)}`, e.text))

const exampleLines = (): string[] =>
  EXAMPLES.flatMap((e) => ['.PP', `${prose(e.text)}:`, '.PP', '.RS 4', '.nf', roffEscape(e.command.join(' ')), '.fi', '.RE'])

/** The man page, for this version of forkserver. */
export const renderManPage = (version: string): string => {
  const lines = [
    '.\\" Written by `make man` from lib/cli/option-table.ts and lib/cli/manual/manual-text.ts: edit those, not this.',
    `.TH FORKSERVER 1 "" "forkserver ${roffEscape(version)}" "User Commands"`,
    // No hyphenation, ragged right: option names and values are never split.
    '.nh',
    '.ad l',
    '.SH NAME',
    `forkserver \\- ${roffEscape(SUMMARY)}`,
    '.SH SYNOPSIS',
    ...SYNOPSIS.flatMap((form, i) => [...(i > 0 ? ['.br'] : []), synopsis(form)]),
    '.SH DESCRIPTION',
    ...[...DESCRIPTION, ORPHANS].flatMap((p) => ['.PP', prose(p)]),
    '.SH OPTIONS',
    ...optionLines(),
    '.SH EXIT STATUS',
    ...entryLines(EXIT_STATUS),
    '.SS "Child exit statuses"',
    'Each child\'s status appears in the \\fBend\\fR \\fIP\\fR \\fBstatus\\fR \\fIS\\fR log line:',
    ...entryLines(CHILD_STATUS),
    '.SH SIGNALS',
    ...entryLines(SIGNALS),
    '.SH ENVIRONMENT',
    ...entryLines(ENVIRONMENT),
    '.PP',
    prose("An --exec program's environment is forkserver's, with these for its connection:"),
    ...entryLines(PROGRAM_ENVIRONMENT),
    '.SH EXAMPLES',
    ...exampleLines(),
    '.SH SEE ALSO',
    SEE_ALSO.map(([name, section]) => `\\fB${roffEscape(name)}\\fR(${section})`).join(',\n'),
    '.PP',
    'README.md and docs/accept\\-fork.md in the forkserver package.',
  ]
  return `${lines.join('\n')}\n`
}
