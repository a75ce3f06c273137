// forkserver --version, as a user runs it to learn what the install can do:
// the package's version, the Node's, whether the native addon loads (or why
// not, and the command that builds it), and the fork self-test's verdict,
// run for real in a Node started as the zygote is. Every process a run
// starts carries a mark in its environment, and is killed at the teardown.
import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { processesWith, SERVER } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }
const skip = skipUnlessBuilt()

interface Ran {
  readonly code: number | null
  readonly lines: string[]
  readonly stderr: string
  /** The processes of the run still there once it exited. */
  readonly left: number[]
}

/** Runs `server --version`, and kills what it started should it not end. */
const versionOf = (t: Test, server = SERVER): Promise<Ran> => {
  const mark = `FORKSERVER_TEST_RUN=${randomUUID()}`
  const kill = (): void => processesWith(mark).forEach((pid) => {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {
      // gone
    }
  })
  t.teardown(kill)
  const [name, value] = mark.split('=') as [string, string]
  const proc = spawn(process.execPath, [server, '--version'], { env: { ...process.env, [name]: value }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
  proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
  const timer = setTimeout(kill, 60_000)
  return new Promise((resolve) => proc.on('close', (code) => {
    clearTimeout(timer)
    resolve({ code, lines: stdout.split('\n'), stderr, left: processesWith(mark) })
  }))
}

t.test("--version prints forkserver's version and the Node's, and exits 0", async (t) => {
  const run = await versionOf(t)
  t.equal(run.code, 0)
  t.equal(run.stderr, '', 'nothing on stderr')
  t.equal(run.lines[0], `forkserver ${version}`, 'the package version, from package.json')
  t.equal(run.lines[1], `node ${process.version} (NODE_MODULE_VERSION ${process.versions.modules}), ${process.platform} ${process.arch}`, 'the Node, and its ABI')
  t.equal(run.lines.length, 5, 'four lines')
})

t.test("--version says the addon is loaded, and the fork self-test's verdict, run for real", { skip }, async (t) => {
  const run = await versionOf(t)
  t.equal(run.lines[2], `addon: loaded, built for Node ${process.version}`)
  t.match(run.lines[3], /^fork self-test: passed \(4 forked children, \d+ ms\): the zygote can serve on this Node$/)
  t.same(run.left, [], "the self-test's Node, and what it forked, are gone")
})

t.test('a self-test that fails, or whose Node dies, is said to have failed, and how; --version still exits 0', { skip }, async (t) => {
  // A copy of the build whose self-test module is made to fail.
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-version-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  cpSync(join(ROOT, 'dist'), join(dir, 'dist'), { recursive: true })
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'))
  symlinkSync(join(ROOT, 'node_modules'), join(dir, 'node_modules'))
  const selfTest = join(dir, 'dist', 'lib', 'zygote', 'fork-self-test.js')
  const server = join(dir, 'dist', 'server.js')

  writeFileSync(selfTest, "export const forkSelfTest = async () => ({ ok: false, reason: 'forked children repeat each other\\'s Math.random()' })\n")
  const failed = await versionOf(t, server)
  t.equal(failed.code, 0)
  t.equal(failed.lines[3], "fork self-test: failed: forked children repeat each other's Math.random(); the zygote is refused on this Node, and --start auto spawns")

  writeFileSync(selfTest, "export const forkSelfTest = null\nthrow new Error('the self-test cannot be loaded')\n")
  const died = await versionOf(t, server)
  t.equal(died.code, 0)
  t.equal(died.lines[3], 'fork self-test: failed: its Node ended with status 1 without a verdict: Error: the self-test cannot be loaded; the zygote is refused on this Node, and --start auto spawns')
})
