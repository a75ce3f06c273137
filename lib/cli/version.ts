// --version: what this install is, as a bug report needs it. The package's
// version; the Node that runs it; whether the native addon loads, and if not,
// why and the command that builds it; and the fork self-test's verdict on this
// Node, run as a zygote runs it, in a Node of its own started with the
// zygote's flags. The addon and the self-test are what the zygote needs.
import { spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { loadAddon } from '../native/addon.js'
import type { SelfTestResult } from '../zygote/fork-self-test.js'
import { zygoteFlags } from '../zygote/warm-fork.js'

/** The version in forkserver's own package.json, found from wherever this file runs: lib/ in the source tree, dist/lib/ once built or installed. */
export const packageVersion = (): string => {
  for (let dir = new URL('./', import.meta.url); ; dir = new URL('../', dir)) {
    try {
      const pkg: { name?: string; version?: string } = JSON.parse(readFileSync(new URL('package.json', dir), 'utf8'))
      if (pkg.name === 'forkserver' && pkg.version) return pkg.version
    } catch {
      // not here; look one directory up
    }
    if (dir.pathname === '/') return 'unknown'
  }
}

/** The children the self-test forks: as many as the zygote's. */
const SELF_TEST_CHILDREN = 4
/** How long the self-test's Node may take: the test's own deadline (10 s), and a start on a busy machine. */
const SELF_TEST_LIMIT_MS = 20_000

/** A built module of dist/lib/, as the self-test's Node imports it: from here once built, from dist/ in the source tree. */
const built = (path: string): string => {
  const here = new URL(`../${path}`, import.meta.url)
  return (existsSync(fileURLToPath(here)) ? here : new URL(`../../dist/lib/${path}`, import.meta.url)).href
}

/** What the self-test's Node runs: the test, as the zygote runs it; its verdict, as JSON on stdout. */
const selfTestScript = (): string => [
  `import { loadAddon } from ${JSON.stringify(built('native/addon.js'))}`,
  `import { forkSelfTest } from ${JSON.stringify(built('zygote/fork-self-test.js'))}`,
  // Should this process be left (its parent killed), it ends, and what it forked with it: its group.
  "process.on('disconnect', () => process.kill(0, 'SIGKILL'))",
  'const { addon, reason } = loadAddon()',
  `const result = addon === null ? { ok: false, reason } : await forkSelfTest(addon, { children: ${SELF_TEST_CHILDREN} })`,
  'process.stdout.write(JSON.stringify(result))',
  "process.removeAllListeners('disconnect').disconnect()",
].join('\n')

/** The verdict in the self-test's output, or why there is none. */
const verdictOf = (stdout: string, stderr: string, end: string): SelfTestResult => {
  try {
    const result = JSON.parse(stdout) as SelfTestResult
    if (result.ok ? typeof result.ms === 'number' : typeof result.reason === 'string') return result
  } catch {
    // no verdict: say how it ended
  }
  // (An uncaught error's line, not the `Node.js v...` that Node prints after it.)
  const lines = stderr.split('\n').filter((line) => line.trim() !== '')
  const why = lines.find((line) => /^\w*Error\b/.test(line)) ?? lines.at(-1)
  return { ok: false, reason: `its Node ${end} without a verdict${why === undefined ? '' : `: ${why}`}` }
}

/**
 * The fork self-test (lib/zygote/fork-self-test.ts), in a Node started as the
 * zygote is (its flags; no NODE_OPTIONS, whose loaders run on threads), in a
 * process group of its own, which is killed should it not end in time.
 */
const runSelfTest = (): Promise<SelfTestResult> =>
  new Promise((resolve) => {
    const args = [...zygoteFlags, '--input-type=module', '-e', selfTestScript()]
    const test = spawn(process.execPath, args, { env: { ...process.env, NODE_OPTIONS: '' }, detached: true, stdio: ['ignore', 'pipe', 'pipe', 'ipc'] })
    let stdout = ''
    let stderr = ''
    let late = false
    test.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    test.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => {
      late = true
      try {
        process.kill(-(test.pid ?? 0), 'SIGKILL')
      } catch {
        // it has just ended
      }
    }, SELF_TEST_LIMIT_MS)
    test.on('error', (err) => {
      clearTimeout(timer)
      resolve({ ok: false, reason: `its Node did not start: ${err.message}` })
    })
    test.on('close', (code, signal) => {
      clearTimeout(timer)
      const end = late ? `took over ${SELF_TEST_LIMIT_MS / 1000} s, and was killed,` : `ended with ${signal ?? `status ${code}`}`
      resolve(verdictOf(stdout, stderr, end))
    })
  })

/** The lines --version prints. */
export const versionReport = async (): Promise<string> => {
  const { addon, reason } = loadAddon()
  const test = addon === null ? null : await runSelfTest()
  const verdict = test === null ? 'not run: it needs the addon'
    : test.ok ? `passed (${SELF_TEST_CHILDREN} forked children, ${Math.round(test.ms)} ms): the zygote can serve on this Node`
    : `failed: ${test.reason}; the zygote is refused on this Node, and --start auto spawns`
  return [
    `forkserver ${packageVersion()}`,
    `node ${process.version} (NODE_MODULE_VERSION ${process.versions.modules}), ${process.platform} ${process.arch}`,
    `addon: ${addon === null ? reason : `loaded, built for Node ${addon.nodeVersion}`}`,
    `fork self-test: ${verdict}`,
    '',
  ].join('\n')
}
