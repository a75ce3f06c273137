// The self-test a zygote runs at start-up before it forks for real: it passes
// in a process started with the zygote's flags, refuses one started without
// them, and children that each do heavy GC work all finish.
import t from 'tap'
import { forkSelfTest } from '../../lib/zygote/fork-self-test.js'
import { loadAddon } from '../../lib/native/addon.js'
import { runHelper, skipUnlessBuilt } from '../fixtures/warm-fork.js'

const skip = skipUnlessBuilt()

t.test('passes in a process started with the zygote flags', { skip }, async (t) => {
  const run = await runHelper(t, `console.log(JSON.stringify(await selfTest.forkSelfTest(addon, { children: 8, deadlineMs: 30_000 })))`)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  t.match(run.records[0], { ok: true, ms: Number })
  t.comment(`8 stressed children in ${Number(run.records[0]?.ms).toFixed(0)} ms`)
})

t.test('refuses a process started without them, before it forks at all', { skip }, async (t) => {
  const { addon } = loadAddon()
  t.same(await forkSelfTest(addon!), { ok: false, reason: 'this process was not started with --single-threaded' }, 'tap runs without them')
})

t.test('six GC-heavy children at once all finish', { skip }, async (t) => {
  const run = await runHelper(t, `
    const gc = selfTest.fullGc()
    const kept = Array.from({ length: 300 }, (_, i) => Array.from({ length: 1000 }, (_, j) => ({ i, j, s: String(i * j) })))
    gc()
    const pids = []
    for (let i = 0; i < 6; i++) {
      const pid = warmFork.forkChild(addon)
      if (pid === 0) {
        for (let round = 0; round < 20; round++) {
          kept[round] = Array.from({ length: 5000 }, (_, j) => ({ round, j, s: 'x'.repeat(j % 100) }))
          if (round % 4 === 0) gc()
        }
        process.exit(0)
      }
      pids.push(pid)
    }
    const ends = []
    for (let i = 0; i < 8000 && ends.length < pids.length; i++) {
      ends.push(...pids.flatMap((pid) => warmFork.reap(addon, pid)))
      await new Promise((r) => setTimeout(r, 5))
    }
    console.log(JSON.stringify({ ends }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const ends = (run.records[0]?.ends ?? []) as { code: number | null; signal: string | null }[]
  t.equal(ends.length, 6, 'all six reaped')
  t.ok(ends.every((end) => end.code === 0 && end.signal === null), 'each with status 0')
})

t.test('never hangs: at the deadline the children still running are killed and reaped', { skip }, async (t) => {
  const run = await runHelper(t, `
    const result = await selfTest.forkSelfTest(addon, { children: 4, deadlineMs: 1 })
    console.log(JSON.stringify({ result, left: warmFork.reap(addon) }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const { result, left } = run.records[0] as { result: { ok: boolean; reason: string }; left: unknown[] }
  t.equal(result.ok, false)
  t.match(result.reason, /^\d of 4 forked children did not finish in time \(killed; \d+ [RSD] \(/, 'what each was doing, from /proc')
  t.same(left, [], 'no child left to reap: all were reaped')
})
