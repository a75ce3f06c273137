// lib/start/adopted.ts: a process's children, as /proc lists them; and the
// reaper of what a subreaper adopts, which leaves alone every child that
// child_process started, so that each still reports its 'exit'. The reaper
// runs in a helper process (fixtures/warm-fork.ts), a subreaper of its own,
// never in tap's.
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import t from 'tap'
import { childPids } from '../../lib/start/adopted.js'
import { DIST_LIB, runHelper, skipUnlessBuilt } from '../fixtures/warm-fork.js'

t.test('childPids lists a child, zombie or not, from each thread\'s list and from a scan of /proc alike', async (t) => {
  const sleeper = spawn('sleep', ['30'], { stdio: 'ignore' })
  t.teardown(() => sleeper.kill('SIGKILL'))
  await once(sleeper, 'spawn')
  const pid = sleeper.pid!
  t.ok(childPids().includes(pid), 'listed')
  t.ok(childPids(process.pid, true).includes(pid), 'scanned')
  t.notOk(childPids(process.pid, true).includes(process.pid), 'not this process itself')
  t.same(childPids(pid), [], 'a sleep has none')
})

t.test('the reaper collects an adopted orphan, and leaves a child_process child, dead as a zombie, for Node to report', { skip: skipUnlessBuilt() }, async (t) => {
  const run = await runHelper(t, `
    const { readFileSync } = await import('node:fs')
    const { spawnSync } = await import('node:child_process')
    const { childPids, reapAdopted } = await import(${JSON.stringify(`${DIST_LIB}start/adopted.js`)})
    const { spawnProcess } = await import(${JSON.stringify(`${DIST_LIB}start/spawn.js`)})
    addon.setChildSubreaper()
    const reaped = []
    const sweep = reapAdopted(addon, { endsGroup: () => false, reaped: (r) => reaped.push(r) })
    // A child of child_process's, killed, and looked over by the reaper while it is a zombie that Node has not yet seen.
    const exited = new Promise((resolve) => {
      spawnProcess({ running: () => {}, error: () => {}, exit: (code, signal) => resolve({ code, signal }) },
        { credentials: null, hear: () => true, role: () => 'test', warn: () => {} })
      setTimeout(() => resolve('never reported'), 10000).unref()
    })
    const [child] = childPids()
    process.kill(child, 'SIGKILL')
    const state = () => readFileSync('/proc/' + child + '/stat', 'utf8').split(') ')[1][0]
    while (state() !== 'Z') Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5)
    sweep()
    const exit = await exited
    // An orphan: sh starts a sleep and exits; the sleep comes here.
    const orphan = Number(spawnSync('sh', ['-c', 'sleep 0.2 </dev/null >/dev/null 2>&1 & echo $!'], { encoding: 'utf8' }).stdout)
    for (let i = 0; i < 2000 && reaped.length === 0; i++) await new Promise((r) => setTimeout(r, 5)) // (SIGCHLD sweeps)
    // (Then ends, even if Node still waits for a child that was stolen from it.)
    process.stdout.write(JSON.stringify({ orphan, reaped, exit }) + '\\n', () => process.exit(0))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ orphan: number; reaped: { pid: number; code: number | null }[]; exit: unknown }]
  t.same(record.exit, { code: null, signal: 'SIGKILL' }, 'the child_process child\'s exit, reported by Node')
  t.same(record.reaped, [{ pid: record.orphan, code: 0, signal: null }], 'the orphan, collected by the reaper on SIGCHLD')
})
