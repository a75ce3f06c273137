// The cost table: what one connection costs fork (zygote), node-fork,
// python-forking and c-fork, process by process. After a warm-up, a burst of
// connections at concurrency 8 runs from an idle server to an idle server
// (every child reaped); the growth of each process's /proc counters over it,
// and the fork-time lines the forking process wrote, give each figure per
// connection (bench/accounting.ts says how each is read).
import { forkTimes, parseForkTime, perConnection, snapshot, type ForkTimes, type PerConnection, type Roles } from './accounting.js'
import type { CountJob, CountReply } from './loadgen-protocol.js'
import type { Model } from './models.js'
import { descendants, ticksPerSecond, waitQuiet, waitUntil, zygotesOf } from './proctree.js'
import type { CostResult, ModelName } from './results.js'
import { withServer, type Emit, type Progress } from './scenarios.js'
import type { Settings } from './settings.js'
import { round } from './stats.js'

/** The zygote, its floor, and the two peers that fork(2) per connection. */
export const COST_MODELS: readonly ModelName[] = ['fork (zygote)', 'node-fork', 'python-forking', 'c-fork']

/** Until the children of a burst are reaped: python-forking reaps every 0.5 s. */
const IDLE_LIMIT_MS = 15_000
/** Until the last fork-time lines, written before the last connections were served, have been read. */
const LINES_LIMIT_MS = 2000
const QUIET_LIMIT_MS = 5000

/** Every child reaped: the server's tree is back to its resident processes (a zombie counts until it is reaped). */
const idle = async (server: number, resident: number, what: string): Promise<void> => {
  if (await waitUntil(() => descendants(server).length <= resident, IDLE_LIMIT_MS)) return
  throw new Error(`${what}: ${descendants(server).length - resident} children not reaped within ${IDLE_LIMIT_MS} ms`)
}

const rolesOf = (model: Model, server: number): Roles<number> => {
  if (model.zygote !== true) return { parent: server, zygote: null }
  const zygotes = zygotesOf(server)
  if (zygotes.length !== 1 || zygotes[0] === undefined) throw new Error(`expected one zygote under the server (pid ${server}), found ${zygotes.length}`)
  return { parent: server, zygote: zygotes[0] }
}

const row = (model: Model, s: Settings, r: CountReply, each: PerConnection | null, times: ForkTimes | null): CostResult => {
  const reasons = [
    each === null ? "the server's processes could not be read in /proc before and after the burst" : '',
    times === null ? 'no fork-time line was written (FORKSERVER_FORK_TIMES: is the peer or the addon older than the bench?)' : '',
  ].filter(Boolean)
  return {
    model: model.name,
    scenario: 'cost',
    concurrency: s.cost.concurrency,
    connections: r.connections,
    errors: r.errors,
    ...(r.errors > 0 ? { errorCodes: r.errorCodes } : {}),
    seconds: round(r.seconds, 3),
    connsPerSec: r.connections > 0 && r.seconds > 0 ? round(r.connections / r.seconds, 1) : null,
    parentCpuMs: each?.parentCpuMs ?? null,
    ...(model.zygote === true ? { zygoteCpuMs: each?.zygoteCpuMs ?? null } : {}),
    childCpuMs: each?.childCpuMs ?? null,
    totalCpuMs: each?.totalCpuMs ?? null,
    childMinorFaults: each?.childMinorFaults ?? null,
    forkerMinorFaults: each?.forkerMinorFaults ?? null,
    forkSamples: times?.samples ?? 0,
    forkCallUs: times?.callUs ?? null,
    forkCallP50Us: times?.callP50Us ?? null,
    // Absent where the call is not split (os.fork); null, with the reason, when nothing was timed.
    ...(times === null ? { fork2Us: null } : times.forkUs !== undefined ? { fork2Us: times.forkUs } : {}),
    ...(times?.stepsUs !== undefined ? { forkStepsUs: times.stepsUs } : {}),
    clockTicksPerSecond: ticksPerSecond(),
    ...(reasons.length > 0 ? { reason: reasons.join('; ') } : {}),
  }
}

export const cost = (model: Model, s: Settings, progress: Progress, emit: Emit): Promise<void> => {
  const forks: Readonly<Record<string, number>>[] = []
  const onLine = (line: string): void => {
    const steps = parseForkTime(line)
    if (steps !== null) forks.push(steps)
  }
  return withServer(
    model,
    async (server, loadgen) => {
      progress(`${model.name} cost: ${s.cost.connections} connections at c=${s.cost.concurrency}`)
      const roles = rolesOf(model, server.pid)
      const job = (total: number): CountJob => ({ kind: 'count', port: server.port, total, concurrency: s.cost.concurrency, payloadBytes: s.payloadBytes, timeoutMs: s.timeoutMs })
      // Generous: a slow fork on a busy VM, and a connection timeout at the end.
      const limit = (total: number): number => 30_000 + total * 100 + s.timeoutMs
      await loadgen.run(job(s.cost.warmup), limit(s.cost.warmup))
      await idle(server.pid, model.spec.resident, 'after the warm-up')
      await waitQuiet(server.pid, QUIET_LIMIT_MS)
      forks.length = 0
      const before = snapshot(roles)
      const r = await loadgen.run(job(s.cost.connections), limit(s.cost.connections))
      await idle(server.pid, model.spec.resident, 'after the burst')
      const attempted = r.connections + r.errors
      await waitUntil(() => forks.length >= attempted, LINES_LIMIT_MS)
      const after = snapshot(roles)
      emit(row(model, s, r, perConnection(before, after, attempted, ticksPerSecond()), forkTimes(forks)))
    },
    { onLine, env: { FORKSERVER_FORK_TIMES: '1' } },
  )
}
