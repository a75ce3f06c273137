// A machine with no compiler: the build leaves no native addon, and what
// needs it (--start zygote, --proxy-protocol) is refused in one line with
// exit 2, while everything else serves. This runs a copy of dist/ with no
// native/ in it, beside the project's package.json and node_modules.
import { spawnSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { runServer } from '../fixtures/server.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const dir = mkdtempSync(join(tmpdir(), 'forkserver-no-addon-'))
t.teardown(() => rmSync(dir, { recursive: true, force: true }))
cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true, filter: (from) => !from.includes(`${sep}dist${sep}native`) })
cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
const SERVER = join(dir, 'dist', 'server.js')

const REFUSED: [string, string[], RegExp][] = [
  ['--start zygote', ['--start', 'zygote'], /^forkserver: --start zygote is unavailable: not built: no .*forkserver\.node; to build it, run sh \/\S*\/lib\/native\/build\.sh \(see --help\)$/],
  [
    '--proxy-protocol',
    ['--proxy-protocol', '--proxy-from', '127.0.0.1'],
    /^forkserver: --proxy-protocol is unavailable without the native addon, which reads the header by a peek: not built: no .*; to build it, run sh /,
  ],
]

for (const [what, args, line] of REFUSED) {
  t.test(`without the native addon, ${what} is refused in one line, with exit 2`, async (t) => {
    const result = spawnSync(process.execPath, [SERVER, '--port', '0', ...args], { encoding: 'utf8', timeout: 20_000 })
    t.equal(result.status, 2)
    const lines = result.stderr.split('\n').filter((l) => l !== '')
    t.equal(lines.length, 1, `one line: ${result.stderr}`)
    t.match(lines[0], line)
  })
}

t.test('without the native addon, --version says why, how to build it, and that the self-test needs it', async (t) => {
  const result = spawnSync(process.execPath, [SERVER, '--version'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(result.status, 0)
  const lines = result.stdout.split('\n')
  t.match(lines[2], /^addon: not built: no \S*forkserver\.node; to build it, run sh \S*\/lib\/native\/build\.sh$/)
  t.equal(lines[3], 'fork self-test: not run: it needs the addon')
})

t.test('a build that failed is named at the first start that needs the addon, with its log and the command that builds it', async (t) => {
  const native = join(dir, 'dist', 'native')
  mkdirSync(native, { recursive: true })
  t.teardown(() => rmSync(native, { recursive: true, force: true }))
  writeFileSync(join(native, 'build.state'), `${process.version} ${process.versions.modules} failed\n`)
  const result = spawnSync(process.execPath, [SERVER, '--port', '0', '--start', 'zygote'], { encoding: 'utf8', timeout: 20_000 })
  t.equal(result.status, 2)
  t.equal(result.stderr.split('\n').length, 2, 'one line')
  const why = `not built: the compile for Node ${process.version} failed (see ${native}/build.log); to build it again, run sh `
  t.match(result.stderr, `forkserver: --start zygote is unavailable: ${why}`, '--start zygote: refused')
  const server = runServer(t, ['--port', '0'], {}, { script: SERVER })
  await server.waitFor(/^listening on /)
  t.match(server.lines[0], `start: spawn, not the zygote: ${why}`, '--start auto: served by spawn, and its first line says why')
  server.signal('SIGTERM')
  t.match(await server.exited, { code: 0 })
})

t.test('without the native addon, the fork model serves, by spawn, and its first line says why', async (t) => {
  const server = runServer(t, ['--port', '0'], {}, { script: SERVER })
  const [, port] = await server.waitFor(/^listening on 127\.0\.0\.1:(\d+), pid \d+$/)
  t.match(server.lines[0], /^start: spawn, not the zygote: not built: no .*forkserver\.node; to build it, run sh \S*\/lib\/native\/build\.sh$/, '--start auto says why it spawns')
  t.equal(server.lines.filter((line) => line.startsWith('start: ')).length, 1, 'once')
  const reply = await new Promise<string>((resolve, reject) => {
    const socket = connect(Number(port), '127.0.0.1', () => socket.end('no addon\n'))
    let got = ''
    socket.setEncoding('utf8').on('data', (chunk: string) => (got += chunk))
    socket.on('error', reject).on('close', () => resolve(got))
  })
  t.equal(reply, 'no addon\n')
  server.signal('SIGTERM')
  t.match(await server.exited, { code: 0 })
})
