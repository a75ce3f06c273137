// A fresh address layout when it matters (lib/start/zygote-starter.ts,
// lib/parent/supervisor.ts): every child of a zygote shares its layout, so
// a child that dies of a memory fault makes the server replace the zygote
// with a fresh exec at once, and --zygote-max-forks replaces it after N
// forks. Skipped, with the reason, where the addon is not built.
import { existsSync } from 'node:fs'
import type { Socket } from 'node:net'
import t from 'tap'
import { exchange, open, readLine } from '../fixtures/client.js'
import { startServer, stopServer, type Running } from '../fixtures/server.js'
import { skipUnlessBuilt } from '../fixtures/warm-fork.js'
import { handler, ppidOf, zygotePid } from '../fixtures/zygote.js'

const skip = skipUnlessBuilt()
const TRACE = { DEBUG: 'forkserver:parent' }

/** A connection to the whoami handler, held open: its child, and the zygote that forked it. */
const whoami = async (server: Running): Promise<{ socket: Socket; pid: number; ppid: number }> => {
  const socket = await open(server.port)
  const { pid, ppid } = JSON.parse(await readLine(socket)) as { pid: number; ppid: number }
  return { socket, pid, ppid }
}

/** Resolves once `pid` is gone from /proc. */
const goneWithin = async (pid: number, limitMs: number): Promise<void> => {
  for (const deadline = Date.now() + limitMs; existsSync(`/proc/${pid}`); ) {
    if (Date.now() > deadline) throw new Error(`pid ${pid} still there after ${limitMs} ms`)
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

t.test('kill -SEGV of a serving child: the zygote forks no more, a fresh one (a new pid) serves as soon as it is ready, one line says why, and the other child serves on', { skip }, async (t) => {
  const server = await startServer(t, ['--start', 'zygote', '-v'], TRACE)
  const [crashing, other] = [await open(server.port), await open(server.port)]
  for (const socket of [crashing, other]) socket.write('before\n')
  t.same([await readLine(crashing), await readLine(other)], ['before', 'before'])
  const [first] = (await server.waitForCount(/^pid (\d+) from /, 2)).map((m) => Number(m[1]))
  const z = zygotePid(server)
  const from = server.lines.length
  const killedAt = Date.now()
  process.kill(first!, 'SIGSEGV')
  await server.waitFor(new RegExp(`^end ${first} signal SIGSEGV$`), from)
  await server.waitFor(new RegExp(`^zygote ${z} replaced: child ${first} died by SIGSEGV; a fresh zygote gets a new address layout$`), from)
  const next = await open(server.port) // (it waits for the fresh zygote)
  next.write('next\n')
  t.equal(await readLine(next), 'next', 'a new connection is served')
  const elapsed = Date.now() - killedAt
  const [, fresh, readyMs] = (await server.waitFor(/zygote (\d+) ready in (\d+) ms/, from)).map(Number)
  const nextPid = Number((await server.waitFor(/^pid (\d+) from /, from))[1])
  t.not(fresh, z, 'a new zygote')
  t.equal(ppidOf(nextPid), fresh, 'the new connection is its child')
  t.comment(`served by the fresh zygote ${elapsed} ms after the SIGSEGV; the zygote's own start took ${readyMs} ms`)
  t.ok(elapsed - readyMs! < 1000, 'the server waited for nothing but the fresh zygote\'s start')
  if (readyMs! < 1000) t.ok(elapsed < 2000, 'within 2 s, on a machine where a zygote starts in under 1 s')
  other.write('after\n')
  t.equal(await readLine(other), 'after', 'the other child serves on')
  for (const socket of [other, next]) socket.end()
  await goneWithin(z, 10_000) // (the old zygote goes once its last child has)
  t.equal(server.lines.filter((line) => line.includes(' replaced: ')).length, 1, 'one replacement')
  t.match(await stopServer(server), { code: 0 })
})

t.test('--zygote-max-forks 3: after 3 forks a fresh zygote serves, one line says why, and the old one goes once its children have', { skip }, async (t) => {
  const server = await startServer(t, ['--start', 'zygote', '-v', '--zygote-max-forks', '3', '--handler', handler('whoami')])
  const held = []
  for (let i = 0; i < 3; i++) held.push(await whoami(server))
  const z = held[0]!.ppid
  t.same(held.map((h) => h.ppid), [z, z, z], 'three children of one zygote')
  await server.waitFor(new RegExp(`^zygote ${z} replaced: it has forked 3 children \\(--zygote-max-forks\\); a fresh zygote gets a new address layout$`))
  let after = await whoami(server)
  for (let tries = 0; after.ppid === z && tries < 200; tries++) {
    after.socket.end()
    after = await whoami(server)
  }
  t.not(after.ppid, z, 'a fresh zygote forks the next ones')
  for (const h of [...held, after]) h.socket.end()
  await goneWithin(z, 10_000)
  t.match(await stopServer(server), { code: 0 })
})

t.test('under --exec, a program that dies by SIGSEGV replaces no zygote: it was exec\'d, with a layout of its own', { skip }, async (t) => {
  const server = await startServer(t, ['--start', 'zygote', '-v', '--exec', '--', 'sh', '-c', 'read line; kill -SEGV $$'])
  const z = zygotePid(server)
  await exchange(server.port, 'crash\n')
  await server.waitFor(/^end \d+ signal SIGSEGV$/)
  t.equal((await exchange(server.port, 'again\n')).ended, 'end', 'the next one is served too')
  await server.waitForCount(/^end \d+ signal SIGSEGV$/, 2)
  t.notOk(server.lines.some((line) => line.includes(' replaced: ')), 'no replacement')
  t.equal(zygotePid(server), z, 'the same zygote')
  t.match(await stopServer(server), { code: 0 })
})
