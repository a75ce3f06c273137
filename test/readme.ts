// The documents say what the code offers: every option in the README's table,
// shown the same way by --help and the man page; every log line and JSON event
// in docs/log.md; and the example systemd units, whose command line must parse.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { CHILD_STATUS } from '../lib/cli/manual/manual-text.js'
import { defaultText, OPTION_TABLE, optionLabel, typeNote, typeText } from '../lib/cli/option-table.js'
import { parseOptions } from '../lib/cli/options.js'
import { SERVER } from './fixtures/server.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const log = readFileSync(new URL('../docs/log.md', import.meta.url), 'utf8')
/** The `## title` section of a document, up to the next `## `. */
const section = (doc: string, title: string): string => {
  const start = doc.indexOf(`\n## ${title}`)
  return doc.slice(start, doc.indexOf('\n## ', start + 1))
}

/** Text without its roff: fonts dropped, escapes read back. */
const unroff = (roff: string): string => roff.replace(/\\f[BIRP]/g, '').replace(/\\-/g, '-').replace(/\\e/g, '\\').replace(/\\&/g, '')

/** Each option's entry in a document, by its label: the label's line and the lines under it, as one line. */
const entries = (blocks: readonly string[]): Map<string, string> =>
  new Map(blocks.map((block) => block.replace(/\s+/g, ' ').trim()).map((block) => [/^(?:-\w, )?--[\w-]+/.exec(block)?.[0] ?? '', block]))

/** --help's option entries: a line at the option indent, then the lines indented deeper under it. */
const helpEntries = (help: string): Map<string, string> =>
  entries(help.split(/\n(?=  -\w, --|      --)/).slice(1).map((block) => block.split(/\n(?! {8})/)[0]!))

/** The man page's option entries: each .TP paragraph of the OPTIONS section. */
const manEntries = (page: string): Map<string, string> => {
  const options = page.slice(page.indexOf('.SH OPTIONS'), page.indexOf('.SH', page.indexOf('.SH OPTIONS') + 1))
  return entries(options.split('.TP\n').slice(1).map((block) => unroff(block.replace(/^\.SS .*$/m, ''))))
}

/** The README's option rows, by label: the takes and default cells. */
const readmeRows = (): Map<string, { takes: string; default: string }> => {
  const rows = section(readme, 'Options').split('\n').filter((line) => line.startsWith('| `'))
  return new Map(rows.map((row) => {
    const cells = row.split(/(?<!\\)\|/).slice(1, -1).map((cell) => cell.trim().replace(/\\\|/g, '|'))
    const label = (cells[0] ?? '').replace(/`/g, '')
    return [/^(?:-\w, )?--[\w-]+/.exec(label)?.[0] ?? label, { takes: cells[1] ?? '', default: (cells[2] ?? '').replace(/`/g, '') }]
  }))
}

t.test('--help, the man page and the README show every option with the same type and default', async (t) => {
  const help = helpEntries(spawnSync(process.execPath, [SERVER, '--help'], { encoding: 'utf8', env: { ...process.env, COLUMNS: '80' } }).stdout)
  const man = manEntries(readFileSync(new URL('../docs/forkserver.1', import.meta.url), 'utf8'))
  const readme = readmeRows()
  for (const o of OPTION_TABLE) {
    const name = `${o.alias === undefined ? '' : `-${o.alias}, `}--${o.name}`
    const note = `[${typeNote(o)}]`
    t.ok(help.get(name)?.startsWith(optionLabel(o)) && help.get(name)?.endsWith(note), `--help: ${optionLabel(o)} ... ${note}`, { found: help.get(name) })
    t.ok(man.get(name)?.startsWith(optionLabel(o)) && man.get(name)?.endsWith(note), `man page: ${optionLabel(o)} ... ${note}`, { found: man.get(name) })
    const row = readme.get(name)
    t.equal(row?.takes, typeText(o), `README: ${name} takes ${typeText(o)}`)
    t.equal(row?.default, defaultText(o) ?? 'none', `README: ${name} defaults to ${defaultText(o) ?? 'none'}`)
  }
  t.equal(help.size, OPTION_TABLE.length, '--help lists no option the table lacks')
  t.equal(man.size, OPTION_TABLE.length, 'the man page lists no option the table lacks')
  t.equal(readme.size, OPTION_TABLE.length, 'the README has no row for an option the table lacks')
})

t.test('docs/log.md and the manual give the same child exit statuses', async (t) => {
  const heading = log.slice(log.indexOf('### Child exit statuses'))
  const table = heading.slice(0, heading.indexOf('\n\n', heading.indexOf('| status')))
  const statuses = [...table.matchAll(/^\| (\d+) \|/gm)].map((m) => m[1]!)
  t.ok(statuses.length >= 6)
  t.same(statuses, CHILD_STATUS.map((e) => e.term).filter((term) => /^\d+$/.test(term)))
})

t.test('every JSON event has a row in docs/log.md, and every text line shape is there', async (t) => {
  const code = readFileSync(new URL('../lib/log/log.ts', import.meta.url), 'utf8')
  const kinds = [...new Set([...code.matchAll(/readonly event: '(\w+)'/g)].map((m) => m[1]!))].filter((kind) => kind !== 'from')
  t.ok(kinds.length >= 12)
  const json = log.slice(log.indexOf('### `--log-format json`'))
  for (const kind of kinds) t.match(json, new RegExp(`\\| \`${kind}\``), `${kind} is documented`)
  for (const line of ['listening on', 'status: N/MAX', 'pid P from', 'end P status S', 'end P signal SIG', 'deny IP:PORT', 'shutdown: served N']) {
    t.ok(section(log, 'Log lines').includes(line), `the text line "${line}" is documented`)
  }
})

t.test('the example service unit starts forkserver on the socket systemd passes', async (t) => {
  const unit = readFileSync(new URL('../docs/forkserver.service', import.meta.url), 'utf8')
  const exec = /^ExecStart=(\S+) (.*)$/m.exec(unit)
  t.ok(exec, 'an ExecStart line')
  // A bare name, which systemd finds where `npm install -g` puts it with either prefix, /usr/local or /usr.
  t.equal(exec?.[1], 'forkserver', 'running the installed command, by name')
  const parsed = await parseOptions(exec?.[2]?.split(/\s+/) ?? [], { LISTEN_FDS: '1', LISTEN_PID: String(process.pid) })
  t.match(parsed, { kind: 'serve', options: { endpoint: { kind: 'fd', fd: 3, from: 'LISTEN_FDS' } } }, 'its options parse, and it listens on descriptor 3')
  t.match(unit, /^Requires=forkserver\.socket$/m)
  t.match(unit, /^KillMode=mixed$/m, 'SIGTERM to the parent alone, which drains')
  const socket = readFileSync(new URL('../docs/forkserver.socket', import.meta.url), 'utf8')
  t.match(socket, /^ListenStream=127\.0\.0\.1:7000$/m)
  t.match(socket, /^Accept=no$/m, 'one listening socket for one forkserver')
})

const analyze = spawnSync('systemd-analyze', ['--version'])
const noAnalyze = analyze.error ? 'no systemd-analyze here' : false

/** systemd-analyze verify's complaints about the two units in `dir`, and its exit status. */
const verify = (dir: string | URL): { complaints: string[]; status: number | null } => {
  const run = spawnSync('systemd-analyze', ['verify', 'forkserver.socket', 'forkserver.service'], { cwd: dir, encoding: 'utf8', timeout: 30_000 })
  return { complaints: run.stderr.split('\n').filter((line) => line !== ''), status: run.status }
}

t.test('systemd-analyze finds nothing wrong with the units but that forkserver is not installed here', { skip: noAnalyze }, async (t) => {
  const { complaints } = verify(new URL('../docs/', import.meta.url))
  t.same(complaints.filter((line) => line !== 'forkserver.service: Command forkserver is not executable: No such file or directory'), [],
    'no other complaint')
})

t.test('with a command systemd finds by name in its place, the units verify clean', { skip: noAnalyze }, async (t) => {
  // systemd looks a bare name up in its own fixed path, not the caller's
  // PATH; /usr/bin/true stands in for an installed forkserver.
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-units-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const docs = new URL('../docs/', import.meta.url)
  copyFileSync(new URL('forkserver.socket', docs), join(dir, 'forkserver.socket'))
  const unit = readFileSync(new URL('forkserver.service', docs), 'utf8')
  writeFileSync(join(dir, 'forkserver.service'), unit.replace(/^ExecStart=forkserver /m, 'ExecStart=true '))
  t.same(verify(dir), { complaints: [], status: 0 }, 'no complaint, exit 0')
})
