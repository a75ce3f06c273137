// docs/forkserver.1 is written by `make man` from lib/cli/manual/man-page.ts; these
// tests fail when the committed page is stale, or when man or groff would
// warn about it.
import { spawnSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { renderManPage, roffEscape } from '../../../lib/cli/manual/man-page.js'
import { packageVersion } from '../../../lib/cli/version.js'

const PAGE = fileURLToPath(new URL('../../../docs/forkserver.1', import.meta.url))
const SECTIONS = ['NAME', 'SYNOPSIS', 'DESCRIPTION', 'OPTIONS', 'EXIT STATUS', 'SIGNALS', 'ENVIRONMENT', 'EXAMPLES', 'SEE ALSO']

t.test('the committed docs/forkserver.1 is what make man writes now', async (t) => {
  t.ok(readFileSync(PAGE, 'utf8') === renderManPage(packageVersion()), 'docs/forkserver.1 is stale: run make man, and commit it')
})

t.test('text is escaped for roff: dashes are minus signs, and no line starts a request', async (t) => {
  t.equal(roffEscape('--port'), '\\-\\-port')
  t.equal(roffEscape('a\\b'), 'a\\eb')
  t.equal(roffEscape('.hidden\n\'quote'), "\\&.hidden\n\\&'quote")
})

t.test('the page names its version and links tcpserver, inetd, systemd.socket and nc', async (t) => {
  const page = renderManPage('9.8.7')
  t.match(page, /^\.TH FORKSERVER 1 "" "forkserver 9\.8\.7"/m)
  for (const see of ['tcpserver\\fR(1)', 'inetd\\fR(8)', 'systemd.socket\\fR(5)', 'nc\\fR(1)']) t.ok(page.includes(see), see)
})

const groff = spawnSync('groff', ['--version'])

t.test('groff formats the page without a warning', { skip: groff.error ? 'groff is not installed' : false }, async (t) => {
  const run = spawnSync('groff', ['-ww', '-man', '-Tutf8', PAGE], { encoding: 'utf8', timeout: 30_000 })
  t.equal(run.status, 0)
  t.equal(run.stderr, '', 'no warnings')
})

const man = spawnSync('man', ['--version'])

t.test('man shows every section in 80 columns, without a warning', { skip: man.error ? 'man is not installed' : false }, async (t) => {
  const run = spawnSync('man', ['--warnings', '-l', PAGE], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, MANWIDTH: '80', MANPAGER: 'cat', PAGER: 'cat' } })
  t.equal(run.status, 0)
  t.equal(run.stderr, '', 'no warnings')
  const text = run.stdout.replace(/.\x08/g, '')
  for (const section of SECTIONS) t.match(text, new RegExp(`^${section}$`, 'm'), section)
  t.same(text.split('\n').filter((line) => line.length > 80), [], 'no line over 80 columns')
  for (const word of ['SIGHUP', 'LISTEN_FDS', 'DEBUG', '--max-children', 'tcpserver(1)']) t.ok(text.includes(word), word)
})
