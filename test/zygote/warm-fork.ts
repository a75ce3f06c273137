// The addon and its loader: a real fork(2) returns twice, and reap() brings
// each child's end back. The forks run in a helper process started with the
// zygote's flags (fixtures/warm-fork.ts), never in tap's own process.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { forkSafeFlags, zygoteFlags } from '../../lib/zygote/warm-fork.js'
import { loadAddon } from '../../lib/native/addon.js'
import { runHelper, skipUnlessBuilt } from '../fixtures/warm-fork.js'

const skip = skipUnlessBuilt()

t.test('says "not built", and loads nothing, when the addon file is absent', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-no-addon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const loaded = loadAddon(join(dir, 'forkserver.node'))
  t.equal(loaded.addon, null)
  t.match(loaded.reason, /^not built: no .*forkserver\.node; to build it, run sh \/.*\/lib\/native\/build\.sh$/)
})

t.test('says why when the file is there but is no addon', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-bad-addon-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'forkserver.node'), 'not a shared object\n')
  const loaded = loadAddon(join(dir, 'forkserver.node'))
  t.equal(loaded.addon, null)
  t.match(loaded.reason, /^cannot load .*forkserver\.node: .*; to build it again, run sh \/.*\/lib\/native\/build\.sh$/)
})

t.test('the zygote is started with the flag that makes forking safe, and V8 accepts all its flags', async (t) => {
  t.ok(forkSafeFlags.every((flag) => zygoteFlags.includes(flag)), 'the safe flags are among the zygote flags')
  const node = spawnSync(process.execPath, [...zygoteFlags, '-e', ''], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
  t.equal(node.stderr, '', 'no warning about a flag')
  t.equal(node.status, 0)
})

t.test('loads the built addon, made for this very Node', { skip }, async (t) => {
  const { addon, reason } = loadAddon()
  t.equal(reason, null)
  t.equal(addon?.nodeVersion, process.version)
  t.equal(addon?.getpid(), process.pid)
  const bytes = new Int32Array(8)
  addon?.fillRandom(bytes)
  t.ok(bytes.some((word) => word !== 0), 'fillRandom fills a typed array in place')
  t.throws(() => addon?.fillRandom([1, 2] as unknown as Int32Array), { code: 'EINVAL' }, 'and refuses anything else')
})

t.test('onParentDeath calls back at each death of a parent: the zygote\'s, then that of the subreaper that adopted the child', { skip }, async (t) => {
  // The helper plays the server (a subreaper), its child the zygote (a
  // subreaper too), and the grandchild kills them one after the other.
  const run = await runHelper(t, `
    addon.setChildSubreaper()
    const server = process.pid
    const forkZygote = () => {
      if (warmFork.forkChild(addon) !== 0) return setTimeout(() => {}, 30_000) // the server: until it is killed
      addon.setChildSubreaper()
      const zygote = process.pid
      if (warmFork.forkChild(addon) !== 0) return setTimeout(() => {}, 30_000) // the zygote: until it is killed
      const keep = setTimeout(() => process.exit(3), 20_000) // the watch alone keeps no child alive
      const called = () => {
        const ppid = process.ppid
        console.log(JSON.stringify({ server, zygote, ppid }))
        if (ppid === server) process.kill(server, 'SIGKILL')
        if (ppid === server || ppid === zygote) setTimeout(called, 200) // (a dying parent may still show: look again, as zygote.ts does)
        else { clearTimeout(keep); process.exit(0) }
      }
      addon.onParentDeath(zygote, called)
      process.kill(zygote, 'SIGKILL')
    }
    forkZygote()
  `, { timeoutMs: 30_000 })
  t.equal(run.signal, 'SIGKILL', 'the helper, as the server, was killed', { stderr: run.stderr })
  // A dying process's threads go one by one, and each hands the child on to
  // the next with a signal of its own: a callback may see the same parent.
  const calls = run.records as { server: number; zygote: number; ppid: number }[]
  const { server, zygote } = calls[0] ?? { server: 0, zygote: 0 }
  const parents = calls.map((call) => call.ppid).filter((ppid, i, all) => ppid !== all[i - 1])
  t.equal(parents.filter((ppid) => ppid !== zygote)[0], server, 'the zygote died first: the server adopted the child')
  t.ok(parents.length >= 2 && ![server, zygote].includes(parents.at(-1)!), `then the server died: called back with a parent that is neither (${parents.at(-1)})`)
})

t.test('onParentDeath calls back at once when the process given is not the parent any more', { skip }, async (t) => {
  const run = await runHelper(t, `
    const pid = warmFork.forkChild(addon)
    if (pid === 0) {
      const keep = setTimeout(() => process.exit(3), 20_000)
      addon.onParentDeath(1, () => { console.log(JSON.stringify({ called: true })); clearTimeout(keep) })
    } else {
      let end = []
      for (let i = 0; i < 6000 && end.length === 0; i++) { end = warmFork.reap(addon, pid); await new Promise((r) => setTimeout(r, 5)) }
      console.log(JSON.stringify({ end }))
    }
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  t.same(run.records[0], { called: true }, 'pid 1 is not its parent: called back')
  t.match(run.records[1], { end: [{ code: 0, signal: null }] }, 'and, nothing else left to do, the child ended')
})

t.test('shrink gives the memory a process no longer uses back to the kernel', { skip }, async (t) => {
  const run = await runHelper(t, `
    const { readFileSync } = await import('node:fs')
    const anonymous = () => Number(/^Anonymous:\\s+(\\d+)/m.exec(readFileSync('/proc/self/smaps_rollup', 'utf8'))?.[1])
    let garbage = Array.from({ length: 200 }, (_, i) => Array.from({ length: 1000 }, (_, j) => ({ i, j, s: String(i * j) })))
    garbage = null
    const before = anonymous()
    addon.shrink()
    console.log(JSON.stringify({ before, after: anonymous() }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const { before, after } = run.records[0] as { before: number; after: number }
  t.ok(after < before, `anonymous memory ${before} kB before, ${after} kB after`)
})

t.test('fork returns twice: the pid in the parent, 0 in the child, whose status comes back through reap()', { skip }, async (t) => {
  const run = await runHelper(t, `
    const pid = addon.fork()
    if (pid === 0) addon.exit(7)
    let reaped = []
    for (let i = 0; i < 2000 && reaped.length === 0; i++) { reaped = warmFork.reap(addon, pid); await new Promise((r) => setTimeout(r, 5)) }
    console.log(JSON.stringify({ pid, reaped }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ pid: number; reaped: unknown[] }]
  t.ok(record.pid > 0, 'the parent had the pid')
  t.same(record.reaped, [{ pid: record.pid, code: 7, signal: null }], 'its _exit(7), through waitpid')
})

t.test('reap() names the signal that killed a child, and with -1 collects every child', { skip }, async (t) => {
  const run = await runHelper(t, `
    const pids = []
    for (let i = 0; i < 2; i++) {
      const pid = warmFork.forkChild(addon)
      if (pid === 0) await new Promise(() => setInterval(() => {}, 1000)) // lives until killed
      pids.push(pid)
    }
    for (const pid of pids) process.kill(pid, 'SIGKILL')
    let reaped = []
    for (let i = 0; i < 2000 && reaped.length < 2; i++) { reaped.push(...warmFork.reap(addon)); await new Promise((r) => setTimeout(r, 5)) }
    console.log(JSON.stringify({ pids, reaped }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ pids: number[]; reaped: { pid: number }[] }]
  t.same(record.reaped.sort((a, b) => a.pid - b.pid), record.pids.sort((a, b) => a - b).map((pid) => ({ pid, code: null, signal: 'SIGKILL' })))
})

t.test('reapEach() kills what is left in the groups of the children it is told to, and only collects the others', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-reap-each-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const run = await runHelper(t, `
    const fs = await import('node:fs')
    addon.setChildSubreaper() // (what each program leaves comes back here)
    const start = (name) => addon.spawnProgram(fs.openSync(${JSON.stringify(dir)} + '/' + name, 'w'), 'sh', ['sh', '-c', 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!'], ['PATH=' + process.env.PATH])
    const [ended, spared] = [start('ended'), start('spared')]
    const sleeper = (name) => Number(fs.readFileSync(${JSON.stringify(dir)} + '/' + name, 'utf8'))
    const reaped = []
    for (let i = 0; i < 2000 && (reaped.length < 3 || !reaped.includes(sleeper('ended'))); i++) {
      reaped.push(...warmFork.reapEach(addon, (pid) => pid === ended).map((r) => r.pid))
      await new Promise((r) => setTimeout(r, 5))
    }
    const spareState = fs.readFileSync('/proc/' + sleeper('spared') + '/stat', 'utf8').split(') ')[1][0]
    process.kill(sleeper('spared'), 'SIGKILL')
    console.log(JSON.stringify({ ended, spared, endedSleeper: sleeper('ended'), reaped, spareState }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ ended: number; spared: number; endedSleeper: number; reaped: number[]; spareState: string }]
  t.same([...record.reaped].sort((a, b) => a - b), [record.ended, record.spared, record.endedSleeper].sort((a, b) => a - b), 'both programs, and the sleep killed with the first one\'s group, adopted and collected')
  t.match(record.spareState, /^[RS]$/, 'the sleep in the other\'s group lives on')
})

t.test('forks again and again: 30 children, one after another, each reaped', { skip }, async (t) => {
  const run = await runHelper(t, `
    const times = []
    let good = 0
    for (let i = 0; i < 30; i++) {
      const started = performance.now()
      const pid = warmFork.forkChild(addon)
      if (pid === 0) process.exit(0)
      times.push(performance.now() - started)
      for (let j = 0; j < 2000; j++) {
        const [end] = warmFork.reap(addon, pid)
        if (end) { if (end.code === 0) good++; break }
        await new Promise((r) => setTimeout(r, 2))
      }
    }
    times.sort((a, b) => a - b)
    console.log(JSON.stringify({ good, medianMs: times[15] }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ good: number; medianMs: number }]
  t.equal(record.good, 30, 'every child exited 0')
  t.comment(`fork(), parking and unparking included: median ${record.medianMs.toFixed(2)} ms`)
})

t.test('execProgram: the child becomes the program on the given descriptor, with the given environment; 127 and 126, and the line given, when it cannot', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-exec-program-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'not-executable'), 'echo never\n', { mode: 0o644 })
  const run = await runHelper(t, `
    const fs = await import('node:fs')
    const out = fs.openSync(${JSON.stringify(join(dir, 'out'))}, 'w')
    const runs = [
      ['sh', ['sh', '-c', 'echo "$GREETING"; exit 3']],
      ['forkserver-no-such-program', ['forkserver-no-such-program']],
      [${JSON.stringify(join(dir, 'not-executable'))}, ['not-executable']],
    ]
    const codes = []
    for (const [file, argv] of runs) {
      const pid = addon.fork()
      if (pid === 0) addon.execProgram(out, file, argv, ['GREETING=hello'], 'warning: pid %1$d: exec ' + file + ': %2$s (%3$s)\\n')
      let reaped = []
      for (let i = 0; i < 2000 && reaped.length === 0; i++) { reaped = warmFork.reap(addon, pid); await new Promise((r) => setTimeout(r, 5)) }
      codes.push(reaped[0]?.code)
    }
    console.log(JSON.stringify({ codes, out: fs.readFileSync(${JSON.stringify(join(dir, 'out'))}, 'utf8') }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ codes: number[]; out: string }]
  t.same(record.codes, [3, 127, 126], 'its own status; 127 for no such program; 126 for one that is not executable')
  t.equal(record.out, 'hello\n', 'the descriptor was its stdout, and the environment the one given')
  t.match(run.stderr, /^warning: pid \d+: exec forkserver-no-such-program: not found \(No such file or directory\)$/m)
  t.match(run.stderr, /^warning: pid \d+: exec .*not-executable: not executable \(Permission denied\)$/m)
})

t.test('spawnProgram: the program on the given descriptor, with the given environment, in a session of its own; 0 when it cannot be started', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-spawn-program-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  writeFileSync(join(dir, 'not-executable'), 'echo never\n', { mode: 0o644 })
  const run = await runHelper(t, `
    const fs = await import('node:fs')
    const out = fs.openSync(${JSON.stringify(join(dir, 'out'))}, 'w')
    const pid = addon.spawnProgram(out, 'sh', ['sh', '-c', 'echo "$GREETING $(ps -o sid= -p $$ | tr -d \\" \\")"; exit 3'], ['GREETING=hello', 'PATH=' + process.env.PATH])
    let reaped = []
    for (let i = 0; i < 2000 && reaped.length === 0; i++) { reaped = warmFork.reap(addon, pid); await new Promise((r) => setTimeout(r, 5)) }
    const missing = addon.spawnProgram(out, 'forkserver-no-such-program', ['forkserver-no-such-program'], [])
    const refused = addon.spawnProgram(out, ${JSON.stringify(join(dir, 'not-executable'))}, ['not-executable'], [])
    console.log(JSON.stringify({ pid, code: reaped[0]?.code, missing, refused, out: fs.readFileSync(${JSON.stringify(join(dir, 'out'))}, 'utf8') }))
  `)
  t.equal(run.code, 0, 'the helper ends with status 0', { stderr: run.stderr })
  const [record] = run.records as [{ pid: number; code: number; missing: number; refused: number; out: string }]
  t.ok(record.pid > 0, 'a pid')
  t.equal(record.code, 3, 'its own status, reaped by the caller: its parent')
  t.equal(record.out, `hello ${record.pid}\n`, 'the descriptor was its stdout, the environment the one given, and it leads its own session')
  t.equal(record.missing, 0, 'no such program')
  t.equal(record.refused, 0, 'not executable')
})
