// The README documents what the code offers: every option --help lists, every
// JSON log event, and the example systemd units, whose command line must parse.
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { parseOptions } from '../lib/options.js'
import { SERVER } from './fixtures/server.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
const section = (title: string): string => {
  const start = readme.indexOf(`\n## ${title}`)
  return readme.slice(start, readme.indexOf('\n## ', start + 1))
}

t.test('every option in --help has a row in the README options table', async (t) => {
  const help = spawnSync(process.execPath, [SERVER, '--help'], { encoding: 'utf8' }).stdout
  const options = [...help.matchAll(/^\s+(?:-\w, )?(--[\w-]+)/gm)].map((m) => m[1]!)
  t.ok(options.length >= 25, `--help lists the options (${options.length})`)
  const rows = section('Options').split('\n').filter((line) => line.startsWith('| `'))
  for (const option of options) t.ok(rows.some((row) => row.includes(`\`${option}`) || row.includes(`, \`${option}`)), `${option} is documented`)
})

t.test('every JSON event has a row in the README, and every text line shape is there', async (t) => {
  const log = readFileSync(new URL('../lib/log.ts', import.meta.url), 'utf8')
  const kinds = [...new Set([...log.matchAll(/readonly event: '(\w+)'/g)].map((m) => m[1]!))].filter((kind) => kind !== 'from')
  t.ok(kinds.length >= 12)
  const json = readme.slice(readme.indexOf('### `--log-format json`'))
  for (const kind of kinds) t.match(json, new RegExp(`\\| \`${kind}\``), `${kind} is documented`)
  for (const line of ['listening on', 'status: N/MAX', 'pid P from', 'end P status S', 'end P signal SIG', 'deny IP:PORT', 'shutdown: served N']) {
    t.ok(section('Log lines').includes(line), `the text line "${line}" is documented`)
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
