// A forked child set up to live on its own: its own pid, no share of the
// parent's IPC channel or listeners, random numbers of its own, and every
// way out an _exit with the right status. Each test runs a helper started
// with the zygote's flags (fixtures/warm-fork.ts) that forks and reports.
import t from 'tap'
import { runHelper, skipUnlessBuilt } from '../fixtures/warm-fork.js'

const skip = skipUnlessBuilt()

/**
 * Helper code: forks `count` children that each run `child`, and reaps them
 * all. A child leaves forkAll() and never comes near the parent's code: it
 * ends however `child` makes it end. (No await on a child's path: a module
 * left waiting at the top level ends with status 13.)
 */
const forkAndReap = (count: number, child: string) => `
  const forkAll = () => {
    const pids = []
    for (let i = 0; i < ${count}; i++) {
      const pid = warmFork.forkChild(addon)
      if (pid === 0) { ${child}; return null }
      pids.push(pid)
    }
    return pids
  }
  const pids = forkAll()
  if (pids !== null) {
    const ends = []
    for (let i = 0; i < 6000 && ends.length < pids.length; i++) {
      ends.push(...pids.flatMap((pid) => warmFork.reap(addon, pid)))
      await new Promise((r) => setTimeout(r, 5))
    }
    console.log(JSON.stringify({ parent: process.pid, pids, ends }))
  }
`

interface Report {
  parent: number
  pids: number[]
  ends: { pid: number; code: number | null; signal: string | null }[]
}

t.test('process.pid is the child\'s own, and process.ppid the parent', { skip }, async (t) => {
  const run = await runHelper(t, forkAndReap(1, `console.log(JSON.stringify({ pid: process.pid, real: addon.getpid(), ppid: process.ppid })); process.exit(0)`))
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [child, report] = run.records as [{ pid: number; real: number; ppid: number }, Report]
  t.equal(child.pid, report.pids[0])
  t.equal(child.real, child.pid)
  t.equal(child.ppid, report.parent)
})

t.test('20 children draw 20 different Math.random() and crypto.randomUUID() values', { skip }, async (t) => {
  const run = await runHelper(t, `
    const { randomUUID } = await import('node:crypto')
    randomUUID() // the parent's UUID cache is full: its children must not share it
    ${forkAndReap(20, `console.log(JSON.stringify({ random: Math.random(), uuid: randomUUID(), web: globalThis.crypto.randomUUID() })); process.exit(0)`)}
    console.log(JSON.stringify({ random: Math.random(), uuid: randomUUID(), web: globalThis.crypto.randomUUID() }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const draws = run.records.filter((r) => 'random' in r) as { random: number; uuid: string; web: string }[]
  t.equal(draws.length, 21, '20 children and the parent')
  for (const key of ['random', 'uuid', 'web'] as const) t.equal(new Set(draws.map((d) => d[key])).size, 21, `${key}: no two alike`)
  t.ok(draws.every((d) => d.random >= 0 && d.random < 1), 'Math.random() stays in [0, 1)')
})

t.test('every way out is an _exit with the right status', { skip }, async (t) => {
  const run = await runHelper(t, `
    const ways = [
      () => process.exit(5),
      () => { process.exitCode = 4 }, // then the loop runs dry: a natural end
      () => setTimeout(() => { throw new Error('boom in a child') }, 1),
      () => Promise.reject(new Error('rejected in a child')),
      () => { process.kill(process.pid, 'SIGTERM'); setTimeout(() => {}, 10_000) },
      () => { process.on('exit', (code) => console.log(JSON.stringify({ exitListener: code }))); process.exitCode = 3 },
    ]
    process.on('SIGTERM', () => {}) // the parent's; the child must not keep it
    process.on('exit', () => console.log('the parent exit listener ran in', process.pid))
    const forkAll = () => {
      const pids = []
      for (const way of ways) {
        const pid = warmFork.forkChild(addon)
        if (pid === 0) return way()
        pids.push(pid)
      }
      return pids
    }
    const pids = forkAll()
    if (Array.isArray(pids)) {
      const ends = []
      for (let i = 0; i < 6000 && ends.length < pids.length; i++) {
        ends.push(...pids.flatMap((pid) => warmFork.reap(addon, pid)))
        await new Promise((r) => setTimeout(r, 5))
      }
      console.log(JSON.stringify({ parent: process.pid, pids, ends }))
    }
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const report = run.records.find((r) => 'ends' in r) as Report | undefined
  const status = (i: number) => report?.ends.find((end) => end.pid === report.pids[i])
  t.same(status(0), { pid: report?.pids[0], code: 5, signal: null }, 'process.exit(5)')
  t.same(status(1), { pid: report?.pids[1], code: 4, signal: null }, 'a natural end, with process.exitCode 4')
  t.same(status(2), { pid: report?.pids[2], code: 1, signal: null }, 'an uncaught exception')
  t.same(status(3), { pid: report?.pids[3], code: 1, signal: null }, 'an unhandled rejection')
  t.same(status(4), { pid: report?.pids[4], code: null, signal: 'SIGTERM' }, "SIGTERM, the parent's listener dropped")
  t.same(status(5), { pid: report?.pids[5], code: 3, signal: null }, 'an exit listener the child added runs, then _exit(3)')
  t.match(run.stderr, /Error: boom in a child/, 'the uncaught exception is printed')
  t.match(run.stderr, /Error: rejected in a child/, 'so is the rejection')
  t.same(run.records.filter((r) => 'exitListener' in r), [{ exitListener: 3 }])
  t.equal(run.stdout.match(/the parent exit listener ran in/g)?.length, 1, 'only in the parent itself')
})

t.test("the child closes its copy of the parent's IPC channel: the parent alone hears its messages", { skip }, async (t) => {
  const echoes: unknown[] = []
  const run = await runHelper(t, `
    process.on('message', (m) => process.send({ echo: m }))
    const pid = warmFork.forkChild(addon)
    if (pid === 0) {
      const parents = process.listeners('message').filter((listener) => String(listener).includes('echo')).length
      console.log(JSON.stringify({ connected: process.connected, channel: process.channel ?? null, parents }))
      setTimeout(() => {}, 1500) // alive while the parent is sent its messages; then a natural end
    } else {
      process.send({ forked: pid })
      let end = []
      for (let i = 0; i < 6000 && end.length === 0; i++) { end = warmFork.reap(addon, pid); await new Promise((r) => setTimeout(r, 5)) }
      console.log(JSON.stringify({ end }))
      process.disconnect()
    }
  `, {
    withChannel: (helper) => helper.on('message', (m: { forked?: number }) => {
      echoes.push(m)
      if (m.forked !== undefined) for (let i = 0; i < 20; i++) helper.send(i)
    }),
  })
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  // (Its one 'message' listener is its own, which drops what the channel had read before the fork.)
  t.same(run.records[0], { connected: false, channel: null, parents: 0 }, "in the child: no channel, none of the parent's listeners")
  t.same(echoes.slice(1), Array.from({ length: 20 }, (_, i) => ({ echo: i })), 'every message reached the parent, in order')
  t.match(run.records[1], { end: [{ code: 0, signal: null }] })
})

t.test("a child uses libuv's thread pool (fs, crypto) after the parent used it before the fork", { skip }, async (t) => {
  const run = await runHelper(t, `
    const { readFile } = await import('node:fs/promises')
    const { pbkdf2 } = await import('node:crypto')
    const work = () => Promise.all([readFile('/etc/hostname'), new Promise((r, j) => pbkdf2('a', 'b', 1000, 32, 'sha256', (e) => (e ? j(e) : r())))])
    await work() // the pool's threads now exist in the parent, and not in a child
    ${forkAndReap(4, `work().then(() => process.exit(0), () => process.exit(1))`)}
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const report = run.records[0] as Report | undefined
  t.same(report?.ends.map((end) => end.code), [0, 0, 0, 0], 'each child did its work and exited 0')
})

t.test('a forked child can fork in turn, and its child is set up the same way', { skip }, async (t) => {
  const run = await runHelper(t, forkAndReap(1, `
    const grandchild = warmFork.forkChild(addon)
    if (grandchild === 0) {
      console.log(JSON.stringify({ grandchild: process.pid }))
      setTimeout(() => { throw new Error('thrown in a grandchild') }, 1)
    } else {
      const nap = new Int32Array(new SharedArrayBuffer(4))
      let end = []
      for (let i = 0; i < 6000 && end.length === 0; i++) { end = warmFork.reap(addon, grandchild); Atomics.wait(nap, 0, 0, 5) }
      console.log(JSON.stringify({ child: process.pid, end }))
      process.exit(end[0]?.code === 1 ? 0 : 2)
    }
  `))
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const grandchild = run.records.find((r) => 'grandchild' in r)?.grandchild
  t.match(run.records.find((r) => 'child' in r), { end: [{ pid: grandchild, code: 1, signal: null }] }, 'the grandchild printed its exception and ended with status 1')
  t.match(run.stderr, /Error: thrown in a grandchild/)
  t.match(run.records.find((r) => 'ends' in r), { ends: [{ code: 0, signal: null }] }, 'the child reaped it, and ended with status 0')
})

t.test('as a child subreaper, the parent reaps the children of a child that is gone', { skip }, async (t) => {
  const run = await runHelper(t, `
    addon.setChildSubreaper()
    ${forkAndReap(1, `
      const orphan = warmFork.forkChild(addon)
      if (orphan === 0) setTimeout(() => process.exit(6), 300) // outlives its parent
      else { console.log(JSON.stringify({ orphan })); process.exit(0) }
    `)}
    if (pids !== null) {
      let ends = []
      for (let i = 0; i < 6000 && ends.length === 0; i++) { ends = warmFork.reap(addon); await new Promise((r) => setTimeout(r, 5)) }
      console.log(JSON.stringify({ adopted: ends }))
    }
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const orphan = run.records.find((r) => 'orphan' in r)?.orphan
  t.same(run.records.find((r) => 'adopted' in r), { adopted: [{ pid: orphan, code: 6, signal: null }] }, 'reparented to the helper, reaped by it')
})
