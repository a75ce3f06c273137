// lib/native/build.sh, run as a user would run it to build the addon again:
// from another folder, on a copy of the package's sources (the checkout's
// own dist/native/ is in use by the other tests). What it writes down
// (build.state, build.log) is what the loader says when there is no addon,
// with the command that builds it; FORKSERVER_REQUIRE_ADDON=1 makes a build
// that fails an error.
import { spawnSync } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { loadAddon, rebuildCommand } from '../../lib/native/addon.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const ABI = `${process.version} ${process.versions.modules}`
const haveCompiler = spawnSync('sh', ['-c', 'command -v cc && command -v c++']).status === 0

/** A package of its own: lib/native/ only, as a clone or an install holds it. */
const copy = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-build-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  mkdirSync(join(dir, 'lib'))
  cpSync(join(ROOT, 'lib', 'native'), join(dir, 'lib', 'native'), { recursive: true })
  return dir
}

/** Runs the copy's build.sh by its full path, from / (not the package's folder). */
const build = (dir: string, env: NodeJS.ProcessEnv = {}) => {
  const run = spawnSync('sh', [join(dir, 'lib', 'native', 'build.sh')], { cwd: '/', encoding: 'utf8', timeout: 120_000, env: { ...process.env, CC: 'cc', CXX: 'c++', ...env } })
  const native = join(dir, 'dist', 'native')
  const state = existsSync(join(native, 'build.state')) ? readFileSync(join(native, 'build.state'), 'utf8') : null
  return { ...run, native, state, addon: join(native, 'forkserver.node') }
}

t.test('run from any folder, it builds the addon in its own package, for the Node on the PATH, and says which', { skip: haveCompiler ? false : 'no cc and c++' }, async (t) => {
  const dir = copy(t)
  const run = build(dir, { FORKSERVER_REQUIRE_ADDON: '' })
  t.equal(run.status, 0, 'exit 0', { stdout: run.stdout, stderr: run.stderr })
  t.equal(run.stdout, '', 'and nothing to say')
  t.equal(run.state, `${ABI} built\n`, "build.state: this Node's version and ABI, and that it built")
  t.match(readFileSync(join(run.native, 'build.log'), 'utf8'), `building for Node ${process.version} (NODE_MODULE_VERSION ${process.versions.modules})`)
  const loaded = loadAddon(run.addon)
  t.equal(loaded.reason, null, 'the addon built loads')
  t.equal(loaded.addon?.nodeVersion, process.version)
})

t.test('without a compiler it says so in one line and exits 0; the loader then says why, and the command that builds it', async (t) => {
  const dir = copy(t)
  const run = build(dir, { CC: 'no-such-cc', FORKSERVER_REQUIRE_ADDON: '' })
  t.equal(run.status, 0)
  t.equal(run.stdout, `forkserver: no C compiler (no-such-cc and c++): --start zygote and --proxy-protocol are unavailable (see ${run.native}/build.log)\n`)
  t.equal(run.state, `${ABI} no-compiler\n`)
  t.notOk(existsSync(run.addon), 'no addon')
  t.equal(loadAddon(run.addon).reason, `not built: no C compiler when it was built for Node ${process.version} (see ${run.native}/build.log); install cc and c++, then run ${rebuildCommand()}`)
})

t.test('a compile that fails says so in one line, keeps the log, and the loader points at it', async (t) => {
  const dir = copy(t)
  const run = build(dir, { CC: 'false', FORKSERVER_REQUIRE_ADDON: '' })
  t.equal(run.status, 0)
  t.equal(run.stdout, `forkserver: the native addon did not compile for Node ${process.version}: --start zygote and --proxy-protocol are unavailable (see ${run.native}/build.log)\n`)
  t.equal(run.state, `${ABI} failed\n`)
  t.equal(loadAddon(run.addon).reason, `not built: the compile for Node ${process.version} failed (see ${run.native}/build.log); to build it again, run ${rebuildCommand()}`)
})

t.test('with FORKSERVER_REQUIRE_ADDON=1, a build that fails exits 1 and shows its log', async (t) => {
  for (const [CC, outcome] of [['no-such-cc', 'no-compiler'], ['false', 'failed']] as const) {
    const run = build(copy(t), { CC, FORKSERVER_REQUIRE_ADDON: '1' })
    t.equal(run.status, 1, `${outcome}: exit 1`)
    t.equal(run.state, `${ABI} ${outcome}\n`, `${outcome}: written down all the same`)
    t.match(run.stderr, /^forkserver: FORKSERVER_REQUIRE_ADDON=1: the native addon must build\nbuilding for Node /, `${outcome}: the log follows`)
  }
})

t.test('the loader says "not built" and the command that builds it, for a package never built, or without headers', async (t) => {
  const dir = copy(t)
  const addon = join(dir, 'dist', 'native', 'forkserver.node')
  t.equal(loadAddon(addon).reason, `not built: no ${addon}; to build it, run ${rebuildCommand()}`)
  mkdirSync(join(dir, 'dist', 'native'), { recursive: true })
  writeFileSync(join(dir, 'dist', 'native', 'build.state'), 'v99.0.0 999 no-headers\n')
  t.equal(loadAddon(addon).reason, `not built: no headers for Node v99.0.0 (see ${dir}/dist/native/build.log); to build it, run ${rebuildCommand()}`)
})

t.test('the command that builds the addon names build.sh by its full path, which runs from any folder', async (t) => {
  t.equal(rebuildCommand(), `sh ${join(ROOT, 'lib', 'native', 'build.sh')}`)
  t.match(readFileSync(join(ROOT, 'lib', 'native', 'build.sh'), 'utf8'), /^cd "\$\(dirname "\$0"\)\/\.\.\/\.\." \|\| exit 1$/m, 'build.sh works in its own package')
})
