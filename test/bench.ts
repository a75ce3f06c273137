// make bench QUICK=1, end to end, once, as a reader runs it: into its own
// folder, bench/results/quick, which git ignores. The committed figures and
// every tracked file stay as they were; the JSON holds every model, scenario
// and concurrency, each figure a number or null with a reason (a quick window
// may hold nothing to measure), the start-up rows, bare-fork and the targets;
// and the bench leaves no process behind. What the run wrote is deleted after.
// Speed is never asserted, and neither is a target: this machine may be busy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { join, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import type { Report, Result } from '../bench/results.js'
import { outsideTap, processesWith, SERVER } from './fixtures/server.js'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
const BENCH = join(ROOT, 'dist', 'bench', 'bench.js')
/**
 * How long the quick run may take: about 100 s alone, and up to 157 s seen
 * with the rest of the suite running beside it on 2 cores.
 */
const LIMIT_MS = 240_000
// The file's own limit, past .taprc's 180 s: the build, the run, and the checks after it.
t.setTimeout(LIMIT_MS + 60_000)
/** Where `make bench QUICK=1` writes (bench/settings.ts). */
const QUICK_DIR = join(ROOT, 'bench', 'results', 'quick')
const COMMITTED = ['latest.json', 'latest.svg'].map((f) => join(ROOT, 'bench', 'results', f))
const QUICK_LABEL = 'QUICK run (5 samples): not a result'

const MODELS = ['fork', 'fork+spares', 'fork (zygote)', 'fork (zygote)+spares', 'node-fork', 'exec', 'exec (zygote)', 'prefork', 'node-single', 'python-forking', 'tcpserver+cat', 'c-fork']
const PEERS = ['python-forking', 'tcpserver+cat', 'c-fork']
/** Skipped, with the reason, where the native addon is not built (bench/models.ts). */
const ZYGOTE_MODELS = ['fork (zygote)', 'exec (zygote)', 'node-fork']
/** forkserver's fork models, whose parent's CPU time per connection is reported. */
const FORK_MODELS = ['fork', 'fork+spares', 'fork (zygote)', 'fork (zygote)+spares', 'exec', 'exec (zygote)']
/** The cost table's models (bench/cost.ts), and the figures of each row. */
const COST_MODELS = ['fork (zygote)', 'node-fork', 'python-forking', 'c-fork']
const COST_FIGURES = ['connsPerSec', 'parentCpuMs', 'childCpuMs', 'totalCpuMs', 'childMinorFaults', 'forkerMinorFaults', 'forkCallUs', 'forkCallP50Us']
const NATIVE_ADDON = join(ROOT, 'dist', 'native', 'forkserver.node')
const CONCURRENCIES = [1, 8, 32]
const MEMORY_LEVELS = [10, 40]
const STARTUP_SUBJECTS = ['node-e0', 'empty-child', 'forkserver-child']
const SPARES = 8
const SPARES_ARGS = ['--port', '0', '--host', '127.0.0.1', '--max-children', '64', '--start', 'spawn', '--spares', String(SPARES)]
const TARGETS = ['child-start', 'parent-cpu', 'fork-rate', 'spares-p50-c1', 'spares-p50-c8', 'spares-rate', 'zygote-rate', 'zygote-p50-c1', 'exec-zygote-rate', 'zygote-child-pss', 'floor-rate', 'floor-p50-c1', 'zygote-vs-python', 'zygote-vs-floor', 'zygote-spares-p50-c1', 'host-c-fork']

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

/** The keys of `row` that hold neither a finite number nor null explained by the row's `reason`. */
const notFigures = (row: object | undefined, keys: readonly string[]): string[] => {
  const values: Record<string, unknown> = { ...row }
  const explained = typeof values.reason === 'string' && values.reason.trim() !== ''
  return notFinite(row, keys).filter((key) => !(values[key] === null && explained))
}

/** git in this checkout; null when it is not a git work tree (a tarball), or git is missing. */
const git = (...args: string[]): { status: number | null; stdout: string } | null => {
  const inside = spawnSync('git', ['rev-parse', '--is-inside-work-tree'], { cwd: ROOT, encoding: 'utf8' })
  if (inside.status !== 0 || inside.stdout.trim() !== 'true') return null
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' })
  return { status: r.status, stdout: r.stdout }
}
const tracked = (): string | null => git('status', '--porcelain', '--untracked-files=no')?.stdout ?? null
const committed = (): string[] => COMMITTED.map((path) => (existsSync(path) ? readFileSync(path, 'utf8') : ''))

// Everything the bench starts inherits this mark, so the teardown finds it all,
// even what ran in a session of its own or was orphaned.
const mark = `FORKSERVER_BENCH_TEST=${randomUUID()}`
let bench: ChildProcess | null = null
let benchExited = false
// What was in the quick folder before: the teardown removes only what this run added or rewrote.
const quickExisted = existsSync(QUICK_DIR)
const quickBefore = new Set(quickExisted ? readdirSync(QUICK_DIR) : [])
let written: string[] = []

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
  if (!quickExisted) rmSync(QUICK_DIR, { recursive: true, force: true })
  else {
    const added = readdirSync(QUICK_DIR).filter((f) => !quickBefore.has(f)).map((f) => join(QUICK_DIR, f))
    for (const path of [...added, ...written]) rmSync(path, { force: true })
  }
})

interface Run {
  readonly code: number | null
  readonly stdout: string
  readonly stderr: string
}

/** As `make bench QUICK=1` runs it: no --out. */
const runBench = (): Promise<Run> =>
  new Promise((resolve) => {
    // env(1) execs node in its own place: the pid is the bench's.
    const proc = spawn('env', [...outsideTap(process.env), mark, process.execPath, BENCH, '--quick'], {
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

/** Whether this build of the server has --spares (serverHasSpares), once asked. */
let hasSpares: boolean | null = null

/** A model may be skipped only for want of --spares, of the native addon, or of a peer's tool, and says why. */
const checkSkip = (t: Test, model: string, reason: string): void => {
  t.match(reason, /\S/, `${model} skipped with a reason`)
  if (model === 'fork+spares') {
    t.notOk(hasSpares, 'fork+spares may be skipped only while the server has no --spares')
    t.match(reason, /spares/, 'the skip says the option is missing')
  } else if (model === 'fork (zygote)+spares') {
    // Until the zygote takes --spares, the server refuses the pair, and says so.
    t.match(reason, /refuses --spares with --start zygote \(.+\)|native addon|--start zygote is unavailable/, 'the skip quotes the refusal, or why the zygote cannot be had')
  } else if (ZYGOTE_MODELS.includes(model)) {
    t.notOk(existsSync(NATIVE_ADDON), `${model} may be skipped only while the native addon is not built`)
    t.match(reason, /native addon|--start zygote is unavailable/, 'the skip says why the zygote cannot be had')
  } else {
    t.ok(PEERS.includes(model), `${model} may be skipped here: it is a peer`)
  }
}

/** One connrate row per concurrency, each with its counts and its figures, or null with a reason. */
const checkConnrate = (t: Test, model: string, rows: readonly Result[]): void => {
  for (const concurrency of CONCURRENCIES) {
    const found = rows.filter((r) => r.scenario === 'connrate' && r.concurrency === concurrency)
    t.equal(found.length, 1, `${model} connrate c=${concurrency}`)
    const row = found[0]
    t.same(notFinite(row, ['errors', 'connections', 'loadgenCpuPct']), [], `${model} c=${concurrency} counts`)
    t.same(notFigures(row, ['connsPerSec', 'p50Ms', 'p90Ms', 'p99Ms']), [], `${model} c=${concurrency} figures`)
    t.equal(row !== undefined && 'loadgenBound' in row && typeof row.loadgenBound, 'boolean', `${model} c=${concurrency} load generator flag`)
    if (FORK_MODELS.includes(model)) {
      t.same(notFigures(row, ['parentCpuMsPerConn']), [], `${model} c=${concurrency} parent CPU per connection`)
    }
    if (model === 'fork+spares') t.equal(row?.scenario === 'connrate' && 'spares' in row && row.spares, SPARES, `fork+spares c=${concurrency} says --spares ${SPARES}`)
    if (model === 'fork (zygote)+spares') t.equal(row?.scenario === 'connrate' && 'spares' in row && row.spares, 4, `fork (zygote)+spares c=${concurrency} says --spares 4`)
  }
}

/** The cost table's models: one cost row each, every figure a number or null with a reason, and fork() timed; the others none. */
const checkCost = (t: Test, model: string, rows: readonly Result[]): void => {
  const found = rows.filter((r) => r.scenario === 'cost')
  if (!COST_MODELS.includes(model)) return void t.equal(found.length, 0, `no cost row for ${model}`)
  t.equal(found.length, 1, `${model}: one cost row`)
  const row = found[0]
  if (row?.scenario !== 'cost') return
  t.same(notFinite(row, ['concurrency', 'connections', 'errors', 'seconds', 'forkSamples', 'clockTicksPerSecond']), [], `${model} cost counts`)
  const zygote = model === 'fork (zygote)' ? ['zygoteCpuMs'] : []
  const split = model === 'python-forking' ? [] : ['fork2Us']
  t.same(notFigures(row, [...COST_FIGURES, ...zygote, ...split]), [], `${model} cost figures`)
  t.equal('zygoteCpuMs' in row, model === 'fork (zygote)', `${model}: a zygote's CPU only under the zygote`)
  t.ok(row.forkSamples >= row.connections, `${model}: a fork timed per connection (${row.forkSamples} for ${row.connections})`)
}

let run: Run | null = null

t.test('make bench QUICK=1 succeeds and reports, as a quick run', async (t) => {
  // `make test` builds the server but not the bench; build it the way `make bench` does.
  const build = spawnSync(process.execPath, [TSC, '-p', join(ROOT, 'bench', 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 })
  t.equal(build.status, 0, `tsc -p bench/tsconfig.json\n${build.stdout}${build.stderr}`)

  // Refused before anything runs: one line, and a usage error's status.
  const refused = spawnSync('env', [...outsideTap(process.env), mark, process.execPath, BENCH, '--quick', '--save'], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 })
  t.equal(refused.status, 2, '--quick --save: exit status 2')
  t.match(refused.stderr, /^bench: --save keeps a full run only: a quick run is never saved \(usage: [^\n]+\)\n$/, '--quick --save: one line on stderr')
  t.equal(refused.stdout, '', '--quick --save: nothing on stdout')

  const trackedBefore = tracked()
  const committedBefore = committed()
  run = await runBench()
  t.comment(run.stderr)
  t.equal(run.code, 0, `exit status; stderr:\n${run.stderr}`)
  t.match(run.stderr, /^\[1\/\d+\] .+\.\.\./m, 'progress lines on stderr')
  t.match(run.stdout, /^\| model \| concurrency \| conn\/s \|/m, 'a markdown table on stdout')
  t.match(run.stdout, `\n### Targets — ${QUICK_LABEL}\n\n| target | measured | target | met? |`, 'the targets table, titled QUICK')
  t.match(run.stdout, /^\| subject \| start, p50 ms \|/m, 'the start-up table')
  t.match(run.stdout, /^\| model \| conn\/s \| parent CPU ms \| zygote CPU ms \| child CPU ms \|/m, 'the cost table')
  t.same(run.stdout.split('\n').filter((line) => line.startsWith('#') && !line.endsWith(` — ${QUICK_LABEL}`)), [], 'every heading says QUICK')
  t.match(run.stderr, `bench: ${QUICK_LABEL}; the committed bench/results/latest.* are untouched\n`, 'and its closing line on stderr')

  written = /^bench: wrote (.+) after [\d.]+ s$/m.exec(run.stderr)?.[1]?.split(', ') ?? []
  t.equal(written.length, 3, 'three files written')
  t.same(written.filter((path) => !path.startsWith(QUICK_DIR + sep)), [], 'all in bench/results/quick')
  const files = readdirSync(QUICK_DIR).sort()
  t.ok(files.includes('latest.json'), 'latest.json')
  t.ok(files.includes('latest.svg'), 'latest.svg')
  t.ok(files.some((f) => /^\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.json$/.test(f)), 'a dated copy of the JSON')
  const svg = readFileSync(join(QUICK_DIR, 'latest.svg'), 'utf8')
  t.match(svg, /^<svg [^>]*xmlns="http:\/\/www\.w3\.org\/2000\/svg"[\s\S]*<\/svg>\s*$/, 'an SVG document')
  t.match(svg, `<title>forkserver bench: short connections (connect, 64-byte echo, close) on 127.0.0.1 — ${QUICK_LABEL}</title>`, 'titled QUICK')

  t.same(committed(), committedBefore, 'bench/results/latest.json and latest.svg are as they were')
  const trackedAfter = tracked()
  if (trackedBefore === null || trackedAfter === null) return t.comment('not a git work tree: tracked files not compared')
  t.equal(trackedAfter, trackedBefore, 'git status of the tracked files is as it was')
  for (const path of written) t.equal(git('check-ignore', '-q', path)?.status, 0, `git ignores ${path.slice(ROOT.length)}`)
})

t.test('nothing the bench started is still running', async (t) => {
  t.same(processesWith(mark), [])
})

t.test('the JSON holds every model, scenario and concurrency, each figure a number or null with a reason', async (t) => {
  if (run === null) return t.fail('the bench did not run')
  const report = JSON.parse(readFileSync(join(QUICK_DIR, 'latest.json'), 'utf8')) as Report
  t.equal(report.settings.quick, true, 'a quick run, and the JSON says so')
  const { machine, results } = report
  t.same(notFinite(machine, ['cpuCount']), [], 'CPU count')
  for (const key of ['cpuModel', 'node', 'date'] as const) t.match(machine[key], /\S/, `machine.${key}`)
  t.ok(machine.python === null || /python/i.test(machine.python), 'Python version, or null')
  t.ok(machine.cc === null || machine.cc.length > 0, 'cc version, or null')
  t.same(results.filter((r) => r.scenario === 'failed'), [], 'no scenario failed')

  const forkCost = results.filter((r) => r.scenario === 'forkcost')
  t.equal(forkCost.length, 1, 'one fork-cost result')
  t.same(notFinite(forkCost[0], ['samples', 'p50Ms', 'meanMs', 'blockP50Ms', 'blockMeanMs']), [], 'fork cost figures')

  hasSpares = await serverHasSpares()
  t.comment(`this build of the server ${hasSpares ? 'has' : 'does not have'} --spares`)
  for (const model of MODELS) {
    const rows: Result[] = results.filter((r) => r.model === model && r.scenario !== 'forkcost')
    const skipped = rows.find((r) => r.scenario === 'skipped')
    if (skipped?.scenario === 'skipped') {
      checkSkip(t, model, skipped.reason)
      t.equal(rows.length, 1, `${model}: nothing but the skip`)
      continue
    }
    checkConnrate(t, model, rows)
    checkCost(t, model, rows)
    const throughput = rows.filter((r) => r.scenario === 'throughput')
    t.equal(throughput.length, 1, `${model} throughput`)
    t.same(notFinite(throughput[0], ['connections', 'errors', 'loadgenCpuPct']), [], `${model} throughput counts`)
    t.same(notFigures(throughput[0], ['mbPerSec']), [], `${model} throughput figure`)
    for (const level of MEMORY_LEVELS) {
      const found = rows.filter((r) => r.scenario === 'memory' && r.connections === level)
      t.equal(found.length, 1, `${model} memory at ${level} connections`)
      t.same(notFinite(found[0], ['processes', 'errors']), [], `${model} memory ${level} counts`)
      t.same(notFigures(found[0], ['pssMB', 'idlePssMB', 'perConnKB']), [], `${model} memory ${level} figures`)
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
})

// Each evaluated, or not measured only because fork+spares or the zygote was
// skipped, a peer it is measured against was, or a figure it needs could not
// be measured (whose reason it gives). Those printed only (comparison null)
// are never met or missed.
t.test('every target is evaluated, or says why it could not be', async (t) => {
  if (run === null || hasSpares === null) return t.fail('the bench did not run')
  const report = JSON.parse(readFileSync(join(QUICK_DIR, 'latest.json'), 'utf8')) as Report
  const { results } = report
  const skips = results.flatMap((r) => (r.scenario === 'skipped' ? [`${r.model} skipped`] : []))
  const unmeasured = results.flatMap((r) => (r.scenario !== 'skipped' && r.scenario !== 'failed' && 'reason' in r && r.reason ? [r.reason] : []))
  t.same(report.targets.map((x) => x.id), TARGETS, 'every target, in order')
  for (const target of report.targets) {
    if (target.comparison === null && target.measured !== null) {
      t.same([target.limit, target.met], [null, null], `${target.id}: printed only, neither met nor missed`)
      continue
    }
    if (target.met === null) {
      const reason = target.reason ?? ''
      t.match(reason, /\S/, `${target.id}: why it was not measured`)
      const wanting = (target.id.startsWith('spares-') && !hasSpares) || skips.some((s) => reason.includes(s))
      t.ok(wanting || unmeasured.some((r) => reason.includes(r)), `${target.id} is unmeasured only for want of --spares, a skipped model or a figure: ${reason}`)
      t.same([target.measured, target.limit], [null, null], `${target.id}: no figures, and so neither met nor missed`)
      continue
    }
    t.same(notFinite(target, ['measured', 'limit']), [], `${target.id}: measured and limit`)
    t.equal(typeof target.met, 'boolean', `${target.id}: met or missed`)
    const holds = target.comparison === '<=' ? target.measured! <= target.limit! : target.measured! >= target.limit!
    t.equal(target.met, holds, `${target.id}: met agrees with the figures`)
  }
})
