// The package as a user gets it: `npm pack` builds dist/ first (prepack) and
// packs only what a user needs, every link of its documents leading to a file
// it holds; the tarball installs globally (`npm install -g`, into a prefix of
// its own), offline from the npm cache that `npm ci` filled, and the
// `forkserver` it installs serves, --start zygote too (the install compiles
// the addon from the shipped sources). And the npm scripts: `npm test` and
// `npm start` are `make test` and `make run`.
//
// npm pack runs in a copy of the checkout, not in the checkout itself: its
// prepack runs tsc, which would rewrite dist/ under the other test files that
// run servers from it at the same time. The copy has no dist/ of its own, as
// on a clean clone, but does have stray files under dist/ that must stay out.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, posix, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { exchange, freePort } from '../fixtures/client.js'
import { anchors, links } from '../fixtures/markdown.js'
import { outsideTap, processesWith, watchLines, type Exit } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const REPO = fileURLToPath(new URL('../../', import.meta.url))
interface PackageJson {
  readonly version: string
  readonly scripts: Record<string, string>
  readonly [field: string]: unknown
}
const packageJson = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as PackageJson
const { version } = packageJson

// Outside the checkout, so that nothing installed can fall back on its node_modules.
const root = mkdtempSync(join(tmpdir(), 'forkserver-package-'))
t.teardown(() => rmSync(root, { recursive: true, force: true }))
const source = join(root, 'source')
const packed = join(root, 'packed')
const prefix = join(root, 'prefix')
// Where `npm install -g` puts the command and the man page, under npm's prefix (/usr/local, /usr, ...).
const installed = join(prefix, 'bin', 'forkserver')
const manPage = join(prefix, 'share', 'man', 'man1', 'forkserver.1')
const installedPackage = join(prefix, 'lib', 'node_modules', 'forkserver')

const kill = (pid: number | undefined): void => {
  try {
    if (pid !== undefined) process.kill(pid, 'SIGKILL')
  } catch {
    // already gone
  }
}
/** Kills the process group that `pid` leads (spawned with detached: true). */
const killGroup = (pid: number | undefined): void => kill(pid === undefined ? undefined : -pid)

/**
 * `env` arguments for npm and the installed command: without tap's hooks, and
 * without what an enclosing `npm test` or `npx tap` tells its scripts (the
 * prefix and package it runs in), which would point a nested npm elsewhere.
 */
const cleanEnv = (env: NodeJS.ProcessEnv): string[] => [
  // env(1) takes its -u options before the first NAME=VALUE, which outsideTap ends with.
  ...Object.keys(env)
    .filter((key) => /^npm_(?:package_|lifecycle_|command$|config_(?:local_|global_)?prefix$)/i.test(key) || key === 'INIT_CWD'
      // and what an enclosing `make test` tells a make run inside (npm start): it is no sub-make.
      || /^(?:MAKELEVEL|MAKEFLAGS|MFLAGS|MAKEOVERRIDES)$/.test(key))
    .flatMap((key) => ['-u', key]),
  ...outsideTap(env),
]

interface Ran extends Exit {
  readonly stdout: string
  readonly stderr: string
}

/** Runs `command` in a process group of its own, killed at the teardown or after `limitMs`. */
const run = (t: Test, command: string, args: readonly string[], cwd: string, limitMs = 90_000): Promise<Ran> =>
  new Promise((resolve, reject) => {
    const proc = spawn('env', [...cleanEnv(process.env), command, ...args], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
    t.teardown(() => killGroup(proc.pid))
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      killGroup(proc.pid)
      reject(new Error(`${command} ${args.join(' ')}: no exit within ${limitMs} ms; stderr:\n${stderr}`))
    }, limitMs)
    proc.once('error', reject)
    proc.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })

interface PackFile {
  readonly path: string
}
interface Pack {
  readonly filename: string
  readonly size: number
  readonly files: readonly PackFile[]
}

let tarball: string | undefined
/** The packed files' paths, as in the tarball. */
let packedPaths: readonly string[] = []

t.test('npm pack builds dist first and packs only what a user needs', async (t) => {
  // A clean clone: the working tree without dist/, node_modules/ or build leftovers.
  const skip = new Set(['.git', '.tap', 'dist', 'node_modules'])
  cpSync(REPO, source, {
    recursive: true,
    filter: (path) => {
      const rel = relative(REPO, path).split('/')
      return !(rel.length === 1 && (skip.has(rel[0]!) || rel[0]!.endsWith('.tgz')))
    },
  })
  symlinkSync(realpathSync(join(REPO, 'node_modules')), join(source, 'node_modules'))
  t.notOk(existsSync(join(source, 'dist', 'server.js')), 'no dist/server.js before the pack')
  // What a local build leaves in dist/ besides the server: none of it belongs in the package.
  // (dist/lib/renamed.js: what a module renamed since the last build leaves behind.)
  for (const stray of ['dist/bench/bench.js', 'dist/test/protocol.js', 'dist/stray.js', 'dist/lib/renamed.js']) {
    mkdirSync(join(source, stray, '..'), { recursive: true })
    writeFileSync(join(source, stray), '// not for the package\n')
  }
  mkdirSync(packed)

  const result = await run(t, 'npm', ['pack', '--json', '--pack-destination', packed], source)
  t.equal(result.code, 0, 'npm pack exits 0', { stdout: result.stdout, stderr: result.stderr })
  if (result.code !== 0) return
  const [pack] = JSON.parse(result.stdout) as Pack[]
  if (!pack) throw new Error(`npm pack --json printed no package:\n${result.stdout}`)
  const built = join(source, 'dist', 'server.js')
  t.ok(existsSync(built), 'prepack built dist/server.js')
  t.match(existsSync(built) ? readFileSync(built, 'utf8') : '', /^#!\/usr\/bin\/env node\n/, 'which starts with its #! line')

  const paths = pack.files.map((file) => file.path)
  packedPaths = paths
  for (const needed of ['dist/server.js', 'dist/child.js', 'dist/lib/protocol.js', 'dist/lib/serve/services/echo.js', 'README.md', 'LICENSE', 'package.json',
    'docs/examples/greet.js', 'docs/forkserver.socket', 'docs/forkserver.service', 'docs/forkserver.1',
    // The sources and figures that docs/accept-fork.md links to, line by line.
    'server.ts', 'child.ts', 'lib/protocol.ts', 'lib/serve/services/echo.ts', 'bench/results/latest.json', 'bench/peers/c-fork.c',
    // The addon's sources, and the script that builds them at install.
    'lib/native/fork.c', 'lib/native/park.cc', 'lib/native/park.h', 'lib/native/build.sh']) {
    t.ok(paths.includes(needed), `the package holds ${needed}`)
  }
  t.same(paths.filter((path) => /^(?:test|dist\/test|dist\/bench|node_modules)\//.test(path)), [], 'no tests or node_modules')
  t.same(paths.filter((path) => path.startsWith('bench/') && !/^bench\/(?:results\/latest\.(?:json|svg)|peers\/c-fork\.c)$/.test(path)), [],
    'of the benchmarks, only the figures and the C server that the documents cite')
  t.same(paths.filter((path) => path.startsWith('dist/') && !/^dist\/(?:server\.js|child\.js|lib\/.+)$/.test(path)), [], 'nothing else from dist/')
  t.notOk(paths.includes('dist/lib/renamed.js'), 'nor what an earlier build left in dist/lib/')
  t.same(paths.filter((path) => path.endsWith('.ts') && !/^(?:server\.ts|child\.ts|lib\/.+\.ts)$/.test(path)), [],
    'of the TypeScript, only the sources of what is built')
  t.same(paths.filter((path) => /\.(?:tap|tgz)$/.test(path) || path.includes('node_modules') || /(?:^|\/)tsconfig\.json$/.test(path)), [],
    'no tap output, tarballs or build settings')

  tarball = join(packed, pack.filename)
  t.ok(existsSync(tarball), `the tarball is in --pack-destination (${pack.size} bytes, ${paths.length} files)`)
  t.same(readdirSync(source).filter((name) => name.endsWith('.tgz')), [], 'and not where npm pack ran')
})

t.test('package.json names the project, its home, where to report bugs, and its man page', async (t) => {
  t.match(packageJson, {
    repository: { type: 'git', url: 'git+https://github.com/forkserver/forkserver.git' },
    homepage: 'https://github.com/forkserver/forkserver#readme',
    bugs: { url: 'https://github.com/forkserver/forkserver/issues' },
    // An array: npm 11 links a man page of a global install only when "man" is one, and ignores a lone string.
    man: ['./docs/forkserver.1'],
  }, 'repository, homepage, bugs and man')
  t.ok(packedPaths.includes('docs/forkserver.1'), 'the man page is packed')
})

t.test('every relative link in the packed documents leads to a packed file', async (t) => {
  const docs = packedPaths.filter((path) => path.endsWith('.md'))
  t.ok(docs.includes('README.md') && docs.includes('docs/accept-fork.md'), `the documents: ${docs.join(', ')}`)
  const packed = new Set(packedPaths)
  const text = (path: string): string => readFileSync(join(source, path), 'utf8')
  for (const doc of docs) {
    const broken: string[] = []
    for (const { line, target } of links(text(doc))) {
      if (/^[a-z][\w+.-]*:/i.test(target)) continue // https:, mailto:
      const [path = '', anchor] = target.split('#')
      const file = path === '' ? doc : posix.normalize(posix.join(posix.dirname(doc), decodeURI(path)))
      const lines = packed.has(file) ? text(file).split('\n').length : 0
      const range = /^L(\d+)(?:-L(\d+))?$/.exec(anchor ?? '')
      const leads = !packed.has(file) ? 'a file the package does not hold'
        : anchor === undefined ? null
        : file.endsWith('.md') ? (anchors(text(file)).has(anchor) ? null : 'a heading that is not there')
        : range ? (Number(range[2] ?? range[1]) <= lines ? null : `past the end of ${file} (${lines} lines)`)
        : null
      if (leads !== null) broken.push(`${doc}:${line}: ${target} leads to ${leads}`)
    }
    t.same(broken, [], `${doc}: every relative link leads somewhere in the package`)
  }
})

t.test('the tarball installs globally, offline from the npm cache', async (t) => {
  if (tarball === undefined) return t.fail('there is no tarball to install')
  const args = ['install', '--global', '--no-audit', '--no-fund', '--prefix', prefix, tarball]
  let result = await run(t, 'npm', ['--offline', ...args], root)
  if (result.code !== 0 && /ENOTCACHED/.test(result.stderr)) {
    t.comment('a dependency is not in the npm cache; trying again with --prefer-offline')
    result = await run(t, 'npm', ['--prefer-offline', ...args], root)
  }
  t.equal(result.code, 0, 'npm install exits 0', { stderr: result.stderr })
  t.ok(existsSync(installed), 'PREFIX/bin/forkserver is there')
  // npm from npm/cli#9035 on links no man page; docs/operations.md says how to read it then.
  t.ok(existsSync(manPage), 'and its man page, PREFIX/share/man/man1/forkserver.1, for man forkserver')
  for (const dependency of ['yargs', 'debug']) {
    t.ok(existsSync(join(installedPackage, 'node_modules', dependency, 'package.json')), `with its dependency ${dependency}`)
  }
})

t.test('the installed forkserver --version prints the package version, and the Node it runs on', async (t) => {
  if (!existsSync(installed)) return t.fail('forkserver is not installed')
  const result = await run(t, installed, ['--version'], root, 40_000)
  t.equal(result.code, 0, 'exit 0')
  t.match(result.stdout, new RegExp(`^forkserver ${version.replaceAll('.', '\\.')}\nnode ${process.version} `), `${version}, from package.json`)
})

/** Runs the installed forkserver with `args` on port 0, echoes a line through it, and stops it with SIGTERM. */
const echoThroughInstalled = async (t: Test, args: readonly string[]): Promise<void> => {
  // As in fixtures/server.ts: children run in sessions of their own and are
  // found for the teardown by a mark in their environment.
  const mark = randomUUID()
  const env = { ...process.env, FORKSERVER_TEST_RUN: mark }
  const proc = spawn('env', [...cleanEnv(env), installed, '--port', '0', ...args], { cwd: root, env, detached: true, stdio: ['ignore', 'ignore', 'pipe'] })
  t.teardown(() => {
    killGroup(proc.pid)
    processesWith(`FORKSERVER_TEST_RUN=${mark}`).forEach(kill)
  })
  const exited = new Promise<Exit>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })))
  const { lines, waitForMatches } = watchLines([proc.stderr])
  const [ready] = await Promise.race([
    waitForMatches((line) => /^listening on 127\.0\.0\.1:(\d+), pid \d+$/.exec(line), 'the listening line', 1),
    exited.then((exit): never => {
      throw new Error(`forkserver exited early (${JSON.stringify(exit)}):\n${lines.join('\n')}`)
    }),
  ])
  const port = Number(ready![1])
  const reply = await exchange(port, 'hello from the package\n')
  t.equal(reply.data.toString(), 'hello from the package\n', 'the line comes back')
  t.equal(reply.ended, 'end', 'then the server closes its side')
  proc.kill('SIGTERM')
  t.same(await exited, { code: 0, signal: null }, 'exit 0 on SIGTERM')
}

t.test('the installed forkserver echoes a line and exits 0 on SIGTERM', async (t) => {
  if (!existsSync(installed)) return t.fail('forkserver is not installed')
  await echoThroughInstalled(t, [])
})

// The addon is built for one Node, so the package ships its sources, not a
// build: npm runs lib/native/build.sh (the "install" script) with the system
// compiler and the headers of the Node that installs it. Where the checkout's
// addon was built, the installed one must be too.
t.test('the install compiles the addon from the shipped sources, and --start zygote serves', { skip: skipUnlessBuilt() }, async (t) => {
  if (!existsSync(installed)) return t.fail('forkserver is not installed')
  t.equal(packageJson.scripts.install, 'sh lib/native/build.sh', 'npm runs lib/native/build.sh at install')
  t.ok(existsSync(join(installedPackage, 'dist', 'native', 'forkserver.node')), 'the install built dist/native/forkserver.node')
  const result = await run(t, installed, ['--version'], root, 40_000)
  t.match(result.stdout, `\naddon: loaded, built for Node ${process.version}\nfork self-test: passed `, '--version says so, and that a fork passes its self-test')
  await echoThroughInstalled(t, ['--start', 'zygote'])
})

t.test('npm test and npm start are make test and make run', async (t) => {
  t.equal(packageJson.scripts.test, 'make test', 'npm test: make test, which installs, builds and tests')
  t.equal(packageJson.scripts.start, 'make run', 'npm start: make run, which installs, builds and serves echo')
})

t.test('on a fresh clone, make test and make run install first (npm ci)', async (t) => {
  // What a clone holds before anything is installed or built; make -n says what it would do.
  const clone = join(root, 'clone')
  mkdirSync(clone)
  for (const file of ['Makefile', 'package.json', 'package-lock.json', 'lib/native']) cpSync(join(REPO, file), join(clone, file), { recursive: true })
  for (const [target, last, what] of [['test', /^npx tap$/, 'tap'], ['run', /^node dist\/server\.js /, 'the server']] as const) {
    const dry = await run(t, 'make', ['-n', target], clone, 20_000)
    t.equal(dry.code, 0, `make -n ${target} exits 0`)
    const steps = dry.stdout.split('\n')
    const install = steps.indexOf('npm ci --no-audit --no-fund')
    const build = steps.indexOf('npx tsc -p tsconfig.json')
    const serve = steps.findIndex((step) => last.test(step))
    t.ok(install >= 0 && install < build && build < serve, `make ${target}: npm ci, tsc, then ${what}`, { steps })
  }
})

t.test('npm start serves echo where HOST and PORT say, as make run does', async (t) => {
  const port = await freePort()
  // `-- -o build` reaches make (make run -o build): dist/ as `make test` built
  // it, not rebuilt under the servers other tests are running from it.
  const mark = randomUUID()
  const env = { ...process.env, FORKSERVER_TEST_RUN: mark, HOST: '127.0.0.1', PORT: String(port) }
  const proc = spawn('env', [...cleanEnv(env), 'npm', 'start', '--', '-o', 'build'], { cwd: REPO, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => {
    killGroup(proc.pid)
    processesWith(`FORKSERVER_TEST_RUN=${mark}`).forEach(kill)
  })
  const closed = new Promise<Exit>((resolve) => proc.once('close', (code, signal) => resolve({ code, signal })))
  const { lines, waitForMatches } = watchLines([proc.stdout, proc.stderr])
  const output = (): string => lines.join('\n')
  await Promise.race([
    waitForMatches((line) => new RegExp(`^listening on 127\\.0\\.0\\.1:${port}, pid \\d+$`).exec(line), 'the listening line', 1, 0, 30_000),
    closed.then((exit): never => {
      throw new Error(`npm start exited early (${JSON.stringify(exit)}):\n${output()}`)
    }),
  ])
  t.match(output(), /^> make run -o build$/m, 'npm runs make run')
  const reply = await exchange(port, 'hello from npm start\n')
  t.equal(reply.data.toString(), 'hello from npm start\n', 'the line comes back')
  // Ctrl-C in its terminal: SIGINT to the whole group, npm, make and the server.
  process.kill(-proc.pid!, 'SIGINT')
  await closed
  t.match(output(), /^shutdown: served 1, peak 1, failed 0, denied 0, dropped 0$/m, 'Ctrl-C: the server drains and sums up')
})
