import { spawnSync } from 'node:child_process'
import t from 'tap'
import { forkTimes, parseCounters, parseForkTime, perConnection, readCounters, type Counters } from '../bench/accounting.js'

/** A /proc/PID/stat line (proc(5)) with the given fields 10, 11 and 14 to 17, the rest 0. */
const statLine = (name: string, f: { minflt: number; cminflt: number; utime: number; stime: number; cutime: number; cstime: number }): string => {
  const after = Array.from({ length: 50 }, () => '0')
  // after[0] is field 3 (the state).
  after[0] = 'S'
  after[7] = String(f.minflt)
  after[8] = String(f.cminflt)
  after[11] = String(f.utime)
  after[12] = String(f.stime)
  after[13] = String(f.cutime)
  after[14] = String(f.cstime)
  return `1234 (${name}) ${after.join(' ')}\n`
}

t.test("a stat line's counters: own and reaped children's CPU ticks and minor faults, whatever the command's name holds", async (t) => {
  const fields = { minflt: 700, cminflt: 6500, utime: 30, stime: 12, cutime: 250, cstime: 61 }
  const expected: Counters = { cpuTicks: 42, childCpuTicks: 311, minflt: 700, cminflt: 6500 }
  t.same(parseCounters(statLine('node', fields)), expected)
  t.same(parseCounters(statLine('a (b) c) d', fields)), expected, 'spaces and parentheses in the name')
  t.equal(parseCounters('1234 (short) S 1 2'), null, 'a truncated line: no counters, not zeros')
})

t.test("a reaped child's CPU time shows in its reaper's cutime + cstime, and its faults in cminflt", async (t) => {
  const before = readCounters(process.pid)
  if (before === null) return t.fail('/proc/self/stat could not be read')
  // spawnSync reaps the child before it returns: its times are this process's children's now.
  const run = spawnSync(process.execPath, ['-e', 'const end = Date.now() + 150; while (Date.now() < end);'], { stdio: 'ignore' })
  t.equal(run.status, 0)
  const after = readCounters(process.pid)
  if (after === null) return t.fail('/proc/self/stat could not be read')
  // 150 ms of a busy loop, in 10 ms ticks (USER_HZ 100): at least 10 of them.
  t.ok(after.childCpuTicks - before.childCpuTicks >= 10, `children's CPU grew by ${after.childCpuTicks - before.childCpuTicks} ticks`)
  t.ok(after.cminflt - before.cminflt > 100, `children's minor faults grew by ${after.cminflt - before.cminflt}`)
  t.equal(readCounters(2 ** 22 + 1), null, 'a pid that is no process: null')
})

const counters = (cpuTicks: number, childCpuTicks: number, minflt: number, cminflt: number): Counters => ({ cpuTicks, childCpuTicks, minflt, cminflt })

t.test('per connection: each role its own CPU, the children that of the process that reaped them, in ms at USER_HZ', async (t) => {
  // A zygote's server: 1000 connections, 100 ticks a second.
  const before = { parent: counters(100, 0, 5000, 0), zygote: counters(50, 10, 9000, 1000) }
  const after = { parent: counters(145, 0, 5100, 0), zygote: counters(170, 320, 129_000, 651_000) }
  t.same(perConnection(before, after, 1000, 100), {
    parentCpuMs: 0.45,
    zygoteCpuMs: 1.2,
    childCpuMs: 3.1,
    totalCpuMs: 4.75,
    childMinorFaults: 650,
    forkerMinorFaults: 120,
  })
  // A peer: one process accepts, forks and reaps; no zygote figure at all.
  const peer = perConnection({ parent: counters(10, 20, 100, 200), zygote: null }, { parent: counters(30, 60, 300, 2200), zygote: null }, 200, 100)
  t.same(peer, { parentCpuMs: 1, childCpuMs: 2, totalCpuMs: 3, childMinorFaults: 10, forkerMinorFaults: 1 })
  t.notOk(peer !== null && 'zygoteCpuMs' in peer, 'a peer has no zygote')
  t.equal(perConnection({ parent: null, zygote: null }, { parent: counters(1, 1, 1, 1), zygote: null }, 10, 100), null, 'a process unread: null')
  t.equal(perConnection(before, { parent: after.parent, zygote: null }, 1000, 100), null, 'the zygote gone at the end: null')
  t.equal(perConnection(before, after, 0, 100), null, 'no connection: null')
})

t.test("fork-time lines: the addon's four steps, c-fork's fork(2), python's whole call; any other line is not one", async (t) => {
  t.same(parseForkTime('fork-time park=150000 maps=210000 fork=600000 unpark=8000'), { park: 150_000, maps: 210_000, fork: 600_000, unpark: 8000 })
  t.same(parseForkTime('fork-time fork=84000\n'), { fork: 84_000 })
  t.same(parseForkTime('fork-time call=527000'), { call: 527_000 })
  for (const line of ['pid 123 from 127.0.0.1:5000', 'fork-time', 'fork-time fork=', 'xfork-time fork=1']) t.equal(parseForkTime(line), null, line)
})

t.test("fork times: the whole call's mean and p50, fork(2)'s mean where it is told apart, each step's where there are several", async (t) => {
  const addon = [
    { park: 100_000, maps: 200_000, fork: 600_000, unpark: 10_000 },
    { park: 300_000, maps: 200_000, fork: 800_000, unpark: 10_000 },
    { park: 5_000_000, maps: 200_000, fork: 1_000_000, unpark: 10_000 },
  ]
  t.same(forkTimes(addon), {
    samples: 3,
    callUs: 2810,
    callP50Us: 1310,
    forkUs: 800,
    stepsUs: { park: 1800, maps: 200, fork: 800, unpark: 10 },
  })
  t.same(forkTimes([{ fork: 80_000 }, { fork: 100_000 }]), { samples: 2, callUs: 90, callP50Us: 80, forkUs: 90 }, 'c-fork: the call is fork(2)')
  t.same(forkTimes([{ call: 500_000 }]), { samples: 1, callUs: 500, callP50Us: 500 }, "python: os.fork() whole, fork(2) not told apart")
  t.equal(forkTimes([]), null, 'no line: nothing timed')
})
