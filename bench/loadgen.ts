// The load generator: a process of its own, forked by the orchestrator, so
// that the client's work never runs inside the server and its CPU use can be
// told apart from the server's. It takes one job at a time over IPC. It also
// runs the bare-fork loop (a barefork job): forking is then the whole load,
// and this process plays the server's parent, in a process of its own.
import { fork, type ChildProcess } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { cpuMs } from './proctree.js'
import { ascending, percentile } from './stats.js'
import {
  isJob,
  type BareForkJob,
  type BareForkReply,
  type ConnRateJob,
  type ConnRateReply,
  type CountJob,
  type CountReply,
  type HoldJob,
  type HoldReply,
  type Job,
  type Reply,
  type ThroughputJob,
  type ThroughputReply,
} from './loadgen-protocol.js'

const HOST = '127.0.0.1'
/** Bytes a throughput connection may have sent but not yet had back. */
const IN_FLIGHT_BYTES = 1 << 20
/** Even an orphan that nobody disconnects goes away. */
const MAX_LIFETIME_MS = 10 * 60_000
/** Bounds the connection loop of one slot whatever the clock does. */
const MAX_CONNECTIONS_PER_SLOT = 10_000_000

type Phase = 'warmup' | 'measure' | 'over'

/**
 * Warmup, then the measured window, then over. The window's edges are taken
 * on the event loop, as the completions are, so a completion belongs to the
 * window exactly when it is seen during 'measure'.
 */
class Window {
  phase: Phase = 'warmup'
  private startedAt = 0
  private endedAt = 0
  private cpuAtStart: NodeJS.CpuUsage = process.cpuUsage()
  private cpu: NodeJS.CpuUsage = { user: 0, system: 0 }
  private watchedAtStart: number | null = null
  /** The watched process's own CPU time over the window, ms; null if none was watched or it went away. */
  watchedCpuMs: number | null = null
  private readonly timers: NodeJS.Timeout[] = []
  readonly ended: Promise<void>

  /** `watchPid`: another process (the server's parent) whose CPU time over the window is wanted too. */
  constructor(warmupMs: number, durationMs: number, maxDurationMs: number, enough: () => boolean, watchPid?: number) {
    this.ended = new Promise((resolve) => {
      this.timers.push(
        setTimeout(() => {
          this.phase = 'measure'
          this.startedAt = performance.now()
          this.cpuAtStart = process.cpuUsage()
          if (watchPid !== undefined) this.watchedAtStart = cpuMs(watchPid)
          const deadline = this.startedAt + maxDurationMs
          const check = (): void => {
            if (enough() || performance.now() >= deadline) {
              this.cpu = process.cpuUsage(this.cpuAtStart)
              this.endedAt = performance.now()
              const watchedAtEnd = watchPid === undefined ? null : cpuMs(watchPid)
              if (this.watchedAtStart !== null && watchedAtEnd !== null) this.watchedCpuMs = watchedAtEnd - this.watchedAtStart
              this.phase = 'over'
              resolve()
            } else {
              this.timers.push(setTimeout(check, 50))
            }
          }
          this.timers.push(setTimeout(check, durationMs))
        }, warmupMs),
      )
    })
  }

  get seconds(): number {
    return (this.endedAt - this.startedAt) / 1000
  }

  get cpuPct(): number {
    const seconds = this.seconds
    return seconds > 0 ? ((this.cpu.user + this.cpu.system) / 1e6 / seconds) * 100 : 0
  }

  /** This process's CPU time over the window, ms. */
  get cpuMs(): number {
    return (this.cpu.user + this.cpu.system) / 1000
  }

  cancel(): void {
    this.timers.forEach(clearTimeout)
  }
}

const countError = (codes: Record<string, number>, code: string): void => {
  codes[code] = (codes[code] ?? 0) + 1
}

type Outcome = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly code: string }

/** One short connection. Latency runs from connect() to the last echoed byte; the close follows. */
const shortConnection = (port: number, payload: Buffer, timeoutMs: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const t0 = performance.now()
    const chunks: Buffer[] = []
    let received = 0
    let latency = -1
    let settled = false
    const socket = connect({ port, host: HOST })
    const finish = (outcome: Outcome): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      socket.destroy()
      resolve(outcome)
    }
    const timer = setTimeout(() => finish({ ok: false, code: 'timeout' }), timeoutMs)
    socket.on('connect', () => socket.write(payload))
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk)
      received += chunk.length
      if (received < payload.length) return
      if (latency >= 0 || !Buffer.concat(chunks).equals(payload)) return finish({ ok: false, code: 'wrong echo' })
      latency = performance.now() - t0
      socket.end()
    })
    socket.on('error', (err: NodeJS.ErrnoException) => finish({ ok: false, code: err.code ?? err.message }))
    socket.on('close', () => finish(latency >= 0 ? { ok: true, ms: latency } : { ok: false, code: 'closed before the echo' }))
  })

const payloadOf = (bytes: number): Buffer => {
  const payload = Buffer.alloc(bytes)
  for (let i = 0; i < payload.length; i++) payload[i] = 32 + (i % 95)
  return payload
}

const connrate = async (job: ConnRateJob): Promise<ConnRateReply> => {
  const payload = payloadOf(job.payloadBytes)
  const latencies: number[] = []
  const errorCodes: Record<string, number> = {}
  let errors = 0
  // The first read asks getconf for USER_HZ: not at the window's edge.
  if (job.watchPid !== undefined) cpuMs(job.watchPid)
  const window = new Window(job.warmupMs, job.durationMs, job.maxDurationMs, () => latencies.length >= job.minConnections, job.watchPid)
  const slot = async (): Promise<void> => {
    for (let n = 0; n < MAX_CONNECTIONS_PER_SLOT && window.phase !== 'over'; n++) {
      const outcome = await shortConnection(job.port, payload, job.timeoutMs)
      if (window.phase !== 'measure') continue
      if (outcome.ok) {
        latencies.push(outcome.ms)
      } else {
        errors++
        countError(errorCodes, outcome.code)
      }
    }
  }
  // Every slot ends within one connection timeout of the window's end.
  await Promise.all([window.ended, ...Array.from({ length: job.concurrency }, slot)])
  const sorted = ascending(latencies)
  return {
    kind: 'connrate',
    connections: latencies.length,
    seconds: window.seconds,
    cpuPct: window.cpuPct,
    errors,
    errorCodes,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
    watchedCpuMs: window.watchedCpuMs,
  }
}

/** `total` connections, `concurrency` at a time, each slot taking the next until none is left. */
const count = async (job: CountJob): Promise<CountReply> => {
  const payload = payloadOf(job.payloadBytes)
  const latencies: number[] = []
  const errorCodes: Record<string, number> = {}
  let errors = 0
  let started = 0
  const t0 = performance.now()
  const cpu0 = process.cpuUsage()
  const slot = async (): Promise<void> => {
    while (started < job.total) {
      started++
      const outcome = await shortConnection(job.port, payload, job.timeoutMs)
      if (outcome.ok) latencies.push(outcome.ms)
      else {
        errors++
        countError(errorCodes, outcome.code)
      }
    }
  }
  await Promise.all(Array.from({ length: job.concurrency }, slot))
  const seconds = (performance.now() - t0) / 1000
  const cpu = process.cpuUsage(cpu0)
  const cpuPct = seconds > 0 ? ((cpu.user + cpu.system) / 1e6 / seconds) * 100 : 0
  return { kind: 'count', connections: latencies.length, seconds, cpuPct, errors, errorCodes, p50Ms: percentile(ascending(latencies), 50) }
}

/** The bare-fork loop's children still running: killed, and waited for, if we must go. */
const forked = new Set<ChildProcess>()
/** Set when the orchestrator has gone: fork nothing more. */
let leaving = false

/** One child_process.fork of an empty module, as server.ts forks: fork to exit. */
const forkOnce = (module: string, timeoutMs: number): Promise<Outcome> =>
  new Promise((resolve) => {
    const t0 = performance.now()
    let child: ChildProcess
    try {
      child = fork(module, [], { execArgv: [], detached: true, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    } catch (err) {
      return resolve({ ok: false, code: (err as NodeJS.ErrnoException).code ?? 'fork failed' })
    }
    let timedOut = false
    const timer = setTimeout(() => {
      timedOut = true
      child.kill('SIGKILL')
    }, timeoutMs)
    const done = (outcome: Outcome): void => {
      clearTimeout(timer)
      forked.delete(child)
      resolve(outcome)
    }
    if (child.pid === undefined) {
      // The spawn failed: 'error' follows, and no 'exit'.
      child.once('error', (err: NodeJS.ErrnoException) => done({ ok: false, code: err.code ?? err.message }))
      return
    }
    forked.add(child)
    child.on('error', () => undefined)
    child.once('exit', (code, signal) => {
      if (code === 0) done({ ok: true, ms: performance.now() - t0 })
      else done({ ok: false, code: timedOut ? 'timeout' : (signal ?? `status ${code}`) })
    })
  })

const bareFork = async (job: BareForkJob): Promise<BareForkReply> => {
  const latencies: number[] = []
  const errorCodes: Record<string, number> = {}
  let errors = 0
  const window = new Window(job.warmupMs, job.durationMs, job.maxDurationMs, () => latencies.length >= job.minConnections)
  const slot = async (): Promise<void> => {
    for (let n = 0; n < MAX_CONNECTIONS_PER_SLOT && window.phase !== 'over' && !leaving; n++) {
      const outcome = await forkOnce(job.module, job.timeoutMs)
      if (window.phase !== 'measure') continue
      if (outcome.ok) {
        latencies.push(outcome.ms)
      } else {
        errors++
        countError(errorCodes, outcome.code)
      }
    }
  }
  // The window over, the children still starting are of no more use: kill
  // them (their slots then end at once) rather than wait up to a second for them.
  const ended = window.ended.then(() => forked.forEach((child) => child.kill('SIGKILL')))
  await Promise.all([ended, ...Array.from({ length: job.concurrency }, slot)])
  const sorted = ascending(latencies)
  return {
    kind: 'barefork',
    forks: latencies.length,
    seconds: window.seconds,
    cpuMs: window.cpuMs,
    cpuPct: window.cpuPct,
    errors,
    errorCodes,
    p50Ms: percentile(sorted, 50),
    p90Ms: percentile(sorted, 90),
    p99Ms: percentile(sorted, 99),
  }
}

/** Connects; rejects on error or after `timeoutMs`. */
const open = (port: number, timeoutMs: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = connect({ port, host: HOST })
    const timer = setTimeout(() => {
      socket.destroy()
      reject(new Error('timeout'))
    }, timeoutMs)
    socket.once('connect', () => {
      clearTimeout(timer)
      socket.off('error', onError)
      resolve(socket)
    })
    const onError = (err: NodeJS.ErrnoException): void => {
      clearTimeout(timer)
      reject(new Error(err.code ?? err.message))
    }
    socket.once('error', onError)
  })

const throughput = async (job: ThroughputJob): Promise<ThroughputReply> => {
  const errorCodes: Record<string, number> = {}
  let errors = 0
  const failed = (code: string): void => {
    errors++
    countError(errorCodes, code)
  }
  const opened = await Promise.allSettled(Array.from({ length: job.connections }, () => open(job.port, job.timeoutMs)))
  const sockets = opened.flatMap((o) => {
    if (o.status === 'fulfilled') return [o.value]
    failed(o.reason instanceof Error ? o.reason.message : String(o.reason))
    return []
  })
  const chunk = Buffer.alloc(job.chunkBytes, 'echo ')
  let bytes = 0
  const window = new Window(job.warmupMs, job.durationMs, job.durationMs, () => true)
  for (const socket of sockets) {
    let sent = 0
    let received = 0
    // Keep a bounded amount in flight, so neither side buffers without limit.
    const pump = (): void => {
      while (window.phase !== 'over' && !socket.destroyed && sent - received < IN_FLIGHT_BYTES) {
        sent += chunk.length
        if (!socket.write(chunk)) return
      }
    }
    socket.on('data', (data: Buffer) => {
      received += data.length
      if (window.phase === 'measure') bytes += data.length
      pump()
    })
    socket.on('drain', pump)
    socket.once('error', (err: NodeJS.ErrnoException) => {
      if (window.phase !== 'over') failed(err.code ?? err.message)
    })
    socket.once('close', () => {
      if (window.phase !== 'over' && !socket.errored) failed('closed early')
    })
    pump()
  }
  await window.ended
  sockets.forEach((s) => s.destroy())
  return { kind: 'throughput', bytes, seconds: window.seconds, cpuPct: window.cpuPct, errors, errorCodes }
}

/** Held connections live until this process exits, which closes them all at once. */
const held: Socket[] = []

/** Opens a connection and waits for the echo of a short line: only then is the server surely serving it. */
const openServed = async (port: number, timeoutMs: number): Promise<Socket> => {
  const socket = await open(port, timeoutMs)
  const ping = Buffer.from('ping\n')
  await new Promise<void>((resolve, reject) => {
    let received = 0
    const timer = setTimeout(() => fail(new Error('timeout')), timeoutMs)
    const fail = (err: Error): void => {
      clearTimeout(timer)
      socket.destroy()
      reject(err)
    }
    socket.on('data', (data: Buffer) => {
      received += data.length
      if (received >= ping.length) {
        clearTimeout(timer)
        resolve()
      }
    })
    socket.once('error', (err: NodeJS.ErrnoException) => fail(new Error(err.code ?? err.message)))
    socket.once('close', () => fail(new Error('closed')))
    socket.write(ping)
  })
  return socket
}

const hold = async (job: HoldJob): Promise<HoldReply> => {
  const more = Math.max(0, job.total - held.length)
  const opened = await Promise.allSettled(Array.from({ length: more }, () => openServed(job.port, job.timeoutMs)))
  let errors = 0
  for (const o of opened) {
    if (o.status === 'fulfilled') held.push(o.value)
    else errors++
  }
  return { kind: 'hold', held: held.length, errors }
}

const run = (job: Job): Promise<Reply> => {
  switch (job.kind) {
    case 'connrate':
      return connrate(job)
    case 'count':
      return count(job)
    case 'throughput':
      return throughput(job)
    case 'hold':
      return hold(job)
    case 'barefork':
      return bareFork(job)
  }
}

const reply = (message: Reply): void => {
  process.send?.(message, undefined, undefined, () => undefined)
}

process.on('message', (message: unknown) => {
  if (!isJob(message)) return reply({ kind: 'failed', message: 'not a job' })
  run(message).then(reply, (err: unknown) => reply({ kind: 'failed', message: err instanceof Error ? err.message : String(err) }))
})
// The orchestrator went away (or is done with us): so are we, and with us
// every socket. Forked children are killed and reaped first (bounded), so that
// none is left to init, which here reaps nothing.
process.on('disconnect', () => {
  leaving = true
  forked.forEach((child) => child.kill('SIGKILL'))
  // Within the orchestrator's 2 s before it kills this process.
  const deadline = Date.now() + 1000
  const leave = (): void => {
    if (forked.size === 0 || Date.now() >= deadline) process.exit(0)
    else setTimeout(leave, 20)
  }
  leave()
})
setTimeout(() => process.exit(3), MAX_LIFETIME_MS).unref()
