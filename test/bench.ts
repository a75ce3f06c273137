// make bench QUICK=1, end to end, into a temporary directory: the JSON holds
// every model, scenario and concurrency with finite numbers, the start-up
// rows, bare-fork and the targets, and the bench leaves no process behind.
// Speed is never asserted, and neither is a target: this machine may be busy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import type { Report, Result } from '../bench/results.js'
import { outsideTap, processesWith, SERVER } from './fixtures/server.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const BENCH = join(ROOT, 'dist', 'bench', 'bench.js')
const LIMIT_MS = 150_000

const MODELS = ['fork', 'fork+spares', 'prefork', 'node-single', 'python-forking', 'c-fork']
const PEERS = ['python-forking', 'c-fork']
const CONCURRENCIES = [1, 8, 32]
const MEMORY_LEVELS = [10, 40]
const STARTUP_SUBJECTS = ['node-e0', 'empty-child', 'forkserver-child']
const SPARES = 8
const SPARES_ARGS = ['--port', '0', '--host', '127.0.0.1', '--max-children', '64', '--spares', String(SPARES)]
const TARGETS = ['child-start', 'parent-cpu', 'fork-rate', 'spares-p50-c1', 'spares-p50-c8', 'spares-rate']

const kill = (pid: number, signal: NodeJS.Signals = 'SIGKILL'): void => {
  // Never -1 (every process we may signal), 0 or 1.
  if (Math.abs(pid) <= 1) return
  try {
    process.kill(pid, signal)
  } catch {
    // already gone
  }
}

/** The keys of `row` whose value is not a finite number. */
const notFinite = (row: object | undefined, keys: readonly string[]): string[] => {
  const values: Record<string, unknown> = { ...row }
  return keys.filter((key) => typeof values[key] !== 'number' || !Number.isFinite(values[key]))
}

// Everything the bench starts inherits this mark, so the teardown finds it all,
// even what ran in a session of its own or was orphaned.
const mark = `FORKSERVER_BENCH_TEST=${randomUUID()}`
const out = mkdtempSync(join(tmpdir(), 'forkserver-bench-'))
let bench: ChildProcess | null = null
let benchExited = false

t.teardown(async () => {
  if (bench && !benchExited) {
    // Give the bench its own cleanup first: it stops servers in order, so
    // their children are reaped rather than orphaned.
    bench.kill('SIGTERM')
    const deadline = Date.now() + 10_000
    while (!benchExited && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 50))
    if (!benchExited && bench.pid) kill(-bench.pid)
  }
  processesWith(mark).forEach((pid) => kill(pid))
  rmSync(out, { recursive: true, force: true })
})

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

const runBench = (): Promise<Run> =>
  new Promise((resolve) => {
    // env(1) execs node in its own place: the pid is the bench's.
    const proc = spawn('env', [...outsideTap(process.env), mark, process.execPath, BENCH, '--quick', '--out', out], {
      cwd: ROOT,
      // A group of its own, which the teardown can kill as a whole.
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    bench = proc
    let stdout = ''
    let stderr = ''
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk))
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk))
    const timer = setTimeout(() => proc.kill('SIGTERM'), LIMIT_MS)
    proc.once('exit', (code) => {
      benchExited = true
      clearTimeout(timer)
      resolve({ code, stdout, stderr })
    })
  })

/**
 * Whether this build of the server has --spares, asked as the bench asks:
 * start it with the bench's arguments; it listens, or says it does not know
 * the option. Stopped with SIGTERM (it ends its spares), then killed if need be.
 */
const serverHasSpares = (): Promise<boolean> =>
  new Promise((resolve, reject) => {
    const proc = spawn('env', [...outsideTap(process.env), mark, process.execPath, SERVER, ...SPARES_ARGS], {
      detached: true,
      stdio: ['ignore', 'ignore', 'pipe'],
    })
    let stderr = ''
    let answer: boolean | null = null
    const timer = setTimeout(() => settle(null), 15_000)
    const settle = (has: boolean | null): void => {
      if (answer !== null) return
      answer = has ?? false
      clearTimeout(timer)
      proc.kill('SIGTERM')
      const killer = setTimeout(() => proc.pid && kill(-proc.pid), 5000)
      if (proc.exitCode !== null || proc.signalCode !== null) finish(has, killer)
      else proc.once('exit', () => finish(has, killer))
    }
    const finish = (has: boolean | null, killer: NodeJS.Timeout): void => {
      clearTimeout(killer)
      if (has === null) reject(new Error(`the server with ${SPARES_ARGS.join(' ')} neither listened nor refused --spares:\n${stderr}`))
      else resolve(has)
    }
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      stderr += chunk
      if (/^listening on /m.test(stderr)) settle(true)
    })
    proc.once('exit', () => settle(/Unknown argument: spares/.test(stderr) ? false : null))
  })

let run: Run | null = null

t.test('make bench QUICK=1 succeeds and reports', async (t) => {
  // `make test` builds the server but not the bench; build it the way `make bench` does.
  const build = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'bench', 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  t.equal(build.status, 0, `tsc -p bench/tsconfig.json\n${build.stdout}${build.stderr}`)
  run = await runBench()
  t.comment(run.stderr)
  t.equal(run.code, 0, `exit status; stderr:\n${run.stderr}`)
  t.match(run.stderr, /^\[1\/\d+\] .+\.\.\./m, 'progress lines on stderr')
  t.match(run.stdout, /^\| model \| concurrency \| conn\/s \|/m, 'a markdown table on stdout')
  t.match(run.stdout, /^### Targets\n\n\| target \| measured \| target \| met\? \|/m, 'the targets table')
  t.match(run.stdout, /^\| subject \| start, p50 ms \|/m, 'the start-up table')
  const files = readdirSync(out).sort()
  t.ok(files.includes('latest.json'), 'latest.json')
  t.ok(files.includes('latest.svg'), 'latest.svg')
  t.ok(files.some((f) => /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.json$/.test(f)), 'a dated copy of the JSON')
  t.match(readFileSync(join(out, 'latest.svg'), 'utf8'), /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\s*$/, 'an SVG document')
})

t.test('nothing the bench started is still running', async (t) => {
  t.same(processesWith(mark), [])
})

t.test('the JSON holds every model, scenario and concurrency, with finite numbers', async (t) => {
  if (run === null) return t.fail('the bench did not run')
  const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Report
  const { machine, results } = report
  t.same(notFinite(machine, ['cpuCount']), [], 'CPU count')
  for (const key of ['cpuModel', 'node', 'date'] as const) t.match(machine[key], /\S/, `machine.${key}`)
  t.ok(machine.python === null || /python/i.test(machine.python), 'Python version, or null')
  t.ok(machine.cc === null || machine.cc.length > 0, 'cc version, or null')
  t.same(results.filter((r) => r.scenario === 'failed'), [], 'no scenario failed')

  const forkCost = results.filter((r) => r.scenario === 'forkcost')
  t.equal(forkCost.length, 1, 'one fork-cost result')
  t.same(notFinite(forkCost[0], ['samples', 'p50Ms', 'meanMs', 'blockP50Ms', 'blockMeanMs']), [], 'fork cost figures')

  const hasSpares = await serverHasSpares()
  t.comment(`this build of the server ${hasSpares ? 'has' : 'does not have'} --spares`)
  for (const model of MODELS) {
    const rows: Result[] = results.filter((r) => r.model === model && r.scenario !== 'forkcost')
    const skipped = rows.find((r) => r.scenario === 'skipped')
    if (skipped?.scenario === 'skipped') {
      t.match(skipped.reason, /\S/, `${model} skipped with a reason`)
      if (model === 'fork+spares') {
        t.notOk(hasSpares, 'fork+spares may be skipped only while the server has no --spares')
        t.match(skipped.reason, /spares/, 'the skip says the option is missing')
      } else {
        t.ok(PEERS.includes(model), `${model} may be skipped here: it is a peer`)
      }
      t.equal(rows.length, 1, `${model}: nothing but the skip`)
      continue
    }
    for (const concurrency of CONCURRENCIES) {
      const found = rows.filter((r) => r.scenario === 'connrate' && r.concurrency === concurrency)
      t.equal(found.length, 1, `${model} connrate c=${concurrency}`)
      const row = found[0]
      t.same(notFinite(row, ['connsPerSec', 'p50Ms', 'p90Ms', 'p99Ms', 'errors', 'loadgenCpuPct']), [], `${model} c=${concurrency} figures`)
      t.equal(row !== undefined && 'loadgenBound' in row && typeof row.loadgenBound, 'boolean', `${model} c=${concurrency} load generator flag`)
      if (model === 'fork' || model === 'fork+spares') {
        t.same(notFinite(row, ['parentCpuMsPerConn']), [], `${model} c=${concurrency} parent CPU per connection`)
      }
      if (model === 'fork+spares') t.equal(row?.scenario === 'connrate' && 'spares' in row && row.spares, SPARES, `fork+spares c=${concurrency} says --spares ${SPARES}`)
    }
    const throughput = rows.filter((r) => r.scenario === 'throughput')
    t.equal(throughput.length, 1, `${model} throughput`)
    t.same(notFinite(throughput[0], ['connections', 'mbPerSec', 'errors', 'loadgenCpuPct']), [], `${model} throughput figures`)
    for (const level of MEMORY_LEVELS) {
      const found = rows.filter((r) => r.scenario === 'memory' && r.connections === level)
      t.equal(found.length, 1, `${model} memory at ${level} connections`)
      t.same(notFinite(found[0], ['pssMB', 'idlePssMB', 'perConnKB', 'processes', 'errors']), [], `${model} memory ${level} figures`)
    }
    const spread = rows.filter((r) => r.scenario === 'spread')
    if (model === 'prefork') {
      t.equal(spread.length, 1, 'prefork spread')
      t.same(notFinite(spread[0], ['workers', 'connections', 'minShare', 'maxShare']), [], 'spread figures')
    } else {
      t.equal(spread.length, 0, `no spread for ${model}`)
    }
  }

  // bare-fork: at every concurrency the settings name (a quick run: 8 only), never skipped.
  const bareConcurrencies = report.settings.bareForkConcurrencies
  t.ok(Array.isArray(bareConcurrencies) && bareConcurrencies.includes(8), 'bare-fork runs at concurrency 8 at least')
  const bare = results.filter((r) => r.model === 'bare-fork')
  t.equal(bare.length, Array.isArray(bareConcurrencies) ? bareConcurrencies.length : -1, 'one bare-fork row per concurrency, and nothing else')
  for (const row of bare) {
    t.equal(row.scenario, 'connrate', 'a bare-fork row is a connrate row')
    const c = row.scenario === 'connrate' ? row.concurrency : NaN
    t.same(notFinite(row, ['concurrency', 'connsPerSec', 'p50Ms', 'p90Ms', 'p99Ms', 'errors', 'connections', 'seconds', 'parentCpuMsPerFork']), [], `bare-fork c=${c} figures`)
    t.ok(row.scenario === 'connrate' && row.connections > 0, `bare-fork c=${c}: children exited in the window`)
  }

  // Start-up: one row per subject, each with its figures.
  for (const subject of STARTUP_SUBJECTS) {
    const found = results.filter((r) => r.model === subject)
    t.equal(found.length, 1, `${subject}: one row`)
    t.equal(found[0]?.scenario, 'startup', `${subject}: a startup row`)
    t.same(notFinite(found[0], ['samples', 'startMs', 'startP90Ms', 'rssMiB', 'pssMiB', 'privateMiB']), [], `${subject} figures`)
    t.ok(found[0]?.scenario === 'startup' && found[0].samples > 0 && found[0].pssMiB > 0 && found[0].rssMiB >= found[0].pssMiB, `${subject}: samples, and PSS within RSS`)
  }

  // Targets: each evaluated, or not measured only because fork+spares was skipped.
  t.same(report.targets.map((x) => x.id), TARGETS, 'every target, in order')
  for (const target of report.targets) {
    if (target.met === null) {
      t.ok(target.id.startsWith('spares-') && !hasSpares, `${target.id} may go unmeasured only while the server has no --spares`)
      t.match(target.reason ?? '', /\S/, `${target.id}: why it was not measured`)
      continue
    }
    t.same(notFinite(target, ['measured', 'limit']), [], `${target.id}: measured and limit`)
    t.equal(typeof target.met, 'boolean', `${target.id}: met or missed`)
    const holds = target.comparison === '<=' ? target.measured! <= target.limit! : target.measured! >= target.limit!
    t.equal(target.met, holds, `${target.id}: met agrees with the figures`)
  }
})
