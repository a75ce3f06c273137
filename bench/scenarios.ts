// The scenarios, each against one model: start its server and a load
// generator, measure, and stop both whatever happens. Results are emitted as
// they are measured, so a scenario that fails half-way keeps what it got.
import { fileURLToPath } from 'node:url'
import { launch, type LaunchOptions, type Server } from './launch.js'
import { startLoadgen, type Loadgen } from './loadgen-client.js'
import type { BareForkJob, ConnRateJob } from './loadgen-protocol.js'
import { newProcessPss, treePss } from './memory.js'
import { verbose, type Model } from './models.js'
import { children, descendants, sleep, waitQuiet, waitUntil } from './proctree.js'
import type { Result } from './results.js'
import type { Settings } from './settings.js'
import { figure, per, round } from './stats.js'

export type Progress = (label: string) => void
export type Emit = (result: Result) => void

/** Over this share of one core, the load generator is taken to be the limit, not the server. */
export const LOADGEN_BOUND_PCT = 90
/** Lets a server's fresh processes finish starting up before their memory is read. */
const SETTLE_MS = 300
/** A reply may take a connection timeout past the window, plus slack for a loaded machine. */
const SLACK_MS = 15_000
/** How long to wait, at most, for a server's processes to stop using CPU (see settle). */
const QUIET_LIMIT_MS = 5000
const EMPTY_CHILD = fileURLToPath(new URL('./empty-child.js', import.meta.url))

/**
 * Before memory is read: until every process of the server is idle (spares
 * and children still starting up are not), and, in a full run, at least
 * SETTLE_MS. A quick run skips the fixed wait, which was most of its memory steps.
 */
const settle = async (s: Settings, pid: number): Promise<void> => {
  if (!s.quick) await sleep(SETTLE_MS)
  await waitQuiet(pid, QUIET_LIMIT_MS)
}

export const withServer = async <T>(model: Model, body: (server: Server, loadgen: Loadgen) => Promise<T>, options: LaunchOptions = {}): Promise<T> => {
  const server = await launch(model.spec, options)
  let loadgen: Loadgen | null = null
  try {
    // Prefork's workers (and the fork model's spares) may still be starting when the parent says it listens.
    await waitUntil(() => descendants(server.pid).length >= model.spec.resident, 10_000)
    if (model.spec.resident > 0) await waitQuiet(server.pid, QUIET_LIMIT_MS)
    loadgen = startLoadgen()
    return await body(server, loadgen)
  } finally {
    // The load generator first: its connections close, and the server reaps their children.
    await loadgen?.stop()
    await server.stop()
  }
}

const connrateJob = (s: Settings, port: number, concurrency: number): ConnRateJob => ({
  kind: 'connrate',
  port,
  concurrency,
  payloadBytes: s.payloadBytes,
  ...s.connrate,
  timeoutMs: s.timeoutMs,
})

const limitOf = (job: ConnRateJob | BareForkJob): number => job.warmupMs + job.maxDurationMs + job.timeoutMs + SLACK_MS

export const connrate = (model: Model, s: Settings, progress: Progress, emit: Emit): Promise<void> =>
  withServer(model, async (server, loadgen) => {
    for (const concurrency of s.concurrencies) {
      // The previous level used up the spares: let their replacements start,
      // as a pause in the load would. (Not in a quick run: its figures only show that it works.)
      if (model.spares !== undefined && !s.quick) await waitQuiet(server.pid, QUIET_LIMIT_MS)
      progress(`${model.name} connrate c=${concurrency}`)
      const job: ConnRateJob = { ...connrateJob(s, server.port, concurrency), ...(model.parentCpu ? { watchPid: server.pid } : {}) }
      const r = await loadgen.run(job, limitOf(job))
      // No connection completed: no rate, latency or CPU per connection, rather than zeros.
      const none = r.connections === 0
      const parentCpu = model.parentCpu && r.watchedCpuMs !== null ? per(r.watchedCpuMs, r.connections, 3) : null
      if (model.parentCpu && !none && parentCpu === null) throw new Error(`c=${concurrency}: the parent's CPU time could not be read (pid ${server.pid}, ${r.connections} connections)`)
      emit({
        model: model.name,
        scenario: 'connrate',
        concurrency,
        connsPerSec: none ? null : round(r.connections / r.seconds, 1),
        p50Ms: figure(r.p50Ms, 3),
        p90Ms: figure(r.p90Ms, 3),
        p99Ms: figure(r.p99Ms, 3),
        ...(none ? { reason: `no connection completed in the ${round(r.seconds, 2)} s window` } : {}),
        errors: r.errors,
        connections: r.connections,
        seconds: round(r.seconds, 3),
        loadgenCpuPct: round(r.cpuPct, 1),
        loadgenBound: r.cpuPct > LOADGEN_BOUND_PCT,
        ...(r.errors > 0 ? { errorCodes: r.errorCodes } : {}),
        ...(model.parentCpu ? { parentCpuMsPerConn: parentCpu } : {}),
        ...(model.spares !== undefined ? { spares: model.spares } : {}),
      })
    }
  })

/**
 * bare-fork: no server. The load generator's process forks empty children,
 * `concurrency` at a time, for the connrate window at each concurrency: the
 * ceiling for a model that forks a Node per connection, and the CPU a parent
 * spends per fork when forking is all it does.
 */
export const bareFork = async (s: Settings, progress: Progress, emit: Emit): Promise<void> => {
  const loadgen = startLoadgen()
  try {
    for (const concurrency of s.bareForkConcurrencies) {
      progress(`bare-fork c=${concurrency}`)
      const job: BareForkJob = { kind: 'barefork', module: EMPTY_CHILD, concurrency, ...s.connrate, timeoutMs: s.timeoutMs }
      const r = await loadgen.run(job, limitOf(job))
      if (r.forks === 0) throw new Error(`c=${concurrency}: no child exited in the window (${r.errors} errors: ${JSON.stringify(r.errorCodes)})`)
      emit({
        model: 'bare-fork',
        scenario: 'connrate',
        concurrency,
        connsPerSec: round(r.forks / r.seconds, 1),
        p50Ms: round(r.p50Ms, 3),
        p90Ms: round(r.p90Ms, 3),
        p99Ms: round(r.p99Ms, 3),
        errors: r.errors,
        connections: r.forks,
        seconds: round(r.seconds, 3),
        parentCpuMsPerFork: round(r.cpuMs / r.forks, 3),
        ...(r.errors > 0 ? { errorCodes: r.errorCodes } : {}),
      })
    }
  } finally {
    await loadgen.stop()
  }
}

export const throughput = (model: Model, s: Settings, progress: Progress, emit: Emit): Promise<void> =>
  withServer(model, async (server, loadgen) => {
    progress(`${model.name} throughput ${s.throughput.connections} conns`)
    const job = { kind: 'throughput', port: server.port, timeoutMs: s.timeoutMs, ...s.throughput } as const
    const r = await loadgen.run(job, job.warmupMs + job.durationMs + job.timeoutMs + SLACK_MS)
    emit({
      model: model.name,
      scenario: 'throughput',
      connections: s.throughput.connections,
      // The fork model may not have started a child yet in a quick run's short window.
      mbPerSec: r.bytes > 0 ? round(r.bytes / 1e6 / r.seconds, 1) : null,
      ...(r.bytes > 0 ? {} : { reason: `no byte was echoed in the ${round(r.seconds, 2)} s window` }),
      seconds: round(r.seconds, 3),
      errors: r.errors,
      loadgenCpuPct: round(r.cpuPct, 1),
      loadgenBound: r.cpuPct > LOADGEN_BOUND_PCT,
      ...(r.errors > 0 ? { errorCodes: r.errorCodes } : {}),
      ...(model.spares !== undefined ? { spares: model.spares } : {}),
    })
  })

export const memory = (model: Model, s: Settings, progress: Progress, emit: Emit): Promise<void> =>
  withServer(model, async (server, loadgen) => {
    await settle(s, server.pid)
    const idle = treePss(server.pid)
    for (const level of s.memoryLevels) {
      progress(`${model.name} memory ${level} idle conns`)
      // Generous: the fork model starts up to 40 Nodes at once here.
      const r = await loadgen.run({ kind: 'hold', port: server.port, total: level, timeoutMs: 30_000 }, 30_000 + SLACK_MS)
      await settle(s, server.pid)
      const held = treePss(server.pid)
      const fresh = newProcessPss(idle, held)
      const read = idle.processes > 0 && held.processes > 0
      const reasons = [
        read ? '' : `the server's memory could not be read (pid ${server.pid})`,
        r.held > 0 ? '' : `no connection was held (${r.errors} failed)`,
      ].filter(Boolean)
      emit({
        model: model.name,
        scenario: 'memory',
        connections: level,
        pssMB: held.processes > 0 ? round(held.pssKB / 1024, 2) : null,
        idlePssMB: idle.processes > 0 ? round(idle.pssKB / 1024, 2) : null,
        perConnKB: read ? per(held.pssKB - idle.pssKB, r.held, 1) : null,
        // Only where held connections brought processes of their own: not prefork's or node-single's.
        ...(fresh.meanKB !== null ? { perChildKB: round(fresh.meanKB, 1), newProcesses: fresh.count } : {}),
        ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
        processes: held.processes,
        errors: r.errors,
        ...(model.spares !== undefined ? { spares: model.spares } : {}),
      })
    }
  })

const FROM = /^pid (\d+) from \S+$/

/** How connections divide over prefork's workers, from the `pid P from` lines of a -v run. */
export const spread = async (model: Model, s: Settings, progress: Progress, emit: Emit): Promise<void> => {
  const counts = new Map<number, number>()
  const onLine = (line: string): void => {
    const m = FROM.exec(line)
    if (m) counts.set(Number(m[1]), (counts.get(Number(m[1])) ?? 0) + 1)
  }
  await withServer(
    verbose(model),
    async (server, loadgen) => {
      progress(`${model.name} spread c=${s.spread.concurrency}`)
      const workers = children(server.pid)
      const job: ConnRateJob = {
        ...connrateJob(s, server.port, s.spread.concurrency),
        warmupMs: 0,
        durationMs: s.spread.durationMs,
        maxDurationMs: s.spread.durationMs,
      }
      const r = await loadgen.run(job, limitOf(job))
      // The last lines may still be in the pipe: wait until every connection the load generator completed is counted.
      const counted = (): number => [...counts.values()].reduce((sum, n) => sum + n, 0)
      await waitUntil(() => r.kind === 'connrate' && counted() >= r.connections, 2000)
      const pids = new Set([...workers, ...counts.keys()])
      const perWorker = [...pids].map((pid) => counts.get(pid) ?? 0).sort((a, b) => b - a)
      const total = perWorker.reduce((sum, n) => sum + n, 0)
      if (total === 0) throw new Error('no `pid P from IP:PORT` line on stderr with -v')
      emit({
        model: model.name,
        scenario: 'spread',
        workers: pids.size,
        connections: total,
        minShare: round(Math.min(...perWorker) / total, 4),
        maxShare: round(Math.max(...perWorker) / total, 4),
        perWorker,
      })
    },
    { onLine },
  )
}
