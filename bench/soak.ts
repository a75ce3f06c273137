// make soak: 2,000 short connections at concurrency 8 against the fork model,
// to see what a long run leaves behind in the parent. Reports the parent's RSS
// growth (target under 10 MiB), its descriptor count before and after (equal),
// defunct children (0) and lost connections (0), as a markdown table on
// stdout and as JSON in bench/results/soak.json; exits 1 if a target is
// missed. Progress goes to stderr.
//
//   node dist/bench/soak.js [--connections 2000] [--concurrency 8] [--warmup 200]
import { spawn } from 'node:child_process'
import { randomBytes, randomUUID } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { cpus } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { descendants, killNow, marked, running, sleep, waitUntil } from './proctree.js'

const ROOT = fileURLToPath(new URL('../../', import.meta.url))
const SERVER = join(ROOT, 'dist', 'server.js')
const OUT = join(ROOT, 'bench', 'results', 'soak.json')

const { values: flags } = parseArgs({
  options: {
    connections: { type: 'string', default: '2000' },
    concurrency: { type: 'string', default: '8' },
    warmup: { type: 'string', default: '200' },
  },
})
const count = (name: string, text: string | undefined, min: number): number => {
  const n = Number(text)
  if (!Number.isSafeInteger(n) || n < min) throw new Error(`--${name} must be an integer >= ${min}, got ${JSON.stringify(text)}`)
  return n
}
const CONNECTIONS = count('connections', flags.connections, 1)
const CONCURRENCY = count('concurrency', flags.concurrency, 1)
const WARMUP = count('warmup', flags.warmup, 0)

const PAYLOAD_BYTES = 64
const CONNECTION_LIMIT_MS = 20_000
const READY_LIMIT_MS = 15_000
const IDLE_LIMIT_MS = 30_000
const FD_SETTLE_MS = 5_000
const PROGRESS_EVERY = 100
const SAMPLE_EVERY = 20
const TARGET_RSS_GROWTH_MIB = 10
const MAX_CHILDREN = 40
const SERVER_ARGS = ['--port', '0', '-v']

const log = (text: string): void => void process.stderr.write(`soak: ${text}\n`)
const mib = (kib: number): number => kib / 1024
const fixed = (n: number, digits = 1): string => n.toFixed(digits)

// ---------------------------------------------------------------- /proc

const rssKiB = (pid: number): number => {
  const found = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  if (!found) throw new Error(`no VmRSS for pid ${pid}`)
  return Number(found[1])
}

const fdCount = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length

/** Direct children of `pid` in state Z (defunct: exited, never reaped). */
const defunctChildren = (pid: number): number[] =>
  readdirSync('/proc')
    .filter((name) => /^\d+$/.test(name))
    .filter((name) => {
      try {
        const stat = readFileSync(`/proc/${name}/stat`, 'utf8')
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        return fields[0] === 'Z' && Number(fields[1]) === pid
      } catch {
        return false
      }
    })
    .map(Number)

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

// ---------------------------------------------------------------- the server

interface ServerWatch {
  readonly pid: number
  port: number
  forked: number
  ended: number
  /** Exit statuses and signals of the children, `status 0` and so on. */
  readonly ends: Map<string, number>
  warnings: string[]
  /** True once every child forked has ended and the last status line says the table is empty. */
  idle: boolean
  /** The last lines, to explain a failure. */
  tail: string[]
  exited: boolean
  exitCode: number | null
  summary: string | null
}

const mark = `FORKSERVER_SOAK_RUN=${randomUUID()}`

const startServer = (): { watch: ServerWatch; ready: Promise<void>; gone: Promise<void> } => {
  // A process group of its own, which can be signalled as a whole; its
  // children run in sessions of their own, so they carry a mark as well.
  const proc = spawn(process.execPath, [SERVER, ...SERVER_ARGS], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, FORKSERVER_SOAK_RUN: mark.split('=')[1] },
  })
  const watch: ServerWatch = {
    pid: proc.pid ?? -1, port: 0, forked: 0, ended: 0, ends: new Map(), warnings: [], idle: false, tail: [],
    exited: false, exitCode: null, summary: null,
  }
  const gone = new Promise<void>((resolve) => {
    proc.once('exit', (code) => {
      watch.exited = true
      watch.exitCode = code
      resolve()
    })
    proc.once('error', () => {
      watch.exited = true
      resolve()
    })
  })
  let onReady: (() => void) | null = null
  const ready = new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`not listening within ${READY_LIMIT_MS} ms:\n${watch.tail.join('\n')}`)), READY_LIMIT_MS)
    onReady = () => {
      clearTimeout(timer)
      resolve()
    }
    void gone.then(() => {
      clearTimeout(timer)
      reject(new Error(`the server exited before listening (status ${watch.exitCode}):\n${watch.tail.join('\n')}`))
    })
  })
  let partial = ''
  proc.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n')
    partial = parts.pop() ?? ''
    for (const line of parts) {
      watch.tail.push(line)
      if (watch.tail.length > 30) watch.tail.shift()
      let m: RegExpExecArray | null
      if ((m = /^listening on 127\.0\.0\.1:(\d+), pid \d+$/.exec(line))) {
        watch.port = Number(m[1])
        onReady?.()
      } else if (/^pid \d+ from /.test(line)) {
        watch.forked++
        watch.idle = false
      } else if ((m = /^end \d+ ((?:status|signal) \S+)$/.exec(line))) {
        watch.ended++
        watch.ends.set(m[1]!, (watch.ends.get(m[1]!) ?? 0) + 1)
        watch.idle = false
      } else if ((m = /^status: (\d+)\/\d+$/.exec(line))) {
        watch.idle = m[1] === '0' && watch.ended === watch.forked
      } else if (line.startsWith('warning: ')) {
        watch.warnings.push(line)
      } else if (line.startsWith('shutdown: ')) {
        watch.summary = line
      }
    }
  })
  return { watch, ready, gone }
}

/** Stops the server: SIGTERM to its group, SIGKILL 5 s later; then anything of it still marked. */
let stopping: Promise<void> | null = null
let server: { watch: ServerWatch; gone: Promise<void> } | null = null

const signalGroup = (pid: number, signal: NodeJS.Signals): void => {
  // Never 0 (our own group), 1 or -1 (everything we may signal).
  if (!Number.isSafeInteger(pid) || pid <= 1) return
  try {
    process.kill(-pid, signal)
  } catch {
    // the group is gone
  }
}

const stopServer = (): Promise<void> =>
  (stopping ??= (async () => {
    if (server === null) return
    const { watch } = server
    if (!watch.exited) {
      signalGroup(watch.pid, 'SIGTERM')
      if (!(await waitUntil(() => watch.exited, 5000))) {
        // Children first, while the server may still reap them; then the group.
        descendants(watch.pid).forEach(killNow)
        await waitUntil(() => descendants(watch.pid).every((p) => !running(p)), 1000)
        signalGroup(watch.pid, 'SIGKILL')
        await waitUntil(() => watch.exited, 3000)
      }
    }
    for (const p of marked(mark)) killNow(p)
    await waitUntil(() => marked(mark).length === 0, 3000)
  })())

process.on('exit', () => {
  // The last resort: synchronous, and only for what is still running.
  if (server !== null && !server.watch.exited) {
    descendants(server.watch.pid).forEach(killNow)
    signalGroup(server.watch.pid, 'SIGKILL')
  }
  for (const p of marked(mark)) killNow(p)
})

let interrupted: NodeJS.Signals | null = null

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    interrupted = signal
    log(`${signal}: stopping the server`)
    void stopServer().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143))
  })
}

// ---------------------------------------------------------------- clients

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

interface Run {
  readonly lost: Map<string, number>
  readonly ms: number
}

/** `total` connections, `concurrency` at a time; `progress` sees each completion. */
const drive = async (port: number, total: number, concurrency: number, progress: (done: number, lost: number) => void): Promise<Run> => {
  const lost = new Map<string, number>()
  let started = 0
  let done = 0
  let lostCount = 0
  const t0 = Date.now()
  const lane = async (): Promise<void> => {
    while (started < total && interrupted === null) {
      started++
      const outcome = await oneConnection(port)
      done++
      if (outcome !== 'ok') {
        lostCount++
        lost.set(outcome, (lost.get(outcome) ?? 0) + 1)
      }
      progress(done, lostCount)
    }
  }
  await Promise.all(Array.from({ length: concurrency }, lane))
  return { lost, ms: Date.now() - t0 }
}

/** Until every child forked has ended and the table is empty, within IDLE_LIMIT_MS. */
const waitIdle = async (watch: ServerWatch, what: string): Promise<void> => {
  if (interrupted !== null) throw new Error(`interrupted by ${interrupted}`)
  if (!(await waitUntil(() => watch.idle || watch.exited, IDLE_LIMIT_MS)) || watch.exited) {
    throw new Error(`${what}: the server did not return to status: 0/${MAX_CHILDREN} within ${IDLE_LIMIT_MS} ms ` +
      `(${watch.forked} forked, ${watch.ended} ended):\n${watch.tail.join('\n')}`)
  }
}

// ---------------------------------------------------------------- the run

const main = async (): Promise<number> => {
  const started = startServer()
  server = started
  const { watch } = started
  await started.ready
  log(`server pid ${watch.pid} listening on 127.0.0.1:${watch.port}; warm-up: ${WARMUP} connections`)

  const warm = await drive(watch.port, WARMUP, Math.min(CONCURRENCY, Math.max(WARMUP, 1)), () => undefined)
  await waitIdle(watch, 'after the warm-up')
  const fdsBefore = await settledFds(watch.pid)
  const rssBefore = rssKiB(watch.pid)
  log(`after the warm-up: parent RSS ${fixed(mib(rssBefore))} MiB, ${fdsBefore} fds; now ${CONNECTIONS} connections, ${CONCURRENCY} at a time`)

  const t0 = Date.now()
  /** The parent's RSS every SAMPLE_EVERY connections, to tell a trend from V8's sawtooth. */
  const samples: { done: number; rssKiB: number }[] = []
  const run = await drive(watch.port, CONNECTIONS, CONCURRENCY, (done, lost) => {
    if (done % SAMPLE_EVERY !== 0 && done !== CONNECTIONS) return
    let rss = NaN
    let fds = NaN
    try {
      rss = rssKiB(watch.pid)
      fds = fdCount(watch.pid)
      samples.push({ done, rssKiB: rss })
    } catch {
      // the server is gone; the end says so
    }
    if (done % PROGRESS_EVERY !== 0 && done !== CONNECTIONS) return
    const seconds = (Date.now() - t0) / 1000
    log(`${done}/${CONNECTIONS} done, ${lost} lost, ${fixed(done / seconds)} conn/s, parent RSS ${fixed(mib(rss))} MiB, ${fds} fds`)
  })
  await waitIdle(watch, `after ${CONNECTIONS} connections`)
  const fdsAfter = await settledFds(watch.pid, fdsBefore)
  const rssAfter = rssKiB(watch.pid)
  const defunct = defunctChildren(watch.pid).length
  const growthMiB = mib(rssAfter - rssBefore)
  const lost = [...run.lost.values()].reduce((a, b) => a + b, 0)
  const warmLost = [...warm.lost.values()].reduce((a, b) => a + b, 0)
  const seconds = run.ms / 1000
  const sampled = samples.map((x) => x.rssKiB)
  const rssLow = sampled.length ? Math.min(...sampled) : NaN
  const rssHigh = sampled.length ? Math.max(...sampled) : NaN

  await stopServer()

  const checks = {
    rssGrowth: growthMiB < TARGET_RSS_GROWTH_MIB,
    fds: fdsAfter === fdsBefore,
    defunct: defunct === 0,
    lost: lost === 0 && warmLost === 0,
  }
  const pass = Object.values(checks).every(Boolean)
  const verdict = (ok: boolean): string => (ok ? 'ok' : '**missed**')
  const table = [
    '| figure | value | target | |',
    '|---|---|---|---|',
    `| connections | ${CONNECTIONS} (+${WARMUP} warm-up), ${CONCURRENCY} at a time | | |`,
    `| lost | ${lost}${run.lost.size ? ` (${[...run.lost].map(([k, v]) => `${k} ${v}`).join(', ')})` : ''} | 0 | ${verdict(checks.lost)} |`,
    `| duration | ${fixed(seconds)} s | | |`,
    `| conn/s | ${fixed(CONNECTIONS / seconds)} | | |`,
    `| parent RSS before | ${fixed(mib(rssBefore))} MiB | | |`,
    `| parent RSS after | ${fixed(mib(rssAfter))} MiB | | |`,
    `| parent RSS during the run | ${fixed(mib(rssLow))} to ${fixed(mib(rssHigh))} MiB (${samples.length} samples) | | |`,
    `| parent RSS growth | ${fixed(growthMiB)} MiB | < ${TARGET_RSS_GROWTH_MIB} MiB | ${verdict(checks.rssGrowth)} |`,
    `| parent fds before | ${fdsBefore} | | |`,
    `| parent fds after | ${fdsAfter} | = before | ${verdict(checks.fds)} |`,
    `| defunct children | ${defunct} | 0 | ${verdict(checks.defunct)} |`,
  ].join('\n')
  const ends = Object.fromEntries([...watch.ends].sort())
  process.stdout.write(`## soak: fork model, echo, ${PAYLOAD_BYTES}-byte exchanges\n\n${table}\n\n` +
    `Children's ends: ${Object.entries(ends).map(([k, v]) => `${k} × ${v}`).join(', ')}. ` +
    `Server warnings: ${watch.warnings.length}. Server exit: ${watch.exitCode}; ${watch.summary ?? 'no summary line'}.\n\n` +
    `${pass ? 'PASS: every target met.' : 'FAIL: a target was missed.'}\n`)

  mkdirSync(join(ROOT, 'bench', 'results'), { recursive: true })
  writeFileSync(OUT, `${JSON.stringify({
    when: new Date().toISOString(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? null,
    server: ['node', 'dist/server.js', ...SERVER_ARGS].join(' '),
    connections: CONNECTIONS,
    warmup: WARMUP,
    concurrency: CONCURRENCY,
    payloadBytes: PAYLOAD_BYTES,
    lost,
    lostByReason: Object.fromEntries(run.lost),
    warmupLost: warmLost,
    durationS: Number(fixed(seconds, 3)),
    connPerS: Number(fixed(CONNECTIONS / seconds, 2)),
    rssBeforeKiB: rssBefore,
    rssAfterKiB: rssAfter,
    rssGrowthMiB: Number(fixed(growthMiB, 2)),
    rssDuringRunKiB: { min: rssLow, max: rssHigh, every: SAMPLE_EVERY, samples },
    fdsBefore,
    fdsAfter,
    defunct,
    childEnds: ends,
    serverWarnings: watch.warnings.slice(0, 20),
    serverExitCode: watch.exitCode,
    serverSummary: watch.summary,
    targets: { rssGrowthMiB: `< ${TARGET_RSS_GROWTH_MIB}`, fds: 'after = before', defunct: 0, lost: 0 },
    checks,
    pass,
  }, null, 2)}\n`)
  log(`figures written to ${OUT}`)
  return pass ? 0 : 1
}

let code = 1
try {
  code = await main()
} catch (err) {
  log(`failed: ${err instanceof Error ? err.message : String(err)}`)
  code = 1
} finally {
  await stopServer()
}
process.exit(code)
