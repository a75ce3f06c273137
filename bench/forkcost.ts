// What one child_process.fork costs: the fork model pays it for every
// connection, on top of the service's own work.
import { fork } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { performance } from 'node:perf_hooks'
import { assertOpen, own } from './cleanup.js'
import type { ForkCostResult } from './results.js'
import { killNow, waitUntil } from './proctree.js'
import { ascending, mean, percentile, round } from './stats.js'

const EMPTY = fileURLToPath(new URL('./empty-child.js', import.meta.url))
const LIMIT_MS = 10_000

interface Sample {
  /** The fork() call, during which the caller's event loop is blocked. */
  readonly blockMs: number
  /** From the call to the child's exit. */
  readonly totalMs: number
}

const once = (): Promise<Sample> => {
  assertOpen()
  return new Promise((resolve, reject) => {
    const t0 = performance.now()
    // As forkserver forks: IPC channel, no inherited execArgv, own session.
    const child = fork(EMPTY, [], { execArgv: [], detached: true, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] })
    const blockMs = performance.now() - t0
    const pid = child.pid ?? -1
    let exited = false
    // Once reaped, its pid may belong to someone else.
    const kill = (): void => {
      if (!exited) killNow(pid)
    }
    const disown = own({
      stop: async () => {
        kill()
        await waitUntil(() => exited, 2000)
      },
      killNow: kill,
    })
    const timer = setTimeout(() => {
      kill()
      reject(new Error(`an empty child did not exit within ${LIMIT_MS} ms`))
    }, LIMIT_MS)
    child.once('error', (err) => {
      clearTimeout(timer)
      disown()
      reject(err)
    })
    child.once('exit', () => {
      exited = true
      clearTimeout(timer)
      disown()
      resolve({ blockMs, totalMs: performance.now() - t0 })
    })
  })
}

export const forkCost = async (samples: number): Promise<ForkCostResult> => {
  const taken: Sample[] = []
  // One at a time: the figure is one fork on an otherwise idle machine.
  for (let i = 0; i < samples; i++) taken.push(await once())
  const total = taken.map((s) => s.totalMs)
  const block = taken.map((s) => s.blockMs)
  return {
    model: 'fork',
    scenario: 'forkcost',
    samples,
    p50Ms: round(percentile(ascending(total), 50), 3),
    meanMs: round(mean(total), 3),
    blockP50Ms: round(percentile(ascending(block), 50), 3),
    blockMeanMs: round(mean(block), 3),
  }
}
