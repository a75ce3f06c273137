// What a fork-model child costs to start, against a bare `node -e 0` and an
// empty forked child, measured in the same run, one process at a time:
//   node-e0:          spawn(node, ['-e', '0']) to its exit; for memory, a
//                     `node -e` that stays alive, read once it has written a line;
//   empty-child:      child_process.fork of up-child.js, to its one IPC
//                     message ('up'); memory read right after it;
//   forkserver-child: what server.ts does, with this process as the parent:
//                     accept a real loopback connection (paused), fork
//                     dist/child.js, send it `serve` with the socket's raw
//                     handle (keepOpen), to its `taken`; then close our copy,
//                     prove it serves with one echoed byte, read its memory,
//                     end the client, and expect exit status 0.
// The three take turns, so that a change in the machine's load reaches all of
// them alike. Memory: VmRSS from /proc/PID/status; Pss and Private_* from
// /proc/PID/smaps_rollup (PSS depends on how many Node processes share the
// binary's pages at that moment: here, this one and the subject).
import { fork, spawn, type ChildProcess, type ForkOptions, type SendHandle } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { isMessage, message } from '../lib/protocol.js'
import { assertOpen, own } from './cleanup.js'
import { killNow } from './proctree.js'
import { STARTUP_SUBJECTS, type StartupResult, type StartupSubject } from './results.js'
import { ascending, percentile, round } from './stats.js'

// This file runs as dist/bench/startup.js.
const CHILD = fileURLToPath(new URL('../child.js', import.meta.url))
const UP_CHILD = fileURLToPath(new URL('./up-child.js', import.meta.url))
const HOST = '127.0.0.1'
/** Any one step: a start, an echo, an exit. */
const LIMIT_MS = 10_000
/** A Node that stays up, and says so on stdout without building process.stdout. */
const STAY_UP = "require('fs').writeSync(1, 'up\\n'); setInterval(() => {}, 1000)"
/** As server.ts forks a child. */
const forkOptions = (): ForkOptions => ({ execArgv: [], detached: true, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })

interface Memory {
  readonly rssKB: number
  readonly pssKB: number
  readonly privateKB: number
}

interface Sample {
  readonly startMs: number
  readonly memory: Memory
}

const readMemory = (pid: number): Memory => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const rollup = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8')
  const field = (text: string, name: string): number => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(text)
    if (!match) throw new Error(`pid ${pid}: no ${name} in /proc`)
    return Number(match[1])
  }
  return {
    rssKB: field(status, 'VmRSS'),
    pssKB: field(rollup, 'Pss'),
    privateKB: field(rollup, 'Private_Clean') + field(rollup, 'Private_Dirty'),
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
const within = <T>(promise: Promise<T>, ms: number, what: string): Promise<T> => {
  let timer: NodeJS.Timeout | undefined
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)
  })
  return Promise.race([promise, late]).finally(() => clearTimeout(timer))
}

interface Exit {
  readonly code: number | null
  readonly signal: NodeJS.Signals | null
}

/** A process this file started: its exit, and a way to end it that is also on the bench's cleanup list. */
interface Tracked {
  readonly proc: ChildProcess
  readonly pid: number
  readonly exit: Promise<Exit>
  /** SIGKILL unless it has exited; waits for the exit, bounded. */
  end(): Promise<void>
}

const track = (proc: ChildProcess, what: string): Tracked => {
  proc.on('error', () => undefined)
  const pid = proc.pid
  if (pid === undefined) throw new Error(`${what}: could not start`)
  let exited = false
  const exit = new Promise<Exit>((resolve) =>
    proc.once('exit', (code, signal) => {
      exited = true
      resolve({ code, signal })
    }),
  )
  // Once reaped, its pid may belong to someone else.
  const kill = (): void => {
    if (!exited) killNow(pid)
  }
  const end = async (): Promise<void> => {
    kill()
    await within(exit, 2000, `${what} pid ${pid} exit after SIGKILL`).catch(() => undefined)
    disown()
  }
  const disown = own({ stop: end, killNow: kill })
  return { proc, pid, exit, end }
}

const firstMessage = (proc: ChildProcess, wanted: (m: unknown) => boolean): Promise<void> =>
  new Promise((resolve, reject) => {
    const onMessage = (m: unknown): void => {
      if (!wanted(m)) return
      proc.off('message', onMessage)
      proc.off('exit', onExit)
      resolve()
    }
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void =>
      reject(new Error(`exited (${code ?? signal}) before its first message`))
    proc.on('message', onMessage)
    proc.once('exit', onExit)
  })

const expectStatus0 = async (child: Tracked, what: string): Promise<void> => {
  const { code, signal } = await within(child.exit, LIMIT_MS, `${what} exit`)
  if (code !== 0) throw new Error(`${what} exited with ${code ?? signal}, not 0`)
}

const nodeE0 = async (): Promise<Sample> => {
  assertOpen()
  const t0 = performance.now()
  const bare = track(spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' }), 'node -e 0')
  let startMs: number
  try {
    await expectStatus0(bare, 'node -e 0')
    startMs = performance.now() - t0
  } finally {
    await bare.end()
  }
  assertOpen()
  const alive = track(spawn(process.execPath, ['-e', STAY_UP], { stdio: ['ignore', 'pipe', 'ignore'] }), 'node -e (staying up)')
  try {
    const stdout = alive.proc.stdout
    if (stdout === null) throw new Error('node -e: no stdout')
    await within(new Promise((resolve) => stdout.once('data', resolve)), LIMIT_MS, 'node -e (staying up) first line')
    return { startMs, memory: readMemory(alive.pid) }
  } finally {
    alive.proc.stdout?.destroy()
    await alive.end()
  }
}

const emptyChild = async (): Promise<Sample> => {
  assertOpen()
  const t0 = performance.now()
  const child = track(fork(UP_CHILD, [], forkOptions()), 'empty child')
  try {
    await within(firstMessage(child.proc, (m) => m === 'up'), LIMIT_MS, 'empty child message')
    const startMs = performance.now() - t0
    const memory = readMemory(child.pid)
    child.proc.disconnect()
    await expectStatus0(child, 'empty child')
    return { startMs, memory }
  } finally {
    await child.end()
  }
}

/** Resolves once `count` bytes have come back on `socket`. */
const echoed = (socket: Socket, count: number): Promise<void> =>
  new Promise((resolve, reject) => {
    let received = 0
    const onData = (data: Buffer): void => {
      received += data.length
      if (received < count) return
      socket.off('data', onData)
      socket.off('close', onClose)
      resolve()
    }
    const onClose = (): void => reject(new Error('the connection closed before the echo'))
    socket.on('data', onData)
    socket.once('close', onClose)
  })

const forkserverChild = async (listener: Server, port: number, id: number): Promise<Sample> => {
  assertOpen()
  const accepted = new Promise<Socket>((resolve) => listener.once('connection', resolve))
  const client = connect({ port, host: HOST })
  client.on('error', () => undefined)
  let socket: Socket | null = null
  let child: Tracked | null = null
  try {
    socket = await within(accepted, LIMIT_MS, 'accept')
    socket.on('error', () => undefined)
    const info = {
      protocol: 'TCP' as const,
      id,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      localAddress: socket.localAddress ?? '',
      localPort: socket.localPort ?? 0,
    }
    const handle = (socket as unknown as { _handle: object })._handle as SendHandle
    const t0 = performance.now()
    const forked = track(fork(CHILD, [], forkOptions()), 'forkserver child')
    child = forked
    const taken = firstMessage(forked.proc, (m) => isMessage(m, 'taken'))
    const sent = new Promise<void>((resolve, reject) =>
      forked.proc.send(message('serve', { info, spec: { service: 'echo', handler: null, exec: null, idleTimeout: 0, logFormat: 'text' } }), handle, { keepOpen: true }, (err) =>
        err ? reject(err) : resolve(),
      ),
    )
    await within(Promise.all([taken, sent]), LIMIT_MS, 'forkserver child taken')
    const startMs = performance.now() - t0
    // The child has its own copy: close ours, as server.ts does.
    socket.destroy()
    const back = echoed(client, 1)
    client.write('x')
    await within(back, LIMIT_MS, 'forkserver child echo')
    const memory = readMemory(forked.pid)
    client.end()
    await expectStatus0(forked, 'forkserver child')
    return { startMs, memory }
  } finally {
    client.destroy()
    socket?.destroy()
    await child?.end()
  }
}

const listen = (): Promise<Server> =>
  new Promise((resolve, reject) => {
    const listener = createServer({ pauseOnConnect: true })
    listener.once('error', reject)
    listener.listen({ host: HOST, port: 0 }, () => resolve(listener))
  })

const mib = (kb: number): number => round(kb / 1024, 2)

const summary = (model: StartupSubject, samples: readonly Sample[]): StartupResult => {
  const p = (values: readonly number[], at: number): number => percentile(ascending(values), at)
  const start = samples.map((s) => s.startMs)
  return {
    model,
    scenario: 'startup',
    samples: samples.length,
    startMs: round(p(start, 50), 3),
    startP90Ms: round(p(start, 90), 3),
    rssMiB: mib(p(samples.map((s) => s.memory.rssKB), 50)),
    pssMiB: mib(p(samples.map((s) => s.memory.pssKB), 50)),
    privateMiB: mib(p(samples.map((s) => s.memory.privateKB), 50)),
  }
}

/** `warmups` rounds not counted, then `samples` rounds of the three subjects in turn. */
export const startup = async (samples: number, warmups: number): Promise<StartupResult[]> => {
  const listener = await listen()
  try {
    const { port } = listener.address() as AddressInfo
    const taken: Record<StartupSubject, Sample[]> = { 'node-e0': [], 'empty-child': [], 'forkserver-child': [] }
    for (let i = 0; i < warmups + samples; i++) {
      const e0 = await nodeE0()
      const empty = await emptyChild()
      const served = await forkserverChild(listener, port, i + 1)
      if (i < warmups) continue
      taken['node-e0'].push(e0)
      taken['empty-child'].push(empty)
      taken['forkserver-child'].push(served)
    }
    return STARTUP_SUBJECTS.map((subject) => summary(subject, taken[subject]))
  } finally {
    listener.close()
  }
}
