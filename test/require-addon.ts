// What the tests that need the native addon do without it
// (test/fixtures/warm-fork.ts): on a machine without a compiler they skip,
// saying why; in CI, which sets FORKSERVER_REQUIRE_ADDON=1, a missing addon
// is a failure, lest every zygote test skip and CI pass. A test file run with
// that variable, and told that the addon is missing, must fail.
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { withoutAddon } from './fixtures/warm-fork.js'

const REASON = 'not built: no C compiler when it was built for Node v20.20.2'

t.test('with the addon, the tests run, whatever FORKSERVER_REQUIRE_ADDON says', async (t) => {
  for (const env of [{}, { FORKSERVER_REQUIRE_ADDON: '1' }]) t.same(withoutAddon(null, env), { skip: false, fail: null })
})

t.test('without it, they skip and say why', async (t) => {
  for (const env of [{}, { FORKSERVER_REQUIRE_ADDON: '' }, { FORKSERVER_REQUIRE_ADDON: '0' }]) {
    t.same(withoutAddon(REASON, env), { skip: `the native addon is not available: ${REASON}`, fail: null })
  }
})

t.test('without it, and FORKSERVER_REQUIRE_ADDON=1, a failure says why', async (t) => {
  const { skip, fail } = withoutAddon(REASON, { FORKSERVER_REQUIRE_ADDON: '1' })
  t.equal(fail, `FORKSERVER_REQUIRE_ADDON=1, and the native addon is not available: ${REASON}`)
  t.match(skip, /\(a failure: FORKSERVER_REQUIRE_ADDON=1\)$/, 'and the tests that need it are skipped, pointing at it')
})

// skipUnlessBuilt() registers the failing test: run a test file that asks it,
// as a process of its own, telling it that the addon is missing.
t.test('a test file that needs the addon fails under FORKSERVER_REQUIRE_ADDON=1 when it is missing, and skips without it', async (t) => {
  const fixture = fileURLToPath(new URL('./fixtures/needs-addon.ts', import.meta.url))
  const run = (require: string) => spawnSync(process.execPath, [...process.execArgv, fixture], {
    encoding: 'utf8', timeout: 60_000, env: { ...process.env, FORKSERVER_REQUIRE_ADDON: require },
  })
  const required = run('1')
  t.equal(required.status, 1, 'exit 1', { stdout: required.stdout })
  t.match(required.stdout, /^not ok \d+ - the native addon is built, as FORKSERVER_REQUIRE_ADDON=1 requires( #|$)/m)
  const optional = run('')
  t.equal(optional.status, 0, 'exit 0', { stdout: optional.stdout })
  t.match(optional.stdout, /^ok \d+ - a test that forks # SKIP the native addon is not available: /m)
})
