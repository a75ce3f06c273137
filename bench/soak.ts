// make soak: many short connections at concurrency 8, to see what a long run
// leaves behind, under each start named on the command line:
//   --start zygote: 20,000 connections after 2,000 to warm up. The parent's
//     RSS may grow by less than 16 MiB and the zygote's by less than 5 MiB.
//   --start spawn: 2,000 after 200 (a fresh Node per connection, about 25 a
//     second on 2 cores). The parent's RSS may grow by less than 10 MiB.
// Under both: every descriptor count flat (after = before), no zombie, no
// connection lost. A markdown table per start on stdout, PASS or FAIL per
// target, JSON in bench/results/soak.json (untracked); exits 1 if a target is
// missed. Progress goes to stderr. Not a timed test: it only reports.
//
//   node dist/bench/soak.js [--start spawn,zygote] [--connections N] [--warmup N] [--concurrency 8]
import { randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { sleep, zombiesUnder, zygotesOf } from './proctree.js'
import { startServer, waitIdle, type SoakServer, type Watch } from './soak-server.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const OUT = join(ROOT, 'bench', 'results', 'soak.json')

type Start = 'spawn' | 'zygote'

interface Plan {
  readonly start: Start
  readonly connections: number
  readonly warmup: number
  readonly concurrency: number
  /** RSS growth allowed over the measured connections, MiB; null: the process is not there. */
  readonly parentRssMiB: number
  readonly zygoteRssMiB: number | null
}

const PLANS: Record<Start, Plan> = {
  zygote: { start: 'zygote', connections: 20_000, warmup: 2000, concurrency: 8, parentRssMiB: 16, zygoteRssMiB: 5 },
  spawn: { start: 'spawn', connections: 2000, warmup: 200, concurrency: 8, parentRssMiB: 10, zygoteRssMiB: null },
}

const PAYLOAD_BYTES = 64
const CONNECTION_LIMIT_MS = 20_000
const FD_SETTLE_MS = 5_000
const SAMPLE_EVERY = 20
const MAX_CHILDREN = 40
const serverArgs = (start: Start): string[] => ['--port', '0', '--max-children', String(MAX_CHILDREN), '-v', '--start', start]

const log = (text: string): void => void process.stderr.write(`soak: ${text}\n`)
const mib = (kib: number): number => kib / 1024
const fixed = (n: number, digits = 1): string => n.toFixed(digits)

// ---------------------------------------------------------------- the command line

const count = (name: string, text: string | undefined, min: number): number | undefined => {
  if (text === undefined) return undefined
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`)
  return n
}

/** The plans the command line asks for, in its order, with its counts in place of theirs. */
const plansFrom = (argv: readonly string[]): Plan[] => {
  const { values } = parseArgs({
    args: [...argv],
    options: { start: { type: 'string', default: 'zygote,spawn' }, connections: { type: 'string' }, warmup: { type: 'string' }, concurrency: { type: 'string' } },
  })
  const starts = (values.start ?? '').split(',').filter(Boolean)
  const unknown = starts.filter((s) => s !== 'spawn' && s !== 'zygote')
  if (starts.length === 0 || unknown.length > 0) throw new Error(`--start takes spawn, zygote or both (spawn,zygote), got ${JSON.stringify(values.start)}`)
  const connections = count('connections', values.connections, 1)
  const warmup = count('warmup', values.warmup, 0)
  const concurrency = count('concurrency', values.concurrency, 1)
  return [...new Set(starts as Start[])].map((start) => ({
    ...PLANS[start],
    ...(connections === undefined ? {} : { connections }),
    ...(warmup === undefined ? {} : { warmup }),
    ...(concurrency === undefined ? {} : { concurrency }),
  }))
}

// ---------------------------------------------------------------- /proc

const rssKiB = (pid: number): number => {
  const found = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!found) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(found[1])
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** The descriptor count once it has not changed for 500 ms (or equals `expected`), within FD_SETTLE_MS. */
const settledFds = async (pid: number, expected?: number): Promise<number> => {
  const deadline = Date.now() + FD_SETTLE_MS
  let last = fdCount(pid)
  let stableSince = Date.now()
  while (Date.now() < deadline) {
    if (last === expected) return last
    if (expected === undefined && Date.now() - stableSince >= 500) return last
    await sleep(20)
    const now = fdCount(pid)
    if (now !== last) stableSince = Date.now()
    last = now
  }
  return last
}

interface Reading {
  readonly rssKiB: number
  readonly fds: number
}

const read = async (pid: number, before?: Reading): Promise<Reading> => {
  const fds = await settledFds(pid, before?.fds)
  return { rssKiB: rssKiB(pid), fds }
}

// ---------------------------------------------------------------- clients

let interrupted: NodeJS.Signals | null = null

type Outcome = 'ok' | 'mismatch' | 'timeout' | string

/** One short connection: connect, send 64 random bytes, half-close, read the echo, compare. */
const oneConnection = (port: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const payload = randomBytes(PAYLOAD_BYTES)
    const chunks: Buffer[] = []
    let outcome: Outcome | null = null
    const socket = connect({ port, host: '127.0.0.1' }, () => socket.end(payload))
    const timer = setTimeout(() => {
      outcome ??= 'timeout'
      socket.destroy()
    }, CONNECTION_LIMIT_MS)
    socket.on('data', (chunk: Buffer) => chunks.push(chunk))
    socket.on('error', (err: NodeJS.ErrnoException) => {
      outcome ??= err.code ?? err.message
    })
    socket.on('close', () => {
      clearTimeout(timer)
      resolve(outcome ?? (Buffer.concat(chunks).equals(payload) ? 'ok' : 'mismatch'))
    })
  })

interface Drive {
  readonly lost: Map<string, number>
  readonly ms: number
}

const lostCount = (run: Drive): number => [...run.lost.values()].reduce((a, b) => a + b, 0)

/** `total` connections, `concurrency` at a time; `progress` sees each completion. */
const drive = async (port: number, total: number, concurrency: number, progress: (done: number, lost: number) => void = () => undefined): Promise<Drive> => {
  const lost = new Map<string, number>()
  let started = 0
  let done = 0
  let lostSoFar = 0
  const t0 = Date.now()
  const lane = async (): Promise<void> => {
    while (started < total && interrupted === null) {
      started++
      const outcome = await oneConnection(port)
      done++
      if (outcome !== 'ok') {
        lostSoFar++
        lost.set(outcome, (lost.get(outcome) ?? 0) + 1)
      }
      progress(done, lostSoFar)
    }
  }
  await Promise.all(Array.from({ length: Math.min(concurrency, Math.max(total, 1)) }, lane))
  if (interrupted !== null) throw new Error(`interrupted by ${interrupted}`)
  return { lost, ms: Date.now() - t0 }
}

// ---------------------------------------------------------------- one soak

/** RSS every SAMPLE_EVERY connections, to tell a trend from V8's sawtooth: [parent, zygote] in KiB. */
type Sample = readonly [number, number | null]

interface Soaked {
  readonly plan: Plan
  readonly watch: Watch
  readonly warm: Drive
  readonly run: Drive
  readonly parent: { readonly before: Reading; readonly after: Reading }
  readonly zygote: { readonly pid: number; readonly before: Reading; readonly after: Reading; readonly pidAfter: number | null } | null
  readonly zombies: number
  readonly samples: readonly Sample[]
}

/** The zygote of an idle server: exactly one, or an error. */
const zygoteOf = (server: number): number => {
  const found = zygotesOf(server)
  if (found.length !== 1 || found[0] === undefined) throw new Error(`expected one zygote under the server (pid ${server}), found ${found.length}`)
  return found[0]
}

const sampler = (plan: Plan, watch: Watch, zygote: number | null, samples: Sample[]) => {
  const every = Math.max(100, Math.round(plan.connections / 20))
  const t0 = Date.now()
  return (done: number, lost: number): void => {
    if (done % SAMPLE_EVERY !== 0 && done !== plan.connections) return
    try {
      samples.push([rssKiB(watch.pid), zygote === null ? null : rssKiB(zygote)])
    } catch {
      // a process is gone; the end says so
    }
    if (done % every !== 0 && done !== plan.connections) return
    const [parent, z] = samples.at(-1) ?? [NaN, null]
    const rate = done / ((Date.now() - t0) / 1000)
    log(`${plan.start}: ${done}/${plan.connections} done, ${lost} lost, ${fixed(rate)} conn/s, parent RSS ${fixed(mib(parent))} MiB${z === null ? '' : `, zygote RSS ${fixed(mib(z))} MiB`}`)
  }
}

const soak = async (plan: Plan, server: SoakServer): Promise<Soaked> => {
  const { watch } = server
  await server.ready
  log(`${plan.start}: server pid ${watch.pid} on 127.0.0.1:${watch.port}; warm-up: ${plan.warmup} connections`)
  const warm = await drive(watch.port, plan.warmup, plan.concurrency)
  await waitIdle(watch, `${plan.start}: after the warm-up`)
  const zygote = plan.start === 'zygote' ? zygoteOf(watch.pid) : null
  const parentBefore = await read(watch.pid)
  const zygoteBefore = zygote === null ? null : await read(zygote)
  log(`${plan.start}: now ${plan.connections} connections, ${plan.concurrency} at a time`)
  const samples: Sample[] = []
  const run = await drive(watch.port, plan.connections, plan.concurrency, sampler(plan, watch, zygote, samples))
  await waitIdle(watch, `${plan.start}: after ${plan.connections} connections`)
  const parentAfter = await read(watch.pid, parentBefore)
  const zygoteAfter = zygote === null || zygoteBefore === null ? null : await read(zygote, zygoteBefore)
  const zygoteNow = zygote === null ? [] : zygotesOf(watch.pid)
  return {
    plan,
    watch,
    warm,
    run,
    parent: { before: parentBefore, after: parentAfter },
    zygote: zygote === null || zygoteBefore === null || zygoteAfter === null ? null : { pid: zygote, before: zygoteBefore, after: zygoteAfter, pidAfter: zygoteNow.length === 1 ? (zygoteNow[0] ?? null) : null },
    zombies: zombiesUnder(watch.pid).length,
    samples,
  }
}

// ---------------------------------------------------------------- the report

interface Check {
  readonly figure: string
  readonly value: string
  readonly target: string
  readonly pass: boolean | null
}

const growthMiB = (r: { before: Reading; after: Reading }): number => mib(r.after.rssKiB - r.before.rssKiB)

/** The median of the first and of the last tenth of the samples, KiB. */
const trend = (values: readonly number[]): [number, number] => {
  const tenth = Math.max(1, Math.floor(values.length / 10))
  const median = (xs: readonly number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
  return [median(values.slice(0, tenth)), median(values.slice(-tenth))]
}

const memoryChecks = (name: string, r: { before: Reading; after: Reading }, during: readonly number[], allowed: number): Check[] => {
  const [first, last] = trend(during)
  const range = during.length ? `${fixed(mib(Math.min(...during)))} to ${fixed(mib(Math.max(...during)))} MiB` : 'n/a'
  return [
    { figure: `${name} RSS`, value: `${fixed(mib(r.before.rssKiB))} → ${fixed(mib(r.after.rssKiB))} MiB`, target: '', pass: null },
    { figure: `${name} RSS during the run`, value: `${range}; median of the first tenth ${fixed(mib(first))}, of the last ${fixed(mib(last))} MiB`, target: '', pass: null },
    { figure: `${name} RSS growth`, value: `${fixed(growthMiB(r))} MiB`, target: `< ${allowed} MiB`, pass: growthMiB(r) < allowed },
    { figure: `${name} descriptors`, value: `${r.before.fds} → ${r.after.fds}`, target: 'flat', pass: r.after.fds === r.before.fds },
  ]
}

const checksOf = (s: Soaked): Check[] => {
  const lost = lostCount(s.run) + lostCount(s.warm)
  const why = [...s.warm.lost, ...s.run.lost].map(([k, v]) => `${k} ${v}`).join(', ')
  const seconds = s.run.ms / 1000
  const checks: Check[] = [
    { figure: 'connections', value: `${s.plan.connections} (+${s.plan.warmup} warm-up), ${s.plan.concurrency} at a time, ${fixed(s.plan.connections / seconds)} conn/s over ${fixed(seconds)} s`, target: '', pass: null },
    { figure: 'lost', value: `${lost}${why ? ` (${why})` : ''}`, target: '0', pass: lost === 0 },
    ...memoryChecks('parent', s.parent, s.samples.map(([p]) => p), s.plan.parentRssMiB),
  ]
  if (s.zygote !== null && s.plan.zygoteRssMiB !== null) {
    const { pid, pidAfter } = s.zygote
    checks.push(...memoryChecks('zygote', s.zygote, s.samples.flatMap(([, z]) => (z === null ? [] : [z])), s.plan.zygoteRssMiB))
    checks.push({ figure: 'zygote', value: `pid ${pid} → ${pidAfter ?? 'none'}`, target: 'the same', pass: pidAfter === pid })
  }
  checks.push({ figure: 'zombies under the server', value: String(s.zombies), target: '0', pass: s.zombies === 0 })
  return checks
}

const tableOf = (s: Soaked, checks: readonly Check[]): string => {
  const rows = checks.map((c) => `| ${c.figure} | ${c.value} | ${c.target} | ${c.pass === null ? '' : c.pass ? 'PASS' : '**FAIL**'} |`)
  const ends = [...s.watch.ends].sort().map(([k, v]) => `${k} × ${v}`).join(', ')
  const pass = checks.every((c) => c.pass !== false)
  return [
    `## soak: --start ${s.plan.start}, echo, ${PAYLOAD_BYTES}-byte exchanges`,
    '',
    '| figure | value | target | |',
    '|---|---|---|---|',
    ...rows,
    '',
    `Children's ends: ${ends || 'none'}. Server warnings: ${s.watch.warnings.length}. Server exit: ${s.watch.exitCode}; ${s.watch.summary ?? 'no summary line'}.`,
    '',
    `${pass ? 'PASS' : 'FAIL'} (--start ${s.plan.start}): ${pass ? 'every target met' : 'a target was missed'}.`,
    '',
  ].join('\n')
}

const jsonOf = (s: Soaked, checks: readonly Check[]): object => ({
  start: s.plan.start,
  server: ['node', 'dist/server.js', ...serverArgs(s.plan.start)].join(' '),
  connections: s.plan.connections,
  warmup: s.plan.warmup,
  concurrency: s.plan.concurrency,
  payloadBytes: PAYLOAD_BYTES,
  lost: lostCount(s.run),
  warmupLost: lostCount(s.warm),
  lostByReason: Object.fromEntries([...s.warm.lost, ...s.run.lost]),
  durationS: Number(fixed(s.run.ms / 1000, 3)),
  parent: { ...s.parent, rssGrowthMiB: Number(fixed(growthMiB(s.parent), 2)), allowedMiB: s.plan.parentRssMiB },
  zygote: s.zygote === null ? null : { ...s.zygote, rssGrowthMiB: Number(fixed(growthMiB(s.zygote), 2)), allowedMiB: s.plan.zygoteRssMiB },
  zombies: s.zombies,
  rssSamplesKiB: { every: SAMPLE_EVERY, parentAndZygote: s.samples },
  childEnds: Object.fromEntries(s.watch.ends),
  serverWarnings: s.watch.warnings.slice(0, 20),
  serverExitCode: s.watch.exitCode,
  serverSummary: s.watch.summary,
  checks,
  pass: checks.every((c) => c.pass !== false),
})

// ---------------------------------------------------------------- main

let current: SoakServer | null = null
const stopCurrent = (): Promise<void> => current?.stop() ?? Promise.resolve()

process.on('exit', () => current?.killNow())
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = signal
    log(`${signal}: stopping the server`)
    void stopCurrent().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}

/** One start's soak: its server is stopped whatever happens, before its figures are printed. */
const soakOne = async (plan: Plan): Promise<object> => {
  const server = startServer(serverArgs(plan.start))
  current = server
  let soaked: Soaked
  try {
    soaked = await soak(plan, server)
  } finally {
    await server.stop()
    current = null
  }
  const checks = checksOf(soaked)
  process.stdout.write(tableOf(soaked, checks) + '\n')
  return jsonOf(soaked, checks)
}

const main = async (): Promise<number> => {
  const plans = plansFrom(process.argv.slice(2))
  const runs: object[] = []
  let failed = false
  for (const plan of plans) {
    try {
      runs.push(await soakOne(plan))
    } catch (err) {
      if (interrupted !== null) throw err
      failed = true
      log(`--start ${plan.start} failed: ${err instanceof Error ? err.message : String(err)}`)
      runs.push({ start: plan.start, failed: err instanceof Error ? err.message : String(err), pass: false })
    }
  }
  const pass = !failed && runs.every((r) => 'pass' in r && r.pass === true)
  process.stdout.write(`${pass ? 'PASS' : 'FAIL'}: ${plans.map((p) => `--start ${p.start}`).join(' and ')}\n`)
  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
  writeFileSync(OUT, `${JSON.stringify({ when: new Date().toISOString(), node: process.version, cpus: cpus().length, cpuModel: cpus()[0]?.model ?? null, runs, pass }, null, 2)}\n`)
  log(`figures written to ${OUT}`)
  return pass ? 0 : 1
}

let code = 1
try {
  code = await main()
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`)
  code = err instanceof Error && /--start|--connections|--warmup|--concurrency|Unknown option/.test(err.message) ? 2 : 1
} finally {
  await stopCurrent()
}
process.exit(code)
