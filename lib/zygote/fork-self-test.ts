// Is a real fork(2) safe in this process, on this Node? Everything it leans
// on is a Node internal (docs/warm-fork.md), so the answer is measured, not
// assumed: warm up the way a long-lived zygote does (a big heap, full GCs, a
// function tiered up), fork children that do the same, and see every one of
// them finish with status 0 and draw random numbers of their own: none
// alike, and none what the parent draws next. It never hangs: at the
// deadline the children still running are killed.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import * as crypto from 'node:crypto'
import { randomInt, randomUUID } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { forkChild, forkSafeFlags, reap } from './warm-fork.js'
import type { Addon } from '../native/addon.js'

export interface SelfTestOptions {
  /** How many children to fork (one after another, all alive at once). */
  readonly children?: number
  /** How long they all have to finish, from the first fork. */
  readonly deadlineMs?: number
}

export type SelfTestResult = { readonly ok: true; readonly ms: number } | { readonly ok: false; readonly reason: string }

/** A full, synchronous GC, without --expose-gc on the command line. */
export const fullGc = (): (() => void) => {
  setFlagsFromString('--expose-gc')
  return runInNewContext('gc') as () => void
}

/** Garbage of many shapes and sizes, some of it kept. */
const churn = (rounds: number): unknown[] => {
  const kept: unknown[] = []
  for (let i = 0; i < rounds; i++) {
    const garbage = Array.from({ length: 1000 }, (_, j) => ({ i, j, s: `${i}:${j}`, a: [j, j * 2] }))
    if (i % 10 === 0) kept.push(garbage, new Uint8Array(64 * 1024))
  }
  return kept
}

/** A function hot enough for V8 to optimise it. */
const hot = (n: number): number => {
  let sum = 0
  for (let i = 0; i < n; i++) sum = (sum + i * i) % 1000003
  return sum
}

/** Node 24's version-7 UUIDs (their own timestamp, then bytes of the same cache), where Node has them. */
const randomUUIDv7 = (crypto as { randomUUIDv7?: () => string }).randomUUIDv7

/**
 * One of each draw a child must not share, space-separated (checkDraws'
 * columns): a version-7 UUID is cut to its random part, after its timestamp.
 */
const draws = (): string =>
  [Math.random(), randomUUID(), globalThis.crypto.randomUUID(), randomInt(RANDOM_INT_MAX), randomUUIDv7?.().slice(14) ?? '-'].join(' ')

/** randomInt's widest range: 48 bits. */
const RANDOM_INT_MAX = 2 ** 48 - 1

/** What a child does: the same work, its random draws written down. It never returns: _exit(0), or 1 on any failure. */
const childWork = (addon: Addon, gc: () => void, dir: string): never => {
  let status = 1
  try {
    churn(100)
    gc()
    for (let i = 0; i < 200; i++) hot(1000)
    gc()
    writeFileSync(join(dir, String(process.pid)), draws())
    status = 0
  } finally {
    addon.exit(status)
  }
}

export const forkSelfTest = async (addon: Addon, options: SelfTestOptions = {}): Promise<SelfTestResult> => {
  const { children = 8, deadlineMs = 10_000 } = options
  const missing = forkSafeFlags.filter((flag) => !process.execArgv.includes(flag))
  if (missing.length > 0) return { ok: false, reason: `this process was not started with ${missing.join(' ')}` }
  const gc = fullGc()
  const kept = churn(200)
  gc()
  for (let i = 0; i < 2000; i++) hot(1000)
  // Node's caches of random bytes in use, as a real zygote's may be: a child
  // that kept them would draw what this process draws next.
  randomUUID()
  randomInt(RANDOM_INT_MAX)
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-fork-test-'))
  const started = performance.now()
  const live = new Set<number>()
  try {
    for (let i = 0; i < children; i++) {
      const pid = forkChild(addon)
      if (pid === 0) childWork(addon, gc, dir)
      live.add(pid)
    }
    const failure = await awaitAll(addon, live, started + deadlineMs)
    return failure !== null ? { ok: false, reason: failure } : checkDraws(dir, children, draws(), performance.now() - started)
  } catch (err) {
    return { ok: false, reason: `fork failed: ${err instanceof Error ? err.message : String(err)}` }
  } finally {
    for (const pid of live) process.kill(pid, 'SIGKILL')
    for (const pid of live) await reapWithin(addon, pid, 1000)
    rmSync(dir, { recursive: true, force: true })
    // The test's garbage goes, and the pages it filled go back to the
    // kernel, with all else start-up freed: every page left would be copied
    // into each later fork's page tables (in a zygote, 71 heap pages of
    // 256 KB before a full GC, 26 after; then 13.7 MB of anonymous memory
    // before shrink(), 9.9 MB after).
    kept.length = 0
    addon.shrink()
  }
}

/** Waits for every child in `live` to exit 0; null, or what went wrong. Reaped children leave `live`. */
const awaitAll = async (addon: Addon, live: Set<number>, deadline: number): Promise<string | null> => {
  const total = live.size
  while (live.size > 0 && performance.now() < deadline) {
    for (const pid of live) {
      for (const { code, signal } of reap(addon, pid)) {
        live.delete(pid)
        if (code !== 0) return `a forked child ended with ${signal ?? `status ${code}`}`
      }
    }
    await sleep(5)
  }
  return live.size === 0 ? null : `${live.size} of ${total} forked children did not finish in time (killed; ${statesOf(live)})`
}

/** What the children are doing, from /proc: "R running" is slow, "S sleeping in futex_wait_queue" is hung. */
const statesOf = (pids: Set<number>): string =>
  [...pids].map((pid) => {
    try {
      const state = /^State:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '?'
      return `${pid} ${state} in ${readFileSync(`/proc/${pid}/wchan`, 'utf8') || '-'}`
    } catch {
      return `${pid} gone`
    }
  }).join(', ')

const reapWithin = async (addon: Addon, pid: number, ms: number): Promise<void> => {
  for (const until = performance.now() + ms; performance.now() < until && reap(addon, pid).length === 0; ) await sleep(5)
}

/** No two children drew the same random number or UUID, and none drew what the parent drew next (as they would, had they kept its generators). */
const checkDraws = (dir: string, children: number, parents: string, ms: number): SelfTestResult => {
  const rows = readdirSync(dir).map((file) => readFileSync(join(dir, file), 'utf8').split(' '))
  if (rows.length !== children) return { ok: false, reason: `${children - rows.length} forked children wrote nothing` }
  rows.push(parents.split(' '))
  const columns = ['Math.random()', 'crypto.randomUUID()', 'globalThis.crypto.randomUUID()', 'crypto.randomInt()', 'crypto.randomUUIDv7()'] as const
  for (const [column, what] of columns.entries()) {
    const values = rows.map((row) => row[column])
    if (values.includes('-')) continue // not in this Node
    if (new Set(values).size !== values.length) return { ok: false, reason: `forked children repeat each other's ${what}, or their parent's` }
  }
  return { ok: true, ms }
}
