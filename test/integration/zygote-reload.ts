// --start zygote when its zygote goes: kill -9 (its children live on, the
// parent reaps them and starts another) and SIGHUP (a fresh zygote loads the
// code as it is now; one that cannot load it leaves the old one serving).
// Skipped, with the reason, where the addon is not built.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import t from 'tap'
import { signalProcess } from '../../lib/serve/process-group.js'
import { collect, exchange, open, readBytes, readLine } from '../fixtures/client.js'
import { talkUntilCutOff } from '../fixtures/orphan.js'
import { childrenOf, exitedWithin, startServer, stopServer, type Running } from '../fixtures/server.js'
import { zygotesOf } from '../fixtures/starts.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { echoMany, handler, ppidOf, zygote, zygotePid } from '../fixtures/zygote.js'

const skip = skipUnlessBuilt()

t.test('kill -9 of the zygote: a held connection still echoes, the next 20 are served, no zombie is left', { skip }, async (t) => {
  const server = await zygote(t)
  const held = await open(server.port)
  held.write('before\n')
  t.equal(await readLine(held), 'before')
  const heldPid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: zygote ${z} was killed by SIGKILL; a new one in [\\d.]+s$`))
  held.write('after\n')
  t.equal(await readLine(held), 'after', 'the held connection is served by its child, orphaned')
  t.equal(ppidOf(heldPid), server.pid, 'which the server took in as its subreaper')
  for (let i = 0; i < 20; i++) t.equal((await exchange(server.port, `next ${i}`)).data.toString(), `next ${i}`)
  const closed = collect(held)
  held.end()
  await closed
  await server.waitFor(new RegExp(`^end ${heldPid} status 0$`))
  t.same(childrenOf(server.pid).filter((c) => c.state === 'Z'), [], 'no zombie')
  await stopServer(server)
  t.match(server.lines.at(-1), /^shutdown: served 21, /)
})

t.test('kill -9 of the zygote, then of the server: a child whose client keeps talking is cut off at the orphan deadline (--idle-timeout 2)', { skip }, async (t) => {
  const server = await zygote(t, ['--idle-timeout', '2'])
  const held = await open(server.port)
  held.write('a')
  t.equal((await readBytes(held, 1)).toString(), 'a')
  const heldPid = Number((await server.waitFor(/^pid (\d+) from /))[1])
  t.teardown(() => signalProcess(heldPid, 'SIGKILL', true))
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  await server.waitFor(new RegExp(`^warning: zygote ${z} was killed by SIGKILL; a new one in [\\d.]+s$`))
  process.kill(server.pid, 'SIGKILL')
  await server.exited
  const orphanedAt = Date.now()
  held.write('b')
  t.equal((await readBytes(held, 1)).toString(), 'b', 'orphaned twice, it still serves its client')
  const after = await talkUntilCutOff(t, held, orphanedAt)
  // Signalled as the server died (no timer per child looks for it), then the 2 s deadline.
  t.ok(after >= 1500 && after <= 2000 + 2500, `${after} ms after the server died: at the deadline`)
  t.ok(await exitedWithin(heldPid, 5000), 'and the child is gone')
})

t.test('SIGHUP replaces the zygote; a held connection finishes, and new ones are served by the new one', { skip }, async (t) => {
  const server = await zygote(t, ['--handler', handler('whoami')])
  const held = await open(server.port)
  const first = JSON.parse(await readLine(held)) as { pid: number; ppid: number }
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP/)
  let again = first
  for (let tries = 0; again.ppid === first.ppid && tries < 100; tries++) {
    const socket = await open(server.port)
    again = JSON.parse(await readLine(socket)) as { pid: number; ppid: number }
    socket.end()
  }
  t.not(again.ppid, first.ppid, 'a new zygote forks the new children')
  held.end()
  await server.waitFor(new RegExp(`^end ${first.pid} status 0$`))
  await stopServer(server)
})

/**
 * Resolves with the one zygote left once every other has exited and it has
 * said ready (in the parent's trace, from line `from` on); fails after 30 s.
 */
const oneZygoteLeft = async (server: Running, from: number): Promise<number> => {
  const deadline = Date.now() + 30_000
  for (;;) {
    const zygotes = zygotesOf(server)
    const [only] = zygotes
    if (zygotes.length === 1 && server.lines.slice(from).some((l) => l.includes(`zygote ${only} ready in`))) return only!
    if (Date.now() > deadline) throw new Error(`zygotes left: ${zygotes.join(', ')}`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

const TRACE = { DEBUG: 'forkserver:parent' }

t.test('three SIGHUPs in a row leave one zygote, the last one started, and it serves', { skip }, async (t) => {
  const server = await startServer(t, ['--start', 'zygote', '-v'], TRACE)
  const from = server.lines.length
  for (let i = 1; i <= 3; i++) {
    server.signal('SIGHUP')
    await server.waitForCount(/^reload: SIGHUP/, i, from)
  }
  const z = await oneZygoteLeft(server, from)
  const socket = await open(server.port)
  socket.write('after\n')
  t.equal(await readLine(socket), 'after')
  const pid = Number((await server.waitFor(/^pid (\d+) from /, from))[1])
  t.equal(ppidOf(pid), z, 'served by a child of the zygote that is left')
  socket.end()
  t.match(await stopServer(server), { code: 0 })
})

t.test('kill -9 of the zygote and a SIGHUP at once leave one zygote, and it serves', { skip }, async (t) => {
  const server = await startServer(t, ['--start', 'zygote', '-v'], TRACE)
  const from = server.lines.length
  process.kill(zygotePid(server), 'SIGKILL')
  server.signal('SIGHUP')
  await server.waitFor(/^reload: SIGHUP/, from)
  await oneZygoteLeft(server, from)
  t.equal((await exchange(server.port, 'after')).data.toString(), 'after')
  t.match(await stopServer(server), { code: 0 })
})

t.test('SIGHUP twice under load: every connection is forked once and echoed byte for byte', { skip }, async (t) => {
  const server = await zygote(t)
  const failures = await echoMany(server.port, 150, (done) => {
    if (done === 30 || done === 90) server.signal('SIGHUP')
  })
  t.same(failures, [], 'every reply is its own request')
  await stopServer(server)
  t.equal(server.lines.filter((line) => /^pid \d+ from /.test(line)).length, 150, 'one child per connection, none forked twice')
  t.match(server.lines.at(-1), /^shutdown: served 150, peak \d+, failed 0, denied 0, dropped 0$/)
})

t.test('a reload to code that does not load: one warning, and the old zygote serves on', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-zygote-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const module = join(dir, 'handler.js')
  writeFileSync(module, readFileSync(handler('random')))
  const server = await zygote(t, ['--handler', module])
  const before = JSON.parse((await exchange(server.port)).data.toString()) as { pid: number }
  writeFileSync(module, 'export default 42\n')
  server.signal('SIGHUP')
  await server.waitFor(/^warning: reload: the new zygote is unfit: .*has no default export function$/)
  const after = JSON.parse((await exchange(server.port)).data.toString()) as { pid: number }
  t.not(after.pid, before.pid, 'a new child, forked by the old zygote')
  await stopServer(server)
  t.equal(server.lines.filter((line) => line.includes('the new zygote is unfit')).length, 1, 'said once')
})

t.test('a zygote that dies while the code on disk does not load: tried again with backoff, and the connections wait for the code to be mended', { skip }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'forkserver-zygote-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const module = join(dir, 'handler.js')
  const good = readFileSync(handler('random'))
  writeFileSync(module, good)
  const server = await zygote(t, ['--handler', module])
  const before = JSON.parse((await exchange(server.port)).data.toString()) as { pid: number }
  writeFileSync(module, 'export default 42\n')
  const z = zygotePid(server)
  process.kill(z, 'SIGKILL')
  const from = server.lines.length
  // Two unfit replacements in a row: the second is the retry.
  await server.waitForCount(/^warning: the new zygote is unfit: .*has no default export function$/, 2, from)
  const waiting = exchange(server.port) // no zygote now: it waits in the parent
  writeFileSync(module, good)
  const after = JSON.parse((await waiting).data.toString()) as { pid: number }
  t.not(after.pid, before.pid, 'served, once a zygote could load the code again')
  t.ok(server.lines.slice(from).some((line) => /^warning: zygote \d+ exited with status \d+; a new one in [\d.]+s$/.test(line)), 'each unfit try is followed by the next')
  await stopServer(server)
})
